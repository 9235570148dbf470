"""The benchmark scenarios S1-S8: each runs one implementation once, except
that the runner measures S2 for every implementation at once (``TOGETHER``).

A scenario function takes the run's Config, the implementation and its
interpreter (or softIoc binary) and returns {metric: value} for one run;
``None`` for a metric means "not applicable to this implementation".  All
servers and clients stay on 127.0.0.1 on private ports (proc.server_env), and
every loop is bounded in count and in time.  S7 alone runs on a network of
its own: Linux network namespaces on one bridge (tests/network/netns.py),
where IOCs and client use EPICS's default settings, broadcasts included.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from softioc.testing import epics_tool, run_tool

from . import proc
from .envs import BENCH

if TYPE_CHECKING:
    from tests.network.netns import Host, Network

SERVERS = BENCH / "servers"
CLIENT = BENCH / "clients" / "ca_client.py"
PVA_CLIENT = BENCH / "clients" / "pva_client.py"
Metrics = dict[str, Optional[float]]


@dataclass
class Config:
    quick: bool
    work: Path                       # scratch files (camonitor output, .db files)
    client_python: str | None        # an interpreter with pyepics, for S1/S2/S5
    repeats: int = 3
    s1_seconds: float = 3.0
    s1b_records: int = 1000
    s2_puts: int = 2000
    s2_busy: bool = False            # a Python thread computing without pause in the server
    s4_records: int = 100_000
    s5_length: int = 1_000_000
    s5_seconds: float = 4.0
    s6_devices: int = 100
    s6_seconds: float = 10.0
    s7_iocs: int = 10
    s7_records: int = 2000           # per IOC
    s7_hosts: int = 5
    s8_size: int = 1024              # S8 image: size x size uint16
    s8_seconds: float = 3.0
    s8_pvs: int = 1000               # S8 PVs made and removed while serving
    s9_python: str | None = None     # S9: a free-threaded interpreter (3.14t) with ours
    s9_threads: int = 4
    s9_seconds: float = 3.0
    # S10: records x Hz x monitors per record, and seconds of load per point
    s10_points: str = "100x100x1,100x100x10,100x100x50,1000x10x1,1000x100x1"
    s10_seconds: float = 5.0

    @classmethod
    def make(cls, quick: bool, work: Path, client_python: str | None) -> Config:
        if quick:
            return cls(quick, work, client_python, repeats=1, s1_seconds=1.0, s2_puts=300,
                       s4_records=10_000, s5_seconds=2.0, s6_seconds=3.0,
                       s7_iocs=5, s7_records=1000, s8_size=256, s8_seconds=1.0, s8_pvs=200,
                       s9_seconds=1.0, s10_points="100x10x1,100x100x2", s10_seconds=1.0)
        return cls(quick, work, client_python)


class NotApplicable(Exception):
    """The scenario has no meaning for this implementation (reported as n/a)."""


# ---- starting servers -------------------------------------------------------

SCRIPTS = {"ours": "softioc_server.py", "pythonsoftioc": "softioc_server.py",
           "pcaspy": "pcaspy_server.py", "caproto": "caproto_server.py",
           "p4p": "p4p_server.py"}


def start(impl: str, exe: str, scenario: str, params: dict[str, Any] | None = None,
          env: dict[str, str] | None = None) -> proc.Server:
    """Start the implementation's benchmark server for ``scenario``; wait until ready."""
    if impl == "softioc-c":
        raise NotApplicable(f"{scenario}: the C softIoc has no Python set()")
    server = proc.Server([exe, str(SERVERS / SCRIPTS[impl]), scenario,
                          json.dumps(params or {})], env=env)
    try:
        server.ready(timeout=300)
    except Exception:
        server.stop()
        raise
    return server


def write_db(cfg: Config, name: str, records: str) -> Path:
    db = cfg.work / f"{name}.db"
    db.write_text(records)
    return db


def softioc_c_cmd(exe: str, db: Path, dbd: Path | None = None) -> list[str]:
    """The C softIoc (softIocPVA: CA and PVA) serving a .db file, no shell."""
    return [exe] + (["-D", str(dbd)] if dbd else []) + ["-S", "-d", str(db)]


def start_softioc_c(exe: str, cfg: Config, name: str, records: str,
                    dbd: Path | None = None) -> proc.Server:
    return proc.Server(softioc_c_cmd(exe, write_db(cfg, name, records), dbd), protocol=False)


# ---- S1: set() rate with one camonitor ----------------------------------------

STAMPS = re.compile(r"^(\S+)\s+(\S+ \S+)\((\S+ \S+)\)\s+(\S+)")


def stamped_lines(path: Path, tail: int = 0) -> list[tuple[str, float, float, str]]:
    """(pv, server time, client time, value) of each ``camonitor -tsc`` line
    (in the last ``tail`` bytes of the file if given)."""
    out = []
    with open(path, "rb") as f:
        if tail:
            f.seek(max(0, path.stat().st_size - tail))
        for line in f.read().decode(errors="replace").splitlines():
            m = STAMPS.match(line)
            if not m:
                continue
            try:
                server = datetime.datetime.strptime(m.group(2), "%Y-%m-%d %H:%M:%S.%f")
                client = datetime.datetime.strptime(m.group(3), "%Y-%m-%d %H:%M:%S.%f")
            except ValueError:
                continue
            out.append((m.group(1), server.timestamp(), client.timestamp(), m.group(4)))
    return out


