"""The operator's own Prometheus metrics (served on --metrics-port at /metrics)."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import typing
import urllib.parse
import wsgiref.simple_server

import prometheus_client
from prometheus_client import exposition as exposition_module

STARTED = time.monotonic()  # this module is imported as the process starts

RECONCILES = prometheus_client.Counter(
    "capliquify_reconciles_total", "Objects judged by the evaluation loop.", ["kind", "result"]
)
RECONCILE_ERRORS = prometheus_client.Counter(
    "capliquify_reconcile_errors_total", "Reconciles that failed (will be retried).", ["kind"]
)
RECONCILE_SECONDS = prometheus_client.Histogram(
    "capliquify_reconcile_duration_seconds", "Time to judge and, if needed, patch one object.", ["kind"]
)
ROUND_SECONDS = prometheus_client.Histogram(
    "capliquify_evaluation_round_duration_seconds", "Time of one evaluation round over dirty objects."
)
PROMETHEUS_QUERIES = prometheus_client.Counter(
    "capliquify_prometheus_queries_total", "Queries sent to Prometheus (batched: one per distinct query per round)."
)
SCALING_ROUND_SECONDS = prometheus_client.Histogram(
    "capliquify_scaling_round_duration_seconds", "Time of one batched scaling round."
)
SCALE_EVENTS = prometheus_client.Counter("capliquify_scale_events_total", "Replica changes applied.", ["direction"])
HEALTH_PROBES = prometheus_client.Counter("capliquify_health_probes_total", "Health-check probes.", ["result"])
HEALTH_CHECK_LAG = prometheus_client.Histogram(
    "capliquify_health_check_lag_seconds", "Delay between a health check falling due and its probe starting.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
HEALTH_CHECKS_SKIPPED = prometheus_client.Counter(
    "capliquify_health_checks_skipped_total", "Health-check runs skipped: the previous run of the check was still in flight.")
ROLLBACKS = prometheus_client.Counter("capliquify_rollbacks_total", "Rollbacks performed.")
API_WRITES = prometheus_client.Counter("capliquify_api_writes_total", "Write requests sent to the API server.", ["verb"])
WATCH_EVENTS = prometheus_client.Counter(
    "capliquify_watch_events_total", "Watch events received, and whether they changed anything.", ["kind", "effect"]
)
WATCH_RESTARTS = prometheus_client.Counter(
    "capliquify_watch_restarts_total", "Watches that broke (error) or had to list again (gone).", ["kind", "reason"]
)
WATCHED_OBJECTS = prometheus_client.Gauge("capliquify_watched_objects", "Objects in the in-memory view.", ["kind"])

NOTIFICATIONS = prometheus_client.Counter(
    "capliquify_notifications_total", "Notification deliveries by channel kind and result.", ["kind", "result"])
PROBE_APPLIES = prometheus_client.Counter(
    "capliquify_probe_applies_total", "Server-side applies of container probes.", ["result"])


LOOP_LAST_PASS = prometheus_client.Gauge(
    "capliquify_loop_last_pass_timestamp_seconds", "When each of the leader's loops last came round (Unix time).",
    ["loop"])
LOOP_PERIOD = prometheus_client.Gauge(
    "capliquify_loop_period_seconds", "How often each of the leader's loops comes round when healthy.", ["loop"])
LEADER = prometheus_client.Gauge("capliquify_leader", "1 while this replica holds the Lease and acts, else 0.")
FENCED_WRITES = prometheus_client.Counter(
    "capliquify_fenced_writes_total", "Writes refused because this replica did not hold the Lease."
)
LEASE_RENEWAL_GAP = prometheus_client.Gauge(
    "capliquify_lease_renewal_gap_max_seconds",
    "Longest time between two successful Lease renewals in this leader's term (it stops acting at the renew deadline).")
ALL_JUDGED_SECONDS = prometheus_client.Gauge(
    "capliquify_all_judged_seconds",
    "Seconds from process start until every watched object had been judged once while leading "
    "(its first verdict written, or found already right).")


def initialise(object_kinds: typing.Iterable[str], channel_kinds: typing.Iterable[str]) -> None:
    """Every label set a dashboard or alert rule reads, at 0 from the start: a rate over a counter
    that has never been incremented is then 0, not "no data"."""
    for kind in object_kinds:
        RECONCILE_ERRORS.labels(kind)
        for effect in ("changed", "unchanged"):
            WATCH_EVENTS.labels(kind, effect)
        for reason in ("error", "gone"):
            WATCH_RESTARTS.labels(kind, reason)
    for channel in channel_kinds:
        for result in ("sent", "failed"):
            NOTIFICATIONS.labels(channel, result)
    for verb in ("patch", "create"):
        API_WRITES.labels(verb)
    for direction in ("Up", "Down"):
        SCALE_EVENTS.labels(direction)
    for result in ("applied", "failed"):
        PROBE_APPLIES.labels(result)
    for result in ("ok", "failed"):
        HEALTH_PROBES.labels(result)


def count_write(verb: str) -> None:
    API_WRITES.labels(verb).inc()


CONNECTIONS = 8  # scrapes served at once; more are closed at once (a scraper retries)
READ_TIMEOUT_SECONDS = 5.0  # each read of a request
DEADLINE_SECONDS = 20.0  # a whole connection: a client that drips is cut off after it


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    timeout = READ_TIMEOUT_SECONDS  # StreamRequestHandler sets it on the socket

    def log_message(self, format: str, *args: typing.Any) -> None:  # noqa: A002 - the base's name
        """A scrape is not worth a log line."""


class _BoundedServer(exposition_module.ThreadingWSGIServer):
    """A thread per connection, but at most CONNECTIONS of them, each cut off at its deadline
    by one reaper thread: clients that connect and never speak (or drip a byte at a time)
    cannot pile up threads in the operator; past the cap a connection is closed at once."""

    request_queue_size = 64  # accepted at once and closed past the cap, not left to SYN retries

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        # Before the bind: a port in use makes the base class call server_close, which reads them.
        self.slots = threading.BoundedSemaphore(CONNECTIONS)
        self.deadlines: dict[socket.socket, float] = {}
        self.lock = threading.Lock()
        self.closed = threading.Event()
        super().__init__(*args, **kwargs)
        threading.Thread(target=self._reap, name="metrics-reaper", daemon=True).start()

    def process_request(self, request: typing.Any, client_address: typing.Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        with self.lock:
            self.deadlines[request] = time.monotonic() + DEADLINE_SECONDS
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            raise

    def process_request_thread(self, request: typing.Any, client_address: typing.Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _done(self, request: socket.socket) -> None:
        with self.lock:
            if self.deadlines.pop(request, None) is not None:
                self.slots.release()

    def _reap(self) -> None:
        while not self.closed.wait(min(1.0, DEADLINE_SECONDS / 4)):
            now = time.monotonic()
            with self.lock:
                late = [request for request, deadline in self.deadlines.items() if deadline <= now]
            for request in late:
                try:
                    request.shutdown(socket.SHUT_RDWR)  # the handler's read fails; its thread ends
                except OSError:
                    pass

    def server_close(self) -> None:
        self.closed.set()
        super().server_close()

    def handle_error(self, request: typing.Any, client_address: typing.Any) -> None:
        """A client that timed out or was cut is not worth a traceback in the operator's log."""


