"""pythonSoftIOC's public API on a running IOC, over CA and PVA."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import softioc
from softioc import testing
from softioc.testing import IOCProcess

from ..clients import CLIENTS
from .conftest import IOCS

PROTOCOLS = ["ca", "pva"]


@pytest.fixture(params=PROTOCOLS)
def client(request, psi_ioc):
    c = CLIENTS[request.param](psi_ioc)
    yield c
    c.close()


def eventually(read, expected, timeout=5.0):
    """read() once it equals expected (or its last value)."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def alarm_of(ioc, protocol, pv):
    """(severity, status) names of a record, read over the protocol."""
    if protocol == "ca":
        return ioc.caget(pv + ".SEVR"), ioc.caget(pv + ".STAT")
    words = ioc.pvget(pv).split()
    return words[-3], words[-1]         # "... VALUE SEVERITY SOURCE STATUS"


def test_module_layout_checks(client):
    """RecordWrapper, ProcessDeviceSupportIn/Out, LookupRecord and
    LookupRecordList agree with the builder's records (checked in the IOC)."""
    assert client.get("PSI:CHECKS") == "ok"


def test_python_device_makes_a_record(client):
    assert client.get("PSI:PYDEV", like=2.5) == 2.5


def test_waveform_is_an_input_waveform(client, psi_ioc):
    assert list(client.get("PSI:WAVE", like=[])) == [1.0, 2.0, 3.0]
    assert psi_ioc.caget("PSI:WAVE.DTYP") == "Python"        # WaveformIn's, not WaveformOut's


def test_add_alias_names_the_same_record(client, psi_ioc):
    value = 41 if client.protocol == "ca" else 43
    assert client.put("PSI-ALIAS:OUT", value)
    assert eventually(lambda: client.get("PSI:COPY_DEST", like=0), value) == value
    assert client.get("PSI:ALIASED_OUT", like=0) == value
    assert client.get("PSI-ALIAS:AI", like=1.0) == client.get("PSI:AI", like=1.0)


def test_status_and_severity_keywords(client, psi_ioc):
    assert alarm_of(psi_ioc, client.protocol, "PSI:ALARMED") == ("MINOR", "HIGH")


def test_input_set_takes_severity_and_alarm_positionally(client, psi_ioc):
    value = 7.0 if client.protocol == "ca" else 9.0
    assert client.put("PSI:RAISE", value)
    assert eventually(lambda: client.get("PSI:AI", like=1.0), value) == value
    assert alarm_of(psi_ioc, client.protocol, "PSI:AI") == ("MAJOR", "HIHI")


def test_lookup_record_from_a_callback(client):
    value = 12 if client.protocol == "ca" else 13
    assert client.put("PSI:COPY_SRC", value)
    assert eventually(lambda: client.get("PSI:COPY_DEST", like=0), value) == value


def test_db_put_field_writes_another_records_field(client, psi_ioc):
    for index, egu in ((1, "um"), (0, "mm")):
        psi_ioc.caput("PSI:UNITS", str(index))
        assert eventually(lambda: client.get("PSI:AI.EGU"), egu) == egu


def test_db_put_field_process(client):
    value = 2.5 if client.protocol == "ca" else 3.5
    assert client.put("PSI:PUSH", value)
    assert eventually(lambda: client.get("PSI:PUSHED", like=1.0), 2 * value) == 2 * value


def test_db_get_field(client):
    value = 21 if client.protocol == "ca" else 22
    assert client.put("PSI:COPY_SRC", value)
    assert eventually(lambda: client.get("PSI:COPY_DEST", like=0), value) == value
    assert client.put("PSI:PULL", 1)
    assert eventually(lambda: client.get("PSI:PULLED", like=0), value) == value


@pytest.mark.parametrize("pv, blocking", [("PSI:BLOCKING", True), ("PSI:NONBLOCKING", False)])
def test_set_blocking_from_softioc_device(psi_ioc, pv, blocking):
    """SetBlocking(True): caput -c waits for the 1 s on_update; otherwise not."""
    start = time.monotonic()
    result = psi_ioc.caput(pv, str(time.monotonic() % 100))
    took = time.monotonic() - start
    assert "error" not in result.stdout.lower()
    assert (took >= 0.9) == blocking, took


def test_dev_ioc_stats_names(client, psi_ioc):
    assert client.get("PSI-STATS:RECORD_CNT", like=0) > 20
    assert client.get("PSI-STATS:EPICS_VERS").startswith("EPICS 7.")
    assert client.get("PSI-STATS:UPTIME").count(":") == 2       # hh:mm:ss
    # A camonitor holds one CA circuit open: the count sees it (counted every
    # CA_UPD_TIME seconds, 15 unless set).
    assert client.put("PSI-STATS:CA_UPD_TIME", 1)
    with testing.monitor(psi_ioc, "PSI-STATS:HEARTBEAT", settle=0):
        assert eventually(lambda: client.get("PSI-STATS:CA_CLNT_CNT", like=0) >= 1, True)
    beat = client.get("PSI-STATS:HEARTBEAT", like=0)
    assert eventually(lambda: client.get("PSI-STATS:HEARTBEAT", like=0) > beat, True)


def test_pvlog_logs_client_puts(client, psi_ioc):
    value = 31 if client.protocol == "ca" else 32
    assert client.put("PSI:COPY_SRC", value)
    line = "PSI:COPY_SRC.VAL "
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and f"-> {value}\n" not in psi_ioc.output():
        time.sleep(0.05)
    logged = [x for x in psi_ioc.output().splitlines() if line in x and x.endswith(f"-> {value}")]
    assert logged and "@" in logged[0].split()[0], psi_ioc.output()[-2000:]


