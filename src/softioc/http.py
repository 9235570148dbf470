"""HTTP endpoints of the IOC: probes, Prometheus metrics and a live page.
Off unless asked for: ``PYTHONIOC_HTTP=HOST:PORT`` in the environment, or
``pythonioc run --http HOST:PORT`` (needs ``pip install
'epics-pythonioc[web]'``: h11 and prometheus_client).

=================== ==================================================================
``GET /healthz``    200 ``ok``, or 503 and why not: the IOC is not live
                    (iocInit not done, no CA server, a wedged dispatcher)
``GET /readyz``     200 ``ok``, or 503 and why not: not live, or iocInit not finished
``GET /metrics``    the IOC's figures in Prometheus's text format (`softioc.metrics`)
``GET /``           the live page: every record and PVA-only PV, updated as they change
``GET /events``     what the page reads: server-sent events, ``snapshot`` (every row,
                    as a JSON list) first, then ``update`` (the rows that changed)
=================== ==================================================================

``HEAD`` works as ``GET`` without the body; any other method is answered 405,
any other path 404: nothing can be changed over HTTP.  A bare port
(``:8080``) means ``127.0.0.1:8080``; any other interface must be named
(``0.0.0.0:8080`` for all of them).

The server starts when the process starts defining its IOC (its first
record, ``.db`` file or LoadDatabase), so the probes answer 503 while
records are built, autosave restores values and iocInit runs; it stops when
the IOC shuts down.  It runs an asyncio event loop in a daemon thread of its
own, parsing HTTP/1.1 with h11; what may take time (reading the IOC's
figures, the page's snapshot) runs in two worker threads of its own, so a
slow client or scrape never holds up the IOC's threads or another client.

Limits: at most `MAX_CONNECTIONS` connections (and half the process's
file-descriptor limit), a further `OVERFLOW` get 503; a connection has
`IDLE_TIMEOUT` seconds for each request, and an oversized or malformed
request gets 400 (or 431) and is closed.  An event stream whose client does
not read it holds at most `QUEUE_LIMIT` updates (`QUEUE_BYTES` bytes); past
that they are dropped and the client gets a fresh snapshot once it reads
again, and after `STALL_TIMEOUT` seconds of not reading it is closed.  At
most `MAX_STREAMS` event streams are open at once; a snapshot goes out in
pieces as its client takes them, from one copy shared by the streams that
asked together, and new snapshots wait while those held reach
`SNAPSHOT_BUDGET` bytes.  A comment goes to every stream each `HEARTBEAT`
seconds.

A malformed ``PYTHONIOC_HTTP`` raises ValueError, and so does a missing
extra (an ImportError naming it): both are mistakes every start would make.
An address that cannot be served at start-up (in use, not this host's) is
logged as an error naming it, and the IOC carries on without HTTP: its CA
and PVA clients matter more than its probes.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import h11
except ImportError as e:            # pragma: no cover - the web extra is missing
    raise ImportError("the HTTP endpoints (PYTHONIOC_HTTP, pythonioc run --http) need the "
                      "web extra: pip install 'epics-pythonioc[web]' (h11, prometheus_client)"
                      ) from e
try:
    from . import metrics
except ImportError as e:            # pragma: no cover
    if e.name != "prometheus_client" and not str(e.name).startswith("prometheus_client."):
        raise
    raise ImportError("the HTTP endpoints (PYTHONIOC_HTTP, pythonioc run --http) need the "
                      "web extra: pip install 'epics-pythonioc[web]' (h11, prometheus_client)"
                      ) from e
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from . import _lifecycle, _status, _watch
from ._ioc import ioc

__all__ = ["ENV", "MAX_CONNECTIONS", "OVERFLOW", "IDLE_TIMEOUT", "STALL_TIMEOUT", "HEARTBEAT",
           "QUEUE_LIMIT", "QUEUE_BYTES", "MAX_STREAMS", "SNAPSHOT_BUDGET", "parse_address",
           "serve", "serve_from_environment", "stop", "running", "Server"]

log = logging.getLogger("softioc.http")

ENV = "PYTHONIOC_HTTP"
MAX_CONNECTIONS = 1000      # open at once (then 503), at most half the descriptor limit
OVERFLOW = 100              # connections answered 503 at once; beyond, refused outright
IDLE_TIMEOUT = 30.0         # s for each whole request (the next one on a kept-alive connection)
STALL_TIMEOUT = 60.0        # s a client may leave what was sent to it unread, then closed
HEARTBEAT = 15.0            # s between the comments sent to every event stream
QUEUE_LIMIT = 256           # updates held for an event stream that is not read...
QUEUE_BYTES = 1 << 20       # ...or bytes; past either, dropped for a fresh snapshot
MAX_HEAD = 16 * 1024        # bytes of a request's head (line and headers)
WRITE_HIGH = 64 * 1024      # bytes buffered for a client before it counts as not reading
SEND_BUFFER = 256 * 1024    # bytes of the kernel's send buffer for each client
# An event stream costs at most this much of its own, whether or not its client
# reads: snapshots (1.3 MB for 10,000 records) go out in pieces as the client
# takes them, from one copy shared by the streams that asked at the same time.
MAX_STREAMS = 200           # event streams open at once (then 503)
STREAM_WRITE_HIGH = 16 * 1024
STREAM_SEND_BUFFER = 32 * 1024
PIECE = 16 * 1024           # bytes of a snapshot written at a time
SNAPSHOT_BUDGET = 32 << 20  # bytes of distinct snapshots held for streams; then new ones wait

PAGE = Path(__file__).parent / "_web" / "page.html"

_TEXT = "text/plain; charset=utf-8"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``; ``:PORT`` is ``127.0.0.1:PORT``) as (host, port)."""
    value = text.strip()
    host, colon, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        colon = ""                  # an IPv6 address must be in brackets
    try:
        port = int(port_text)
    except ValueError:
        port = 0
    if not colon or not 0 < port < 65536 or any(c.isspace() or c in "/[]" for c in host):
        raise ValueError(f"HTTP address {text!r}: use HOST:PORT, e.g. 127.0.0.1:8080 "
                         "(':8080' means 127.0.0.1:8080; 0.0.0.0:8080 serves every interface)")
    return host or "127.0.0.1", port


