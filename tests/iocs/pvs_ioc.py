"""PVA-only PVs (softioc.pva's PV, Image, Table) beside records, for tests/test_pva_pvs.py."""

import asyncio
import sys

import numpy as np

from softioc import access, asyncio_dispatcher, builder, putlog, pva, softioc

# Writes to PVs of group LOCKED are refused; the others are logged (TRAPWRITE).
access.load_acf("""
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE)
}
ASG(LOCKED) {
    RULE(1, READ)
}
""")
putlog.enable(file=sys.argv[1])
builder.SetDeviceName("PVS")
rec = builder.aOut("REC", 1.0)
pva.Group("GRP", {"rec": rec})
writes = []


def count_put(value):
    writes.append(value)
    print("COUNT put", value, flush=True)
    return value != 13                          # 13 is refused


async def mode_put(value):
    await asyncio.sleep(0.05)
    print("MODE put", value, flush=True)


def fail_put(value):
    raise ValueError(f"cannot take {value}")


num = pva.PV("NUM", 1.5, writeable=True, units="mm", precision=3, display_limits=(0, 10),
             control_limits=(0, 5), description="a number")
count = pva.PV("COUNT", 3, on_put=count_put)
flag = pva.PV("FLAG", True, writeable=True)
text = pva.PV("TEXT", "hello", writeable=True)
mode = pva.PV("MODE", "Off", choices=["Off", "On", "Auto"], on_put=mode_put)
arr = pva.PV("ARR", np.arange(4, dtype=np.int32), writeable=True)
names = pva.PV("NAMES", ["a", "b"], writeable=True)
u8 = pva.PV("U8", np.zeros(2, np.uint8), writeable=True)
farr = pva.PV("FARR", np.zeros(2), writeable=True)
ro = pva.PV("RO", 7)
locked = pva.PV("LOCKED", 1.0, writeable=True, asg="LOCKED")
failing = pva.PV("FAIL", 0.0, on_put=fail_put)
img = pva.Image("IMG", dtype="uint16", shape=(4, 6))
rgb = pva.Image("RGB", dtype="uint8", shape=(2, 3, 3))
tbl = pva.Table("TBL", {"name": str, "x": float, "n": int}, labels=["Name", "X (mm)", "N"],
                initial={"name": ["one"], "x": [1.5], "n": [1]}, writeable=True)
builder.longOut("READY", 0)
builder.LoadDatabase()
softioc.iocInit(asyncio_dispatcher.AsyncioDispatcher())


def _try(code):
    """Run code in this shell; what happened, on one line."""
    try:
        exec(code, globals())
        return "OK"
    except Exception as e:
        return f"RAISED {type(e).__name__}: {e}"


softioc.interactive_ioc(globals())