# Each IOC shell command pythonSoftIOC's interactive_ioc offers, with what it prints.
COMMANDS = [
    ('dba("PSI:AI")', "Record Address"),
    ('dbl("PSI:P*")', "PSI:PYDEV"),
    ("dbnr()", "Record Type"),
    ('dbgrep("PSI:COPY*")', "PSI:COPY_DEST"),
    ('dbgf("PSI:PYDEV")', "2.5"),
    ('dbpf("PSI:PUSHED.DESC", "via dbpf")', "via dbpf"),
    ('dbpr("PSI:PYDEV")', "NAME: PSI:PYDEV"),
    ('dbtr("PSI:PYDEV")', "PSI:PYDEV"),
    ('dbtgf("PSI:PYDEV")', "DBF_DOUBLE:         2.5"),
    ('dbtpf("PSI:PUSHED.DESC", "via dbtpf")', "DBR_STRING"),
    ('dbtpn("PSI:PYDEV", "2.5")', "PSI:PYDEV"),
    ('dbior("", 0)', ""),
    ("dbhcr()", "PSI:PYDEV"),
    ('gft("PSI:PYDEV")', "Record Name: PSI:PYDEV"),
    ('pft("PSI:PUSHED.DESC", "via pft")', "Record Name: PSI:PUSHED"),
    ('tpn("PSI:PYDEV", "2.5")', "tpnCallback"),
    ('dblsr("PSI:PYDEV", 1)', "Lock Set"),
    ("dbLockShowLocked(0)", "Active lockSets"),
    ("scanppl(1.0)", "PSI:TICK"),
    ("scanpel(7)", "PSI:ON_EVENT"),
    ("scanpiol()", "PSI:INTR"),
    ("casr(0)", "Channel Access Server"),
    ('dbel("PSI:PYDEV")', "PSI:PYDEV"),
    ('dbcar("*", 0)', "CA links"),
    ("generalTimeReport(1)", "Time Providers"),
    ("eltc(1)", ""),
]


@pytest.mark.parametrize("command, shows", COMMANDS, ids=[c.split("(")[0] for c, _ in COMMANDS])
def test_shell_command(psi_ioc, command, shows):
    marker = f"END-{command.split('(')[0]}"
    start = len(psi_ioc.output())
    psi_ioc.send(f"{command}; print({marker!r})")
    # What the command printed, the marker after it; some print from an EPICS
    # thread when their work completes (dbtpn, tpn), which may be after it.
    def printed():
        new = psi_ioc.output()[start:]
        return new if marker in new and shows in new else ""

    try:
        answer = testing.wait_until(printed, what=f"{command} printing {shows!r}")
    except TimeoutError:
        raise AssertionError(psi_ioc.output()[start:][-2000:]) from None
    assert "Error" not in answer and "Traceback" not in answer, answer


def test_every_command_is_tested():
    from softioc import softioc as ioc_module
    tested = {c.split("(")[0] for c, _ in COMMANDS} | {"exit"}
    assert set(ioc_module.command_names) == tested


def test_shell_exit_runs_python_exit_handlers():
    """Typing plain ``exit`` ends the IOC through the Python exit handlers."""
    with IOCProcess([str(IOCS / "psi_api_ioc.py")], wait_for="PSI:CHECKS") as ioc:
        ioc.send("exit")
        assert ioc.proc.wait(10) == 0
        assert "PYTHON ATEXIT RAN" in ioc.output()


def test_safe_epics_exit_keeps_the_status():
    with IOCProcess([str(IOCS / "psi_api_ioc.py")], wait_for="PSI:CHECKS") as ioc:
        ioc.send("softioc.safeEpicsExit(3)")
        assert ioc.proc.wait(10) == 3
        assert "PYTHON ATEXIT RAN" in ioc.output()


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_pva_served_by_default(psi_ioc):
    assert "2.5" in psi_ioc.pvget("PSI:PYDEV")
    assert listening(psi_ioc.pva_port)


def test_enable_pva_false_serves_no_pva():
    """iocInit(dispatcher, enable_pva=False): Channel Access only, and no PVA
    server at all (nothing listens on its port), so the process may run its own."""
    with IOCProcess([str(IOCS / "psi_api_ioc.py"), "--no-pva"], wait_for="PSI:CHECKS") as ioc:
        assert ioc.caget("PSI:PYDEV") == "2.5"
        result = ioc.run_tool("pvget", "-w", "2", "PSI:PYDEV", check=False)
        assert result.returncode != 0 and "2.5" not in result.stdout, result.stdout
        assert not listening(ioc.pva_port)


def test_python_m_softioc_runs_the_script_with_its_arguments():
    """``python -m softioc SCRIPT ARGS`` is ``python SCRIPT ARGS``: here the
    script sees ``--no-pva`` and serves CA only."""
    with IOCProcess(["-m", "softioc", str(IOCS / "psi_api_ioc.py"), "--no-pva"],
                    wait_for="PSI:CHECKS") as ioc:
        assert ioc.caget("PSI:CHECKS") == "ok"
        assert ioc.run_tool("pvget", "-w", "2", "PSI:PYDEV", check=False).returncode != 0
        ioc.send("softioc.safeEpicsExit(5)")
        assert ioc.proc.wait(10) == 5


@pytest.mark.parametrize("command", [[sys.executable, "-m", "softioc"],
                                     [str(Path(sys.executable).parent / "pythonioc")]],
                         ids=["python -m softioc", "pythonioc"])
def test_version(command):
    out = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == softioc.__version__
