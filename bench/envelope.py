"""The pod envelope: does an IOC fit what Kubernetes gives it?

``python -m bench.envelope`` (as root: it makes cgroups) runs the envelope
IOC (``servers/envelope_ioc.py``) with the HTTP endpoints on, under a cgroup
limit of 256 MiB of memory and 0.5 CPU (the ``ioc-instance`` chart's default
pod limits), with 1,000 and then 10,000 records, 100 of them updated at
10 Hz, each served to 10 ``camonitor`` clients (and one reader of the live
page's event stream).  It reports the IOC's memory (RSS, and the cgroup's
peak) and CPU (share of one core; the limit is 50 %), the updates each
monitor received against those sent, gaps in the counting values (lost
updates), and the cgroup's OOM kills.  The machines here have cgroup v1
controllers (``/sys/fs/cgroup/memory``, ``/sys/fs/cgroup/cpu``).

Options: ``--records 1000,10000``, ``--seconds 30``, ``--monitors 10``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from softioc.testing import free_port

from .proc import Server, camonitor, cpu_seconds, rss_mb, server_env, wait_for_pv

HERE = Path(__file__).parent
MEMORY_LIMIT = 256 * 1024 * 1024
CPU_QUOTA, CPU_PERIOD = 50_000, 100_000     # 0.5 CPU
UPDATED, RATE = 100, 10                      # records set, Hz each
V1 = Path("/sys/fs/cgroup")


@contextlib.contextmanager
def pod_cgroup(name: str) -> Iterator[tuple[Path, Path]]:
    """A cgroup v1 memory and cpu group with the pod's limits."""
    memory, cpu = V1 / "memory" / name, V1 / "cpu" / name
    for path in (memory, cpu):
        path.mkdir()
    try:
        (memory / "memory.limit_in_bytes").write_text(str(MEMORY_LIMIT))
        (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD))
        (cpu / "cpu.cfs_quota_us").write_text(str(CPU_QUOTA))
        yield memory, cpu
    finally:
        for path in (memory, cpu):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    path.rmdir()
                    break
                except OSError:         # its processes are still ending
                    time.sleep(0.1)


def oom_kills(memory: Path) -> int:
    for line in (memory / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


class EventReader(threading.Thread):
    """Reads the live page's event stream (GET /events) and counts bytes."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.received = 0
        self.error = ""
        self.closing = False

    def run(self) -> None:
        try:
            self.conn.request("GET", "/events")
            response = self.conn.getresponse()
            while chunk := response.read1(65536):
                self.received += len(chunk)
        except Exception as e:          # noqa: BLE001 - reported, not raised
            if not self.closing:
                self.error = f"{type(e).__name__}: {e}"

    def close(self) -> None:
        self.closing = True
        sock = self.conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(2)


def gaps(path: Path) -> tuple[int, int]:
    """(updates, lost): lines of a camonitor file, and the values skipped in
    each PV's count (the IOC counts up by one at each update)."""
    last: dict[str, float] = {}
    updates = lost = 0
    for line in path.read_text(errors="replace").splitlines():
        words = line.split()
        if len(words) < 4 or not re.fullmatch(r"[-\d.]+", words[3]):
            continue
        name, value = words[0], float(words[3])
        updates += 1
        if name in last and value > last[name] + 1:
            lost += int(value - last[name] - 1)
        last[name] = value
    return updates, lost


def run_one(records: int, seconds: float, monitors: int) -> dict[str, object]:
    http_address = f"127.0.0.1:{free_port()}"
    env = server_env({"PYTHONIOC_HTTP": http_address})
    name = f"pythonioc-envelope-{os.getpid()}-{records}"
    with pod_cgroup(name) as (memory, cpu), tempfile.TemporaryDirectory() as tmp:
        # Join the cgroups, then run as a pod does: no real-time or mlock rights.
        join = (f'echo $$ > {memory}/cgroup.procs && echo $$ > {cpu}/cgroup.procs && exec '
                'setpriv --bounding-set=-all --inh-caps=-all prlimit --memlock=65536:65536 '
                f'--rtprio=0:0 -- "$@"')
        cmd = ["sh", "-c", join, "sh", sys.executable, str(HERE / "servers" / "envelope_ioc.py"),
               str(records)]
        with Server(cmd, env=env) as server:
            server.ready(timeout=180)
            pvs = [f"ENV:R{i}" for i in range(UPDATED)]
            wait_for_pv(env, pvs[-1], 60, server)
            reader = EventReader(http_address)
            reader.start()
            files = [Path(tmp) / f"mon{i}.txt" for i in range(monitors)]
            with contextlib.ExitStack() as stack:
                for path in files:
                    stack.enter_context(camonitor(env, pvs, path))
                time.sleep(5)                       # connected, past the first values
                sizes = [p.stat().st_size for p in files]
                cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
                time.sleep(seconds)
                cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
                rss = rss_mb(server.pid)
                alive = server.proc.poll() is None
            reader.close()
            peak = int((memory / "memory.max_usage_in_bytes").read_text()) / 2**20
            kills = oom_kills(memory)
            throttled = (cpu / "cpu.stat").read_text().split()
        counted = []
        for path, start in zip(files, sizes):   # the measured window of each monitor
            path.write_bytes(path.read_bytes()[start:])
            counted.append(gaps(path))
    sent = UPDATED * RATE * (t1 - t0)
    return {
        "records": records, "seconds": round(t1 - t0, 1),
        "rss_mb": round(rss["VmRSS"], 1), "rss_peak_mb": round(rss["VmHWM"], 1),
        "cgroup_peak_mb": round(peak, 1),
        "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "updates_sent": round(sent),
        "updates_min": min(u for u, _ in counted), "updates_max": max(u for u, _ in counted),
        "lost": sum(lost for _, lost in counted), "oom_kills": kills, "alive": alive,
        "throttled": dict(zip(throttled[::2], throttled[1::2])).get("nr_throttled", "?"),
        "events_bytes": reader.received, "events_error": reader.error,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.envelope", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="1000,10000")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--monitors", type=int, default=10)
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not (V1 / "memory").is_dir():
        sys.exit("bench.envelope needs root and cgroup v1 memory/cpu controllers")
    rows = [run_one(int(n), args.seconds, args.monitors) for n in args.records.split(",")]
    print(f"\nEnvelope: {MEMORY_LIMIT >> 20} MiB, {CPU_QUOTA / CPU_PERIOD} CPU, "
          f"{UPDATED} records at {RATE} Hz to {args.monitors} camonitors each, "
          f"HTTP on with one event-stream reader, {args.seconds:.0f} s measured\n")
    print("| records | RSS MB (peak) | cgroup peak MB | CPU % of a core | updates per monitor "
          "(sent) | lost | OOM kills | throttled periods |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['records']:,} | {r['rss_mb']} ({r['rss_peak_mb']}) | {r['cgroup_peak_mb']} "
              f"| {r['cpu_percent']} | {r['updates_min']}-{r['updates_max']} "
              f"({r['updates_sent']}) | {r['lost']} | {r['oom_kills']} | {r['throttled']} |")
    for r in rows:
        if not r["alive"] or r["events_error"]:
            print(f"{r['records']}: alive={r['alive']} events: {r['events_error'] or 'ok'}")


if __name__ == "__main__":
    main()
