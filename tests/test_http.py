"""The HTTP endpoints (softioc.http, softioc.metrics): real IOC subprocesses
serving on PYTHONIOC_HTTP=127.0.0.1:<free port>, asked over real HTTP
(http.client and raw sockets); /metrics read with prometheus_client's parser
and checked against what the IOC did."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("h11", reason="pip install 'epics-pythonioc[web]' (in the test extra)")
pytest.importorskip("prometheus_client", reason="pip install 'epics-pythonioc[web]'")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from softioc.testing import IOCProcess, free_port, monitor, wait_until  # noqa: E402

from .conftest import IOCS  # noqa: E402

HTTP_IOC = IOCS / "http_ioc.py"
RECORD_TYPES = {"ai": 2, "ao": 1, "longout": 1, "longin": 1, "bo": 1, "stringin": 202,
                "calc": 1}
IOC_NAME = "http-test"
HAVE_P4P = True
try:
    import p4p  # noqa: F401
except ImportError:
    HAVE_P4P = False


# ---- clients ------------------------------------------------------------------

def get(port: int, path: str, method: str = "GET", timeout: float = 10,
        ) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def answers(port: int, path: str = "/healthz") -> int | None:
    """The status of GET path, None while nothing answers."""
    try:
        return get(port, path, timeout=2)[0]
    except OSError:
        return None


def raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send data on a fresh connection; everything received until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        received = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return received
            received += chunk


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics(port: int) -> Samples:
    """Every sample of /metrics, by (name, labels without ``ioc``); each has ioc=IOC_NAME."""
    status, headers, body = get(port, "/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain"), headers
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        assert family.name.startswith("pythonioc_"), family.name
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop("ioc", None) == IOC_NAME, sample
            samples[(sample.name, frozenset(labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(key)[label]: v for (n, key), v in samples.items() if n == name}


class EventStream:
    """A client of GET /events: its events, read as they come (chunked transfer
    decoded by http.client)."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.request("GET", "/events", headers={"Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("content-type") == "text/event-stream; charset=utf-8"
        self.comments: list[str] = []

    def next(self) -> tuple[str, Any]:
        """The next event: (name, its data as JSON), or ("comment", text)."""
        name, data = "message", []
        while True:
            line = self.response.readline()
            if not line:
                raise EOFError("the event stream ended")
            text = line.decode("utf-8").rstrip("\r\n")
            if not text:
                if data:
                    return name, json.loads("\n".join(data))
                continue
            if text.startswith(":"):
                self.comments.append(text)
                return "comment", text
            elif text.startswith("event:"):
                name = text[6:].strip()
            elif text.startswith("data:"):
                data.append(text[5:].lstrip())

    def until(self, check: Any, timeout: float = 10) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.next()
            if check(event):
                return event
        raise TimeoutError("no such event")

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def events(port: int) -> Iterator[EventStream]:
    """An event stream, past its first event (the IOC's name, kept as .info)."""
    stream = EventStream(port)
    stream.info = stream.next()
    assert stream.info[0] == "info", stream.info
    try:
        yield stream
    finally:
        stream.close()


def report(ioc: IOCProcess) -> tuple[int, int, int]:
    """(Python threads, OS threads, RSS bytes) of the IOC, from its shell."""
    before = ioc.output().count("REPORT ")
    ioc.send("report()")
    wait_until(lambda: ioc.output().count("REPORT ") > before, what="report() printed")
    found = re.findall(r"REPORT (\d+) (\d+) (\d+)", ioc.output())[-1]
    return int(found[0]), int(found[1]), int(found[2])


# ---- the IOC most tests share ---------------------------------------------------

@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def ioc(port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IOCProcess]:
    env = {"PYTHONIOC_HTTP": f"127.0.0.1:{port}", "IOC_NAME": IOC_NAME,
           "HTTP_TEST_DIR": str(tmp_path_factory.mktemp("http")),
           "HTTP_TEST_HEARTBEAT": "1", "HTTP_TEST_STALL": "4",
           "HTTP_TEST_QUEUE_BYTES": "100000", "HTTP_TEST_IDLE": "3"}
    with IOCProcess([str(HTTP_IOC)], wait_for="HTTP:AI1", env=env) as started:
        wait_until(lambda: answers(port) == 200, timeout=10, what="/healthz 200")
        yield started


