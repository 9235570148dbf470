"""Load: 200 client connections (CA and PVA) monitor 1000 records while Python
sets them; every client ends with every final value, and the IOC's memory
stays flat.

CI form: 160 ``camonitor`` processes (one CA circuit each) and 40 p4p
contexts (one PVA connection each, in 2 processes), each client monitoring
50 of the records (so each record has 10 monitors: 10 000 subscriptions),
records set at 1 Hz (1000 sets/s, 8000 updates/s to the camonitors and
2000 to the PVA monitors), 10 s measured
after 5 s of warm-up; a 2-core machine nearly keeps up with this.  Long form
(``--long``): every client monitors all 1000 records (200 000
subscriptions, more than 2 cores keep up with: the set rate then drops, and
only the final values and memory are checked) for
``PYTHONIOC_SOAK_SECONDS`` (default 60).  ``PYTHONIOC_LOAD_PER_CLIENT``
overrides the records per client of either form, ``PYTHONIOC_LOAD_HZ`` the
rounds a second (default 1).

The numbers are printed (``pytest -s``) and attached to the test report.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

from softioc.testing import IOCProcess, start_tool, wait_until

from .conftest import SCRIPTS, cpu_seconds, established, rss_kb

N = 1000
FINAL = 900000
CA_CLIENTS = 160
PVA_PROCESSES = 2
PVA_PER_PROCESS = 20
# Rounds a second: 1000 sets/s, 10,000 updates/s to the clients
# (PYTHONIOC_LOAD_HZ=2 asks for twice that: the edge of a 2-core machine).
HZ = float(os.environ.get("PYTHONIOC_LOAD_HZ", "1.0"))
RSS_DRIFT_KB = 5 * 1024
LINE = re.compile(r"^LOAD:(\d+)\s+\S+\s+\S+\s+(-?\d+)", re.M)


@dataclass
class Plan:
    per_client: int       # records each client monitors
    warmup: float
    measure: float


def plan(long_run: bool) -> Plan:
    env = os.environ.get
    if long_run:
        return Plan(int(env("PYTHONIOC_LOAD_PER_CLIENT", N)), 10.0,
                    float(env("PYTHONIOC_SOAK_SECONDS", "60")))
    return Plan(int(env("PYTHONIOC_LOAD_PER_CLIENT", "50")), 5.0, 10.0)


def slice_of(client: int, per: int) -> list[int]:
    return [(client * per + j) % N for j in range(per)]


def ca_lines(paths) -> int:
    """Monitor updates the camonitors have printed so far."""
    total = 0
    for path in paths:
        with open(path) as f:
            total += f.read().count("\n")
    return total


def ca_last_values(path) -> dict[int, int]:
    last = {}
    with open(path) as f:
        for m in LINE.finditer(f.read()):
            last[int(m.group(1))] = int(m.group(2))
    return last


def test_200_clients_1000_records(long_run, tmp_path, record_property):
    p = plan(long_run)
    ioc = IOCProcess([str(SCRIPTS / "load_ioc.py"), str(N)], wait_for="LOAD:DONE")
    pid = ioc.proc.pid
    pva_procs: list[subprocess.Popen[bytes]] = []
    sinks = []
    camonitors = contextlib.ExitStack()     # each interrupted at its end
    try:
        # -- connect 200 clients -------------------------------------------
        t_connect = time.monotonic()
        ca_files = []
        for c in range(CA_CLIENTS):
            path = tmp_path / f"ca{c}.txt"      # a file: a full pipe would stall camonitor
            ca_files.append(path)
            pvs = [f"LOAD:{i}" for i in slice_of(c, p.per_client)]
            camonitors.enter_context(
                start_tool("camonitor", "-w", "30", *pvs, env=ioc.env, output=path))
            if c % 20 == 19:
                time.sleep(0.1)     # stagger the 100k-search bursts a little
        pva_files = []
        budget = 60 + p.warmup + p.measure + 120
        for k in range(PVA_PROCESSES):
            path = tmp_path / f"pva{k}.txt"
            sink = open(path, "w")
            sinks.append(sink)
            pva_files.append(path)
            first = CA_CLIENTS + k * PVA_PER_PROCESS
            proc = subprocess.Popen(
                [sys.executable, str(SCRIPTS / "pva_monitors.py"), str(first),
                 str(PVA_PER_PROCESS), str(p.per_client), str(N), str(budget)],
                env=ioc.env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
            pva_procs.append(proc)

        def all_connected():
            for path in ca_files:
                with open(path) as f:
                    if len(LINE.findall(f.read())) < p.per_client:
                        return False
            return all("CONNECTED" in path.read_text() for path in pva_files)

        wait_until(all_connected, 90, 0.5, what="every client connected")
        connect_s = time.monotonic() - t_connect
        ca_circuits = established(pid, ioc.ca_port)
        pva_connections = established(pid, ioc.pva_port)
        assert ca_circuits >= CA_CLIENTS
        assert pva_connections >= PVA_PROCESSES * PVA_PER_PROCESS

        # -- update at a bounded rate; sample after warm-up and at the end --
        rss_connected = rss_kb(pid)
        ioc.send(f"start({HZ})")
        time.sleep(p.warmup)
        # (a CA client the IOC has never had as many of at once, like this
        # caget, leaves a thread stack cached: sample memory after it)
        rounds1 = int(ioc.caget("LOAD:ROUNDS"))
        t1, cpu1, rss1 = time.monotonic(), cpu_seconds(pid), rss_kb(pid)
        ca_lines1 = ca_lines(ca_files)
        samples = [rss1]
        end = t1 + p.measure
        while time.monotonic() < end:
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
            samples.append(rss_kb(pid))
        t2, cpu2, rss2 = time.monotonic(), cpu_seconds(pid), rss_kb(pid)
        ca_lines2 = ca_lines(ca_files)
        rounds2 = int(ioc.caget("LOAD:ROUNDS"))

        # -- a final round of known values reaches every client -------------
        ioc.send("finish()")
        t_final = time.monotonic()
        ioc.wait_value("LOAD:DONE", "1", 60)
        stale: dict[int, list[int]] = {}

        def ca_finals_in():
            stale.clear()
            for c, path in enumerate(ca_files):
                last = ca_last_values(path)
                bad = [i for i in slice_of(c, p.per_client) if last.get(i) != FINAL + i]
                if bad:
                    stale[c] = bad
            return not stale

        try:
            wait_until(ca_finals_in, 90, 1.0)
        except TimeoutError:
            raise AssertionError(f"{len(stale)} CA clients missed final values, e.g. "
                                 f"{list(stale.items())[:3]}") from None
        for proc in pva_procs:
            proc.wait(timeout=90)
        finals_s = time.monotonic() - t_final
        for proc, path in zip(pva_procs, pva_files):
            assert proc.returncode == 0, path.read_text()[-2000:]
            assert "FINALS OK" in path.read_text()

        # -- the figures --------------------------------------------------------
        elapsed = t2 - t1
        sets_per_s = (rounds2 - rounds1) * N / elapsed
        monitors = (CA_CLIENTS + PVA_PROCESSES * PVA_PER_PROCESS) * p.per_client
        figures = {
            "ca_clients": CA_CLIENTS, "pva_clients": PVA_PROCESSES * PVA_PER_PROCESS,
            "ca_circuits": ca_circuits, "pva_connections": pva_connections,
            "records": N, "subscriptions": monitors,
            "connect_s": round(connect_s, 1),
            "target_sets_per_s": int(HZ * N), "sets_per_s": round(sets_per_s),
            # counted in the camonitors' output, not derived from the set rate
            "ca_updates_received_per_s": round((ca_lines2 - ca_lines1) / elapsed),
            "ioc_cpu_percent": round(100 * (cpu2 - cpu1) / elapsed),
            "rss_connected_mb": round(rss_connected / 1024, 1),
            "rss_early_mb": round(rss1 / 1024, 1), "rss_late_mb": round(rss2 / 1024, 1),
            "rss_drift_mb": round((rss2 - rss1) / 1024, 2),
            "rss_samples_mb": [round(s / 1024, 1) for s in samples],
            "measured_s": round(elapsed, 1), "finals_delivered_s": round(finals_s, 1),
        }
        print("\nLOAD", figures)
        for key, value in figures.items():
            record_property(key, value)
        assert abs(rss2 - rss1) < RSS_DRIFT_KB, f"RSS drifted {rss2 - rss1} kB"
        if not long_run:
            # The 200 client processes share the 2 cores with the IOC, so the rate
            # it reaches depends on the machine (800-1000 sets/s on 2 cores): this
            # catches a collapse, bench/ measures speed.  Whole rounds are counted
            # (9 in 10.0 s reads 900 sets/s at a steady 1000): one round of slack.
            rounds_min = 0.5 * HZ * elapsed - 1
            assert rounds2 - rounds1 > rounds_min, f"only {sets_per_s:.0f} sets/s"
    finally:
        camonitors.close()
        for proc in pva_procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in pva_procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sink in sinks:
            sink.close()
        ioc.stop()
