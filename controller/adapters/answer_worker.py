"""The parser process (`python -m controller.adapters.answer_worker`): reads calls from stdin,
answers on stdout, one at a time, until stdin closes (adapters/answers.py is the other end).

A frame is a 4-byte big-endian length and a pickle. A call is (module, function, args), and
the function must be listed in CALLS: the parent is the only writer of this pipe, and even
so nothing but a parser runs here. An answer is ("ok", value) or ("error", type name).
"""

from __future__ import annotations

import importlib
import pickle
import struct
import sys
import typing

CALLS = frozenset({("controller.adapters.prometheus", "parse_narrowed"), ("controller.adapters.answers", "echo")})
HEADER = struct.Struct(">I")


def read_frame(stream: typing.BinaryIO) -> bytes | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: typing.BinaryIO, payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def main() -> None:
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while (frame := read_frame(source)) is not None:
        module, name, args = pickle.loads(frame)  # noqa: S301 (the parent process wrote it)
        if (module, name) not in CALLS:
            answer: tuple[str, typing.Any] = ("error", "not a parser")
        else:
            try:
                answer = ("ok", getattr(importlib.import_module(module), name)(*args))
            except Exception as error:  # the caller's typed error; this process lives on
                answer = ("error", type(error).__name__)
        del frame, args  # the answer's bytes, gone before the next one is read
        write_frame(sink, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
