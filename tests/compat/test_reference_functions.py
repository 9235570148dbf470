"""The ctypes-era names docs/reference/pythonsoftioc-modules.rst lists, each
called in a running IOC as a pythonSoftIOC application calls it
(``iocs/reference_ioc.py``), its effect read with real CA clients.

``callbackSetQueueSize``, ``registryDeviceSupportAdd``, ``IOSCANPVT``,
``scanIoInit``, ``scanIoRequest``, ``recGblResetAlarms``,
``epicsExitCallAtExits``, ``epicsExit``, ``dbLoadDatabase``,
``install_pv_logging``, ``auto_encode``, ``get_DBF_values`` and
``db_put_field_process(..., False)`` of ``softioc.imports``;
``EPICS_OK``/``EPICS_ERROR``/``NO_CONVERT``, ``ProcessDeviceSupportCore``, the
waveform classes, ``dispatcher`` and ``blocking`` of ``softioc.device``;
every ``PythonDevice`` maker; ``softioc.epicsExit``; the positional forms of
``set``.  (The rest of that page is tested in ``test_psi_api.py``.)
"""

from __future__ import annotations

import itertools
import json
import re

import pytest

from softioc import testing
from softioc.testing import IOCProcess

from .conftest import IOCS

SCRIPT = str(IOCS / "reference_ioc.py")
_markers = itertools.count()


@pytest.fixture(scope="module")
def ioc():
    # TZ=UTC: caget -a prints time stamps in the client's local time.
    with IOCProcess([SCRIPT], wait_for="REF:QSIZE", env={"TZ": "UTC"}) as started:
        yield started


def run(ioc: IOCProcess, code: str) -> str:
    """Run ``code`` in the IOC's shell; what it printed (once it has run)."""
    marker = f"DONE-{next(_markers)}"
    start = len(ioc.output())
    ioc.send(f"{code}; print({marker!r})")
    testing.wait_until(lambda: marker in ioc.output()[start:], what=f"{code!r} to run")
    return ioc.output()[start:].split(marker)[0]


def printed(ioc: IOCProcess, tag: str, code: str) -> str:
    """What follows ``tag`` on the line ``code`` prints."""
    lines = [x for x in run(ioc, code).splitlines() if x.startswith(tag + " ")]
    assert lines, ioc.output()[-2000:]
    return lines[0][len(tag) + 1:]


def test_dbLoadDatabase_loads_a_dbd_and_a_db_with_macros(ioc):
    """imports.dbLoadDatabase(file, path, macros) is the script's first EPICS
    call (a .dbd declaring device support), then a .db with P=REF:."""
    assert ioc.caget("REF:INTR.DTYP") == "RefPython"
    assert ioc.caget("REF:COUNT.CALC") == "VAL+1"
    assert ioc.caget("REF:INTR.FLNK") == "REF:COUNT"


def test_registryDeviceSupportAdd_registers_the_dset(ioc):
    """EPICS finds the registered dset (registryDeviceSupportFind), and a
    record of its DTYP processes through it: read_ai stores RVAL 7."""
    assert "REGISTERED True" in ioc.output()
    ioc.caput("REF:DEVAI.PROC", "1")
    assert ioc.wait_value("REF:DEVAI", "7") == "7"


def test_scanIoRequest_processes_the_io_intr_record(ioc):
    """scanIoInit made the IOSCANPVT get_ioint_info gave EPICS;
    scanIoRequest on it processes the I/O Intr record (and its FLNK), which a
    camonitor sees."""
    assert ioc.caget("REF:INTR.SCAN") == "I/O Intr"
    before = int(float(ioc.caget("REF:COUNT")))
    with testing.monitor(ioc, "REF:COUNT") as mon:
        assert mon.stdout.readline().split()[3] == str(before)     # connected
        run(ioc, "trigger()")
        ioc.wait_value("REF:COUNT", str(before + 1))
    assert [line.split()[3] for line in mon.stdout.read().splitlines()] == [str(before + 1)]
    assert "'REF:INTR'" in run(ioc, "print(reads)")
    run(ioc, "trigger(); trigger()")
    assert ioc.wait_value("REF:COUNT", str(before + 3)) == str(before + 3)


