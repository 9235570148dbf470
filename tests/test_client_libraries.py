"""pyepics and aioca, the Python CA clients many users have, against a real IOC:
put and get round trips of a number, an array and a string, and a monitor of
a record that Python sets in answer to the put.  Each runs in a fresh process
(they read the EPICS environment when they start)."""

import json

import pytest

from .clients import python_client
from .conftest import module_ioc

pytest.importorskip("epics", reason="pip install pyepics (in the test extra)")
pytest.importorskip("aioca", reason="pip install aioca (in the test extra)")

PYEPICS = """
import json, threading
import epics

seen, got = [], threading.Event()

def on_rbv(value=None, **kw):
    seen.append(value)
    if value == 2.5:
        got.set()

rbv = epics.PV("CL:RBV", callback=on_rbv)
sp, wave, name = epics.PV("CL:SP"), epics.PV("CL:WAVE"), epics.PV("CL:NAME")
assert all(pv.wait_for_connection(5) for pv in (rbv, sp, wave, name))
result = {"put": sp.put(1.25, wait=True, timeout=5)}
got.wait(5)
wave.put([1.0, 2.0, 3.0], wait=True, timeout=5)
name.put("pyepics", wait=True, timeout=5)
result.update(sp=sp.get(use_monitor=False), seen=seen,
              wave=wave.get(use_monitor=False).tolist(), name=name.get(use_monitor=False))
print("RESULT", json.dumps(result))
"""

AIOCA = """
import asyncio, json
from aioca import caget, camonitor, caput

async def main():
    seen, got = [], asyncio.Event()

    def on_rbv(value):
        seen.append(float(value))
        if value == 5.0:
            got.set()

    subscription = camonitor("CL:RBV", on_rbv)
    await caput("CL:SP", 2.5, wait=True, timeout=5)
    await asyncio.wait_for(got.wait(), 5)
    subscription.close()
    await caput("CL:WAVE", [4.0, 5.0], wait=True, timeout=5)
    await caput("CL:NAME", "aioca", wait=True, timeout=5)
    sp, wave, name = await caget(["CL:SP", "CL:WAVE", "CL:NAME"], timeout=5)
    print("RESULT", json.dumps({"sp": float(sp), "seen": seen, "wave": wave.tolist(),
                                "name": str(name)}))

asyncio.run(main())
"""


ioc = module_ioc("clientlib_ioc.py", wait_for="CL:RBV")


def result(output):
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_pyepics_round_trips(ioc):
    got = result(python_client(ioc, PYEPICS))
    assert got["put"] == 1                       # pyepics: put completed
    assert got["sp"] == 1.25
    assert got["seen"][-1] == 2.5                # Python's set() of CL:RBV, monitored
    assert got["wave"] == [1.0, 2.0, 3.0]        # three elements: NORD, not NELM
    assert got["name"] == "pyepics"
    # ... and the IOC holds what pyepics put.
    assert ioc.caget("CL:SP") == "1.25" and ioc.caget("CL:RBV") == "2.5"
    assert ioc.caget("CL:WAVE.NORD") == "3"


def test_aioca_round_trips(ioc):
    got = result(python_client(ioc, AIOCA))
    assert got["sp"] == 2.5
    assert got["seen"][-1] == 5.0
    assert got["wave"] == [4.0, 5.0]
    assert got["name"] == "aioca"
    assert ioc.caget("CL:RBV") == "5" and ioc.caget("CL:NAME") == "aioca"
    assert ioc.caget("CL:WAVE.NORD") == "2"