def test_probes_answer_ok(ioc: IOCProcess, port: int) -> None:
    for path in ("/healthz", "/readyz", "/healthz?verbose=1"):
        status, headers, body = get(port, path)
        assert (status, body) == (200, b"ok\n"), (path, body)
        assert headers["content-type"] == "text/plain; charset=utf-8"


def test_page_and_head(ioc: IOCProcess, port: int) -> None:
    status, headers, body = get(port, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode("utf-8")
    assert "<html" in page.lower() and "/events" in page
    assert "http://" not in page and "https://" not in page, "the page loads nothing else"
    status, headers, head_body = get(port, "/", method="HEAD")
    assert (status, head_body) == (200, b"")
    assert int(headers["content-length"]) == len(body)


def test_other_paths_and_methods(ioc: IOCProcess, port: int) -> None:
    for path in ("/nope", "/metrics/x", "/healthz/", "/index.html", "//"):
        status, _, body = get(port, path)
        assert status == 404, (path, body)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/", "/metrics", "/events", "/nope"):
            status, headers, _ = get(port, path, method=method)
            assert status == 405, (method, path)
            assert headers["allow"] == "GET, HEAD"
    # nothing was changed, and the server still answers on a kept-alive connection
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(3):
        conn.request("GET", "/readyz")
        assert conn.getresponse().read() == b"ok\n"
    conn.close()


def test_malformed_requests_get_400_and_are_closed(ioc: IOCProcess, port: int) -> None:
    assert raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)) \
        .startswith(b"HTTP/1.1 400 ")                                  # a TLS hello
    assert raw(port, b"GET /healthz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")  # no Host
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"
    answer = raw(port, huge)
    assert answer.startswith(b"HTTP/1.1 431 ") or answer.startswith(b"HTTP/1.1 400 "), answer
    # HTTP/1.0 and a request split in pieces are fine
    assert raw(port, b"GET /healthz HTTP/1.0\r\n\r\n").endswith(b"\r\n\r\nok\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for piece in (b"GET /rea", b"dyz HTTP/1.1\r\nHo", b"st: x\r\nConnection: close\r\n\r\n"):
            s.sendall(piece)
            time.sleep(0.05)
        assert s.makefile("rb").read().endswith(b"\r\n\r\nok\n")
    assert get(port, "/healthz")[0] == 200


def test_slow_and_idle_connections_are_closed(ioc: IOCProcess, port: int) -> None:
    """A request must come whole in IDLE_TIMEOUT (3 s here): half of one gets 408;
    a connection that asks nothing is closed."""
    start = time.monotonic()
    assert raw(port, b"GET /healthz HTTP/1.1\r\nHost:").startswith(b"HTTP/1.1 408 ")
    assert raw(port, b"") == b""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/readyz")
    assert conn.getresponse().read() == b"ok\n"
    assert conn.sock is not None and conn.sock.recv(10) == b""   # closed once idle
    conn.close()
    assert 3 <= time.monotonic() - start < 20
    # the HEAD of an event stream is its headers only
    status, headers, body = get(port, "/events", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-type"] == "text/event-stream; charset=utf-8"


def test_records_by_type(ioc: IOCProcess, port: int) -> None:
    samples = metrics(port)
    assert by_label(samples, "pythonioc_records", "type") == RECORD_TYPES
    assert value(samples, "pythonioc_live") == 1
    assert value(samples, "pythonioc_ready") == 1
    info = [dict(k) for (n, k) in samples if n == "pythonioc_info"]
    assert info and info[0]["version"] and info[0]["python_version"]


def test_put_counts(ioc: IOCProcess, port: int) -> None:
    def counts() -> tuple[dict[str, float], dict[tuple[str, str], float]]:
        samples = metrics(port)
        accepted = by_label(samples, "pythonioc_puts_accepted_total", "protocol")
        refused = {(dict(k)["protocol"], dict(k)["reason"]): v for (n, k), v in samples.items()
                   if n == "pythonioc_puts_refused_total"}
        return accepted, refused

    accepted, refused = counts()
    ioc.caput("HTTP:LIMITED", "5")
    ioc.caput("HTTP:LIMITED", "500")                        # validate says no
    ioc.caput("HTTP:LIMITED", "12abc")                      # strict puts say no
    ioc.caput("HTTP:LIMITED", "7", callback=False)
    ioc.caput("HTTP:SWITCH", "5", callback=False)           # no state 5: strict
    assert ioc.caget("HTTP:LIMITED") == "7"

    def ca_done() -> bool:
        now_accepted, now_refused = counts()
        return (now_accepted["ca"] - accepted["ca"] == 2
                and now_refused[("ca", "validate")] - refused[("ca", "validate")] == 1
                and now_refused[("ca", "strict")] - refused[("ca", "strict")] == 2)
    wait_until(ca_done, what="CA puts counted: 2 accepted, 1 refused by validate, 2 by strict")

    accepted, refused = counts()
    ioc.run_tool("pvput", "-w", "5", "HTTP:LIMITED", "9")
    ioc.run_tool("pvput", "-w", "5", "HTTP:LIMITED", "900", check=False)
    ioc.run_tool("pvput", "-w", "5", "HTTP:SWITCH", "5", check=False)
    assert ioc.caget("HTTP:LIMITED") == "9"

    def pva_done() -> bool:
        now_accepted, now_refused = counts()
        return (now_accepted["pva"] - accepted["pva"] == 1
                and now_refused[("pva", "validate")] - refused[("pva", "validate")] == 1
                and now_refused[("pva", "strict")] - refused[("pva", "strict")] == 1
                and now_accepted["ca"] == accepted["ca"])
    wait_until(pva_done, what="PVA puts counted: 1 accepted, 1 refused by validate, 1 by strict")


def test_client_counts(ioc: IOCProcess, port: int) -> None:
    with monitor(ioc, "HTTP:AI1", "HTTP:AI2", settle=0):
        wait_until(lambda: value(metrics(port), "pythonioc_ca_clients") >= 1, what="CA client")
        assert value(metrics(port), "pythonioc_ca_channels") >= 2
    wait_until(lambda: value(metrics(port), "pythonioc_ca_clients") == 0, timeout=10,
               what="no CA client once camonitor ended")
    with monitor(ioc, "HTTP:AI1", tool="pvmonitor", settle=0):
        wait_until(lambda: value(metrics(port), "pythonioc_pva_clients") >= 1,
                   what="PVA client")
        assert value(metrics(port), "pythonioc_pva_channels") >= 1
    samples = metrics(port)
    assert value(samples, "pythonioc_pva_pvs") == (1 if HAVE_P4P else 0)


def test_process_dispatcher_and_autosave(ioc: IOCProcess, port: int) -> None:
    ioc.caput("HTTP:AO", "3.5")

    def saved() -> Samples | None:
        samples = metrics(port)
        return samples if value(samples, "pythonioc_autosave_saves_total") >= 1 else None
    samples = wait_until(saved, what="an autosave written")
    assert value(samples, "pythonioc_autosave_failures_total") == 0
    assert abs(value(samples, "pythonioc_autosave_last_save_timestamp_seconds")
               - time.time()) < 60
    assert value(samples, "pythonioc_process_cpu_seconds_total") > 0
    assert value(samples, "pythonioc_process_resident_memory_bytes") > 10e6
    assert 0 < value(samples, "pythonioc_uptime_seconds") < 3600
    assert abs(value(samples, "pythonioc_process_start_time_seconds")
               + value(samples, "pythonioc_uptime_seconds") - time.time()) < 60
    assert value(samples, "pythonioc_python_threads") >= 3
    assert value(samples, "pythonioc_process_threads") > value(samples, "pythonioc_python_threads")
    assert value(samples, "pythonioc_process_open_fds") > 3
    assert value(samples, "pythonioc_dispatcher_queue_length") == 0
    assert value(samples, "pythonioc_dispatcher_waiting_seconds") < 5
    assert 0 < value(samples, "pythonioc_dispatcher_latency_max_seconds") < 5
    assert value(samples, "pythonioc_http_connections") >= 1
    assert value(samples, "pythonioc_http_max_connections") >= 16
    # a save that fails (its directory gone) is counted
    directory = Path(ioc.env["HTTP_TEST_DIR"])
    gone = directory.with_name(directory.name + "-gone")
    directory.rename(gone)          # at once (the IOC may be writing into it)
    shutil.rmtree(gone)
    try:
        ioc.caput("HTTP:AO", "4.5")
        wait_until(lambda: value(metrics(port), "pythonioc_autosave_failures_total") >= 1,
                   what="a failed autosave counted")
    finally:
        directory.mkdir()
    saves = value(metrics(port), "pythonioc_autosave_saves_total")
    wait_until(lambda: value(metrics(port), "pythonioc_autosave_saves_total") > saves,
               what="autosave writing again")


def test_events_snapshot_then_updates(ioc: IOCProcess, port: int) -> None:
    with events(port) as stream:
        assert stream.info == ("info", {"ioc": IOC_NAME})
        name, rows = stream.next()
        assert name == "snapshot"
        by_name = {row["name"]: row for row in rows}
        assert {"HTTP:AI1", "HTTP:AI2", "HTTP:TEXT", "HTTP:CALC", "HTTP:MANY199"} <= set(by_name)
        assert by_name["HTTP:AI2"]["units"] == "degC"
        assert by_name["HTTP:TEXT"] == {**by_name["HTTP:TEXT"], "value": "hello",
                                        "kind": "stringin"}
        if HAVE_P4P:
            assert by_name["HTTP:PVA"]["kind"] == "pva"
        # Latin-1 bytes in the record: decoded with replacement, the JSON stays valid
        assert by_name["HTTP:RAW"]["value"].startswith("caf\ufffd")
        ioc.send("text.set('changed')")
        name, rows = stream.until(lambda e: e[0] == "update" and any(
            r["name"] == "HTTP:TEXT" and r["value"] == "changed" for r in e[1]))
        # heartbeats (every second here) keep the stream open while nothing changes
        stream.until(lambda e: e == ("comment", ": heartbeat"), timeout=5)


def test_event_client_that_never_reads(ioc: IOCProcess, port: int) -> None:
    """A client that never reads its stream costs a bounded amount: its updates are
    dropped for a fresh snapshot (a resync), then it is closed; a client that
    reads is not held up, and the IOC's memory does not follow the backlog."""
    _, _, rss_before = report(ioc)
    samples = metrics(port)
    resyncs = value(samples, "pythonioc_http_event_resyncs_total")
    sleeper = socket.socket()
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sleeper.connect(("127.0.0.1", port))
    sleeper.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        with events(port) as reader:
            assert reader.next()[0] == "snapshot"
            wait_until(lambda: value(metrics(port), "pythonioc_http_event_streams") == 2,
                       what="two event streams")
            ioc.send("churn(25)")
            updates = 0
            deadline = time.monotonic() + 30
            closed = False
            while time.monotonic() < deadline:
                name, rows = reader.next()
                updates += name == "update"
                if updates % 10 == 0:
                    samples = metrics(port)
                    closed = (value(samples, "pythonioc_http_event_resyncs_total") > resyncs
                              and value(samples, "pythonioc_http_event_streams") == 1)
                    if closed:
                        break
            assert closed, "the stream that is not read was neither resynced nor closed"
            assert updates >= 10, "the reading client was held up"
            _, _, rss_after = report(ioc)
            assert rss_after - rss_before < 60e6, (rss_before, rss_after)
    finally:
        sleeper.close()


@pytest.fixture
def default_timeouts(tmp_path: Path) -> Iterator[tuple[IOCProcess, int]]:
    """The module's IOC with the server's own time limits (idle connections
    are kept 30 s, not the module's 3 s)."""
    port = free_port()
    env = {"PYTHONIOC_HTTP": f"127.0.0.1:{port}", "IOC_NAME": IOC_NAME,
           "HTTP_TEST_DIR": str(tmp_path)}
    with IOCProcess([str(HTTP_IOC)], wait_for="HTTP:AI1", env=env) as started:
        wait_until(lambda: answers(port) == 200, timeout=10, what="/healthz 200")
        yield started, port


def test_connection_limit_and_memory(default_timeouts: tuple[IOCProcess, int]) -> None:
    """Event streams up to MAX_STREAMS (200) are served, the next get 503;
    connections up to the limit (1,000 by default: MAX_CONNECTIONS) are
    taken, the next get 503; nothing is left once they go."""
    import resource

    ioc, port = default_timeouts

    limit = int(value(metrics(port), "pythonioc_http_max_connections"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < limit + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, limit + 200), hard))
    _, _, rss_before = report(ioc)
    streams: list[socket.socket] = []
    idle: list[socket.socket] = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            streams.append(s)
        for s in streams:
            assert s.recv(17) == b"HTTP/1.1 200 OK\r\n"
        answer = raw(port, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503 ") and b"too many event streams" in answer
        assert get(port, "/healthz")[0] == 200      # other requests are still served
        while len(streams) + len(idle) < limit:     # connections that send nothing (yet)
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        wait_until(lambda: raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                   .startswith(b"HTTP/1.1 503"), what="503 past the connection limit")
        _, _, rss_full = report(ioc)
        print(f"\n200 idle event streams and {len(idle)} idle connections: RSS "
              f"{rss_before / 1e6:.1f} MB -> {rss_full / 1e6:.1f} MB")
        assert rss_full - rss_before < 100e6
    finally:
        for s in streams + idle:
            s.close()
    wait_until(lambda: answers(port) == 200, what="served again")
    wait_until(lambda: value(metrics(port), "pythonioc_http_event_streams") == 0,
               what="every stream gone")
    assert value(metrics(port), "pythonioc_http_connections_refused_total") >= 1


BIG_IOC = """
from softioc import builder, softioc
builder.SetDeviceName("BIG")
records = [builder.aIn(f"R{i:05d}", initial_value=i / 7, EGU="mm", PREC=3)
           for i in range(10000)]
builder.LoadDatabase()
softioc.iocInit()
exec(open(REPORT).read())
softioc.interactive_ioc(globals())
"""


def test_streams_that_never_read_a_big_snapshot_cost_little(tmp_path: Path) -> None:
    """10,000 records (a 1.3 MB snapshot) and 150 event streams whose clients
    never read: the snapshot goes out in pieces from one shared copy, so the
    IOC's memory grows by a bounded amount, not a snapshot per stream."""
    script = tmp_path / "big_ioc.py"
    report_py = tmp_path / "report.py"
    report_py.write_text(
        "import threading, psutil\n"
        "def report():\n"
        "    proc = psutil.Process()\n"
        "    print(f'REPORT {threading.active_count()} {proc.num_threads()} "
        "{proc.memory_info().rss}', flush=True)\n")
    script.write_text(BIG_IOC.replace("REPORT", repr(str(report_py))))
    port = free_port()
    env = {"PYTHONIOC_HTTP": f"127.0.0.1:{port}"}
    with IOCProcess([str(script)], wait_for="BIG:R09999", env=env) as big:
        with events(port) as stream:                # one snapshot read: the watcher is on
            assert len(stream.next()[1]) == 10000
        _, _, rss_before = report(big)
        clients = []
        try:
            for _ in range(150):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(10)
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                clients.append(s)
            time.sleep(3)                           # every snapshot started
            _, _, rss_after = report(big)
        finally:
            for s in clients:
                s.close()
        print(f"\n150 streams not reading a 10,000-row snapshot: RSS "
              f"{rss_before / 1e6:.1f} MB -> {rss_after / 1e6:.1f} MB")
        assert rss_after - rss_before < 60e6        # was ~1.3 MB per stream
        with events(port) as stream:                # and it still serves
            assert len(stream.next()[1]) == 10000


def test_no_thread_leak(ioc: IOCProcess, port: int) -> None:
    """1,000 connections made and dropped, of every kind: the IOC has the
    threads it had."""
    for _ in range(20):                     # warm up: the worker threads exist
        get(port, "/metrics")
        with events(port) as stream:
            stream.next()
    python_before, os_before, _ = report(ioc)
    for i in range(1000):
        kind = i % 5
        if kind == 0:                       # an event stream, read then dropped
            with events(port) as stream:
                stream.next()
        elif kind == 1:                     # connected and dropped at once
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
        elif kind == 2:                     # an event stream dropped before it was answered
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        elif kind == 3:
            assert get(port, "/readyz")[0] == 200
        else:                               # half a request
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /metr")
    wait_until(lambda: value(metrics(port), "pythonioc_http_connections") <= 1,
               what="every connection closed")
    python_after, os_after, _ = report(ioc)
    print(f"\nthreads before/after 1,000 connections: Python {python_before}/{python_after}, "
          f"OS {os_before}/{os_after}")
    assert (python_after, os_after) == (python_before, os_before)


# ---- IOCs of their own ------------------------------------------------------------

SMALL_IOC = """\
import sys, threading
from softioc import builder, softioc
builder.aIn("SMALL:AI", 1.0)
builder.LoadDatabase()
softioc.iocInit()
print("HTTP_MODULE", "softioc.http" in sys.modules,
      [t.name for t in threading.enumerate() if "http" in t.name], flush=True)
softioc.interactive_ioc(globals())
"""


def small_ioc(tmp_path: Path, env: dict[str, str], wait: bool = True,
              args: tuple[str, ...] = ()) -> IOCProcess:
    script = tmp_path / "small_ioc.py"
    script.write_text(SMALL_IOC)
    return IOCProcess([*args, str(script)], wait_for="SMALL:AI" if wait else None, env=env)


def test_off_by_default(tmp_path: Path) -> None:
    with small_ioc(tmp_path, {"PYTHONIOC_HTTP": ""}) as ioc:
        wait_until(lambda: "HTTP_MODULE" in ioc.output())
        assert "HTTP_MODULE False []" in ioc.output()


def test_not_ready_until_ioc_init_is_done(tmp_path: Path) -> None:
    """Served from the first record on: 503 while the IOC is defined (and
    autosave restores); the page's stream gets the rows once it runs."""
    port = free_port()
    gate = tmp_path / "gate"
    env = {"PYTHONIOC_HTTP": f"127.0.0.1:{port}", "IOC_NAME": IOC_NAME,
           "HTTP_TEST_DIR": str(tmp_path), "HTTP_TEST_GATE": str(gate)}
    with IOCProcess([str(HTTP_IOC)], env=env) as ioc:
        wait_until(lambda: "waiting for" in ioc.output(), timeout=20, what="the IOC defined")
        for path in ("/readyz", "/healthz"):
            status, _, body = get(port, path)
            assert (status, body) == (503, b"the IOC has not started (iocInit not done)\n")
        samples = metrics(port)
        assert value(samples, "pythonioc_ready") == 0
        assert by_label(samples, "pythonioc_records", "type") == RECORD_TYPES   # loaded
        with events(port) as stream:
            assert stream.next() == ("snapshot", [])
            gate.touch()
            name, rows = stream.until(lambda e: e[0] == "snapshot")
            assert "HTTP:AI1" in {row["name"] for row in rows}
        wait_until(lambda: answers(port, "/readyz") == 200, what="ready after iocInit")
        assert get(port, "/healthz")[0] == 200


WEDGE_IOC = """\
import threading
from softioc import builder, softioc
release = threading.Event()
builder.aOut("WEDGE:BLOCK", 0.0, on_update=lambda value: release.wait(30))
builder.aIn("WEDGE:AI", 1.0)
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
"""


def test_healthz_503_while_the_dispatcher_is_wedged(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "wedge.py").write_text(WEDGE_IOC)
    env = {"PYTHONIOC_HTTP": f":{port}", "IOC_NAME": IOC_NAME,     # a bare port: loopback
           "PYTHONIOC_STUCK_AFTER": "1.5"}
    with IOCProcess([str(tmp_path / "wedge.py")], wait_for="WEDGE:AI", env=env) as ioc:
        wait_until(lambda: answers(port) == 200, what="live")
        ioc.caput("WEDGE:BLOCK", "1", callback=False)     # on_update blocks the dispatcher
        wait_until(lambda: answers(port) == 503, timeout=10, what="/healthz 503")
        status, _, body = get(port, "/healthz")
        assert status == 503 and b"dispatcher" in body, body
        assert get(port, "/readyz")[0] == 503
        for n in (2, 3, 4):
            ioc.caput("WEDGE:BLOCK", str(n), callback=False)
        samples = wait_until(lambda: (s := metrics(port)) and value(
            s, "pythonioc_dispatcher_queue_length") >= 3 and s, what="3 writes queued")
        assert value(samples, "pythonioc_live") == 0
        assert value(samples, "pythonioc_dispatcher_waiting_seconds") > 1.5
        ioc.send("release.set()")
        wait_until(lambda: answers(port) == 200, timeout=10, what="live again")
        assert value(metrics(port), "pythonioc_dispatcher_queue_length") == 0


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:0", "127.0.0.1:99999",
                                     "::1:8080", "host name:80"])