def _fd_limit() -> int:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_CONNECTIONS
    return max(16, soft // 2)


def _max_connections() -> int:
    return min(MAX_CONNECTIONS, _fd_limit())


def _json(rows: Any) -> bytes:
    """Rows as JSON text in UTF-8, always valid JSON (no NaN, every text encodable)."""
    try:
        text = json.dumps(rows, ensure_ascii=False, allow_nan=False, default=str,
                          separators=(",", ":"))
    except ValueError:              # a NaN or an infinity somewhere: as strings
        text = json.dumps(_finite(rows), ensure_ascii=False, default=str,
                          separators=(",", ":"))
    return text.encode("utf-8", "replace")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _event(name: bytes, rows: Any) -> bytes:
    return b"event: " + name + b"\ndata: " + _json(rows) + b"\n\n"


def _reason(status: int) -> bytes:
    return {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
            408: b"Request Timeout", 431: b"Request Header Fields Too Large",
            500: b"Internal Server Error", 503: b"Service Unavailable"}.get(status, b"")


class _Connection(asyncio.Protocol):
    """One client: its requests, one at a time, and its event stream."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.request: h11.Request | None = None
        self.overloaded = False     # over the limit: every request gets 503
        self.busy = False           # a response is being made
        self.paused = False         # the client leaves what we sent unread
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.stall: asyncio.TimerHandle | None = None
        # The event stream (GET /events)
        self.streaming = False
        self.synced = False         # has had a snapshot newer than what it missed
        self.wanted = False         # waits for a snapshot
        self.need_from = 0          # a snapshot for it must start at this update or later
        self.queue: collections.deque[bytes] = collections.deque()
        self.queued = 0             # bytes in queue
        self.sending: bytes | None = None   # the snapshot being sent (shared), from offset
        self.offset = 0

    # ---- asyncio -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        if len(server.connections) >= server.max_connections:
            server.refused += 1
            if server.overflowing >= OVERFLOW:
                transport.abort()
                self.closed = True
                return
            self.overloaded = True
            server.overflowing += 1
        server.connections.add(self)
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        sock = transport.get_extra_info("socket")
        if sock is not None:        # a client that does not read holds this much of the kernel's
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self._arm(IDLE_TIMEOUT if not self.overloaded else 5.0)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        server = self.server
        if self in server.connections:
            server.connections.discard(self)
            if self.overloaded:
                server.overflowing -= 1
        server.streams.discard(self)
        server.waiting.discard(self)
        server.early.discard(self)
        self.queue.clear()
        self._sent_snapshot()
        for timer in (self.timer, self.stall):
            if timer is not None:
                timer.cancel()

    def data_received(self, data: bytes) -> None:
        if self.streaming or self.closed:
            return                  # what an event stream's client sends is not read
        self.h11.receive_data(data)
        self._next()

    def eof_received(self) -> bool:
        if self.streaming or self.closed:
            return False            # the client has gone: close
        self.h11.receive_data(b"")
        self._next()
        return True                 # answer what was asked, then close

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None and not self.streaming:
            self.transport.pause_reading()
        if self.stall is None:
            self.stall = self.server.loop.call_later(STALL_TIMEOUT, self._abort)

    def resume_writing(self) -> None:
        self.paused = False
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None
        if self.streaming:
            self._flush()
        elif self.transport is not None and not self.busy:
            self.transport.resume_reading()
            self._next()

    # ---- requests --------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.server.loop.call_later(seconds, self._timed_out)

    def _timed_out(self) -> None:
        self.timer = None
        if self.busy or self.streaming or self.closed:
            return
        if self.h11.their_state is h11.SEND_BODY or (
                self.h11.their_state is h11.IDLE and self.h11.trailing_data[0]):
            self._error(408, "request not complete in time")    # part of a request came
        else:
            self.close()           # an idle kept-alive connection

    def _abort(self) -> None:
        self.stall = None
        if self.transport is not None:
            self.transport.abort()  # does not read what is sent: drop it

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def _next(self) -> None:
        """Handle what the client sent, one request at a time."""
        while not (self.busy or self.paused or self.closed or self.streaming):
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                self._error(e.error_status_hint, str(e))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.request = event
                if len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers) \
                        > MAX_HEAD:         # (h11 checks only a head that comes in pieces)
                    self._error(431, "request head too large")
                    return
                if event.method not in (b"GET", b"HEAD"):
                    self._send(405, b"only GET and HEAD: nothing is changed over HTTP\n",
                               close=True, headers=[("allow", "GET, HEAD")])
                    return
            elif isinstance(event, h11.EndOfMessage):
                if self.request is not None:
                    self._route(self.request)
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
                return
            # h11.Data: a body (of a GET), not read

    def _route(self, request: h11.Request) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.overloaded:
            self._send(503, b"too many connections\n", close=True)
            return
        path = request.target.split(b"?", 1)[0]
        work = self.server.routes.get(path)
        if path == b"/events" and len(self.server.streams) >= MAX_STREAMS:
            self._send(503, b"too many event streams\n", close=True)
        elif path == b"/events":
            self._start_stream(request.method == b"HEAD")
        elif work is None:
            self._send(404, b"not found: /healthz, /readyz, /metrics, / and /events\n")
        else:
            self.busy = True
            if self.transport is not None:
                self.transport.pause_reading()
            future = self.server.loop.run_in_executor(self.server.executor, work)
            future.add_done_callback(self._made)

    def _made(self, future: asyncio.Future[tuple[int, str, bytes]]) -> None:
        self.busy = False
        if self.closed:
            return
        try:
            status, content_type, body = future.result()
        except Exception:
            log.exception("HTTP: answering %r failed", self.request)
            status, content_type, body = 500, _TEXT, b"internal error (see the IOC's log)\n"
        self._send(status, body, content_type)
        if self.transport is not None and not self.closed and not self.paused:
            self.transport.resume_reading()
        self._next()

    def _send(self, status: int, body: bytes, content_type: str = _TEXT, close: bool = False,
              headers: list[tuple[str, str]] | None = None) -> None:
        if self.closed or self.transport is None:
            return
        head = self.request is not None and self.request.method == b"HEAD"
        fields = [("content-type", content_type), ("content-length", str(len(body))),
                  ("cache-control", "no-store"), *(headers or [])]
        if close:
            fields.append(("connection", "close"))
        try:
            data = self.h11.send(h11.Response(status_code=status, headers=fields,
                                              reason=_reason(status)))
            if body and not head:
                data = (data or b"") + (self.h11.send(h11.Data(data=body)) or b"")
            data = (data or b"") + (self.h11.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            self.transport.abort()
            self.closed = True
            return
        self.transport.write(data)
        self.server.answered += 1
        if close or self.h11.our_state is h11.MUST_CLOSE or \
                self.h11.their_state is not h11.DONE:
            self.close()
            return
        self.h11.start_next_cycle()
        self.request = None
        self._arm(IDLE_TIMEOUT)

    def _error(self, status: int, text: str) -> None:
        """A request that cannot be answered: say why if possible, and close."""
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self.request = None
            self._send(status if status >= 400 else 400,
                       f"{_reason(status).decode()}: {text}\n".encode(), close=True)
        self.close()

    # ---- the event stream --------------------------------------------------------

    def _start_stream(self, head: bool) -> None:
        assert self.transport is not None
        fields = [("content-type", "text/event-stream; charset=utf-8"),
                  ("cache-control", "no-store"), ("x-accel-buffering", "no")]
        data = self.h11.send(h11.Response(status_code=200, headers=fields, reason=b"OK"))
        if head:
            data = (data or b"") + (self.h11.send(h11.EndOfMessage()) or b"")
            self.transport.write(data)
            if self.h11.our_state is h11.MUST_CLOSE:
                self.close()
            else:
                self._head_done()
            return
        self.transport.write(data or b"")
        self.transport.set_write_buffer_limits(high=STREAM_WRITE_HIGH)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SEND_BUFFER)
        self.streaming = True
        self.need_from = self.server.seq
        self.server.streams.add(self)
        self.write(b"retry: 2000\n\n")
        # The page's header and title: $IOC_NAME, else $IOC_PREFIX, else the host name.
        name = self.server.ioc_name or os.environ.get("IOC_PREFIX", "").strip() or \
            socket.gethostname()
        self.write(_event(b"info", {"ioc": name}))
        self.server.want_snapshot(self)

    def _head_done(self) -> None:
        self.h11.start_next_cycle()
        self.request = None
        self._arm(IDLE_TIMEOUT)
        self._next()

    def write(self, chunk: bytes) -> None:
        if self.transport is None or self.closed:
            return
        try:
            self.transport.writelines(
                self.h11.send_with_data_passthrough(h11.Data(data=chunk)) or [])
        except h11.LocalProtocolError:
            self.transport.abort()

    def push(self, chunk: bytes) -> None:
        """An update, for this stream (written now, or held while not read)."""
        if self.synced and not self.paused and not self.queue and self.sending is None:
            self.write(chunk)
            return
        self.queue.append(chunk)
        self.queued += len(chunk)
        if len(self.queue) > QUEUE_LIMIT or self.queued > QUEUE_BYTES:
            self.queue.clear()      # too far behind: a fresh snapshot instead
            self.queued = 0
            self.synced = False
            self.need_from = self.server.seq
            self.server.resyncs += 1
            if not self.paused and self.sending is None:
                self.server.want_snapshot(self)

    def snapshot(self, chunk: bytes, started: int) -> None:
        """A snapshot whose reading began at update ``started``."""
        self.wanted = False
        if self.closed:
            return
        if started < self.need_from:
            self.server.want_snapshot(self)     # older than what it missed
            return
        self.synced = True
        self._sent_snapshot()
        self.sending, self.offset = chunk, 0
        self.server.hold(chunk)
        self._flush()

    def _sent_snapshot(self) -> None:
        if self.sending is not None:
            self.server.release(self.sending)
            self.sending = None

    def _flush(self) -> None:
        while self.sending is not None and not self.paused and not self.closed:
            piece = self.sending[self.offset:self.offset + PIECE]
            self.offset += len(piece)
            if self.offset >= len(self.sending):
                self._sent_snapshot()
            self.write(piece)
        if self.sending is not None or self.paused or self.closed:
            return
        if not self.synced:         # fell behind meanwhile: a fresh snapshot
            self.server.want_snapshot(self)
            return
        while self.queue and not self.paused and not self.closed:
            chunk = self.queue.popleft()
            self.queued -= len(chunk)
            self.write(chunk)


class _HTTPCollector:
    """The server's own figures, beside the IOC's."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        server = self.server
        names = ["ioc"] if server.ioc_name else []
        labels = [server.ioc_name] if server.ioc_name else []
        found: list[Metric] = []
        for kind, name, doc, value in (
                (GaugeMetricFamily, "pythonioc_http_connections", "HTTP connections open",
                 server.open_connections),
                (GaugeMetricFamily, "pythonioc_http_max_connections", "HTTP connections "
                 "served at once (more get 503)", server.max_connections),
                (GaugeMetricFamily, "pythonioc_http_event_streams", "Live-page event "
                 "streams open", server.open_streams),
                (CounterMetricFamily, "pythonioc_http_event_resyncs", "Event streams that "
                 "fell behind, given a fresh snapshot", server.resyncs),
                (CounterMetricFamily, "pythonioc_http_connections_refused", "Connections "
                 "over the limit (answered 503, or closed at once)", server.refused)):
            metric = kind(name, doc, labels=names)
            metric.add_metric(labels, value)
            found.append(metric)
        return found


class Server:
    """The HTTP endpoints on ``host:port`` (see the module's description):
    `start` serves from a thread of its own, `stop` ends it."""

    def __init__(self, host: str, port: int, max_connections: int | None = None) -> None:
        self.host, self.port = host, port
        self.max_connections = max_connections or _max_connections()
        self.ioc_name = os.environ.get("IOC_NAME", "").strip() or None
        self.registry = metrics.registry(self.ioc_name)   # counting client puts starts here
        self.registry.register(_HTTPCollector(self))
        self.loop = asyncio.new_event_loop()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="softioc-http-work")
        self.routes: dict[bytes, Callable[[], tuple[int, str, bytes]]] = {
            b"/healthz": lambda: self._probe(_status.live),
            b"/readyz": lambda: self._probe(_status.ready),
            b"/metrics": self._metrics,
            b"/": self._page,
        }
        self.connections: set[_Connection] = set()
        self.streams: set[_Connection] = set()
        self.waiting: set[_Connection] = set()     # streams waiting for a snapshot
        self.early: set[_Connection] = set()       # streams given one before iocInit
        self.overflowing = 0        # connections over the limit, being answered 503
        self.refused = 0            # connections over the limit (503, or dropped)
        self.answered = 0           # responses sent
        self.resyncs = 0            # streams given a fresh snapshot after falling behind
        self.seq = 0                # updates broadcast so far
        self.addresses: list[tuple[str, int]] = []
        self._snapshotting = False
        self.held: dict[int, list[Any]] = {}   # id(snapshot): [snapshot, streams sending it]
        self.held_bytes = 0
        self._subscribed: Callable[[], None] | None = None
        self._page_bytes: bytes | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._stopped = False

    # ---- in any thread ----------------------------------------------------------

    @property
    def open_connections(self) -> int:
        return len(self.connections)

    @property
    def open_streams(self) -> int:
        return len(self.streams)

    def start(self) -> None:
        """Bind and serve; raises OSError if the address cannot be served."""
        # Both workers now, not when two requests first overlap: the process's
        # threads stay the same from here on.
        barrier = threading.Barrier(3)
        for _ in range(2):
            self.executor.submit(barrier.wait, 5)
        barrier.wait(5)
        self._thread = threading.Thread(target=self._run, name="softioc-http", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join(5)
            self.executor.shutdown(wait=False)
            raise self._error

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and end the thread (and the watch subscription)."""
        if self._stopped:
            return
        self._stopped = True
        loop = self.loop
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._shut)
            except RuntimeError:
                pass                # the loop is already closed
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        unsubscribe, self._subscribed = self._subscribed, None
        if unsubscribe is not None:
            unsubscribe()
        self.executor.shutdown(wait=False)

    # ---- the server's thread --------------------------------------------------------

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(loop.create_server(
                lambda: _Connection(self), self.host, self.port, reuse_address=True,
                backlog=128))
        except BaseException as e:  # noqa: BLE001 - handed to the thread that started it
            self._error = e
            self._ready.set()
            loop.close()
            return
        self.addresses = [sock.getsockname()[:2] for sock in self._server.sockets]
        self._heartbeat = loop.call_later(HEARTBEAT, self._beat)
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def _shut(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        # let the transports' close callbacks run, then stop
        self.loop.call_soon(self.loop.stop)

    def _beat(self) -> None:
        for conn in list(self.streams):
            if not conn.paused:
                conn.write(b": heartbeat\n\n")
        self._heartbeat = self.loop.call_later(HEARTBEAT, self._beat)

    # ---- the live page's events ----------------------------------------------------

    def want_snapshot(self, conn: _Connection) -> None:
        """Give conn (an event stream) a snapshot, with others that want one."""
        if conn.closed or conn.wanted:
            return
        conn.wanted = True
        self.waiting.add(conn)
        if not self._snapshotting and self.held_bytes < SNAPSHOT_BUDGET:
            self._snapshot()

    def hold(self, snapshot: bytes) -> None:
        """A stream starts sending ``snapshot`` (counted once however many do)."""
        entry = self.held.setdefault(id(snapshot), [snapshot, 0])
        if not entry[1]:
            self.held_bytes += len(snapshot)
        entry[1] += 1

    def release(self, snapshot: bytes) -> None:
        """A stream has sent ``snapshot`` (or closed): past the budget, the
        streams waiting for one get theirs now."""
        entry = self.held.get(id(snapshot))
        if entry is None:
            return
        entry[1] -= 1
        if not entry[1]:
            del self.held[id(snapshot)]
            self.held_bytes -= len(snapshot)
            if self.waiting and not self._snapshotting and self.held_bytes < SNAPSHOT_BUDGET:
                self._snapshot()

    def _snapshot(self) -> None:
        waiting, self.waiting = self.waiting, set()
        self._snapshotting = True
        started = self.seq
        future = self.loop.run_in_executor(self.executor, self._read_snapshot)

        def done(future: asyncio.Future[tuple[bytes, bool]]) -> None:
            self._snapshotting = False
            try:
                chunk, final = future.result()
            except Exception:
                log.exception("HTTP: the live page's snapshot failed")
                for conn in waiting:
                    conn.close()
            else:
                for conn in waiting:
                    conn.snapshot(chunk, started)
                    if final or conn.closed:
                        continue
                    if ioc.running:     # iocInit came meanwhile (its hook may have run)
                        conn.synced = False
                        conn.need_from = self.seq
                        self.want_snapshot(conn)
                    else:
                        self.early.add(conn)    # ioc_started() will ask again
            if self.waiting and self.held_bytes < SNAPSHOT_BUDGET:
                self._snapshot()
        future.add_done_callback(done)

    def _read_snapshot(self) -> tuple[bytes, bool]:
        """(the snapshot event, whether it is final), in a worker thread: the
        rows once the IOC has started (subscribing to their changes first);
        none before (the streams given that one get another at iocInit)."""
        if not _lifecycle.is_started():
            if not ioc.running or ioc.shut or self._stopped:
                return _event(b"snapshot", []), ioc.shut
            # iocInit is done and its hooks are running (the watcher starts there)
            deadline = time.monotonic() + 30
            while not _lifecycle.is_started() and time.monotonic() < deadline:
                time.sleep(0.02)
        watch = _watch.watch()
        if self._subscribed is None and not self._stopped:
            self._subscribed = watch.subscribe(self._changed)
        return _event(b"snapshot", watch.snapshot()), True

    def ioc_started(self) -> None:
        """At iocInit (its after_init hooks): streams that had the empty
        snapshot of an IOC still being defined get the real one."""
        try:
            self.loop.call_soon_threadsafe(self._resnapshot)
        except RuntimeError:
            pass                    # stopped

    def _resnapshot(self) -> None:
        early, self.early = self.early, set()
        for conn in early:
            if not conn.closed:
                conn.synced = False
                conn.need_from = self.seq
                self.want_snapshot(conn)

    def _changed(self, rows: list[dict[str, Any]]) -> None:
        """Rows that changed (the watcher's thread): encoded once for every stream."""
        if not self.streams or self._stopped:
            return
        chunk = _event(b"update", rows)
        try:
            self.loop.call_soon_threadsafe(self._broadcast, chunk)
        except RuntimeError:
            pass                    # the loop is closed: stopping

    def _broadcast(self, chunk: bytes) -> None:
        self.seq += 1
        for conn in list(self.streams):
            conn.push(chunk)

    # ---- answers (worker threads) ------------------------------------------------

    @staticmethod
    def _probe(check: Callable[[], str | None]) -> tuple[int, str, bytes]:
        why = check()
        if why is None:
            return 200, _TEXT, b"ok\n"
        return 503, _TEXT, (why.replace("\n", " ") + "\n").encode("utf-8", "replace")

    def _metrics(self) -> tuple[int, str, bytes]:
        return 200, metrics.CONTENT_TYPE, metrics.exposition(self.registry)

    def _page(self) -> tuple[int, str, bytes]:
        if self._page_bytes is None:
            try:
                self._page_bytes = PAGE.read_bytes()
            except OSError as e:
                log.error("HTTP: the live page %s cannot be read: %s", PAGE, e)
                return 500, _TEXT, b"the live page is missing from this installation\n"
        return 200, "text/html; charset=utf-8", self._page_bytes


_server: Server | None = None
_lock = threading.Lock()


def serve(address: str) -> Server | None:
    """Serve the endpoints on ``address`` (``HOST:PORT``) from now until the
    IOC shuts down; returns the server, or None if the address cannot be
    served (logged: the IOC carries on).  Serving already on another
    address, that server is stopped first.  ValueError for a malformed address."""
    global _server
    host, port = parse_address(address)
    with _lock:
        if _server is not None:
            if (_server.host, _server.port) == (host, port):
                return _server
            _server.stop()
            _server = None
        server = Server(host, port)
        try:
            server.start()
        except OSError as e:
            log.error("HTTP endpoints: cannot serve on %s:%d (%r): %s; the IOC runs "
                      "without them", host, port, address.strip(), e.strerror or e)
            return None
        _server = server
    _status.start()                 # the dispatcher's watchdog, from iocInit on
    if not _lifecycle.is_running():
        _lifecycle.after_init(server.ioc_started)
    _lifecycle.at_shutdown(server.stop)
    log.info("HTTP endpoints on http://%s:%d/", host, port)
    return server


def serve_from_environment() -> Server | None:
    """Serve on ``$PYTHONIOC_HTTP`` if it is set and nothing is served yet
    (``pythonioc run --http`` wins); not while only describing the IOC
    (``pythonioc screen``)."""
    address = os.environ.get(ENV, "").strip()
    if not address or ioc.settings.describe is not None:
        return None
    with _lock:
        if _server is not None:
            return _server
    try:
        return serve(address)
    except ValueError as e:
        raise ValueError(f"{ENV}: {e}") from None


def running() -> Server | None:
    """The server serving now, if any."""
    return _server


def stop() -> None:
    """Stop serving (done at the IOC's shutdown)."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stop()
