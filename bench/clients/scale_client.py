"""S7's client: one process connecting to many PVs found by broadcast, as users do::

    python scale_client.py ca NAMES_FILE TIMEOUT    # libca through pyepics's ctypes binding
    python scale_client.py pva NAMES_FILE TIMEOUT   # p4p, a get of every PV (5000 at a time)

NAMES_FILE has one PV name a line; each PV named ``...:R<i>`` must read ``i``.
The clock starts just before the first channel is created; ``ca`` reports when
every channel is connected and when every PV has answered a get, ``pva`` when
every get has answered (and when half, 90 and 99 % had).  Prints one
``RESULT {json}`` line.  It runs with EPICS's default network settings, on a
host of the benchmark's namespace network.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time
from typing import Any


def expected(name: str) -> float:
    return float(name.rsplit(":R", 1)[1])


def check(names: list[str], values: list[float | None]) -> dict[str, Any]:
    """Missing and wrong values, with a few examples."""
    missing = [n for n, v in zip(names, values) if v is None]
    wrong = [n for n, v in zip(names, values) if v is not None and v != expected(n)]
    return {"pvs": len(names), "missing": len(missing), "wrong": len(wrong),
            "examples": (missing + wrong)[:5]}


def ca_connect(names: list[str], timeout: float) -> dict[str, Any]:
    """ca_create_channel for every name, ca_pend_io until all connect, then ca_array_get
    of every one (DBR_DOUBLE) and ca_pend_io until all answer."""
    from epics import ca, dbr

    ca.initialize_libca()
    libca = ca.libca
    chids = [ctypes.c_void_p() for _ in names]
    encoded = [n.encode() for n in names]
    deadline = time.monotonic() + timeout
    t0 = time.perf_counter()
    for name, chid in zip(encoded, chids):
        libca.ca_create_channel(name, None, None, 0, ctypes.byref(chid))
    status = libca.ca_pend_io(ctypes.c_double(max(0.1, deadline - time.monotonic())))
    connected = time.perf_counter() - t0
    up = [libca.ca_state(chid) == 2 for chid in chids]          # cs_conn
    buffers = (ctypes.c_double * len(names))()
    for i, chid in enumerate(chids):
        if up[i]:
            buffers[i] = float("nan")
            libca.ca_array_get(dbr.DOUBLE, 1, chid, ctypes.byref(buffers, 8 * i))
    get_status = libca.ca_pend_io(ctypes.c_double(max(0.1, deadline - time.monotonic())))
    answered = time.perf_counter() - t0
    values = [buffers[i] if up[i] and buffers[i] == buffers[i] else None
              for i in range(len(names))]
    out = {"connect_s": connected, "get_s": answered, "connected": sum(up),
           "complete": status == 1 and get_status == 1, **check(names, values)}  # ECA_NORMAL
    for chid in chids:
        libca.ca_clear_channel(chid)
    libca.ca_flush_io()
    return out


def pva_get(names: list[str], timeout: float, window: int = 5000) -> dict[str, Any]:
    """A p4p get of every name, at most ``window`` at a time (p4p's client slows down more
    than linearly with the gets outstanding: 100,000 at once took minutes); waits until
    every get has answered or ``timeout``."""
    import threading

    from p4p.client.raw import Context

    values: list[float | None] = [None] * len(names)
    arrivals: list[float] = []
    lock, done, slots = threading.Lock(), threading.Event(), threading.Semaphore(window)

    def handler(i: int) -> Any:
        def got(value: Any) -> None:
            with lock:
                try:
                    values[i] = float(value["value"])
                except (TypeError, KeyError, ValueError):  # an error or cancellation
                    return
                finally:
                    slots.release()
                arrivals.append(time.perf_counter())
                if len(arrivals) == len(names):
                    done.set()
        return got

    ctx = Context("pva", nt=False)
    deadline = time.monotonic() + timeout
    try:
        t0 = time.perf_counter()
        ops = []
        for i, name in enumerate(names):
            if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
            ops.append(ctx.get(name, handler(i)))
        done.wait(max(0.0, deadline - time.monotonic()))
        for op in ops:
            op.close()
    finally:
        ctx.close()
    with lock:
        out = check(names, values)
        times = [t - t0 for t in arrivals]
    return {"get_s": max(times, default=0.0), "complete": out["missing"] == 0,
            "quantiles_s": quantiles(times), **out}


def quantiles(times: list[float]) -> dict[str, float]:
    """When 50, 90 and 99 % of the PVs had answered."""
    times = sorted(times)
    return {str(q): times[min(len(times) - 1, len(times) * q // 100)]
            for q in (50, 90, 99)} if times else {}


if __name__ == "__main__":
    mode, names_file, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(names_file) as f:
        pv_names = [line.strip() for line in f if line.strip()]
    if mode == "ca":
        result = ca_connect(pv_names, limit)
    elif mode == "pva":
        result = pva_get(pv_names, limit)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print("RESULT " + json.dumps(result), flush=True)
