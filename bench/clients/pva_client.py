"""PV Access client of the benchmark (p4p): put-with-completion round trips::

    python pva_client.py put_wait PV COUNT      # S2 over PVA

Prints one JSON line.  The environment (from the benchmark) keeps p4p on
127.0.0.1 and on the server's ports.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from p4p.client.thread import Context


def put_wait(pv: str, count: int) -> dict[str, Any]:
    """``count`` puts, each waiting for the server's completion, one at a time."""
    conf = {k: v for k, v in os.environ.items() if k.startswith("EPICS_PVA")}
    ctx = Context("pva", conf=conf, useenv=False, nt=False)
    try:
        ctx.get(pv, timeout=10.0)                   # connected
        times: list[float] = []
        timeouts = 0
        base = time.time() % 1000                   # values always change
        deadline = time.monotonic() + 60
        for i in range(count):
            t0 = time.perf_counter()
            try:
                ctx.put(pv, base + i + 1, wait=True, timeout=5.0)
            except TimeoutError:
                timeouts += 1
            times.append(time.perf_counter() - t0)
            if time.monotonic() > deadline:
                break
        return {"count": len(times), "timeouts": timeouts, "times": times}
    finally:
        ctx.close()


if __name__ == "__main__":
    mode, pv, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode != "put_wait":
        raise SystemExit(f"unknown mode {mode}")
    print("RESULT " + json.dumps(put_wait(pv, int(arg))), flush=True)
