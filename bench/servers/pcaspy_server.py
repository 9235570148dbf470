"""Benchmark server for pcaspy (the CA server library of EPICS base, from Python).

Same protocol as softioc_server.py: READY, then one JSON command per stdin
line answered by ``RESULT {json}``.  The main thread runs
``server.process()`` (pcaspy's required loop); commands run in a worker
thread calling ``setParam``/``updatePVs``, pcaspy's documented way to update
PVs from a thread.  libcas binds to EPICS_CAS_INTF_ADDR_LIST (127.0.0.1).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pcaspy import Driver, SimpleServer

if TYPE_CHECKING:
    from bench.servers.protocol import serve, set_loop, timed, wave_loop
else:
    from protocol import serve, set_loop, timed, wave_loop  # beside this script

scenario = sys.argv[1]
params: dict[str, Any] = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
pvdb: dict[str, dict[str, Any]] = {}

if scenario == "S1":
    pvdb["BENCH:S1"] = {"type": "float", "value": 0.0}
elif scenario == "S1b":
    for i in range(params["records"]):
        pvdb[f"BURST:{i}"] = {"type": "float", "value": 0.0}
elif scenario == "S2":
    prefix = params.get("prefix", "BENCH:")   # the implementations run side by side
    pvdb[f"{prefix}AO"] = {"type": "float", "value": 0.0}
    pvdb[f"{prefix}AOB"] = {"type": "float", "value": 0.0}
elif scenario == "S3":
    pvdb["BENCH:AI"] = {"type": "float", "value": 0.0}
elif scenario == "S4":
    for i in range(params["records"]):
        pvdb[f"S4:R{i}"] = {"type": "float", "value": float(i)}
elif scenario == "S5":
    pvdb["S5:WAVE"] = {"type": "float", "count": params["length"]}
else:
    raise SystemExit(f"unknown scenario {scenario}")


class BenchDriver(Driver):  # type: ignore[misc]
    updates = 0

    def write(self, reason: str, value: Any) -> bool:
        # A client put: the handler runs before the put-callback completes.
        self.setParam(reason, value)
        self.updatePVs()
        BenchDriver.updates += 1
        return True


server = SimpleServer()
server.createPV("", pvdb)
driver = BenchDriver()


def set_param(name: str, value: Any) -> None:
    """pcaspy's way to post one value from a thread."""
    driver.setParam(name, value)
    driver.updatePVs()


def s1_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    return set_loop(cmd, lambda value: set_param("BENCH:S1", value))


def burst(cmd: dict[str, Any]) -> dict[str, Any]:
    base = float(cmd["base"])

    def work() -> None:
        for i in range(params["records"]):
            driver.setParam(f"BURST:{i}", base + i)
        driver.updatePVs()         # pcaspy's way: set many, post once

    return timed(work)


def s5_loop(cmd: dict[str, Any]) -> dict[str, Any]:
    return wave_loop(cmd, params["length"], lambda arr: set_param("S5:WAVE", arr))


COMMANDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "set_loop": s1_loop, "burst": burst, "wave_loop": s5_loop,
    "updates": lambda cmd: {"updates": BenchDriver.updates}}


threading.Thread(target=serve, args=(COMMANDS,), daemon=True).start()
print("READY", flush=True)
while True:
    server.process(0.1)