def test_device_return_codes(ioc):
    """EPICS_OK, EPICS_ERROR and NO_CONVERT as EPICS reads them: read_ai's
    EPICS_OK has the ai convert RVAL (7), NO_CONVERT keeps the VAL it wrote
    (3.5); get_ioint_info's EPICS_ERROR makes EPICS scan the record Passive."""
    assert printed(ioc, "CODES", "print('CODES', device.EPICS_OK, device.EPICS_ERROR, "
                                 "device.NO_CONVERT)") == "0 1 2"
    run(ioc, "ai_status[0] = device.NO_CONVERT")
    ioc.caput("REF:DEVAI.PROC", "1")
    assert ioc.caget("REF:DEVAI") == "3.5"
    run(ioc, "ai_status[0] = device.EPICS_OK")
    ioc.caput("REF:DEVAI.PROC", "1")
    assert ioc.caget("REF:DEVAI") == "7"
    assert ioc.caget("REF:REFUSED.SCAN") == "Passive"


def test_callbackSetQueueSize_before_iocInit(ioc):
    """The size EPICS's callbackQueueStatus reports after iocInit (default 2000)."""
    assert ioc.caget("REF:QSIZE") == "5432"


def test_recGblResetAlarms_raises_the_pending_alarm(ioc):
    """NSTA/NSEV set as device support does; recGblResetAlarms makes them
    the record's STAT/SEVR and posts them (DBE_ALARM) to monitors."""
    assert ioc.caget("REF:ALARMED.SEVR") == "NO_ALARM"
    with testing.monitor(ioc, "REF:ALARMED") as mon:
        mask = printed(ioc, "RESET MASK",
                       "raise_alarm('REF:ALARMED', alarm.HIGH_ALARM, alarm.MINOR_ALARM)")
        ioc.wait_value("REF:ALARMED.SEVR", "MINOR")
    assert mask == "4"                                     # DBE_ALARM
    assert ioc.caget("REF:ALARMED.STAT") == "HIGH"
    assert re.search(r"REF:ALARMED .* 3 HIGH MINOR", mon.stdout.read()), "no alarm update"


def test_install_pv_logging_logs_puts_under_its_acf(ioc):
    """install_pv_logging(acf): every client put is printed, and the ACF's
    rules apply (REF:LOCKED is in its read-only group)."""
    ioc.caput("REF:LOGGED", "5")
    testing.wait_until(lambda: re.search(r"^\S+@\S+ REF:LOGGED\.VAL 0 -> 5$", ioc.output(),
                                         re.M), what="the put's log line")
    refused = ioc.caput("REF:LOCKED", "5")
    assert "Write access denied" in refused.stdout
    assert ioc.caget("REF:LOCKED") == "1"


def test_get_DBF_values_are_epics_field_types(ioc):
    """Each name's code is the type EPICS gives such a field (dbAddr.field_type)."""
    found = json.loads(printed(ioc, "FIELD TYPES", "field_types()"))
    assert len(found) == 18
    assert {pv: got for pv, (got, want) in found.items() if got != want} == {}
    line = [x for x in ioc.output().splitlines() if x.startswith("DBF VALUES ")][-1]
    ours, theirs = line.removeprefix("DBF VALUES ").split("} ")
    assert json.loads(ours + "}") == json.loads(theirs)


def test_auto_encode_passes_str_to_c(ioc):
    """auto_encode as an argtype: the script finds records by str name with it
    (dbNameToAddr); it encodes str and passes None."""
    assert printed(ioc, "ENC", "print('ENC', imports.auto_encode.from_param('REF:X'), "
                               "imports.auto_encode.from_param(None))") == "b'REF:X' None"
    assert printed(ioc, "ADDR", "print('ADDR', address('REF:LOGGED').field_size)") == "4"


def test_device_classes_describe_the_builders_records(ioc):
    checks = json.loads(printed(ioc, "CLASSES", "classes()"))
    assert checks == {"ProcessDeviceSupportCore": True, "waveform": True,
                      "waveform_out": True, "WaveformBase": True}


