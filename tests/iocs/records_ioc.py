"""An IOC with one record of every builder type, for the record tests.

Puts to the out records are echoed into ``REC:LOG`` (a long string) so
tests can see what on_update received, and into matching ``*:RBV`` records.
"""

import sys
import time

import numpy as np

from softioc import alarm, builder, softioc
from softioc.asyncio_dispatcher import AsyncioDispatcher

builder.SetDeviceName("REC")
log = builder.longStringIn("LOG", "", length=4000)
entries = []


def note(text):
    entries.append(text)
    log.set(";".join(entries[-40:]))


def echo(name):
    return lambda value: note(f"{name}={value}")


ai = builder.aIn("AI", 1.5, EGU="mA", PREC=2, HIGH=10, HSV="MINOR", HIHI=20, HHSV="MAJOR")
ao = builder.aOut("AO", 2.5, EGU="V", DRVL=-5, DRVH=50, on_update=echo("AO"))
bi = builder.boolIn("BI", 1, ZNAM="Off", ONAM="On")
bo = builder.boolOut("BO", 0, ZNAM="Off", ONAM="On", on_update=echo("BO"))
li = builder.longIn("LI", 7)
lo = builder.longOut("LO", 8, on_update=echo("LO"))
qi = builder.int64In("QI", 2**40)
qo = builder.int64Out("QO", 2**41, on_update=echo("QO"))
si = builder.stringIn("SI", "hello")
so = builder.stringOut("SO", "world", on_update=echo("SO"))
lsi = builder.longStringIn("LSI", "x" * 100, length=200)
lso = builder.longStringOut("LSO", "y" * 50, length=200, on_update=echo("LSO"))
mi = builder.mbbIn("MI", "Zero", "One", ("Two", "MAJOR"), initial_value=1)
mo = builder.mbbOut("MO", "Zero", "One", "Two", initial_value=2, on_update=echo("MO"))
wi = builder.WaveformIn("WI", np.arange(5, dtype=np.int32), length=10)
wo = builder.WaveformOut("WO", [1.5, 2.5], length=8, on_update=echo("WO"))
act = builder.Action("ACT", on_update=echo("ACT"))
name_cb = builder.aOut("NAMED", 0, on_update_name=lambda v, n: note(f"NAMED={v}@{n}"))
always = builder.longOut("ALWAYS", 0, always_update=True, on_update=echo("ALWAYS"))
valid = builder.longOut("VALID", 1, validate=lambda rec, v: 0 <= v <= 100,
                        on_update=echo("VALID"))
raising = builder.longOut("RAISING", 1, validate=lambda rec, v: 1 / 0)
validwf = builder.WaveformOut("VALIDWF", [0.0], length=4,
                              validate=lambda rec, v: bool(np.all(v >= 0)))


async def slow(value):
    import asyncio

    await asyncio.sleep(1.0)
    note(f"SLOW={value}")


blocking = builder.aOut("BLOCK", 0, on_update=slow, blocking=True)
alarmed = builder.aIn("ALARMED", 3.0, initial_severity=alarm.MAJOR_ALARM,
                      initial_alarm=alarm.HIGH_ALARM)
out_alarm = builder.aOut("OUTALARM", 1.0, initial_severity=alarm.MINOR_ALARM,
                         initial_alarm=alarm.STATE_ALARM)
stamped = builder.aIn("STAMPED", 0.0)
calc = builder.records.calc("CALC", CALC="A*2", INPA=builder.CP(ai))

builder.LoadDatabase()
softioc.iocInit(AsyncioDispatcher())

# Commands from the test over stdin are Python; the shell is the product's own.
stamped.set(1.0, timestamp=1_000_000_000.5)
softioc.interactive_ioc(globals())
sys.exit(0)
time.sleep(0)
