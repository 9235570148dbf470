"""An IOC written only with pythonSoftIOC 4.7.2's documented API and the
module layout its users import, as such an application would be.

``--no-pva`` starts it with ``iocInit(dispatcher, enable_pva=False)``.
"""

import asyncio
import atexit
import sys

import numpy as np

from softioc import (
    alarm,
    asyncio_dispatcher,
    builder,
    fields,
    imports,
    pvlog,  # noqa: F401  (importing it logs every client put)
    softioc,
)
from softioc.device import ProcessDeviceSupportIn, ProcessDeviceSupportOut, SetBlocking
from softioc.device_core import LookupRecord, LookupRecordList, RecordLookup
from softioc.pythonSoftIoc import PythonDevice, RecordWrapper

atexit.register(lambda: print("PYTHON ATEXIT RAN", flush=True))
dispatcher = asyncio_dispatcher.AsyncioDispatcher()

builder.SetDeviceName("PSI")
# Input records refuse client puts (DISP=1, as in pythonSoftIOC), and so do
# db_put_field and dbpf, which put as a client does (dbPutField): these two
# inputs let them in.
ai = builder.aIn("AI", initial_value=1.5, EGU="mm", DISP=0)
ai.add_alias("PSI-ALIAS:AI")
wave = builder.Waveform("WAVE", [1.0, 2.0, 3.0])
alarmed = builder.longIn("ALARMED", initial_value=5, PINI="NO",
                         status=alarm.HIGH_ALARM, severity=alarm.MINOR_ALARM)
pydev = PythonDevice.ai("PYDEV", initial_value=2.5)


def raise_alarm(value):
    # The documented positional form: set(value, severity, alarm).
    ai.set(value, alarm.MAJOR_ALARM, alarm.HIHI_ALARM)


builder.aOut("RAISE", initial_value=0, on_update=raise_alarm)
builder.longIn("COPY_DEST", initial_value=0)
builder.longOut("COPY_SRC", initial_value=0,
                on_update=lambda value: LookupRecord("PSI:COPY_DEST").set(value))
aliased_out = builder.longOut("ALIASED_OUT", initial_value=0,
                              on_update=lambda value: LookupRecord("PSI:COPY_DEST").set(value))
aliased_out.add_alias("PSI-ALIAS:OUT")


def set_units(index):
    # As pandablocks-ioc does: another record's EGU from a raw DBF_STRING buffer.
    text = np.require(["mm", "um"][int(index)], dtype=np.dtype("S40"))
    imports.db_put_field("PSI:AI.EGU", fields.DBF_STRING, text.ctypes.data, 1)


builder.mbbOut("UNITS", "mm", "um", initial_value=0, on_update=set_units)
pushed = builder.aIn("PUSHED", initial_value=0.0, DISP=0)


def push(value):
    data = np.array([value * 2], dtype=np.float64)
    imports.db_put_field_process("PSI:PUSHED", fields.DBF_DOUBLE, data.ctypes.data, 1, True)


builder.aOut("PUSH", initial_value=0.0, on_update=push)
pulled = builder.longIn("PULLED", initial_value=0)


def pull(_):
    data = np.zeros(1, dtype=np.int32)
    imports.db_get_field("PSI:COPY_DEST", fields.DBF_LONG, data.ctypes.data, 1)
    pulled.set(int(data[0]))


builder.Action("PULL", on_update=pull)


async def slow(value):
    await asyncio.sleep(1.0)


previous = SetBlocking(True)
builder.aOut("BLOCKING", initial_value=0.0, on_update=slow)
SetBlocking(previous)
builder.aOut("NONBLOCKING", initial_value=0.0, on_update=slow)

softioc.devIocStats("PSI-STATS")
# Soft records (no Python) on each kind of scan list, for scanppl/scanpel/scanpiol.
builder.records.calc("TICK", SCAN="1 second", CALC="VAL+1")
builder.records.calc("ON_EVENT", SCAN="Event", EVNT=7, CALC="VAL+1")
builder.aIn("INTR", initial_value=0.0, SCAN="I/O Intr")

# What the directory and the classes say, published for the clients.
problems = []
if not all(isinstance(r, RecordWrapper) for _, r in LookupRecordList()):
    problems.append("RecordWrapper")
if not isinstance(ai, ProcessDeviceSupportIn) or not isinstance(aliased_out,
                                                                ProcessDeviceSupportOut):
    problems.append("ProcessDeviceSupport")
if LookupRecord("PSI:AI") is not ai or RecordLookup.LookupRecord("PSI:WAVE") is not wave:
    problems.append("LookupRecord")
listed = dict(LookupRecordList())
if listed.get("PSI:PULLED") is not pulled:
    problems.append("LookupRecordList")
if list(builder.to_epics_str_array(["a", "b"])) != [b"a", b"b"] or \
        builder.PythonDevice.ao is not PythonDevice.ao:
    problems.append("builder re-exports")
checks = builder.stringIn("CHECKS", initial_value=", ".join(problems) or "ok")

builder.LoadDatabase()
if "--no-pva" in sys.argv:
    softioc.iocInit(dispatcher, enable_pva=False)
else:
    softioc.iocInit(dispatcher)
softioc.interactive_ioc(globals())
