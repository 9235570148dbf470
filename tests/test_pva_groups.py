"""Group PVs and NTTable over PV Access, read with pvget and p4p."""

import time

import numpy as np

from softioc import testing
from softioc.testing import IOCProcess

from .conftest import module_ioc

ioc = module_ioc("pva_ioc.py", wait_for="GRP:X")


def test_group_pvget(ioc):
    out = ioc.pvget("GRP:XY")
    assert "x" in out and "y" in out and "mm" in out, out


def test_group_values_and_atomic_update(ioc, pva):
    v = pva.get("GRP:XY", timeout=5)
    assert v["x.value"] == 1.0 and v["y.value"] == 2.0
    updates = []
    sub = pva.monitor("GRP:XY", updates.append)
    try:
        time.sleep(1.0)
        ioc.send("x.set(5.0); y.set(6.0)")
        deadline = time.monotonic() + 5
        while not any(u["y.value"] == 6.0 for u in updates) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.close()
    last = updates[-1]
    assert (last["x.value"], last["y.value"]) == (5.0, 6.0)


def test_nttable(ioc, pva):
    v = pva.get("TBL", timeout=5)
    assert v.getID() == "epics:nt/NTTable:1.0"
    assert list(v["labels"]) == ["Position", "Count"]
    np.testing.assert_array_equal(v["value.A"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(v["value.B"], [10, 20, 30])
    out = ioc.pvget("TBL")
    assert "Position" in out and "Count" in out, out


def test_group_and_table_names_follow_the_device_prefix(ioc, pva):
    v = pva.get("DEV:PAIR", timeout=5)
    assert (v["p.value"], v["q.value"]) == (3.0, 4.0)
    t = pva.get("DEV:TABLE", timeout=5)
    assert t.getID() == "epics:nt/NTTable:1.0"
    assert list(t["labels"]) == ["Column C"]
    np.testing.assert_array_equal(t["value.C"], [5.0, 6.0])
    assert "Column C" in ioc.pvget("DEV:TABLE")
    assert ioc.caget("DEV:TABLE:LABELS_.NORD") == "1"     # the labels' record too
    for unprefixed in ("PAIR", "TABLE", "DEV:DEV:TABLE:LABELS_"):
        missing = ioc.run_tool("pvget", "-w", "1", unprefixed, check=False)
        assert missing.returncode != 0, missing.stdout


def test_nttable_put_writes_columns(ioc, pva):
    pva.put("TBL", {"value.A": [7.0, 8.0], "value.B": [70, 80]}, wait=True, timeout=10)
    v = pva.get("TBL", timeout=5)
    np.testing.assert_array_equal(v["value.A"], [7.0, 8.0])
    np.testing.assert_array_equal(v["value.B"], [70, 80])
    assert ioc.caget("TBL:B").split()[:3] == ["16", "70", "80"]
    # pvput marks the structure's root: the meta field takes part in the put
    # (a putorder), so QSRV2 has no "no putorder, ignore write" to warn about.
    put = ioc.run_tool("pvput", "-w", "5", "TBL", '{"value": {"A": [9.0], "B": [90]}}')
    assert "warning" not in put.stdout.lower() and "putorder" not in put.stdout, put.stdout
    np.testing.assert_array_equal(pva.get("TBL", timeout=5)["value.B"], [90])
    # on_update runs in the dispatcher after the put completes: wait for it
    testing.wait_until(lambda: "B got [90]" in ioc.output(), what="B's on_update")
    ioc.stop()
    out = ioc.output()
    assert "A got [7.0, 8.0]" in out and "B got [70, 80]" in out
    assert "A got [9.0]" in out and "B got [90]" in out
    assert "putorder" not in out, out


def test_pva_can_be_switched_off():
    with IOCProcess(["-m", "softioc", "demo"], wait_for="DEMO:UPTIME",
                    env={"PYTHONIOC_PVA": "NO"}) as off:
        assert off.caget("DEMO:MESSAGE") == "hello"
        result = off.run_tool("pvget", "-w", "1", "DEMO:MESSAGE", check=False)
        assert result.returncode != 0
        off.stop()
        assert "QSRV2" not in off.output()
