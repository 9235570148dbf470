"""Benchmark server for p4p's own PV Access server (SharedPV), the reference of S8::

    python p4p_server.py S8 '{"width": 1024, "height": 1024}'

The line protocol of softioc_server.py: READY once serving, then one JSON
command per stdin line answered with ``RESULT {json}``.  S8 posts NTNDArray
frames to one SharedPV (``image_loop``) and adds and removes SharedPVs on
the server's StaticProvider (``pv_make``, ``pv_remove``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from p4p.nt import NTNDArray, NTScalar
from p4p.server import Server, StaticProvider
from p4p.server.thread import SharedPV

if TYPE_CHECKING:
    from bench.servers.protocol import image_loop, serve, timed
else:
    from protocol import image_loop, serve, timed  # beside this script

scenario = sys.argv[1]
params: dict[str, Any] = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
if scenario != "S8":
    raise SystemExit(f"unknown scenario {scenario}")

nt = NTNDArray()
shape = (params["height"], params["width"])
image = SharedPV(nt=nt, initial=np.zeros(shape, np.uint16))
provider = StaticProvider("bench")
provider.add("S8:IMAGE", image)
server = Server(providers=[provider])       # EPICS_PVAS_* from the environment
print("READY", flush=True)


def s8_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    # a timestamp with each frame, as p4p's users post one
    return image_loop(cmd, shape, lambda frame: image.post(frame, timestamp=time.time()))


churned: list[tuple[str, SharedPV]] = []


def pv_make(cmd: dict[str, Any]) -> dict[str, Any]:
    """Add ``count`` scalar PVs S8:CHURN:i to the running server."""
    scalar = NTScalar("d")

    def work() -> None:
        for i in range(int(cmd["count"])):
            pv = SharedPV(nt=scalar, initial=float(i))
            provider.add(f"S8:CHURN:{i}", pv)
            churned.append((f"S8:CHURN:{i}", pv))

    return timed(work)


def pv_remove(cmd: dict[str, Any]) -> dict[str, Any]:
    """Remove them again (their clients see a disconnect)."""
    def work() -> None:
        while churned:
            name, pv = churned.pop()
            provider.remove(name)
            pv.close()

    return timed(work)


serve({"image_loop": s8_loop, "pv_make": pv_make, "pv_remove": pv_remove})
