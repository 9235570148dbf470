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
seconds.  A `Server` takes these values as they are when it is made.

A malformed ``PYTHONIOC_HTTP`` raises ValueError, and so does a missing
extra (an ImportError naming it): both are mistakes every start would make.
An address that cannot be served at start-up (in use, not this host's) is
logged as an error naming it, and the IOC carries on without HTTP: its CA
and PVA clients matter more than its probes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import h11  # noqa: F401  (softioc._httpconn's; checked first for this message)
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

from . import _core, _watch
from ._core import ioc
from ._httpconn import TEXT_PLAIN, Connection, Limits, stream_event

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
MAX_STREAMS = 200           # event streams open at once (then 503)
SNAPSHOT_BUDGET = 32 << 20  # bytes of distinct snapshots held for streams; then new ones wait

PAGE = Path(__file__).parent / "_web" / "page.html"

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
        self.limits = Limits(OVERFLOW, IDLE_TIMEOUT, STALL_TIMEOUT, MAX_STREAMS, QUEUE_LIMIT,
                             QUEUE_BYTES)
        self.ioc_name = os.environ.get("IOC_NAME", "").strip() or None
        self.registry = metrics.registry(self.ioc_name)   # counting client puts starts here
        self.registry.register(_HTTPCollector(self))
        self.loop = asyncio.new_event_loop()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="softioc-http-work")
        self.routes: dict[bytes, Callable[[], tuple[int, str, bytes]]] = {
            b"/healthz": lambda: self._probe(_core.live),
            b"/readyz": lambda: self._probe(_core.ready),
            b"/metrics": self._metrics,
            b"/": self._page,
        }
        self.connections: set[Connection] = set()
        self.streams: set[Connection] = set()
        self.waiting: set[Connection] = set()     # streams waiting for a snapshot
        self.early: set[Connection] = set()       # streams given one before iocInit
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
                lambda: Connection(self), self.host, self.port, reuse_address=True,
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

    def want_snapshot(self, conn: Connection) -> None:
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
        if not _core.is_started():
            if not ioc.running or ioc.shut or self._stopped:
                return stream_event(b"snapshot", []), ioc.shut
            # iocInit is done and its hooks are running (the watcher starts there)
            deadline = time.monotonic() + 30
            while not _core.is_started() and time.monotonic() < deadline:
                time.sleep(0.02)
        watch = _watch.watch()
        if self._subscribed is None and not self._stopped:
            self._subscribed = watch.subscribe(self._changed)
        return stream_event(b"snapshot", watch.snapshot()), True

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
        chunk = stream_event(b"update", rows)
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
            return 200, TEXT_PLAIN, b"ok\n"
        return 503, TEXT_PLAIN, (why.replace("\n", " ") + "\n").encode("utf-8", "replace")

    def _metrics(self) -> tuple[int, str, bytes]:
        return 200, metrics.CONTENT_TYPE, metrics.exposition(self.registry)

    def _page(self) -> tuple[int, str, bytes]:
        if self._page_bytes is None:
            try:
                self._page_bytes = PAGE.read_bytes()
            except OSError as e:
                log.error("HTTP: the live page %s cannot be read: %s", PAGE, e)
                return 500, TEXT_PLAIN, b"the live page is missing from this installation\n"
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
    _core.watchdog()                # the dispatcher's watchdog, from iocInit on
    if not _core.is_running():
        _core.after_init(server.ioc_started)
    _core.at_shutdown(server.stop)
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