Names = typing.Optional[frozenset[str]]  # the families a scrape asks for (`name[]`), or all


def exposition(extra: typing.Callable[[Names], str], names: Names = None) -> bytes:
    """The registry's metrics and `extra`'s (already exposition text), in the classic text
    format; only the families in `names` when given."""
    registry = prometheus_client.REGISTRY if names is None else prometheus_client.REGISTRY.restricted_registry(names)
    return prometheus_client.generate_latest(registry) + extra(names).encode()


def requested_names(query: str) -> Names:
    """The `name[]` parameters of a scrape's query (prometheus_client's own filter), if any:
    a probe that reads one gauge then costs nothing of the per-object series."""
    names = urllib.parse.parse_qs(query).get("name[]")
    return frozenset(names) if names else None


def serve(port: int, extra: typing.Callable[[Names], str] = lambda names: "",
          address: str = "0.0.0.0") -> wsgiref.simple_server.WSGIServer:  # noqa: S104 - scraped in the cluster
    """/metrics on `port`, on a thread per scrape: the registry plus `extra` (the per-object
    metrics, rendered from a cache of their own text: object_metrics.py)."""
    def app(environ: dict[str, typing.Any], start_response: typing.Callable[..., typing.Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b""]
        body = exposition(extra, requested_names(environ.get("QUERY_STRING", "")))
        headers = [("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    server = wsgiref.simple_server.make_server(address, port, app, _BoundedServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server


def serve_health(port: int, check: typing.Callable[[], str], address: str = "0.0.0.0"  # noqa: S104 - the kubelet's probes
                 ) -> wsgiref.simple_server.WSGIServer:
    """/healthz on `port`, bounded like /metrics (kopf's own endpoint held every silent
    connection 75 s with no bound: 1,100 of them and the process could open no socket).
    `check` returns the state ("leading", "standby") or raises saying what is wrong; it runs
    on the server's thread, so a blocked event loop does not make the kubelet wait: the
    loops' heartbeats say when it stalls."""
    def app(environ: dict[str, typing.Any], start_response: typing.Callable[..., typing.Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        try:
            body, status = json.dumps({"loops": check()}), "200 OK"
        except Exception as error:  # noqa: BLE001 -- the probe's failure is its answer
            body, status = json.dumps({"loops": {"error": str(error)[:512]}}), "500 Internal Server Error"
        start_response(status, [("Content-Type", "application/json")])
        return [body.encode()]

    server = wsgiref.simple_server.make_server(address, port, app, _BoundedServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="health-server", daemon=True).start()
    return server
