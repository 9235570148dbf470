"""An IOC using the ctypes-era names of pythonSoftIOC's ``softioc.imports``
and ``softioc.device`` as its applications do: its own device support in
Python (a ``.dbd`` and ``.db`` loaded with ``imports.dbLoadDatabase``, a dset
registered with ``registryDeviceSupportAdd``, I/O Intr through
``IOSCANPVT``/``scanIoInit``/``scanIoRequest``), ``callbackSetQueueSize``
before iocInit, ``recGblResetAlarms`` on a record, ``install_pv_logging``
with its own ACF, and EPICS's exit handlers.

The test (``tests/compat/test_reference_functions.py``) drives it through
the shell and reads the effects with real clients.  ``--exit-only`` makes
only what the exit tests need.
"""

import atexit
import ctypes
import json
import os
import sys
import tempfile

from softioc import (
    alarm,  # noqa: F401  (the tests use it from the shell)
    asyncio_dispatcher,
    builder,
    device,
    fields,
    imports,
    softioc,
)
from softioc.device_core import LookupRecord
from softioc.pythonSoftIoc import PythonDevice

atexit.register(lambda: print("PYTHON ATEXIT RAN", flush=True))
here = tempfile.mkdtemp()
dbCore, Com = imports.dbCore, imports.Com


# EPICS's struct dbAddr (dbAddr.h), to find a record and a field's type.
class DbAddr(ctypes.Structure):
    _fields_ = [("precord", ctypes.c_void_p), ("pfield", ctypes.c_void_p),
                ("pfldDes", ctypes.c_void_p), ("no_elements", ctypes.c_long),
                ("field_type", ctypes.c_short), ("field_size", ctypes.c_short),
                ("special", ctypes.c_short), ("dbr_field_type", ctypes.c_short)]


dbNameToAddr = dbCore.dbNameToAddr
dbNameToAddr.argtypes = (imports.auto_encode, ctypes.POINTER(DbAddr))   # names as str


def address(name):
    addr = DbAddr()
    if dbNameToAddr(name, ctypes.byref(addr)) != 0:
        raise KeyError(name)
    return addr


# --- EPICS's exit handlers ------------------------------------------------
EXIT_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


@EXIT_HANDLER
def epics_exit_handler(_):
    print("EPICS EXIT HANDLER RAN", flush=True)


Com.epicsAtExit3.argtypes = (EXIT_HANDLER, ctypes.c_void_p, ctypes.c_char_p)
Com.epicsAtExit3(epics_exit_handler, None, b"reference_ioc")

if "--exit-only" in sys.argv:
    builder.SetDeviceName("REF")
    builder.longIn("READY", initial_value=1)
    builder.LoadDatabase()
    softioc.iocInit(asyncio_dispatcher.AsyncioDispatcher())
    softioc.interactive_ioc(globals())

# --- Device support written in Python, as pythonSoftIOC's own is -----------
with open(os.path.join(here, "pytest.dbd"), "w") as f:
    f.write('device(longin, INST_IO, devRefLongin, "RefPython")\n'
            'device(ai, INST_IO, devRefAi, "RefPython")\n')
imports.dbLoadDatabase("pytest.dbd", here, None)

DEVSUPFUN = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_void_p)
IOINT_INFO = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_int, ctypes.c_void_p,
                              ctypes.POINTER(imports.IOSCANPVT))


class LonginDset(ctypes.Structure):
    _fields_ = [("number", ctypes.c_long), ("report", ctypes.c_void_p),
                ("init", ctypes.c_void_p), ("init_record", DEVSUPFUN),
                ("get_ioint_info", IOINT_INFO), ("read_longin", DEVSUPFUN)]


class AiDset(ctypes.Structure):
    _fields_ = [("number", ctypes.c_long), ("report", ctypes.c_void_p),
                ("init", ctypes.c_void_p), ("init_record", DEVSUPFUN),
                ("get_ioint_info", ctypes.c_void_p), ("read_ai", DEVSUPFUN),
                ("special_linconv", ctypes.c_void_p)]


ioscanpvt = imports.IOSCANPVT()
reads = []              # record names, one per read_longin


def record_name(precord):
    return ctypes.string_at(precord).decode()


@DEVSUPFUN
def init_record(precord):
    return device.EPICS_OK


