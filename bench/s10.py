"""S10: Diamond's published load test of pythonSoftIOC, N records x R Hz x M monitors.

Diamond measured pythonSoftIOC 4.1 with an asyncio IOC setting N records at
R Hz with M monitors on each record: 1,000 records at 10 Hz took 126 % of a
core, 100 records at 100 Hz 90-105 %, and 100 records at 100 Hz with 70
monitors each failed ("cbLow ring buffer full").  Here, for each point
N x R x M (``--s10-points``) and each implementation in turn:

- the server: ours and pythonSoftIOC run ``servers/load_server.py`` (the same
  code, each with its AsyncioDispatcher: an asyncio task sets all N ``aIn``
  records each tick, R ticks a second, to a counter); the C ``softIocPVA``
  serves N ``calc`` records scanned every 1/R s (a scan period added to its
  dbd where the stock menu has none), each counting while below a gate
  record, S10:GO, that the benchmark raises by the number of ticks;
- the client: ``clients/load_client.c``, built here at run time against
  epicscorelibs' libca (a Python client cannot count hundreds of thousands of
  updates a second), with M subscriptions to each record on one CA circuit;
  it counts every update, the gaps in each subscription's counter (lost) and
  the updates received more than 2 periods after they were due (late: value
  k is due k - 1 periods after the first; whether the server's loop fell
  behind, its processing was deferred or its sending queued), and ends once
  every subscription has seen the last value;
- measured: the server's CPU (% of one core, from /proc, while the load
  runs), updates received against expected (N x M x ticks), lost, late,
  time from due to received p50/p99/max (and from each update's own time
  stamp), whether the server's loop kept the rate (ticks behind), and
  the error lines the server printed (e.g. ``callbackRequest: cbLow ring
  buffer full``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from softioc.testing import run_tool

from . import proc
from .envs import BENCH

if TYPE_CHECKING:
    from .scenarios import Config, Metrics

LOAD_SERVER = BENCH / "servers" / "load_server.py"
LOAD_CLIENT = BENCH / "clients" / "load_client.c"
IMPLS = ("ours", "pythonsoftioc", "softioc-c")
# What a server prints when it cannot keep up or fails (EPICS's callback queues, CA
# server, Python).
ERRORS = re.compile(r"ring buffer full|callbackRequest|overflow|Traceback|Exception|"
                    r"[Ee]rror|discard", re.IGNORECASE)


def parse_points(text: str) -> list[tuple[int, int, int]]:
    """'100x100x1,1000x10x1' -> [(100, 100, 1), (1000, 10, 1)] (records, Hz, monitors)."""
    points = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        fields = part.lower().split("x")
        if len(fields) != 3 or not all(f.isdigit() and int(f) > 0 for f in fields):
            raise ValueError(f"S10 point {part!r}: want NxRxM (records x Hz x monitors), "
                             "each a positive integer")
        n, r, m = (int(f) for f in fields)
        if r > 1000:
            raise ValueError(f"S10 point {part!r}: at most 1000 Hz")
        points.append((n, r, m))
    if not points:
        raise ValueError("S10: no points")
    return points


def tag(point: tuple[int, int, int]) -> str:
    n, r, m = point
    return f"{n}x{r}x{m}"


# (metric suffix, label, better) of each point's rows in the table.
ROWS = [
    ("cpu_pct", "server CPU while loaded (% of one core)", "lower"),
    ("received_pct", "updates received (% of expected)", "higher"),
    ("lost", "updates lost (gaps in the counters)", "lower"),
    ("late", "updates late (received over 2 periods after due)", "lower"),
    ("due_p99_ms", "due to received, p99 (ms)", "lower"),
    ("ticks_behind", "ticks a whole period late or more (server's loop)", "lower"),
    ("errors", "error lines the server printed", "lower"),
]


def metric_rows(points_text: str) -> list[tuple[str, str, str, str]]:
    """The table's rows for these points, in run.py's METRICS format."""
    try:
        points = parse_points(points_text)
    except ValueError:
        return []
    rows = []
    for point in points:
        n, r, m = point
        for suffix, label, better in ROWS:
            rows.append(("S10", f"{tag(point)}_{suffix}",
                         f"S10 {n:,} records x {r} Hz x {m} monitors: {label}", better))
    return rows


# ---- the C client and the C IOC ---------------------------------------------------

def build_client(work: Path) -> Path:
    """Compile load_client.c against epicscorelibs' libca (once per run)."""
    exe = work / "load_client"
    if exe.exists():
        return exe
    from epicscorelibs import path as epics_path

    inc, lib = epics_path.include_path, epics_path.lib_path
    try:
        subprocess.run(["cc", "-O2", "-o", str(exe), str(LOAD_CLIENT),
                        f"-I{inc}", f"-I{inc}/os/Linux", f"-I{inc}/compiler/gcc",
                        f"-L{lib}", f"-Wl,-rpath,{lib}", "-lca", "-lCom"],
                       check=True, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        detail = getattr(e, "stderr", "") or e
        raise RuntimeError(f"cannot build load_client.c: {detail}") from None
    return exe


def scan_dbd(work: Path, exe: str, rate: int) -> tuple[Path | None, str]:
    """The softIocPVA dbd with a scan period of 1/rate s (the stock menu stops at .1 s)."""
    stock = {10: ".1 second", 5: ".2 second", 2: ".5 second", 1: "1 second"}
    if rate in stock:
        return None, stock[rate]
    dbd = Path(exe).parents[2] / "dbd" / f"{Path(exe).name}.dbd"
    marker = 'choice(menuScan_1_second, ".1 second")'
    text = dbd.read_text() if dbd.exists() else ""
    if marker not in text:
        raise RuntimeError(f"S10: no {dbd} with the stock scan menu to add a period to")
    period = f"{1.0 / rate:g} second"
    patched = work / f"s10-{rate}hz.dbd"
    patched.write_text(text.replace(
        marker, f'{marker}\n    choice(menuScan_s10, "{period}")', 1))
    return patched, period


def c_db(n: int, period: str) -> str:
    """N calc records counting each scan while below S10:GO, which starts at 0."""
    gate = 'record(ao, "S10:GO") { field(VAL, "0") field(PINI, "YES") }\n'
    return gate + "".join(
        f'record(calc, "S10:R{i}") {{ field(SCAN, "{period}") field(INPA, "S10:GO NPP") '
        f'field(CALC, "VAL<A?VAL+1:VAL") }}\n' for i in range(n))


# ---- one point, one implementation ---------------------------------------------------

def start_server(cfg: Config, impl: str, exe: str, n: int, rate: int) -> proc.Server:
    if impl == "softioc-c":
        dbd, period = scan_dbd(cfg.work, exe, rate)
        db = cfg.work / f"s10-{n}.db"
        db.write_text(c_db(n, period))
        server = proc.Server([exe] + (["-D", str(dbd)] if dbd else []) + ["-S", "-d", str(db)],
                             protocol=False)
    else:
        server = proc.Server([exe, str(LOAD_SERVER), json.dumps({"records": n})])
        try:
            server.ready(timeout=120)
        except Exception:
            server.stop()
            raise
    try:
        proc.wait_for_pv(server.env, f"S10:R{n - 1}", 60, server)
    except Exception:
        server.stop()
        raise
    return server


def error_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if ERRORS.search(line)]