def wait_value(path: Path, value: float, timeout: float) -> float | None:
    """Client time at which camonitor got ``value`` (its last line); None if never."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = stamped_lines(path, tail=1000)
        if lines and float(lines[-1][3]) == value:
            return lines[-1][2]
        time.sleep(0.05)
    return None


def s1_setups(cfg: Config, server: proc.Server, r: int) -> Metrics:
    """S1's loop in two more set-ups, before camonitor attaches: no client at
    all, then one pyepics ``PV`` whose callback is Python (a client as users
    write one, on the same machine: its CPU is taken from the server's)."""
    base = r * 10_000_000
    res = server.command(cmd="set_loop", seconds=cfg.s1_seconds, base=base + 7_000_000,
                         max_sets=50_000_000, drain=0.3)
    out: Metrics = {
        "sets_per_s_nomon": res["sets"] / res["wall"],
        "cpu_us_per_set_nomon": 1e6 * (res["cpu"] + res["cpu_drain"]) / res["sets"],
    }
    if cfg.client_python is None:
        return out
    res, got = monitored(
        server, [cfg.client_python, str(CLIENT), "pv_monitor", "BENCH:S1",
                 str(cfg.s1_seconds + 1.0)],
        cmd="set_loop", seconds=cfg.s1_seconds, base=base + 8_000_000, max_sets=20_000_000,
        drain=0.3)
    out.update({
        "sets_per_s_pyepics": res["sets"] / res["wall"],
        "cpu_us_per_set_pyepics": 1e6 * (res["cpu"] + res["cpu_drain"]) / res["sets"],
        "pyepics_updates_pct": 100.0 * got["updates"] / res["sets"],
    })
    return out


def pin_threads(pid: int, cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of process ``pid`` (threads it makes
    later inherit their creator's)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:          # the thread ended meanwhile
            pass


def s1_one_core(cfg: Config, server: proc.Server, mon: Path, base: int) -> Metrics:
    """S1's loop with camonitor attached, the server's threads kept to one CPU
    (as in a container given one core): the CA server's event thread then
    shares the core with the loop.  camonitor is not pinned."""
    cpus = os.sched_getaffinity(server.pid)
    if len(cpus) < 2:
        return {}
    lines0 = proc.count_lines(mon)
    pin_threads(server.pid, {min(cpus)})
    try:
        res = server.command(cmd="set_loop", seconds=cfg.s1_seconds, base=base,
                             max_sets=20_000_000, drain=0.3)
    finally:
        pin_threads(server.pid, cpus)
    wait_value(mon, res["last"], 15.0)
    return {
        "sets_per_s_1core": res["sets"] / res["wall"],
        "cpu_us_per_set_1core": 1e6 * (res["cpu"] + res["cpu_drain"]) / res["sets"],
        "monitor_updates_pct_1core": 100.0 * (proc.count_lines(mon) - lines0) / res["sets"],
    }


def s1(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    server = start(impl, exe, "S1")
    runs = []
    try:
        setups = [s1_setups(cfg, server, r) for r in range(cfg.repeats)]
        mon = cfg.work / f"s1-{impl}.txt"
        with proc.camonitor(server.env, ["BENCH:S1"], mon, ["-tsc"]):
            if proc.wait_lines(mon, 1, 10) < 1:
                raise RuntimeError("camonitor did not connect")
            for r in range(cfg.repeats):
                lines0 = proc.count_lines(mon)
                res = server.command(cmd="set_loop", seconds=cfg.s1_seconds,
                                     base=r * 10_000_000, max_sets=20_000_000, drain=0.3)
                seen_at = wait_value(mon, res["last"], 15.0)
                seen = proc.count_lines(mon) - lines0
                runs.append({
                    "sets_per_s": res["sets"] / res["wall"],
                    "cpu_us_per_set": 1e6 * (res["cpu"] + res["cpu_drain"]) / res["sets"],
                    "monitor_updates_pct": 100.0 * seen / res["sets"],
                    "final_seen_ms": None if seen_at is None else 1000 * (seen_at - res["t_end"]),
                    "final_lost": 0.0 if seen_at is not None else 1.0,
                    **setups[r],
                })
                runs[-1].update(s1_one_core(cfg, server, mon, r * 10_000_000 + 6_000_000))
                if impl == "ours":       # the limit: the same sets from C, no Python
                    lim = server.command(cmd="c_set_loop", seconds=cfg.s1_seconds,
                                         base=r * 10_000_000 + 5_000_000,
                                         max_sets=50_000_000)
                    if "unavailable" in lim:            # no C compiler here
                        continue
                    wait_value(mon, lim["last"], 15.0)
                    limit = lim["sets"] / lim["wall"]
                    runs[-1]["c_limit_sets_per_s"] = limit
                    runs[-1]["pct_of_c_limit"] = 100.0 * runs[-1]["sets_per_s"] / limit
    finally:
        server.stop()
    return runs


# ---- S1b: burst of 1000 records, stale finals ---------------------------------

LINE = re.compile(r"^BURST:(\d+)\s+\S+\s+\S+\s+(\S+)")


def final_values(path: Path) -> dict[int, float]:
    last: dict[int, float] = {}
    with open(path, "rb") as f:
        for line in f.read().decode(errors="replace").splitlines():
            m = LINE.match(line)
            if m:
                try:
                    last[int(m.group(1))] = float(m.group(2))
                except ValueError:
                    pass
    return last


def s1b(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    n = cfg.s1b_records
    server = start(impl, exe, "S1b", {"records": n})
    thread_counts = [1, 4] if impl in ("ours", "pythonsoftioc") else [1]
    runs: list[Metrics] = []
    try:
        mon = cfg.work / f"s1b-{impl}.txt"
        with proc.camonitor(server.env, [f"BURST:{i}" for i in range(n)], mon):
            if proc.wait_lines(mon, n, 30) < n:
                raise RuntimeError("camonitor did not connect to every record")
            base = 0
            for _ in range(cfg.repeats):
                run: Metrics = {}
                for threads in thread_counts:
                    base += 10_000
                    res = server.command(cmd="burst", threads=threads, base=base)
                    expected = {i: float(base + i) for i in range(n)}
                    deadline = time.monotonic() + 10
                    stale = n
                    while time.monotonic() < deadline:
                        last = final_values(mon)
                        stale = sum(1 for i in range(n) if last.get(i) != expected[i])
                        if stale == 0:
                            break
                        time.sleep(0.2)
                    tag = "1thread" if threads == 1 else f"{threads}threads"
                    run[f"stale_{tag}"] = float(stale)
                    run[f"burst_ms_{tag}"] = 1000 * res["wall"]
                if "stale_4threads" not in run:
                    run["stale_4threads"] = None
                    run["burst_ms_4threads"] = None
                runs.append(run)
    finally:
        server.stop()
    return runs


# ---- S2: put-callback round trips ----------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def put_client(cfg: Config, targets: dict[str, tuple[dict[str, str], str]],
               pva: bool) -> dict[str, Any]:
    """One client taking the targets' PVs in turn, cfg.s2_puts rounds; targets
    maps implementation -> (its server's environment, PV)."""
    if cfg.client_python is None:
        raise NotApplicable("no interpreter with pyepics for the client")
    pvs = [pv for _, pv in targets.values()]
    if pva:
        cmd = [cfg.client_python, str(PVA_CLIENT), "put_wait", str(cfg.s2_puts)]
        stdin = json.dumps([{"pv": pv, "conf": {k: v for k, v in env.items()
                                                if k.startswith("EPICS_PVA")}}
                            for env, pv in targets.values()])
        env = next(iter(targets.values()))[0]
    else:
        # One libca context finds every server: each one's CA port in the address list.
        cmd = [cfg.client_python, str(CLIENT), "put_callback", ",".join(pvs), str(cfg.s2_puts)]
        stdin = ""
        env = dict(next(iter(targets.values()))[0])
        env["EPICS_CA_ADDR_LIST"] = " ".join(
            f"127.0.0.1:{e['EPICS_CA_SERVER_PORT']}" for e, _ in targets.values())
    out = subprocess.run(cmd, env=env, input=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=120 * len(pvs))
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(f"put client failed: {out.stdout[-500:]}")


PVA_SERVERS = ("ours", "pythonsoftioc", "softioc-c")


def s2_server(cfg: Config, impl: str, exe: str, prefix: str) -> proc.Server:
    if cfg.s2_busy:
        if impl not in ("ours", "pythonsoftioc"):
            raise NotApplicable("--s2-busy: a busy Python thread in ours and pythonSoftIOC")
        return start(impl, exe, "S2", {"prefix": prefix, "busy": True})
    if impl == "softioc-c":
        server = start_softioc_c(exe, cfg, "s2", f'record(ao, "{prefix}AO") {{}}\n'
                                 f'record(ao, "{prefix}AOB") {{}}\n')
        proc.wait_for_pv(server.env, f"{prefix}AOB", 30, server)
        return server
    return start(impl, exe, "S2", {"prefix": prefix})


def s2_stats(times: list[float], timeouts: int, tag: str) -> Metrics:
    times = times[min(20, len(times) // 10):]   # after warm-up
    return {f"{tag}p50_us": 1e6 * percentile(times, 50),
            f"{tag}p99_us": 1e6 * percentile(times, 99),
            f"{tag}p999_us": 1e6 * percentile(times, 99.9),
            f"{tag}max_us": 1e6 * max(times),
            f"{tag}timeouts": float(timeouts)}


S2_KINDS = [(pva, suffix, ("pva_" if pva else "") + tag)
            for pva in (False, True)
            for suffix, tag in (("AO", ""), ("AOB", "blocking_"))]


def s2_together(cfg: Config, exes: dict[str, str]) -> dict[str, list[Metrics] | Exception]:
    """S2 for every implementation at once, interleaved put by put.

    Every server runs for the whole scenario, each with PVs of its own, and
    one client takes them in turn (in a fresh order each round), so that a change
    in the machine's load lands on every implementation alike instead of on
    whichever ran then.
    """
    servers: dict[str, proc.Server] = {}
    prefixes = {impl: f"BENCH:{impl.upper().replace('-', '')}:" for impl in exes}
    out: dict[str, list[Metrics] | Exception] = {}
    try:
        for impl, exe in exes.items():
            try:
                servers[impl] = s2_server(cfg, impl, exe, prefixes[impl])
            except Exception as e:
                out[impl] = e
        runs: dict[str, list[Metrics]] = {impl: [] for impl in servers}
        for _ in range(cfg.repeats):
            current: dict[str, Metrics] = {impl: {} for impl in servers}
            for pva, suffix, tag in S2_KINDS:
                targets = {impl: (server.env, prefixes[impl] + suffix)
                           for impl, server in servers.items()
                           if impl not in out and (not pva or impl in PVA_SERVERS)}
                for impl in servers:
                    if impl not in targets:
                        current[impl].update({f"{tag}p50_us": None, f"{tag}p99_us": None})
                if not targets:
                    continue
                try:
                    res = put_client(cfg, targets, pva)
                except Exception as e:
                    for impl in targets:
                        out[impl] = e
                    continue
                for impl, (_, pv) in targets.items():
                    if pv in res["failed"] or not res["times"][pv]:
                        out[impl] = RuntimeError(f"{pv} did not connect")
                    else:
                        current[impl].update(
                            s2_stats(res["times"][pv], res["timeouts"][pv], tag))
            for impl in servers:
                runs[impl].append(current[impl])
        for impl in servers:
            out.setdefault(impl, runs[impl])
    finally:
        for server in servers.values():
            server.stop()
    return out


def s2(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    """S2 for one implementation (the runner measures several with s2_together)."""
    result = s2_together(cfg, {impl: exe})[impl]
    if isinstance(result, Exception):
        raise result
    return result


# ---- S3: catime -------------------------------------------------------------------

def parse_catime(text: str) -> Metrics:
    """DBR_DOUBLE async put/get and sync get per-op times, and the get latency."""
    out: Metrics = {}
    section = test = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("DBR_") and line.endswith("Test"):
            section = line.split()[0]
        elif line.startswith("###"):
            test = line.strip("# ").strip()
        elif line.startswith("Per Op,") and section == "DBR_DOUBLE":
            us = float(line.split(",")[1].split()[0])
            key = {"async put test": "async_put_kops", "async get test": "async_get_kops",
                   "synch get test": "sync_get_us"}.get(test)
            if key == "sync_get_us":
                out[key] = us
            elif key:
                out[key] = 1000.0 / us           # µs per op -> thousand ops per second
        elif line.startswith("Get Latency - mean ="):
            out["get_latency_us"] = float(line.split("=")[1].split()[0])
    return out


def s3(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    if impl == "softioc-c":
        server = start_softioc_c(exe, cfg, "s3", 'record(ai, "BENCH:AI") {}\n')
        proc.wait_for_pv(server.env, "BENCH:AI", 30, server)
    else:
        server = start(impl, exe, "S3")
    runs: list[Metrics] = []
    t0 = time.monotonic()
    try:
        for _ in range(cfg.repeats):
            if runs and time.monotonic() - t0 > 30:
                break               # catime's 10,000 channels take caproto a minute a run
            try:
                res = run_tool("catime", "BENCH:AI", env=server.env, check=False, timeout=120)
            except subprocess.TimeoutExpired:
                raise RuntimeError("catime BENCH:AI took over 120 s") from None
            parsed = parse_catime(res.stdout)
            if "sync_get_us" not in parsed:
                raise RuntimeError(f"catime failed: {res.stdout[-400:]}")
            runs.append(parsed)
    finally:
        server.stop()
    return runs


# ---- S4: start-up with many records -----------------------------------------------

def start_params(impl: str, records: int) -> dict[str, Any]:
    """S4 and S7 start IOCs that only serve records, as their users start them:
    ours with ``iocInit()`` (its default dispatcher, a thread); pythonSoftIOC
    with its AsyncioDispatcher, as in every scenario (its default, cothread,
    is not in its venv)."""
    return {"records": records, **({"dispatcher": "default"} if impl == "ours" else {})}


def unprivileged() -> list[str] | None:
    """A command prefix that starts a process without real-time scheduling or memory
    locking, even as root: no capabilities (``setpriv``), and RLIMIT_MEMLOCK and
    RLIMIT_RTPRIO low enough that ``mlockall()`` and SCHED_FIFO fail without them
    (``prlimit``); None without those tools."""
    if not shutil.which("prlimit"):
        return None
    limits = ["prlimit", "--memlock=65536:65536", "--rtprio=0:0", "--"]
    if os.geteuid() != 0:
        return limits
    if not shutil.which("setpriv"):
        return None
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", *limits]


def s4_start(cfg: Config, impl: str, exe: str, prefix: list[str]) -> Metrics:
    """Start a server with cfg.s4_records records; time until the last and first answer."""
    n = cfg.s4_records
    first, last = "S4:R0", f"S4:R{n - 1}"
    if impl == "softioc-c":
        # A C IOC loads a .db file written beforehand; the Python servers build theirs.
        text = "".join(f'record(ai, "S4:R{i}") {{ field(VAL, "{i}") }}\n' for i in range(n))
        cmd = softioc_c_cmd(exe, write_db(cfg, "s4", text))
    else:
        cmd = [exe, str(SERVERS / SCRIPTS[impl]), "S4", json.dumps(start_params(impl, n))]
    t0 = time.monotonic()
    server = proc.Server(prefix + cmd, protocol=impl != "softioc-c")
    try:
        ready = proc.wait_for_pv(server.env, last, 600, server)
        proc.wait_for_pv(server.env, first, 30, server)
        mem = proc.rss_mb(server.pid)
        value = run_tool("caget", "-t", "-w", "5", last, env=server.env, check=False,
                         timeout=30).stdout.strip()
        if float(value) != n - 1:
            raise RuntimeError(f"{last} is {value!r}, expected {n - 1}")
        run = {"start_s": ready - t0, "rss_mb": mem.get("VmRSS"),
               "locked_mb": mem.get("VmLck")}
        if impl in ("ours", "pythonsoftioc"):     # where the time went (softioc_server.py)
            run.update(json.loads(server.expect("PHASES", 5)))
        return run
    finally:
        server.stop()


def s4(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    """Every implementation on equal terms (no real-time or memory-locking rights);
    as root, also once with root's rights, where the C softIoc and pythonSoftIOC
    call mlockall() (context: VmLck and the RSS it inflates)."""
    runs: list[Metrics] = []
    prefix = unprivileged()
    if prefix is None:
        raise NotApplicable("S4 needs prlimit (and setpriv as root) to start every "
                            "server without real-time or memory-locking rights")
    for _ in range(cfg.repeats):
        run = s4_start(cfg, impl, exe, prefix)
        if os.geteuid() == 0:
            root = s4_start(cfg, impl, exe, [])
            run.update(rss_mb_root=root["rss_mb"], locked_mb_root=root["locked_mb"])
        runs.append(run)
    return runs


# ---- S5: a 1,000,000-element waveform ---------------------------------------------

def monitored(server: proc.Server, client_cmd: list[str], **command: Any,
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a monitor client (it prints SUBSCRIBED once its first update came,
    then ``RESULT {json}`` after its time), run ``command`` on the server (for
    its ``seconds``), and return both results."""
    seconds = float(command["seconds"])
    client = subprocess.Popen(client_cmd, env=server.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert client.stdout is not None
        line = client.stdout.readline()
        if not line.startswith("SUBSCRIBED"):
            raise RuntimeError(f"monitor client: {line}{client.stdout.read()[-300:]}")
        res = server.command(timeout=seconds + 120, **command)
        out, _ = client.communicate(timeout=seconds + 60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    return res, json.loads(out.split("RESULT ", 1)[1])


def s5(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    if cfg.client_python is None:
        raise NotApplicable("no interpreter with pyepics for the client")
    server = start(impl, exe, "S5", {"length": cfg.s5_length})
    runs: list[Metrics] = []
    try:
        for _ in range(cfg.repeats):
            res, got = monitored(
                server, [cfg.client_python, str(CLIENT), "monitor_count", "S5:WAVE",
                         str(cfg.s5_seconds + 1.0)],
                cmd="wave_loop", seconds=cfg.s5_seconds, max_sets=100_000)
            run: Metrics = {
                "updates_per_s": got["full_updates"] / res["wall"],
                "sets_per_s": res["sets"] / res["wall"],
                "cpu_ms_per_set": 1000 * res["cpu"] / max(1, res["sets"]),
            }
            # the same with a new array made for each set, as a program computing
            # its data does (the client attached), then with no client attached
            res, got = monitored(
                server, [cfg.client_python, str(CLIENT), "monitor_count", "S5:WAVE",
                         str(cfg.s5_seconds + 1.0)],
                cmd="wave_loop", seconds=cfg.s5_seconds, max_sets=100_000, fresh=True)
            run.update({
                "updates_per_s_fresh": got["full_updates"] / res["wall"],
                "sets_per_s_fresh": res["sets"] / res["wall"],
                "cpu_ms_per_set_fresh": 1000 * res["cpu"] / max(1, res["sets"]),
            })
            res = server.command(cmd="wave_loop", seconds=cfg.s5_seconds, max_sets=100_000,
                                 timeout=cfg.s5_seconds + 120)
            run["sets_per_s_nomon"] = res["sets"] / res["wall"]
            res = server.command(cmd="wave_loop", seconds=cfg.s5_seconds, max_sets=100_000,
                                 fresh=True, timeout=cfg.s5_seconds + 120)
            run["sets_per_s_fresh_nomon"] = res["sets"] / res["wall"]
            runs.append(run)
    finally:
        server.stop()
    return runs


# ---- S6: the seed's averaging IOC ----------------------------------------------------

def fast_scan_dbd(cfg: Config) -> tuple[Path | None, str]:
    """softIoc.dbd with a '.01 second' scan period (the stock menu stops at .1 s)."""
    exe = Path(epics_tool("softIoc"))
    stock = exe.parents[2] / "dbd" / "softIoc.dbd"
    if not stock.exists():
        return None, ".1 second"
    text = stock.read_text()
    marker = 'choice(menuScan_1_second, ".1 second")'
    if marker not in text:
        return None, ".1 second"
    patched = cfg.work / "softIoc-fastscan.dbd"
    patched.write_text(text.replace(
        marker, marker + '\n    choice(menuScan_01_second, ".01 second")', 1))
    return patched, ".01 second"


def latencies(path: Path, t0: float, t1: float) -> list[float]:
    """Client minus server timestamp of each update the client got in [t0, t1]."""
    return [client - server for _, server, client, _ in stamped_lines(path)
            if t0 <= client <= t1]


def s6(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    if impl not in ("ours", "pythonsoftioc"):
        raise NotApplicable("the seed's code is written for the softioc API with cothread")
    dbd, period = fast_scan_dbd(cfg)
    devices = cfg.s6_devices
    records = "".join(
        f'record(calc, "DEVICE{i}:CURRENT") {{ field(SCAN, "{period}") field(CALC, "VAL+1") }}\n'
        for i in range(devices))
    upstream = start_softioc_c(epics_tool("softIoc"), cfg, "s6-upstream", records, dbd)
    runs: list[Metrics] = []
    try:
        proc.wait_for_pv(upstream.env, f"DEVICE{devices - 1}:CURRENT", 30, upstream)
        up_port = upstream.env["EPICS_CA_SERVER_PORT"]
        for _ in range(cfg.repeats if not cfg.quick else 1):
            # Its own server port; its client finds the upstream IOC at 127.0.0.1:up_port.
            env = proc.server_env({"EPICS_CA_ADDR_LIST": f"127.0.0.1:{up_port} 127.0.0.1"})
            ioc = proc.Server([exe, str(SERVERS / "seed_average.py"), str(devices)], env=env)
            try:
                ioc.ready(60)
                client_env = dict(env, EPICS_CA_ADDR_LIST="127.0.0.1")
                proc.wait_for_pv(client_env, "AVERAGE:CURRENT", 30, ioc)
                mon = cfg.work / f"s6-{impl}.txt"
                with proc.camonitor(client_env, ["AVERAGE:CURRENT"], mon, ["-tsc"]):
                    time.sleep(2.0)                     # connected, steady state
                    c0, t0 = proc.cpu_seconds(ioc.pid), time.time()
                    time.sleep(cfg.s6_seconds)
                    c1, t1 = proc.cpu_seconds(ioc.pid), time.time()
                lat = latencies(mon, t0, t1)
                if not lat:
                    raise RuntimeError("no AVERAGE updates seen")
                runs.append({
                    "p50_ms": 1000 * percentile(lat, 50),
                    "p99_ms": 1000 * percentile(lat, 99),
                    "p999_ms": 1000 * percentile(lat, 99.9),
                    "max_ms": 1000 * max(lat),
                    "updates_per_s": len(lat) / (t1 - t0),
                    "upstream_updates_per_s": devices * (100.0 if dbd else 10.0),
                    "cpu_pct": 100 * (c1 - c0) / (t1 - t0),
                })
            finally:
                ioc.stop()
    finally:
        upstream.stop()
    return runs


# ---- S7: many IOCs on several hosts, one client connecting to every PV ---------------

S7_CLIENT = BENCH / "clients" / "scale_client.py"
S7_NET = "198.51.100"          # a documentation range: hosts .11 upwards, the client .200
S7_MAX_HOSTS = 100


def s7_layout(cfg: Config) -> str:
    return f"{cfg.s7_iocs} IOCs × {cfg.s7_records:,} records on {cfg.s7_hosts} hosts"


def s7(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    """Build the hosts and the client's host, then per repeat start every IOC, connect."""
    if impl not in ("ours", "softioc-c"):
        raise NotApplicable("S7 compares pythonIOC with the C softIoc only")
    if not (cfg.s7_iocs >= 1 and cfg.s7_records >= 1 and 1 <= cfg.s7_hosts <= S7_MAX_HOSTS):
        raise ValueError(f"S7 needs at least one IOC, record and host, and at most "
                         f"{S7_MAX_HOSTS} hosts: {s7_layout(cfg)}")
    try:
        from tests.network.netns import Network, network_unavailable
    except ImportError as e:
        raise NotApplicable(f"S7 needs tests/network/netns.py (run from the repository): "
                            f"{e}") from None
    reason = network_unavailable()
    if reason:
        raise NotApplicable(f"S7 builds network namespaces: {reason}")
    missing = [m for m in ("epics", "p4p") if importlib.util.find_spec(m) is None]
    if missing:
        raise NotApplicable(f"S7's clients need {' and '.join(missing)} in this interpreter")
    names = [f"S7:I{k}:R{i}" for k in range(cfg.s7_iocs) for i in range(cfg.s7_records)]
    names_file = cfg.work / "s7-names.txt"
    names_file.write_text("\n".join(names) + "\n")
    runs: list[Metrics] = []
    with Network() as net:
        net.subnet("a", f"{S7_NET}.0/24")
        hosts = [net.host(f"h{j + 1}", a=f"{S7_NET}.{11 + j}") for j in range(cfg.s7_hosts)]
        client = net.host("client", a=f"{S7_NET}.200")
        for _ in range(cfg.repeats):
            runs.append(s7_run(cfg, impl, exe, net, hosts, client, names_file))
    return runs


def s7_ioc_cmd(cfg: Config, impl: str, exe: str, k: int) -> list[str]:
    """IOC number ``k``: records S7:I<k>:R<i> reading i (ours builds them, C loads a .db)."""
    prefix = f"S7:I{k}:"
    if impl == "softioc-c":
        text = "".join(f'record(ai, "{prefix}R{i}") {{ field(VAL, "{i}") }}\n'
                       for i in range(cfg.s7_records))
        return softioc_c_cmd(exe, write_db(cfg, f"s7-ioc{k}", text))
    params = {**start_params(impl, cfg.s7_records), "prefix": prefix}
    return [exe, str(SERVERS / SCRIPTS[impl]), "S7", json.dumps(params)]


def s7_client(cfg: Config, client: Host, mode: str, names_file: Path) -> dict[str, Any]:
    """Run the client on its host: its result, with the UDP datagrams its host dropped
    (receive buffer full).  A wrong value is an error; PVs that never answered within the
    client's time limit are counted (``missing``)."""
    pvs = cfg.s7_iocs * cfg.s7_records
    limit = 30.0 + pvs / (1000 if mode == "ca" else 400)
    drops0 = udp_rcvbuf_errors(client)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = client.run([sys.executable, str(S7_CLIENT), mode, str(names_file), str(limit)],
                        timeout=limit + 60)
    found = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if not found:
        raise RuntimeError(f"S7 {mode} client failed: {result.stdout[-500:]}")
    res: dict[str, Any] = json.loads(found[-1][7:])
    if res["wrong"]:
        raise RuntimeError(f"S7 {mode} client: {res['wrong']} PVs of {res['pvs']} with a wrong "
                           f"value (e.g. {', '.join(res['examples'])})")
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu_s"] = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    res["udp_drops"] = udp_rcvbuf_errors(client) - drops0
    return res


def udp_rcvbuf_errors(host: Host) -> int:
    """UDP datagrams dropped on ``host`` so far because a socket's receive buffer was full."""
    lines = [line.split() for line in host.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
             if line.startswith("Udp:")]
    return int(dict(zip(lines[0], lines[1]))["RcvbufErrors"])


def s7_run(cfg: Config, impl: str, exe: str, net: Network, hosts: list[Host], client: Host,
           names_file: Path) -> Metrics:
    """Start the IOCs spread over the hosts, wait until all serve, connect the clients."""
    from tests.network.netns import wait_until

    # As a user without real-time or memory-locking rights (20 IOCs each locking its
    # memory, with real-time threads, would measure the machine's limits, not the IOCs).
    prefix = unprivileged() or []
    ready = "READY" if impl == "ours" else "iocRun: All initialization complete"
    mark = len(net.procs)
    try:
        cmds = [prefix + s7_ioc_cmd(cfg, impl, exe, k) for k in range(cfg.s7_iocs)]
        t0 = time.monotonic()
        iocs = [hosts[k % len(hosts)].popen(cmd) for k, cmd in enumerate(cmds)]

        def all_ready() -> bool:
            for ioc in iocs:
                if not ioc.alive():
                    raise RuntimeError(f"an S7 IOC exited ({ioc.popen.returncode}): "
                                       f"{ioc.output()[-500:]}")
            return all(ready in ioc.output() for ioc in iocs)

        limit = 60.0 + cfg.s7_iocs * cfg.s7_records / 500
        wait_until(all_ready, limit, "every S7 IOC serving", 0.1)
        start_s = time.monotonic() - t0

        def cpu() -> float:
            return sum(proc.cpu_seconds(ioc.pid) for ioc in iocs)

        rss_start = sum(proc.rss_mb(ioc.pid)["VmRSS"] for ioc in iocs)
        c0 = cpu()
        ca = s7_client(cfg, client, "ca", names_file)
        c1 = cpu()
        pva = s7_client(cfg, client, "pva", names_file)
        c2 = cpu()
        rss = sum(proc.rss_mb(ioc.pid)["VmRSS"] for ioc in iocs)
        return {"start_s": start_s,
                "ca_connect_s": None if ca["missing"] else ca["connect_s"],
                "ca_get_s": None if ca["missing"] else ca["get_s"],
                "pva_get_s": None if pva["missing"] else pva["get_s"],
                "pva_99pct_s": pva["quantiles_s"].get("99"),
                "client_cpu_ca_s": ca["cpu_s"], "client_cpu_pva_s": pva["cpu_s"],
                "missing": float(ca["missing"] + pva["missing"]),
                "udp_drops_ca": float(ca["udp_drops"]), "udp_drops_pva": float(pva["udp_drops"]),
                "cpu_start_s": c0, "cpu_ca_s": c1 - c0, "cpu_pva_s": c2 - c1,
                "rss_start_mb": rss_start, "rss_mb": rss, "pvs": float(ca["pvs"])}
    finally:
        net.stop_since(mark)


# ---- S8: PV Access beyond records: an image, and PVs made and removed -------------

S8_CLIENT = BENCH / "clients" / "image_client.py"


def s8(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    """A size x size uint16 NTNDArray posted as fast as the server can for
    s8_seconds with one p4p monitor (an image viewer) attached; then s8_pvs
    PVs made on the running server, read by pvget (first and last), removed."""
    if impl not in ("ours", "p4p"):
        raise NotApplicable("S8: PVs that are no record (ours and p4p's own server)")
    server = start(impl, exe, "S8", {"width": cfg.s8_size, "height": cfg.s8_size})
    runs: list[Metrics] = []
    try:
        for _ in range(cfg.repeats):
            res, got = monitored(
                server, [sys.executable, str(S8_CLIENT), "S8:IMAGE", str(cfg.s8_seconds + 1.0)],
                cmd="image_loop", seconds=cfg.s8_seconds, max_frames=100_000)
            lat = sorted(got["latencies"])
            run: Metrics = {
                "posted_per_s": res["frames"] / res["wall"],
                "received_per_s": got["frames"] / res["wall"],
                "cpu_ms_per_frame": 1000 * res["cpu"] / max(1, res["frames"]),
                "latency_p50_ms": 1000 * percentile(lat, 50) if lat else None,
                "latency_p99_ms": 1000 * percentile(lat, 99) if lat else None,
            }
            made = server.command(cmd="pv_make", count=cfg.s8_pvs, timeout=300)
            last = f"S8:CHURN:{cfg.s8_pvs - 1}"
            t0 = time.perf_counter()
            read = run_tool("pvget", "-w", "10", "S8:CHURN:0", last, env=server.env,
                            check=False, timeout=60)
            if read.returncode != 0:
                raise RuntimeError(f"pvget of the new PVs: {read.stdout}")
            run["new_pvs_read_ms"] = 1000 * (time.perf_counter() - t0)
            removed = server.command(cmd="pv_remove", timeout=300)
            run["pvs_made_per_s"] = cfg.s8_pvs / made["wall"]
            run["pvs_removed_per_s"] = cfg.s8_pvs / removed["wall"]
            runs.append(run)
    finally:
        server.stop()
    return runs


# ---- S9: set() from 4 threads, free-threaded CPython with the GIL on and off ------

S9_PYTHON_ENV = "PYTHONIOC_BENCH_PYTHON314T"


def s9_interpreter(cfg: Config) -> str:
    """The free-threaded interpreter S9 runs ours in (NotApplicable if none)."""
    python = cfg.s9_python or os.environ.get(S9_PYTHON_ENV)
    if not python:
        raise NotApplicable(f"S9 needs a free-threaded Python (3.14t) with this repository "
                            f"installed: --s9-python PATH or ${S9_PYTHON_ENV}")
    code = ("import sysconfig, softioc.builder; "
            "print(int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True,
                             timeout=120, env=proc.server_env({"PYTHON_GIL": "1"}))
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NotApplicable(f"S9: {python} does not run: {e}") from e
    if out.returncode != 0:
        tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-2:])
        raise NotApplicable(f"S9: softioc does not import in {python}: {tail}")
    if out.stdout.strip() != "1":
        raise NotApplicable(f"S9: {python} is not a free-threaded build")
    return python


def s9(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    """Ours in the free-threaded interpreter, once with the GIL forced on
    (PYTHON_GIL=1) and once as it starts by default (the extension declares
    it needs no GIL): each server sets records from ``s9_threads`` threads,
    each thread its own record, for ``s9_seconds``; the two servers run at
    once and take turns, so the machine's load lands on both alike."""
    if impl != "ours":
        raise NotApplicable("S9 measures pythonIOC's set() on free-threaded CPython")
    python = s9_interpreter(cfg)
    params = {"threads": cfg.s9_threads}
    servers = {}
    try:
        for mode, gil in (("gil", {"PYTHON_GIL": "1"}), ("nogil", {})):
            env = proc.server_env(gil)
            if not gil:
                env.pop("PYTHON_GIL", None)
            servers[mode] = start(impl, python, "S9", params, env=env)
        runs: list[Metrics] = []
        for r in range(cfg.repeats):
            rate: dict[str, float] = {}
            cpu: dict[str, float] = {}
            for mode in (("gil", "nogil") if r % 2 == 0 else ("nogil", "gil")):
                res = servers[mode].command(cmd="thread_loop", seconds=cfg.s9_seconds,
                                            base=r * 10_000_000)
                if bool(res["gil"]) != (mode == "gil"):
                    raise RuntimeError(f"S9 {mode}: the server's GIL is "
                                       f"{'on' if res['gil'] else 'off'}")
                rate[mode] = res["sets"] / res["wall"]
                cpu[mode] = 1e6 * res["cpu"] / res["sets"]
            runs.append({
                "sets_per_s_gil": rate["gil"], "sets_per_s_nogil": rate["nogil"],
                "nogil_speedup": rate["nogil"] / rate["gil"],
                "cpu_us_per_set_gil": cpu["gil"], "cpu_us_per_set_nogil": cpu["nogil"],
                "nogil_cpu_ratio": cpu["nogil"] / cpu["gil"],
            })
    finally:
        for server in servers.values():
            server.stop()
    return runs


# ---- S10: N records x R Hz x M monitors (Diamond's load test), in bench/s10.py ------

def s10(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    from .s10 import single

    return single(cfg, impl, exe)


def s10_together(cfg: Config, exes: dict[str, str]) -> dict[str, list[Metrics] | Exception]:
    from .s10 import together

    return together(cfg, exes)


SCENARIOS: dict[str, Callable[[Config, str, str], list[Metrics]]] = {
    "S1": s1, "S1b": s1b, "S2": s2, "S3": s3, "S4": s4, "S5": s5, "S6": s6, "S7": s7, "S8": s8,
    "S9": s9, "S10": s10,
}
# Scenarios that measure every implementation in one interleaved run: noise on a shared
# machine comes and goes over seconds, and these ratios are the ones the goals are set on.
TOGETHER: dict[str, Callable[[Config, dict[str, str]], dict[str, list[Metrics] | Exception]]] = {
    "S2": s2_together, "S10": s10_together,
}


def median_metrics(runs: list[Metrics]) -> Metrics:
    """Per metric, the median over runs (None when not applicable)."""
    keys = [k for run in runs for k in run]
    out: Metrics = {}
    for key in dict.fromkeys(keys):
        values = [run[key] for run in runs if run.get(key) is not None]
        out[key] = statistics.median(v for v in values if v is not None) if values else None
    return out