@IOINT_INFO
def get_ioint_info(cmd, precord, ppvt):
    if record_name(precord).endswith(":REFUSED"):
        return device.EPICS_ERROR           # EPICS then scans it Passive
    if not ioscanpvt:
        imports.scanIoInit(ctypes.byref(ioscanpvt))
    ppvt[0] = ioscanpvt
    return device.EPICS_OK


@DEVSUPFUN
def read_longin(precord):
    reads.append(record_name(precord))
    return device.EPICS_OK


# read_ai stores RVAL 7 and VAL 3.5, and answers ai_status[0]: with EPICS_OK
# the record converts RVAL into VAL (7), with NO_CONVERT it keeps VAL (3.5).
# (A list: the shell runs in a copy of this module's globals.)
ai_status = [device.EPICS_OK]


@DEVSUPFUN
def read_ai(precord):
    name = record_name(precord)
    ctypes.c_int32.from_address(address(name + ".RVAL").pfield).value = 7
    ctypes.c_double.from_address(address(name + ".VAL").pfield).value = 3.5
    return ai_status[0]


longin_dset = LonginDset(5, None, None, init_record, get_ioint_info, read_longin)
ai_dset = AiDset(6, None, None, init_record, None, read_ai, None)
imports.registryDeviceSupportAdd(b"devRefLongin", ctypes.byref(longin_dset))
imports.registryDeviceSupportAdd(b"devRefAi", ctypes.byref(ai_dset))
registryDeviceSupportFind = dbCore.registryDeviceSupportFind
registryDeviceSupportFind.argtypes = (ctypes.c_char_p,)
registryDeviceSupportFind.restype = ctypes.c_void_p
REGISTERED = registryDeviceSupportFind(b"devRefLongin") == ctypes.addressof(longin_dset)

with open(os.path.join(here, "reference.db"), "w") as f:
    f.write('record(longin, "$(P)INTR") {\n'
            '  field(DTYP, "RefPython") field(SCAN, "I/O Intr") field(INP, "@x")\n'
            '  field(FLNK, "$(P)COUNT")\n}\n'
            'record(calc, "$(P)COUNT") { field(CALC, "VAL+1") field(PINI, "YES") }\n'
            'record(longin, "$(P)REFUSED") {\n'
            '  field(DTYP, "RefPython") field(SCAN, "I/O Intr") field(INP, "@x")\n}\n'
            'record(ai, "$(P)DEVAI") { field(DTYP, "RefPython") field(INP, "@x") }\n')
imports.dbLoadDatabase("reference.db", here, "P=REF:")


def trigger():
    """One I/O Intr scan request, as device support does when data arrives."""
    imports.scanIoRequest(ioscanpvt)


# --- The callback queues' size, before iocInit -----------------------------
imports.callbackSetQueueSize(5432)


class CallbackQueueStats(ctypes.Structure):        # callback.h
    _fields_ = [("size", ctypes.c_int), ("numUsed", ctypes.c_int * 3),
                ("maxUsed", ctypes.c_int * 3), ("numOverflow", ctypes.c_int * 3)]


# --- Put logging with the application's own access security rules ----------
with open(os.path.join(here, "access.acf"), "w") as f:
    f.write("ASG(DEFAULT) {\n  RULE(1, READ)\n  RULE(1, WRITE, TRAPWRITE)\n}\n"
            "ASG(READONLY) {\n  RULE(1, READ)\n}\n")
imports.install_pv_logging(os.path.join(here, "access.acf"))

# --- Builder records --------------------------------------------------------
blocking = [device.blocking, device.SetBlocking(True), device.blocking]
device.SetBlocking(False)
blocking.append(device.blocking)
builder.SetDeviceName("REF")
qsize = builder.longIn("QSIZE", initial_value=0)
builder.longOut("LOGGED", initial_value=0)
builder.aOut("LOCKED", initial_value=1.0, ASG="READONLY")
builder.longIn("ALARMED", initial_value=3)
stamped = builder.aIn("STAMPED", initial_value=0.0)
updates = builder.longIn("UPDATES", initial_value=0)
out = builder.longOut("OUT", initial_value=0,
                      on_update=lambda value: updates.set(updates.get() + 1))
wave_in = builder.WaveformIn("WAVE_IN", [1.0, 2.0])
wave_out = builder.WaveformOut("WAVE_OUT", [1.0, 2.0])
MAKERS = ["ai", "ao", "bi", "bo", "longin", "longout", "int64in", "int64out", "mbbi", "mbbo",
          "stringin", "stringout", "waveform", "waveform_out", "long_stringin",
          "long_stringout"]