def run_point(cfg: Config, impl: str, server: proc.Server, client_exe: Path,
              point: tuple[int, int, int], base: int) -> tuple[Metrics, int]:
    """One load of s10_seconds at this point, the records counting on from
    ``base`` (their value), the client counting throughout; the metrics, and
    the records' value at the end."""
    n, rate, m = point
    ticks = max(1, round(rate * cfg.s10_seconds))
    seconds = ticks / rate
    final = base + ticks
    limit = 3 * seconds + 5                   # the server's loop gives up then
    log_mark = len(server.log)
    client = subprocess.Popen(
        [str(client_exe), "S10:R", str(n), str(m), str(base), str(final), str(1.0 / rate),
         str(limit + 10)],
        env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert client.stdout is not None
        line = client.stdout.readline()
        if not line.startswith("SUBSCRIBED"):
            raise RuntimeError(f"S10 client: {line}{client.stdout.read()[-500:]}")
        if impl == "softioc-c":
            # the records count from their next scan on: the window starts as caput ends
            run_tool("caput", "-t", "S10:GO", str(final), env=server.env, timeout=30)
            c0, t0 = proc.cpu_seconds(server.pid), time.monotonic()
            time.sleep(seconds)
            loop: dict[str, Any] = {"ticks": ticks, "ticks_behind": None}
        else:
            c0, t0 = proc.cpu_seconds(server.pid), time.monotonic()
            loop = server.command(timeout=limit + 60, cmd="load", base=base, ticks=ticks,
                                  rate=rate, limit=limit)
        c1, t1 = proc.cpu_seconds(server.pid), time.monotonic()
        out, _ = client.communicate(timeout=limit + 60)
        t2 = time.monotonic()
        c2 = proc.cpu_seconds(server.pid)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    found = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if not found:
        raise RuntimeError(f"S10 client gave no result: {out[-500:]}")
    got: dict[str, Any] = json.loads(found[-1][7:])
    if "error" in got:
        raise RuntimeError(f"S10 client: {got['error']}")
    time.sleep(0.2)                             # the server's last words
    errors = error_lines(server.log[log_mark:])
    expected = n * m * ticks
    run: Metrics = {
        f"{tag(point)}_cpu_pct": 100 * (c1 - c0) / (t1 - t0),
        f"{tag(point)}_cpu_pct_until_received": 100 * (c2 - c0) / (t2 - t0),
        f"{tag(point)}_received": float(got["received"]),
        f"{tag(point)}_expected": float(expected),
        f"{tag(point)}_received_pct": 100.0 * got["received"] / expected,
        f"{tag(point)}_lost": float(got["lost"]),
        f"{tag(point)}_late": float(got["late"]),
        f"{tag(point)}_incomplete": float(got["incomplete_subscriptions"]),
        f"{tag(point)}_latency_p50_ms": got["latency_p50_ms"],
        f"{tag(point)}_latency_p99_ms": got["latency_p99_ms"],
        f"{tag(point)}_latency_max_ms": got["latency_max_ms"],
        f"{tag(point)}_due_p50_ms": got["due_p50_ms"],
        f"{tag(point)}_due_p99_ms": got["due_p99_ms"],
        f"{tag(point)}_due_max_ms": got["due_max_ms"],
        f"{tag(point)}_ticks_done": float(loop["ticks"]),
        f"{tag(point)}_ticks_behind": (None if loop["ticks_behind"] is None
                                       else float(loop["ticks_behind"])),
        f"{tag(point)}_load_s": t1 - t0,
        f"{tag(point)}_received_after_s": t2 - t0,
        f"{tag(point)}_errors": float(len(errors) + got["exceptions"] + got["bad_status"]),
    }
    if errors:
        print(f"[bench] S10 {impl} {tag(point)}: {len(errors)} error lines, e.g. "
              f"{errors[0]!r}", flush=True)
    return run, base + int(loop["ticks"])


def together(cfg: Config, exes: dict[str, str]) -> dict[str, list[Metrics] | Exception]:
    """Every point in turn; at each, the implementations one after another (so
    that the machine's load, which comes and goes, lands on them alike); each
    point's server started afresh, and its metrics merged into one run per repeat."""
    from .scenarios import NotApplicable

    points = parse_points(cfg.s10_points)
    out: dict[str, list[Metrics] | Exception] = {}
    runs: dict[str, list[Metrics]] = {}
    for impl in exes:
        if impl not in IMPLS:
            out[impl] = NotApplicable("S10 compares pythonIOC, pythonSoftIOC and the C "
                                      "softIocPVA")
        else:
            runs[impl] = [{} for _ in range(cfg.repeats)]
    if not runs:
        return out
    work = Path(tempfile.mkdtemp(prefix="s10-", dir=cfg.work))
    try:
        client_exe = build_client(work)
    except RuntimeError as e:
        return {**out, **dict.fromkeys(runs, e)}
    for point in points:
        for impl in list(runs):
            if impl in out:
                continue
            print(f"[bench] S10 {tag(point)} {impl}", flush=True)
            try:
                server = start_server(cfg, impl, exes[impl], point[0], point[1])
            except Exception as e:
                out[impl] = e
                continue
            try:
                base = 0
                for r in range(cfg.repeats):
                    run, base = run_point(cfg, impl, server, client_exe, point, base)
                    runs[impl][r].update(run)
            except Exception as e:
                out[impl] = e
            finally:
                server.stop()
    for impl in runs:
        out.setdefault(impl, runs[impl])
    return out


def single(cfg: Config, impl: str, exe: str) -> list[Metrics]:
    result = together(cfg, {impl: exe})[impl]
    if isinstance(result, Exception):
        raise result
    return result


if __name__ == "__main__":       # python -m bench.s10 POINTS: the table's rows
    for row in metric_rows(sys.argv[1] if len(sys.argv) > 1 else "100x100x1"):
        print(row)
