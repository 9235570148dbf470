"""PV Access client of the benchmark (p4p): put-with-completion round trips::

    python pva_client.py put_wait COUNT < '[{"pv": PV, "conf": {EPICS_PVA_...}}, ...]'

S2 over PVA: each PV with the client settings of its server (on 127.0.0.1, its
own ports), given on stdin.  Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from p4p.client.thread import Context

if TYPE_CHECKING:
    from bench.clients.turns import put_rounds
else:
    from turns import put_rounds  # run as a script: its directory is on sys.path


def put_wait(targets: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """``count`` rounds of puts, each waiting for the server's completion, one
    at a time, taking the PVs in turn (``turns``).  A PV that does not connect
    is left out and named in ``failed``."""
    contexts = {t["pv"]: Context("pva", conf=t["conf"], useenv=False, nt=False)
                for t in targets}
    try:
        connected = {}
        for pv, ctx in contexts.items():
            try:
                ctx.get(pv, timeout=10.0)
                connected[pv] = ctx
            except Exception:
                pass

        def put(pv: str, value: float) -> tuple[float, bool]:
            t0 = time.perf_counter()
            try:
                connected[pv].put(pv, value, wait=True, timeout=5.0)
            except TimeoutError:
                return time.perf_counter() - t0, False
            return time.perf_counter() - t0, True

        return {**put_rounds(list(connected), count, put, budget=60 * len(contexts)),
                "failed": [pv for pv in contexts if pv not in connected]}
    finally:
        for ctx in contexts.values():
            ctx.close()


if __name__ == "__main__":
    mode, arg = sys.argv[1], sys.argv[2]
    if mode != "put_wait":
        raise SystemExit(f"unknown mode {mode}")
    print("RESULT " + json.dumps(put_wait(json.load(sys.stdin), int(arg))), flush=True)