made = {}
for kind in MAKERS:
    extra = {"length": 4} if kind.startswith("waveform") else {}
    made[kind] = getattr(PythonDevice, kind)(f"PD_{kind.upper()}", **extra)

builder.LoadDatabase()
dispatcher = asyncio_dispatcher.AsyncioDispatcher()
softioc.iocInit(dispatcher)

stats = CallbackQueueStats()
dbCore.callbackQueueStatus(0, ctypes.byref(stats))
qsize.set(stats.size)


def raise_alarm(name, stat, sevr):
    """NSTA/NSEV as device support sets them, then recGblResetAlarms."""
    precord = address(name).precord
    dbCore.recGblSetSevr.argtypes = (ctypes.c_void_p, ctypes.c_ushort, ctypes.c_ushort)
    dbCore.dbScanLock(ctypes.c_void_p(precord))
    try:
        dbCore.recGblSetSevr(ctypes.c_void_p(precord), stat, sevr)
        mask = imports.recGblResetAlarms(precord)
    finally:
        dbCore.dbScanUnlock(ctypes.c_void_p(precord))
    print("RESET MASK", mask, flush=True)


def field_types():
    """{field: [EPICS's DBF code of it, get_DBF_values()'s code of its type]}."""
    dbf = imports.get_DBF_values()
    want = {"REF:STAMPED.VAL": "DBF_DOUBLE", "REF:LOGGED.VAL": "DBF_LONG",
            "REF:PD_STRINGIN.VAL": "DBF_STRING", "REF:PD_MBBI.VAL": "DBF_ENUM",
            "REF:PD_INT64IN.VAL": "DBF_INT64", "REF:STAMPED.PREC": "DBF_SHORT",
            "REF:STAMPED.SCAN": "DBF_MENU", "REF:STAMPED.DTYP": "DBF_DEVICE",
            "REF:STAMPED.INP": "DBF_INLINK", "REF:STAMPED.FLNK": "DBF_FWDLINK",
            "REF:OUT.OUT": "DBF_OUTLINK", "REF:PD_BI.VAL": "DBF_ENUM",
            "REF:PD_MBBI.RVAL": "DBF_ULONG", "REF:PD_BO.MASK": "DBF_ULONG",
            "REF:STAMPED.DISP": "DBF_UCHAR", "REF:PD_LONGOUT.OMSL": "DBF_MENU",
            "REF:STAMPED.HHSV": "DBF_MENU", "REF:PD_AI.SMOO": "DBF_DOUBLE"}
    found = {pv: [address(pv).field_type, dbf[name]] for pv, name in want.items()}
    print("FIELD TYPES", json.dumps(found), flush=True)
    print("DBF VALUES", json.dumps(dbf), json.dumps(fields.get_DBF_values()), flush=True)


def put_out(value, process):
    """REF:OUT = value from a raw DBF_LONG buffer, processed or not."""
    data = ctypes.c_int32(value)
    imports.db_put_field_process("REF:OUT", fields.DBF_LONG, ctypes.addressof(data), 1,
                                 process)


def module_state():
    """softioc.device's module attributes and LookupRecord of an unknown name."""
    try:
        LookupRecord("REF:NO_SUCH_RECORD")
        missing = "found"
    except KeyError:
        missing = "KeyError"
    print("STATE", json.dumps({"dispatcher": device.dispatcher is dispatcher,
                               "blocking": blocking, "missing": missing}), flush=True)


def classes():
    """pythonSoftIOC's class names that describe the builder's records."""
    checks = {
        "ProcessDeviceSupportCore": all(isinstance(r, device.ProcessDeviceSupportCore)
                                        for r in (*made.values(), out, stamped)),
        "waveform": isinstance(wave_in, device.waveform)
        and not isinstance(wave_in, device.waveform_out),
        "waveform_out": isinstance(wave_out, device.waveform_out)
        and not isinstance(wave_out, device.waveform),
        "WaveformBase": isinstance(wave_in, device.WaveformBase)
        and isinstance(wave_out, device.WaveformBase)
        and not isinstance(stamped, device.WaveformBase),
    }
    print("CLASSES", json.dumps(checks), flush=True)


print("REGISTERED", REGISTERED, flush=True)
softioc.interactive_ioc(globals())
