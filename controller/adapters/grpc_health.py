"""The gRPC health protocol: one unary call of `grpc.health.v1.Health/Check` over HTTP/2.

The call is small enough to make by hand on a stream the egress guard opened
(`egress.open_stream`), with h2 as the HTTP/2 state machine: a gRPC client library would dial
by itself, past the guard, and bring threads and a C core for one request. The request is
`HealthCheckRequest{service}` (field 1, a string), framed as gRPC frames every message (a
compressed flag, a 4-byte length); the answer `HealthCheckResponse{status}` (field 1, an
enum) is read as the bytes arrive, at most ANSWER_LIMIT of them, and `grpc-status` from the
trailers (or from the headers of a trailers-only answer). Nothing the server sends is echoed
but the status names and codes below.
"""

from __future__ import annotations

import asyncio
import typing

import h2.config
import h2.connection
import h2.events

PATH = "/grpc.health.v1.Health/Check"
ANSWER_LIMIT = 64 * 1024  # a HealthCheckResponse is a few bytes
STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
SERVING = 1
# gRPC status codes by their text in `grpc-status` (compared as text: a server's header is
# never converted to a number).
CODES = {"1": "CANCELLED", "2": "UNKNOWN", "3": "INVALID_ARGUMENT", "4": "DEADLINE_EXCEEDED", "5": "NOT_FOUND",
         "7": "PERMISSION_DENIED", "8": "RESOURCE_EXHAUSTED", "12": "UNIMPLEMENTED", "13": "INTERNAL",
         "14": "UNAVAILABLE", "16": "UNAUTHENTICATED"}


class Answer(typing.NamedTuple):
    ok: bool
    message: str


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def request_frame(service: str) -> bytes:
    """The gRPC frame of HealthCheckRequest{service} (an empty service is an empty message)."""
    name = service.encode()
    message = b"\x0a" + _varint(len(name)) + name if name else b""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("a varint runs past the message")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def response_status(frames: bytes) -> int:
    """The `status` of the one HealthCheckResponse in `frames` (proto3: 0 when absent); a
    ValueError for anything else (compressed, truncated, not protobuf)."""
    if len(frames) < 5:
        raise ValueError("no gRPC message in the answer")
    if frames[0] != 0:
        raise ValueError("a compressed answer (no compression was offered)")
    length = int.from_bytes(frames[1:5], "big")
    message = frames[5:5 + length]
    if len(message) != length:
        raise ValueError("the answer's message is cut short")
    status, at = 0, 0
    while at < len(message):
        tag, at = _read_varint(message, at)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, at = _read_varint(message, at)
            if field == 1:
                status = value
        elif wire == 2:
            size, at = _read_varint(message, at)
            at += size
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire} is not protobuf's")
    if at != len(message):
        raise ValueError("the answer's message is cut short")
    return status


async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, authority: str, service: str,
                tls: bool, timeout_seconds: int) -> Answer:
    """One Health/Check on an open stream; the caller bounds the time and closes the stream."""
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    connection.initiate_connection()
    stream = connection.get_next_available_stream_id()
    connection.send_headers(stream, [
        (":method", "POST"), (":scheme", "https" if tls else "http"), (":path", PATH), (":authority", authority),
        ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", f"{timeout_seconds * 1000}m"),
        ("user-agent", "capliquify-operator"),
    ])
    connection.send_data(stream, request_frame(service), end_stream=True)
    writer.write(connection.data_to_send())
    await writer.drain()
    body, fields = bytearray(), dict[str, str]()
    while True:
        chunk = await reader.read(16384)
        if not chunk:
            return Answer(False, "the server closed the connection before answering")
        for event in connection.receive_data(chunk):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)) and event.stream_id == stream:
                fields.update((str(name), str(value)) for name, value in event.headers)
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                body += event.data
                if len(body) > ANSWER_LIMIT:
                    return Answer(False, f"an answer over {ANSWER_LIMIT} bytes")
                connection.acknowledge_received_data(event.flow_controlled_length, stream)
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                return Answer(False, f"the server reset the call (HTTP/2 {_error_name(event.error_code)})")
            elif isinstance(event, h2.events.ConnectionTerminated):
                return Answer(False, f"the server ended the connection (HTTP/2 {_error_name(event.error_code)})")
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                return judge(fields, bytes(body))
        pending = connection.data_to_send()
        if pending:
            writer.write(pending)
            await writer.drain()


def _error_name(code: typing.Any) -> str:
    """An HTTP/2 error code as h2 gives it (a known one is an ErrorCodes member, with a name)."""
    return str(getattr(code, "name", "an unknown error"))


def judge(fields: typing.Mapping[str, str], body: bytes) -> Answer:
    """The verdict on a finished call: HTTP 200, grpc-status 0 and SERVING pass."""
    if fields.get(":status") != "200":
        return Answer(False, f"HTTP {fields.get(':status', '?')[:3]} (not a gRPC server?)")
    code = fields.get("grpc-status")
    if code is None or not code.isascii() or not code.isdigit():
        return Answer(False, "no grpc-status in the answer")
    if code != "0":
        name = CODES.get(code, "unknown")
        hint = ": the server has no health service" if code == "12" else ""
        return Answer(False, f"grpc-status {code[:6]} ({name}){hint}")
    try:
        status = response_status(body)
    except ValueError as error:
        return Answer(False, str(error))
    name = STATUSES.get(status, f"status {status}")
    return Answer(status == SERVING, name)
