"""Benchmark server for caproto (pure-Python Channel Access), asyncio flavour.

Same protocol as softioc_server.py: READY, then one JSON command per stdin
line answered by ``RESULT {json}``.  Commands run as coroutines on the
server's own event loop (``await channel.write(value)``), as a caproto IOC
updates its PVs.  Listens on 127.0.0.1 only (``interfaces=``, as
``--interfaces 127.0.0.1`` would), beacons to EPICS_CAS_BEACON_ADDR_LIST.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import numpy as np
from caproto import ChannelDouble
from caproto.asyncio.server import Context

scenario = sys.argv[1]
params: dict[str, Any] = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
updates = [0]


class PutHandled(ChannelDouble):  # type: ignore[misc]
    """A channel whose client puts run a handler before they complete."""

    async def verify_value(self, data: Any) -> Any:
        updates[0] += 1
        return data


pvdb: dict[str, Any] = {}
if scenario == "S1":
    pvdb["BENCH:S1"] = ChannelDouble(value=0.0)
elif scenario == "S1b":
    for i in range(params["records"]):
        pvdb[f"BURST:{i}"] = ChannelDouble(value=0.0)
elif scenario == "S2":
    prefix = params.get("prefix", "BENCH:")   # the implementations run side by side
    pvdb[f"{prefix}AO"] = PutHandled(value=0.0)
    pvdb[f"{prefix}AOB"] = PutHandled(value=0.0)
elif scenario == "S3":
    pvdb["BENCH:AI"] = ChannelDouble(value=0.0)
elif scenario == "S4":
    for i in range(params["records"]):
        pvdb[f"S4:R{i}"] = ChannelDouble(value=float(i))
elif scenario == "S5":
    n = params["length"]
    pvdb["S5:WAVE"] = ChannelDouble(value=np.zeros(n), max_length=n)
else:
    raise SystemExit(f"unknown scenario {scenario}")


async def timed(work: Any) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = await work()
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, **(out or {})}


async def set_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    chan = pvdb["BENCH:S1"]
    deadline = time.perf_counter() + cmd["seconds"]
    base, limit = float(cmd["base"]), int(cmd["max_sets"])

    async def work() -> dict[str, Any]:
        n = 0
        while n < limit:
            for _ in range(100):
                n += 1
                await chan.write(base + n)
            await asyncio.sleep(0)      # let the server send (a loop that never yields starves it)
            if time.perf_counter() > deadline:
                break
        return {"sets": n, "last": base + n}

    result = await timed(work)
    result["t_end"] = time.time()
    c0 = time.process_time()
    await asyncio.sleep(cmd.get("drain", 0.5))   # let the subscription queue drain
    result["cpu_drain"] = time.process_time() - c0
    return result


async def burst(cmd: dict[str, Any]) -> dict[str, Any]:
    base = float(cmd["base"])

    async def work() -> None:
        for i in range(params["records"]):
            await pvdb[f"BURST:{i}"].write(base + i)
            if i % 100 == 99:
                await asyncio.sleep(0)

    return await timed(work)


async def wave_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    chan = pvdb["S5:WAVE"]
    arrays = [np.full(params["length"], float(k)) for k in range(2)]
    deadline = time.perf_counter() + cmd["seconds"]

    async def work() -> dict[str, Any]:
        n = 0
        while n < cmd["max_sets"] and time.perf_counter() < deadline:
            if cmd.get("fresh"):        # a new array for each set (protocol.wave_loop)
                arr = np.full(params["length"], float(n))
            else:
                arr = arrays[n % 2]
                arr[0] = n
            await chan.write(arr)
            n += 1
            await asyncio.sleep(0)      # let the server send what it has
        return {"sets": n}

    return await timed(work)


async def updates_count(cmd: dict[str, Any]) -> dict[str, Any]:
    return {"updates": updates[0]}


COMMANDS = {"set_loop": set_loop, "burst": burst, "wave_loop": wave_loop,
            "updates": updates_count}


async def main() -> None:
    ctx = Context(pvdb, interfaces=["127.0.0.1"])
    server = asyncio.ensure_future(ctx.run(log_pv_names=False))
    while not ctx.tcp_sockets:                  # bound and listening
        if server.done():
            server.result()
        await asyncio.sleep(0.02)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            result = await COMMANDS[cmd["cmd"]](cmd)
        except Exception as e:
            result = {"error": f"{type(e).__name__}: {e}"}
        print("RESULT " + json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)


asyncio.run(main())
