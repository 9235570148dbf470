"""PV Access monitor client of the benchmark's S8 (p4p), as an image viewer::

    python image_client.py PV SECONDS

Prints SUBSCRIBED once the first update arrived, then, after SECONDS, one
line ``RESULT {json}``: frames received, and for each the time from its
timeStamp (set when the server posted it) to its arrival, in seconds.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from typing import Any

from p4p.client.thread import Context


def main(pv: str, seconds: float) -> dict[str, Any]:
    arrived: queue.Queue[tuple[float, Any]] = queue.Queue()
    ctx = Context("pva", nt=False)
    sub = ctx.monitor(pv, lambda value: arrived.put((time.time(), value)))
    try:
        arrived.get(timeout=30)                 # the current frame
        print("SUBSCRIBED", flush=True)
        end = time.monotonic() + seconds
        latencies, ids = [], []
        while time.monotonic() < end:
            try:
                when, value = arrived.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            stamp = value.timeStamp
            latencies.append(when - (stamp.secondsPastEpoch + stamp.nanoseconds * 1e-9))
            ids.append(int(value.uniqueId))
        return {"frames": len(latencies), "latencies": latencies,
                "missed": (max(ids) - min(ids) + 1 - len(ids)) if ids else 0}
    finally:
        sub.close()
        ctx.close()


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1], float(sys.argv[2]))), flush=True)
