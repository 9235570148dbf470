"""Run the benchmark: ``python -m bench [--quick] [--only S1,S2] [--impl ours,pcaspy]``.

Writes a Markdown table (bench/results.md) and the raw numbers
(bench/results.json), and prints the table.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from . import envs, s10
from .scenarios import (
    S7_MAX_HOSTS,
    S9_PYTHON_ENV,
    SCENARIOS,
    TOGETHER,
    Config,
    NotApplicable,
    median_metrics,
    s7_layout,
)

# (scenario, metric, label, better): better is "higher", "lower" or "" (context only).
METRICS: list[tuple[str, str, str, str]] = [
    ("S1", "sets_per_s", "S1 set() rate, one camonitor attached (sets/s)", "higher"),
    ("S1", "c_limit_sets_per_s", "S1 limit: the same sets from a C loop in the IOC (sets/s)", ""),
    ("S1", "pct_of_c_limit", "S1 set() rate as % of that limit", "higher"),
    ("S1", "cpu_us_per_set", "S1 server CPU per set, incl. deferred processing (µs)", "lower"),
    ("S1", "monitor_updates_pct", "S1 updates camonitor received (% of sets)", ""),
    ("S1", "final_seen_ms", "S1 last value reached camonitor, after the loop ended (ms)", ""),
    ("S1", "final_lost", "S1 runs whose last value never reached camonitor", "lower"),
    ("S1", "sets_per_s_nomon", "S1 set() rate, no client attached (sets/s)", "higher"),
    ("S1", "cpu_us_per_set_nomon", "S1 server CPU per set, no client attached (µs)", "lower"),
    ("S1", "sets_per_s_pyepics", "S1 set() rate, one pyepics PV callback attached (sets/s)",
     "higher"),
    ("S1", "cpu_us_per_set_pyepics", "S1 server CPU per set, pyepics PV attached (µs)", "lower"),
    ("S1", "pyepics_updates_pct", "S1 updates the pyepics callback received (% of sets)", ""),
    ("S1", "sets_per_s_1core", "S1 set() rate, one camonitor, the server on one CPU (sets/s)",
     "higher"),
    ("S1", "cpu_us_per_set_1core", "S1 server CPU per set, the server on one CPU (µs)", "lower"),
    ("S1", "monitor_updates_pct_1core", "S1 updates camonitor received, server on one CPU (%)",
     ""),
    ("S1b", "stale_1thread", "S1b stale records of 1000 after a burst, 1 thread", "lower"),
    ("S1b", "stale_4threads", "S1b stale records of 1000 after a burst, 4 threads", "lower"),
    ("S1b", "burst_ms_1thread", "S1b time to set 1000 records, 1 thread (ms)", "lower"),
    ("S1b", "burst_ms_4threads", "S1b time to set 1000 records, 4 threads (ms)", "lower"),
    ("S2", "p50_us", "S2 put-callback round trip p50, on_update (µs)", "lower"),
    ("S2", "p99_us", "S2 put-callback round trip p99, on_update (µs)", "lower"),
    ("S2", "blocking_p50_us", "S2 put-callback p50, blocking on_update (µs)", "lower"),
    ("S2", "p999_us", "S2 put-callback round trip p99.9, on_update (µs)", "lower"),
    ("S2", "max_us", "S2 put-callback round trip max, on_update (µs)", "lower"),
    ("S2", "blocking_p99_us", "S2 put-callback p99, blocking on_update (µs)", "lower"),
    ("S2", "blocking_p999_us", "S2 put-callback p99.9, blocking on_update (µs)", "lower"),
    ("S2", "pva_p50_us", "S2 over PVA: put with completion p50, on_update (µs)", "lower"),
    ("S2", "pva_p99_us", "S2 over PVA: put with completion p99, on_update (µs)", "lower"),
    ("S2", "pva_blocking_p50_us", "S2 over PVA: p50, blocking on_update (µs)", "lower"),
    ("S2", "pva_blocking_p99_us", "S2 over PVA: p99, blocking on_update (µs)", "lower"),
    ("S3", "async_put_kops", "S3 catime DBR_DOUBLE async put (k ops/s)", "higher"),
    ("S3", "async_get_kops", "S3 catime DBR_DOUBLE async get (k ops/s)", "higher"),
    ("S3", "sync_get_us", "S3 catime DBR_DOUBLE synchronous get (µs per op)", "lower"),
    ("S3", "get_latency_us", "S3 catime get latency, mean (µs)", "lower"),
    ("S4", "start_s", "S4 start until all {s4} records answer caget (s)", "lower"),
    ("S4", "build_s", "S4 of which building the records in Python (s)", "lower"),
    ("S4", "load_s", "S4 of which LoadDatabase (s)", "lower"),
    ("S4", "init_s", "S4 of which iocInit (s)", "lower"),
    ("S4", "rss_mb", "S4 RSS with {s4} records (MB)", "lower"),
    ("S4", "rss_mb_root", "S4 RSS started as root, mlockall() where it calls it (MB)", ""),
    ("S4", "locked_mb_root", "S4 memory locked then (VmLck, MB)", ""),
    ("S5", "updates_per_s", "S5 1M-double waveform updates/s a client received", "higher"),
    ("S5", "sets_per_s", "S5 waveform sets/s by the server", "higher"),
    ("S5", "cpu_ms_per_set", "S5 server CPU per waveform set (ms)", "lower"),
    ("S5", "sets_per_s_fresh", "S5 sets/s, a new array made for each set (client attached)",
     "higher"),
    ("S5", "updates_per_s_fresh", "S5 updates/s the client received, a new array per set",
     "higher"),
    ("S5", "cpu_ms_per_set_fresh", "S5 server CPU per set, a new array per set (ms)", "lower"),
    ("S5", "sets_per_s_nomon", "S5 sets/s, no client attached", "higher"),
    ("S5", "sets_per_s_fresh_nomon", "S5 sets/s, a new array per set, no client attached",
     "higher"),
    ("S6", "p50_ms", "S6 upstream change to AVERAGE seen, p50 (ms)", "lower"),
    ("S6", "p99_ms", "S6 upstream change to AVERAGE seen, p99 (ms)", "lower"),
    ("S6", "p999_ms", "S6 upstream change to AVERAGE seen, p99.9 (ms)", "lower"),
    ("S6", "max_ms", "S6 upstream change to AVERAGE seen, max (ms)", "lower"),
    ("S6", "updates_per_s", "S6 AVERAGE updates/s a client received", "higher"),
    ("S6", "cpu_pct", "S6 averaging IOC CPU (% of one core)", "lower"),
    ("S8", "posted_per_s", "S8 {s8} uint16 image frames posted/s", "higher"),
    ("S8", "received_per_s", "S8 frames/s a p4p monitor received", "higher"),
    ("S8", "cpu_ms_per_frame", "S8 server CPU per frame posted (ms)", "lower"),
    ("S8", "latency_p50_ms", "S8 post to receipt, p50 (ms)", "lower"),
    ("S8", "latency_p99_ms", "S8 post to receipt, p99 (ms)", "lower"),
    ("S8", "pvs_made_per_s", "S8 PVs made on the running server (per s)", "higher"),
    ("S8", "new_pvs_read_ms", "S8 pvget of the first and last new PV (ms)", "lower"),
    ("S8", "pvs_removed_per_s", "S8 PVs removed (per s)", "higher"),
    ("S9", "sets_per_s_gil", "S9 set() from {s9} threads, 3.14t with the GIL on (sets/s)", ""),
    ("S9", "sets_per_s_nogil", "S9 set() from {s9} threads, 3.14t with the GIL off (sets/s)",
     "higher"),
    ("S9", "nogil_speedup", "S9 sets/s with the GIL off ÷ on", "higher"),
    ("S9", "cpu_us_per_set_gil", "S9 server CPU per set, GIL on (µs)", ""),
    ("S9", "cpu_us_per_set_nogil", "S9 server CPU per set, GIL off (µs)", "lower"),
    ("S9", "nogil_cpu_ratio", "S9 CPU per set with the GIL off ÷ on", "lower"),
    ("S7", "start_s", "S7 {s7}: start until every IOC serves (s)", "lower"),
    ("S7", "ca_connect_s", "S7 one client, CA broadcast search: every PV connected (s)", "lower"),
    ("S7", "ca_get_s", "S7 one client over CA: every PV connected and read (s)", "lower"),
    ("S7", "pva_get_s", "S7 one client over PVA (p4p): every PV read (s)", "lower"),
    ("S7", "pva_99pct_s", "S7 one client over PVA: 99 % of the PVs read (s)", "lower"),
    ("S7", "client_cpu_ca_s", "S7 the client's CPU, CA (s)", ""),
    ("S7", "client_cpu_pva_s", "S7 the client's CPU, PVA (s)", ""),
    ("S7", "missing", "S7 PVs not answered within the clients' time limits (CA + PVA)", "lower"),
    ("S7", "udp_drops_ca", "S7 UDP datagrams dropped at the client's host, CA (buffer full)", ""),
    ("S7", "udp_drops_pva", "S7 UDP datagrams dropped at the client's host, PVA", ""),
    ("S7", "cpu_start_s", "S7 IOCs' CPU to start, summed (s)", "lower"),
    ("S7", "cpu_ca_s", "S7 IOCs' CPU while the CA client connected and read, summed (s)", "lower"),
    ("S7", "cpu_pva_s", "S7 IOCs' CPU while the PVA client read, summed (s)", "lower"),
    ("S7", "rss_start_mb", "S7 IOCs' RSS once serving, before any client, summed (MB)", "lower"),
    ("S7", "rss_mb", "S7 IOCs' RSS after both clients, summed (MB)", "lower"),
]

BENCH = envs.BENCH


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None or peer == 0 or (ours == 0 and peer == 0):
        return ""
    r = ours / peer
    return f" [{r:.0f}]" if r >= 10 else f" [{r:.2g}]" if r >= 0.01 else f" [{r:.1e}]"


def table(results: dict[str, Any], impls: list[str], cfg: Config) -> str:
    """Markdown: one row per metric, one column per implementation."""
    titles = [envs.IMPLS[k].title for k in impls]
    lines = ["| metric | better | " + " | ".join(titles) + " |",
             "| --- | --- | " + " | ".join("---:" for _ in impls) + " |"]
    for scenario, metric, label, better in [*METRICS, *s10.metric_rows(cfg.s10_points)]:
        if scenario not in results:
            continue
        cells = []
        ours_value = _value(results, scenario, "ours", metric)
        for impl in impls:
            entry = results[scenario].get(impl, {})
            if "error" in entry:
                cells.append("error")
                continue
            value = _value(results, scenario, impl, metric)
            cell = fmt(value)
            if impl != "ours" and better:
                cell += ratio(ours_value, value)
            cells.append(cell)
        arrow = {"higher": "↑", "lower": "↓"}.get(better, "")
        label = label.format(s4=f"{cfg.s4_records:,}", s7=s7_layout(cfg),
                             s8=f"{cfg.s8_size}x{cfg.s8_size}", s9=cfg.s9_threads)
        lines.append(f"| {label} | {arrow} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _value(results: dict[str, Any], scenario: str, impl: str, metric: str) -> float | None:
    value = results.get(scenario, {}).get(impl, {}).get("median", {}).get(metric)
    return float(value) if value is not None else None


def revision() -> str:
    """The commit measured (``-dirty``: with uncommitted changes, e.g. others' work in src/)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=BENCH,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    python = sys.version.split()[0]
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {python}"


def notes(results: dict[str, Any]) -> list[str]:
    out = []
    for scenario, by_impl in results.items():
        for impl, entry in by_impl.items():
            if "error" in entry:
                out.append(f"- {scenario} {impl}: error: {entry['error']}")
            elif "na" in entry:
                out.append(f"- {scenario} {impl}: n/a ({entry['na']})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="fewer iterations and records (under 2 minutes)")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help="scenarios, e.g. S1,S2 (default: all)")
    parser.add_argument("--impl", default=",".join(envs.ALL),
                        help=f"implementations (default: {','.join(envs.ALL)})")
    parser.add_argument("--repeats", type=int, help="runs per measurement (median taken)")
    parser.add_argument("--s2-busy", action="store_true",
                        help="S2 with a Python thread computing without pause in the server "
                        "(ours and pythonSoftIOC only)")
    parser.add_argument("--s4-records", type=int,
                        help="S4: records (default 100000, 10000 quick)")
    parser.add_argument("--s7-iocs", type=int, help="S7: number of IOCs (default 10, 5 quick)")
    parser.add_argument("--s7-records", type=int,
                        help="S7: records per IOC (default 2000, 1000 quick)")
    parser.add_argument("--s7-hosts", type=int, help="S7: host namespaces the IOCs are "
                        f"spread over (default 5, at most {S7_MAX_HOSTS})")
    parser.add_argument("--s9-python", default=os.environ.get(S9_PYTHON_ENV),
                        help="S9: a free-threaded Python (3.14t) with this repository "
                        f"installed (default: ${S9_PYTHON_ENV}; without it S9 is n/a)")
    parser.add_argument("--s10-points", help="S10: points records x Hz x monitors per "
                        "record (default 100x100x1,100x100x10,100x100x50,1000x10x1,1000x100x1;"
                        " 100x10x1,100x100x2 quick)")
    parser.add_argument("--s10-seconds", type=float,
                        help="S10: seconds of load per point (default 5, 1 quick)")
    parser.add_argument("--json", type=Path, default=BENCH / "results.json")
    parser.add_argument("--markdown", type=Path, default=BENCH / "results.md")
    args = parser.parse_args(argv)

    scenarios = [s.strip() for s in args.only.split(",") if s.strip()]
    impls = [i.strip() for i in args.impl.split(",") if i.strip()]
    for name in scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name} (have {', '.join(SCENARIOS)})")
    for name in impls:
        if name not in envs.IMPLS:
            parser.error(f"unknown implementation {name} (have {', '.join(envs.IMPLS)})")
    for name, top in (("s4_records", None), ("s7_iocs", None), ("s7_records", None),
                      ("s7_hosts", S7_MAX_HOSTS)):
        value = getattr(args, name)
        if value is not None and (value < 1 or (top is not None and value > top)):
            parser.error(f"--{name.replace('_', '-')} must be at least 1"
                         + (f" and at most {top}" if top else "") + f", not {value}")
    if args.s10_points is not None:
        try:
            s10.parse_points(args.s10_points)
        except ValueError as e:
            parser.error(str(e))
    if args.s10_seconds is not None and not 0 < args.s10_seconds <= 60:
        parser.error(f"--s10-seconds must be above 0 and at most 60, not {args.s10_seconds}")

    started = time.monotonic()
    measured = revision()           # at the start: others may commit while it runs
    log: list[str] = []
    exes: dict[str, str] = {}
    available: dict[str, str] = {}
    for impl in impls:
        exe, desc = envs.ensure(impl, log)
        available[impl] = desc
        if exe:
            exes[impl] = exe
        print(f"[bench] {impl}: {desc}", flush=True)
    client = None
    if {"S1", "S2", "S5"} & set(scenarios):        # S1: its pyepics set-up
        client, desc = envs.client_python(log)
        print(f"[bench] clients: {desc}", flush=True)
    setup_s = time.monotonic() - started

    # Scratch files (.db files, camonitor logs) go to the system temp directory, not the
    # repository.
    work = Path(tempfile.mkdtemp(prefix="pythonioc-bench-"))
    cfg = Config.make(args.quick, work, client)
    if args.repeats:
        cfg.repeats = args.repeats
    cfg.s2_busy = args.s2_busy
    cfg.s9_python = args.s9_python
    for name in ("s4_records", "s7_iocs", "s7_records", "s7_hosts", "s10_points",
                 "s10_seconds"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    results: dict[str, Any] = {}
    try:
        for scenario in scenarios:
            results[scenario] = {}
            together = None
            if scenario in TOGETHER:
                t0 = time.monotonic()
                runnable = {impl: exes[impl] for impl in impls if impl in exes}
                try:
                    together = TOGETHER[scenario](cfg, runnable) if runnable else {}
                except Exception as e:    # every implementation gets it (printed below)
                    together = dict.fromkeys(runnable, e)
                together_s = time.monotonic() - t0
            for impl in impls:
                entry: dict[str, Any] = {}
                results[scenario][impl] = entry
                if impl not in exes:
                    entry["error"] = available[impl]
                    continue
                if envs.IMPLS[impl].scenarios and scenario not in envs.IMPLS[impl].scenarios:
                    entry["na"] = f"{envs.IMPLS[impl].title} is measured in " \
                        f"{', '.join(envs.IMPLS[impl].scenarios)} only"
                    continue
                t0 = time.monotonic()
                try:
                    if together is None:
                        runs = SCENARIOS[scenario](cfg, impl, exes[impl])
                    else:
                        got = together[impl]
                        if isinstance(got, Exception):
                            raise got
                        runs = got
                    entry["runs"] = runs
                    entry["median"] = median_metrics(runs)
                except NotApplicable as e:
                    entry["na"] = str(e)
                except Exception as e:
                    entry["error"] = f"{type(e).__name__}: {e}"
                    traceback.print_exception(type(e), e, e.__traceback__)
                entry["seconds"] = round(time.monotonic() - t0 if together is None
                                         else together_s, 1)
                shown = {k: fmt(v) for k, v in entry.get("median", {}).items()}
                status = shown or entry.get("na") or entry.get("error")
                print(f"[bench] {scenario} {impl} ({entry['seconds']} s): {status}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    total = time.monotonic() - started
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = "--quick" if args.quick else "full"
    md = "\n".join([
        f"# Benchmark results ({mode}, {date})",
        "",
        f"Machine: {machine()}. Shared and noisy: compare the ratios, not the absolute numbers.",
        f"Measured: this repository at {measured}.",
        f"Each number is the median of {cfg.repeats} run(s); [r] = ours ÷ that peer "
        "(↑: higher is better, ↓: lower is better).",
        f"Run time: {total:.0f} s ({setup_s:.0f} s of it preparing virtualenvs).",
        "",
        "Implementations: " + "; ".join(f"{envs.IMPLS[k].title}: {v}"
                                        for k, v in available.items()) + ".",
        "Configuration: every server with its defaults, as users run it: pythonIOC serves "
        "CA and PVA with strict puts on and its AsyncioDispatcher (whose thread takes EPICS "
        "priority 50 where real-time scheduling is allowed); pythonSoftIOC serves CA "
        "and PVA with its AsyncioDispatcher; the C reference is softIocPVA (CA and PVA); "
        "pcaspy and caproto serve CA only. S4 starts every server, and S7 its IOCs, "
        "without real-time or memory-locking rights (setpriv, prlimit); S7 runs its IOCs "
        "(ours and softIocPVA) on network-namespace hosts with EPICS's default network "
        "settings." + (" S2 with --s2-busy: a Python thread in the server computing "
                       "without pause." if cfg.s2_busy else ""),
        "",
        table(results, impls, cfg),
        "",
        *notes(results),
        "",
    ])
    print()
    print(md)
    args.markdown.write_text(md)
    args.json.write_text(json.dumps({
        "date": date, "mode": mode, "machine": machine(), "revision": measured,
        "seconds": round(total, 1),
        "setup_seconds": round(setup_s, 1), "repeats": cfg.repeats,
        "config": {k: v for k, v in vars(cfg).items() if k not in ("work",)},
        "implementations": available, "log": log, "results": results,
    }, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
