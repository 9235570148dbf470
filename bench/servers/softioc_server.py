"""Benchmark server for pythonIOC (ours) and pythonSoftIOC: the same API.

Run by the benchmark with the implementation's interpreter::

    python softioc_server.py SCENARIO '{"records": 1000, ...}'

Prints READY once the IOC serves, then answers one JSON command per stdin
line with ``RESULT {json}``; ends at end of stdin.  S7's IOCs, started on the
hosts of a namespace network with no stdin, serve until SIGTERM instead.  Keywords only
(``initial_value=``): pythonSoftIOC's second positional argument is LOPR.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from softioc import builder, softioc

if TYPE_CHECKING:
    from bench.servers.protocol import image_loop, serve, set_loop, timed, wave_loop
else:  # beside this script
    from protocol import image_loop, serve, set_loop, timed, wave_loop

t_imported = time.perf_counter()
scenario = sys.argv[1]
params: dict[str, Any] = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
records: dict[str, Any] = {}
updates = [0]


def on_update(value: Any) -> None:
    updates[0] += 1


if scenario == "S1":
    records["S1"] = builder.aIn("BENCH:S1", initial_value=0.0)
elif scenario == "S1b":
    for i in range(params["records"]):
        records[f"B{i}"] = builder.aIn(f"BURST:{i}", initial_value=0.0)
elif scenario == "S2":
    prefix = params.get("prefix", "BENCH:")   # the implementations run side by side
    builder.aOut(f"{prefix}AO", initial_value=0.0, on_update=on_update)
    builder.aOut(f"{prefix}AOB", initial_value=0.0, on_update=on_update, blocking=True)
elif scenario == "S3":
    # catime writes it: inputs refuse client puts by default (DISP=1)
    builder.aIn("BENCH:AI", initial_value=0.0, DISP=0)
elif scenario == "S4":
    for i in range(params["records"]):
        builder.aIn(f"S4:R{i}", initial_value=float(i))
elif scenario == "S7":
    for i in range(params["records"]):
        builder.aIn(f"{params['prefix']}R{i}", initial_value=float(i))
elif scenario == "S8":
    import numpy as np

    from softioc import pva

    records["image"] = pva.Image("S8:IMAGE", dtype="uint16",
                                 shape=(params["height"], params["width"]))
elif scenario == "S9":
    for t in range(params["threads"]):
        records[f"T{t}"] = builder.aIn(f"S9:R{t}", initial_value=0.0)
elif scenario == "S5":
    import numpy as np  # only where a scenario uses arrays, as a user would

    records["wave"] = builder.WaveformIn("S5:WAVE", np.zeros(params["length"]))
else:
    raise SystemExit(f"unknown scenario {scenario}")

t_built = time.perf_counter()
builder.LoadDatabase()
t_loaded = time.perf_counter()
# the defaults: CA and PVA served (both libraries); each library's
# AsyncioDispatcher, except ours in S4 and S7 (records only: its default)
if params.get("dispatcher") == "default":
    softioc.iocInit()
else:
    from softioc.asyncio_dispatcher import AsyncioDispatcher

    softioc.iocInit(AsyncioDispatcher())
if scenario == "S4":
    print("PHASES " + json.dumps({"build_s": t_built - t_imported, "load_s": t_loaded - t_built,
                                  "init_s": time.perf_counter() - t_loaded}), flush=True)
if params.get("busy"):                 # S2 --s2-busy: Python never waits, as in heavy work
    def spin() -> None:
        n = 0
        while True:
            n += 1

    threading.Thread(target=spin, daemon=True).start()
print("READY", flush=True)
if scenario == "S7":
    while True:                        # serve until SIGTERM (Python's default: exit)
        time.sleep(3600)


def s1_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    """S1: set one record as fast as possible, bounded in count and time."""
    return set_loop(cmd, records["S1"].set)


def burst(cmd: dict[str, Any]) -> dict[str, Any]:
    """S1b: set every BURST record once, split between ``threads`` threads."""
    recs = [records[f"B{i}"] for i in range(params["records"])]
    base, threads = float(cmd["base"]), int(cmd["threads"])

    def part(t: int) -> None:
        for i in range(t, len(recs), threads):
            recs[i].set(base + i)

    def work() -> None:
        if threads == 1:
            part(0)
            return
        workers = [threading.Thread(target=part, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    return timed(work)


def thread_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    """S9: each of ``threads`` threads sets a record of its own as fast as it
    can for ``seconds`` (time checked every 500 sets); the sets of all, and
    whether the GIL is on."""
    recs = [records[f"T{t}"] for t in range(params["threads"])]
    base = float(cmd["base"])
    counts = [0] * len(recs)
    start = threading.Barrier(len(recs) + 1)

    def part(t: int) -> None:
        rec, n = recs[t], 0
        start.wait()
        deadline = time.perf_counter() + cmd["seconds"]
        while time.perf_counter() < deadline:
            for _ in range(500):
                n += 1
                rec.set(base + n)
        counts[t] = n

    workers = [threading.Thread(target=part, args=(t,)) for t in range(len(recs))]
    for w in workers:
        w.start()

    def work() -> dict[str, Any]:
        start.wait()
        for w in workers:
            w.join()
        return {"sets": sum(counts)}

    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return {**timed(work), "gil": gil}


def s5_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    """S5: set the big waveform as fast as possible for ``seconds``."""
    return wave_loop(cmd, params["length"], records["wave"].set)


def c_set_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    """S1's limit (ours only): set_loop's work done by a C loop (setloop.c)."""
    import ctypes
    import subprocess
    import tempfile

    from epicscorelibs import path as epics_path

    lib = os.path.join(tempfile.mkdtemp(prefix="bench-setloop-"), "setloop.so")
    os_class = "Linux"           # the only platform the benchmark runs on
    try:
        subprocess.run(
            ["cc", "-O2", "-shared", "-fPIC", "-o", lib,
             os.path.join(os.path.dirname(os.path.abspath(__file__)), "setloop.c"),
             f"-I{epics_path.include_path}", f"-I{epics_path.include_path}/os/{os_class}",
             f"-I{epics_path.include_path}/compiler/gcc",
             f"-L{epics_path.lib_path}", "-ldbCore", "-lCom"], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        return {"unavailable": f"cannot build setloop.c: {e}"}
    setloop = ctypes.CDLL(lib).setloop
    setloop.restype = ctypes.c_long
    setloop.argtypes = [ctypes.c_char_p, ctypes.c_double, ctypes.c_long, ctypes.c_double]
    base = float(cmd["base"])

    def work() -> dict[str, Any]:
        n = setloop(b"BENCH:S1", base, int(cmd["max_sets"]), float(cmd["seconds"]))
        if n < 0:
            raise RuntimeError("setloop: no such DBF_DOUBLE record")
        return {"sets": n, "last": base + n}

    result = timed(work)         # the loop releases the GIL: ctypes calls do
    result["t_end"] = time.time()
    return result


def s8_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    """S8: post frames to the NTNDArray PV as fast as possible for ``seconds``."""
    return image_loop(cmd, records["image"].shape, records["image"].post)


def pv_make(cmd: dict[str, Any]) -> dict[str, Any]:
    """S8: make ``count`` PVA-only PVs S8:CHURN:i while the IOC runs."""
    from softioc import pva

    def work() -> None:
        records["churn"] = [pva.PV(f"S8:CHURN:{i}", float(i)) for i in range(cmd["count"])]

    return timed(work)


def pv_remove(cmd: dict[str, Any]) -> dict[str, Any]:
    """S8: close them again."""
    def work() -> None:
        for pv in records.pop("churn"):
            pv.close()

    return timed(work)


COMMANDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "image_loop": s8_loop, "pv_make": pv_make, "pv_remove": pv_remove,
    "set_loop": s1_loop, "c_set_loop": c_set_loop, "burst": burst, "wave_loop": s5_loop,
    "thread_loop": thread_loop,
    "updates": lambda cmd: {"updates": updates[0]}}

serve(COMMANDS)
