"""pythonSoftIOC's observable behaviour, as its users' code and tests see it.

Before iocInit the script reads every record with ``get()`` and publishes
what it saw (type and value) as JSON in ``OBS:PRE``, so that the tests can
compare it with what CA and PVA clients read once the IOC runs.  A record
of ``observable.db`` (loaded with ``dbLoadDatabase``) is taken over by the
builder, as pythonSoftIOC allows.
"""

import json
import os

from softioc import alarm, asyncio_dispatcher, builder, softioc  # noqa: F401 (the shell)

HERE = os.path.dirname(os.path.abspath(__file__))

softioc.dbLoadDatabase("observable.db", HERE, "P=OBS")
builder.SetDeviceName("OBS")

records = {
    # no initial value: 0, 0.0 or "" (outputs never written by a client)
    "AI": builder.aIn("AI"), "AO": builder.aOut("AO"),
    "LI": builder.longIn("LI"), "LO": builder.longOut("LO"),
    "I64O": builder.int64Out("I64O"), "BI": builder.boolIn("BI"),
    "BO": builder.boolOut("BO"), "MBBO": builder.mbbOut("MBBO", "zero", "one"),
    "SI": builder.stringIn("SI"), "SO": builder.stringOut("SO"),
    "ACT": builder.Action("ACT"),
    # values converted to the record's type
    "AI3": builder.aIn("AI3", initial_value=3),
    "LI3": builder.longIn("LI3", initial_value=3.0),
    "BOT": builder.boolOut("BOT", initial_value=True),
    "ACTT": builder.Action("ACTT", initial_value=True),
    "SIB": builder.stringIn("SIB", initial_value=b"bytes"),
    # string waveforms: lists of str; items that are not text stored as str()
    "WS": builder.WaveformIn("WS", ["a", "b"]),
    "WMIX": builder.WaveformOut("WMIX", ["a", 1, 2.5]),
    # a record of observable.db, given Python device support
    "TAKEN": builder.aIn("TAKEN", initial_value=4.5),
}
pre = {name: [type(r.get()).__name__, r.get()] for name, r in records.items()}
builder.longStringIn("PRE", initial_value=json.dumps(pre), length=4000)

# set(value, process=False) and set_alarm() after iocInit, driven from stdin
ts_out = builder.aOut("TS_OUT", initial_value=1.0)
ts_in = builder.aIn("TS_IN", initial_value=1.0)

# FastCS's pattern: a blocking Action whose on_update sets the alarm with
# set(get(), process=False, ...) while the put is still in progress
busy_puts = []


def on_busy(value):
    busy_puts.append(value)
    severity = alarm.MAJOR_ALARM if len(busy_puts) % 2 else alarm.NO_ALARM
    busy.set(busy.get(), process=False, severity=severity,
             alarm=alarm.STATE_ALARM if severity else alarm.NO_ALARM)


busy = builder.Action("BUSY", on_update=on_busy, blocking=True)

builder.LoadDatabase()
softioc.iocInit(asyncio_dispatcher.AsyncioDispatcher())
print(f"STR {records['AI']} FMT {records['AI']:>8} REPR {records['AI']!r}", flush=True)
softioc.interactive_ioc(globals())
