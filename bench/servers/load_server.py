"""S10's server for pythonIOC (ours) and pythonSoftIOC: the same code, each
with its AsyncioDispatcher, as in Diamond's load test of pythonSoftIOC.

Run by the benchmark with the implementation's interpreter::

    python load_server.py '{"records": 100}'

Builds ``records`` ``aIn`` records S10:R0 ... (reading 0), serves CA and PVA
(both libraries' default), prints READY, then answers the line protocol of
protocol.py.  Its one command, ``load``, runs an asyncio task on the
dispatcher's event loop that sets every record once per tick, ``rate`` ticks
per second (all N per tick, as the published test's IOC did), to base + 1,
base + 2 ... base + ticks: each tick due at start + k / rate, so a late tick
runs at once (yielding to the loop) and the rate is kept if the server can.
Bounded in ticks and in time (``limit`` seconds).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from softioc import builder, softioc
from softioc.asyncio_dispatcher import AsyncioDispatcher

if TYPE_CHECKING:
    from bench.servers.protocol import serve
else:  # beside this script
    from protocol import serve

params: dict[str, Any] = json.loads(sys.argv[1])
records = [builder.aIn(f"S10:R{i}", initial_value=0.0) for i in range(params["records"])]
builder.LoadDatabase()
dispatcher = AsyncioDispatcher()
softioc.iocInit(dispatcher)            # the defaults: CA and PVA served (both libraries)
print("READY", flush=True)


async def updates(base: float, ticks: int, rate: float, limit: float) -> dict[str, Any]:
    """Set every record to base + k at tick k = 1 ... ticks, due at k - 1 periods."""
    loop = asyncio.get_running_loop()
    period = 1.0 / rate
    t0 = loop.time()
    done = behind = 0
    max_lag = 0.0
    for k in range(1, ticks + 1):
        due = t0 + (k - 1) * period
        now = loop.time()
        if now < due:
            await asyncio.sleep(due - now)
        else:
            lag = now - due
            max_lag = max(max_lag, lag)
            if lag > period:          # a tick late by a whole period: not keeping up
                behind += 1
            await asyncio.sleep(0)    # let the loop's other work run between ticks
        if loop.time() - t0 > limit:
            break
        value = base + k
        for record in records:
            record.set(value)
        done = k
    return {"ticks": done, "ticks_behind": behind, "max_lag_ms": 1000 * max_lag,
            "loop_s": loop.time() - t0}


def load(cmd: dict[str, Any]) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    future = asyncio.run_coroutine_threadsafe(
        updates(float(cmd["base"]), int(cmd["ticks"]), float(cmd["rate"]),
                float(cmd["limit"])), dispatcher.loop)
    result: dict[str, Any] = future.result(timeout=float(cmd["limit"]) + 30)
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, **result}


serve({"load": load})