def test_device_module_state(ioc):
    """device.dispatcher is iocInit's; device.blocking follows SetBlocking
    (which returns the old default); LookupRecord of no record: KeyError."""
    assert json.loads(printed(ioc, "STATE", "module_state()")) == {
        "dispatcher": True, "blocking": [False, False, True, False], "missing": "KeyError"}


def test_db_put_field_process_without_processing(ioc):
    """process False only puts: the value changes, on_update does not run."""
    updates = int(ioc.caget("REF:UPDATES"))
    run(ioc, "put_out(41, False)")
    assert ioc.wait_value("REF:OUT", "41") == "41"
    assert ioc.caget("REF:UPDATES") == str(updates)
    run(ioc, "put_out(42, True)")
    assert ioc.wait_value("REF:UPDATES", str(updates + 1)) == str(updates + 1)
    assert ioc.caget("REF:OUT") == "42"


# pythonSoftIOC's PythonDevice makers and the EPICS record type each makes
# (its long strings and output waveforms are waveform records too).
MAKERS = {"ai": "ai", "ao": "ao", "bi": "bi", "bo": "bo", "longin": "longin",
          "longout": "longout", "int64in": "int64in", "int64out": "int64out", "mbbi": "mbbi",
          "mbbo": "mbbo", "stringin": "stringin", "stringout": "stringout",
          "waveform": "waveform", "waveform_out": "waveform", "long_stringin": "waveform",
          "long_stringout": "waveform"}


@pytest.mark.parametrize("maker", MAKERS)
def test_python_device_makers(ioc, maker):
    assert ioc.caget(f"REF:PD_{maker.upper()}.RTYP") == MAKERS[maker]


def test_output_set_takes_process_severity_alarm_positionally(ioc):
    updates = int(ioc.caget("REF:UPDATES"))
    run(ioc, "out.set(5, True, alarm.MAJOR_ALARM, alarm.HIHI_ALARM)")
    assert ioc.wait_value("REF:UPDATES", str(updates + 1)) == str(updates + 1)   # processed
    assert ioc.caget("REF:OUT") == "5"
    assert (ioc.caget("REF:OUT.SEVR"), ioc.caget("REF:OUT.STAT")) == ("MAJOR", "HIHI")
    run(ioc, "out.set(6, False)")
    assert ioc.wait_value("REF:OUT", "6") == "6"
    assert ioc.caget("REF:UPDATES") == str(updates + 1)                       # not processed


def test_input_set_takes_a_timestamp_positionally(ioc):
    run(ioc, "stamped.set(1.5, alarm.MINOR_ALARM, alarm.LOW_ALARM, 1e9)")
    assert ioc.wait_value("REF:STAMPED", "1.5") == "1.5"
    assert ioc.run_tool("caget", "-a", "REF:STAMPED").stdout.split()[1:] == [
        "2001-09-09", "01:46:40.000000", "1.5", "LOW", "MINOR"]


def test_epicsExitCallAtExits_then_imports_epicsExit():
    """epicsExitCallAtExits runs EPICS's exit handlers when called (once);
    imports.epicsExit(code) leaves with the code."""
    with IOCProcess([SCRIPT, "--exit-only"], wait_for="REF:READY") as ioc:
        assert "EPICS EXIT HANDLER RAN" not in ioc.output()
        assert "EPICS EXIT HANDLER RAN" in run(ioc, "imports.epicsExitCallAtExits()")
        ioc.send("imports.epicsExit(4)")
        assert ioc.proc.wait(10) == 4
        assert ioc.output().count("EPICS EXIT HANDLER RAN") == 1


def test_softioc_epicsExit_runs_both_exit_handlers():
    """softioc.epicsExit (pythonSoftIOC's alias of safeEpicsExit): Python's
    atexit handlers and EPICS's, then the status."""
    with IOCProcess([SCRIPT, "--exit-only"], wait_for="REF:READY") as ioc:
        ioc.send("softioc.epicsExit(6)")
        assert ioc.proc.wait(10) == 6
        out = ioc.output()
        assert "PYTHON ATEXIT RAN" in out and "EPICS EXIT HANDLER RAN" in out
