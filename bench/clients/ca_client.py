"""Channel Access clients of the benchmark, on libca through pyepics's ctypes binding.

They call libca directly (no pyepics polling loop between operations), so
what they time is the server, not the client library::

    python ca_client.py put_callback PV[,PV...] COUNT  # S2: put-callback round trips
    python ca_client.py monitor_count PV SECONDS   # S5: monitor updates received
    python ca_client.py pv_monitor PV SECONDS      # S1: a pyepics PV's Python callback

``pv_monitor`` alone is a client as users write one: ``epics.PV(pv,
callback=...)``, each update unpacked and handed to a Python function in
libca's thread, so it measures a set-up, not the server alone.

Each prints one JSON line.  The environment (from the benchmark) keeps libca
on 127.0.0.1 and on the server's port.
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from epics import ca, dbr

if TYPE_CHECKING:
    from bench.clients.turns import put_rounds
else:
    from turns import put_rounds  # run as a script: its directory is on sys.path


def connect(pv: str) -> Any:
    ca.initialize_libca()
    chid = ca.create_channel(pv, connect=False, auto_cb=False)
    if not ca.connect_channel(chid, timeout=10.0):
        raise SystemExit(json.dumps({"error": f"{pv} did not connect"}))
    return chid


def put_callback(pvs: list[str], count: int) -> dict[str, Any]:
    """``count`` rounds of put-callbacks (ca_put_callback + flush, wait for the
    callback), one at a time, taking the PVs in turn (``turns``), so that every
    server sees the machine's load alike.  A PV that does not connect is left
    out and named in ``failed``."""
    ca.initialize_libca()
    created = {pv: ca.create_channel(pv, connect=False, auto_cb=False) for pv in pvs}
    chids = {pv: chid for pv, chid in created.items() if ca.connect_channel(chid, timeout=10.0)}
    libca = ca.libca
    done = threading.Event()
    current = [0]
    callbacks = []              # kept alive: a late callback may still come

    def finisher(token: int) -> Any:
        def finish() -> None:   # a late callback of an earlier put is not this put's
            if current[0] == token:
                done.set()
        obj = ctypes.py_object(finish)          # pyepics's put handler calls args.usr()
        callbacks.append(obj)
        return obj

    def put(pv: str, value: float) -> tuple[float, bool]:
        current[0] += 1
        usr = finisher(current[0])
        done.clear()
        data = (ctypes.c_double * 1)(value)
        t0 = time.perf_counter()
        libca.ca_array_put_callback(dbr.DOUBLE, 1, chids[pv], data, ca._CB_PUTWAIT, usr)
        libca.ca_flush_io()
        completed = done.wait(5.0)
        return time.perf_counter() - t0, completed

    return {**put_rounds(list(chids), count, put, budget=60 * len(pvs)),
            "failed": [pv for pv in pvs if pv not in chids]}


def monitor_count(pv: str, seconds: float) -> dict[str, Any]:
    """Count monitor updates (of any size) arriving during ``seconds``."""
    chid = connect(pv)
    arrivals: list[tuple[float, int]] = []

    def on_event(args: Any) -> None:
        arrivals.append((time.perf_counter(), int(args.count)))

    callback = dbr.make_callback(on_event, dbr.event_handler_args)
    evid = ctypes.c_void_p()
    native = ca.element_count(chid)
    mask = dbr.DBE_VALUE | dbr.DBE_ALARM
    ca.libca.ca_create_subscription(dbr.DOUBLE, 0, chid, mask, callback, None,
                                    ctypes.byref(evid))
    ca.libca.ca_flush_io()
    deadline = time.monotonic() + 10
    while not arrivals and time.monotonic() < deadline:     # the initial value
        time.sleep(0.01)
    del arrivals[:]
    print("SUBSCRIBED", flush=True)
    time.sleep(seconds)
    got = list(arrivals)
    full = [t for t, n in got if n == native]
    return {"updates": len(got), "full_updates": len(full), "elements": native,
            "seconds": seconds}


def pv_monitor(pv: str, seconds: float) -> dict[str, Any]:
    """Count the updates a pyepics ``PV`` callback gets during ``seconds``."""
    import epics

    calls = [0]

    def on_change(**kw: Any) -> None:
        calls[0] += 1

    chan = epics.PV(pv, callback=on_change, auto_monitor=True)
    if not chan.wait_for_connection(timeout=10.0):
        raise SystemExit(json.dumps({"error": f"{pv} did not connect"}))
    deadline = time.monotonic() + 10
    while not calls[0] and time.monotonic() < deadline:      # the initial value
        time.sleep(0.01)
    calls[0] = 0
    print("SUBSCRIBED", flush=True)
    time.sleep(seconds)
    return {"updates": calls[0], "seconds": seconds}


if __name__ == "__main__":
    mode, pv, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "put_callback":
        out = put_callback(pv.split(","), int(arg))
    elif mode == "monitor_count":
        out = monitor_count(pv, float(arg))
    elif mode == "pv_monitor":
        out = pv_monitor(pv, float(arg))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print("RESULT " + json.dumps(out), flush=True)
