"""One HTTP client of ``softioc.http``'s server: its requests, answered one
at a time, and the live page's event stream if it asks for one (an update
queue while it does not read, a snapshot sent in pieces as it takes them)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import os
import socket
from typing import TYPE_CHECKING, Any, NamedTuple

import h11

if TYPE_CHECKING:
    from .http import Server

__all__ = ["Connection", "Limits", "TEXT_PLAIN", "stream_event"]

log = logging.getLogger("softioc.http")

MAX_HEAD = 16 * 1024        # bytes of a request's head (line and headers)
WRITE_HIGH = 64 * 1024      # bytes buffered for a client before it counts as not reading
SEND_BUFFER = 256 * 1024    # bytes of the kernel's send buffer for each client
# An event stream costs at most this much of its own, whether or not its client
# reads: snapshots (1.3 MB for 10,000 records) go out in pieces as the client
# takes them, from one copy shared by the streams that asked at the same time.
STREAM_WRITE_HIGH = 16 * 1024
STREAM_SEND_BUFFER = 32 * 1024
PIECE = 16 * 1024           # bytes of a snapshot written at a time

TEXT_PLAIN = "text/plain; charset=utf-8"


class Limits(NamedTuple):
    """``softioc.http``'s limits as they were when a server was made."""

    overflow: int           # OVERFLOW
    idle_timeout: float     # IDLE_TIMEOUT
    stall_timeout: float    # STALL_TIMEOUT
    max_streams: int        # MAX_STREAMS
    queue_limit: int        # QUEUE_LIMIT
    queue_bytes: int        # QUEUE_BYTES


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


def stream_event(name: bytes, rows: Any) -> bytes:
    """A server-sent event ``name`` whose data is ``rows`` as JSON."""
    return b"event: " + name + b"\ndata: " + _json(rows) + b"\n\n"


def _reason(status: int) -> bytes:
    return {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
            408: b"Request Timeout", 431: b"Request Header Fields Too Large",
            500: b"Internal Server Error", 503: b"Service Unavailable"}.get(status, b"")


class Connection(asyncio.Protocol):
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
            if server.overflowing >= server.limits.overflow:
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
        self._arm(server.limits.idle_timeout if not self.overloaded else 5.0)

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
            self.stall = self.server.loop.call_later(self.server.limits.stall_timeout,
                                                     self._abort)

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
        if path == b"/events" and len(self.server.streams) >= self.server.limits.max_streams:
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
            status, content_type, body = 500, TEXT_PLAIN, b"internal error (see the IOC's log)\n"
        self._send(status, body, content_type)
        if self.transport is not None and not self.closed and not self.paused:
            self.transport.resume_reading()
        self._next()

    def _send(self, status: int, body: bytes, content_type: str = TEXT_PLAIN, close: bool = False,
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
        self._arm(self.server.limits.idle_timeout)

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
        self.write(stream_event(b"info", {"ioc": name}))
        self.server.want_snapshot(self)

    def _head_done(self) -> None:
        self.h11.start_next_cycle()
        self.request = None
        self._arm(self.server.limits.idle_timeout)
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
        limits = self.server.limits
        if len(self.queue) > limits.queue_limit or self.queued > limits.queue_bytes:
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
