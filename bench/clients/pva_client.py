"""PV Access client of the benchmark (p4p): put-with-completion round trips::

    python pva_client.py put_wait COUNT < '[{"pv": PV, "conf": {EPICS_PVA_...}}, ...]'

S2 over PVA: each PV with the client settings of its server (on 127.0.0.1, its
own ports), given on stdin.  Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from p4p.client.thread import Context


def put_wait(targets: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """``count`` rounds of puts, each waiting for the server's completion, one
    at a time, taking the PVs in turn (forwards, then backwards)."""
    contexts = {t["pv"]: Context("pva", conf=t["conf"], useenv=False, nt=False)
                for t in targets}
    try:
        for pv, ctx in contexts.items():
            ctx.get(pv, timeout=10.0)               # connected
        times: dict[str, list[float]] = {pv: [] for pv in contexts}
        timeouts = dict.fromkeys(contexts, 0)
        base = time.time() % 1000                   # values always change
        deadline = time.monotonic() + 60 * len(contexts)
        order = list(contexts)
        for i in range(count):
            for pv in order:
                t0 = time.perf_counter()
                try:
                    contexts[pv].put(pv, base + i + 1, wait=True, timeout=5.0)
                except TimeoutError:
                    timeouts[pv] += 1
                times[pv].append(time.perf_counter() - t0)
            order.reverse()
            if time.monotonic() > deadline:
                break
        return {"count": i + 1, "timeouts": timeouts, "times": times}
    finally:
        for ctx in contexts.values():
            ctx.close()


if __name__ == "__main__":
    mode, arg = sys.argv[1], sys.argv[2]
    if mode != "put_wait":
        raise SystemExit(f"unknown mode {mode}")
    print("RESULT " + json.dumps(put_wait(json.load(sys.stdin), int(arg))), flush=True)