def test_malformed_address_stops_the_ioc(tmp_path: Path, address: str) -> None:
    with small_ioc(tmp_path, {"PYTHONIOC_HTTP": address}, wait=False) as ioc:
        assert ioc.proc.wait(30) != 0
        out = ioc.output()
    assert "ValueError: PYTHONIOC_HTTP: HTTP address" in out and "HOST:PORT" in out, out


def test_port_in_use_is_logged_and_the_ioc_serves(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with small_ioc(tmp_path, {"PYTHONIOC_HTTP": f"127.0.0.1:{port}"}) as ioc:
            out = ioc.output()
            assert f"HTTP endpoints: cannot serve on 127.0.0.1:{port}" in out, out
            assert "in use" in out and "the IOC runs without them" in out, out
            assert ioc.caget("SMALL:AI") == "1"
            wait_until(lambda: "HTTP_MODULE" in ioc.output())
            assert "softioc-http" not in ioc.output()


def test_address_of_another_host_is_logged_and_the_ioc_serves(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: binding fails, nothing is sent
    with small_ioc(tmp_path, {"PYTHONIOC_HTTP": "192.0.2.1:8080"}) as ioc:
        assert "HTTP endpoints: cannot serve on 192.0.2.1:8080" in ioc.output()
        assert ioc.caget("SMALL:AI") == "1"


def test_missing_extra_is_named(tmp_path: Path) -> None:
    script = tmp_path / "no_h11.py"
    script.write_text("import sys\nsys.modules['h11'] = None\n" + SMALL_IOC)
    with IOCProcess([str(script)], env={"PYTHONIOC_HTTP": f"127.0.0.1:{free_port()}"}) as ioc:
        assert ioc.proc.wait(30) != 0
        out = ioc.output()
    assert "pip install 'epics-pythonioc[web]'" in out, out


def test_pythonioc_run_http(tmp_path: Path) -> None:
    port = free_port()
    with small_ioc(tmp_path, {"PYTHONIOC_HTTP": ""},
                   args=("-m", "softioc", "run", "--http", f"127.0.0.1:{port}")) as ioc:
        wait_until(lambda: answers(port) == 200, what="/healthz 200")
        assert ioc.caget("SMALL:AI") == "1"
    bad = subprocess.run([sys.executable, "-m", "softioc", "run", "--http", "nonsense",
                          str(tmp_path / "small_ioc.py")], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=60)
    assert bad.returncode == 2 and "--http nonsense" in bad.stdout, bad.stdout
