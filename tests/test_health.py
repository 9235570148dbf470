"""softioc.health: every record answers with plausible values, the client
counts follow real CA and PVA clients, and CPU alarms when the IOC is busy."""

import os
import platform
import socket
import time

import pytest

from softioc import testing
from softioc.testing import IOCProcess

from .clients import caget_many
from .conftest import IOCS

NAMES = ["UPTIME", "START_TOD", "CPU", "MEM_RSS", "THREADS", "FDS", "CA_CLIENTS",
         "CA_CHANNELS", "PVA_CLIENTS", "RECORDS", "HEARTBEAT", "PYTHON_VERSION",
         "EPICS_VERSION", "HOSTNAME", "LIVE", "LIVE_MSG", "READY", "READY_MSG",
         "DISPATCH_AGE"]
# health_ioc.py: 19 health records, 5 builder records, 1 from extra.db
ALL_RECORDS = len(NAMES) + 5 + 1


@pytest.fixture(scope="module")
def ioc():
    start = time.monotonic()
    with IOCProcess([str(IOCS / "health_ioc.py")], wait_for="HLTH:HEARTBEAT") as ioc:
        ioc.fixture_start = start
        yield ioc


def test_every_record_answers(ioc):
    values = {name: ioc.caget(f"HLTH:{name}", *(["-S"] if name.endswith("_MSG") else []))
              for name in NAMES}
    # The IOC started after this module's fixture did, and counts in seconds.
    assert 0 <= int(values["UPTIME"]) <= time.monotonic() - ioc.fixture_start + 1
    time.strptime(values["START_TOD"], "%Y-%m-%d %H:%M:%S")
    assert 0 <= float(values["CPU"]) <= 100 * (os.cpu_count() or 1)
    assert float(values["MEM_RSS"]) > 1          # MB: an IOC is bigger than that
    assert int(values["THREADS"]) >= 2           # at least ours and EPICS's
    assert int(values["FDS"]) >= 3
    # Counts are whole numbers (how they follow clients is tested below).
    for name in ("CA_CLIENTS", "CA_CHANNELS", "PVA_CLIENTS", "HEARTBEAT"):
        assert values[name].isdigit(), (name, values[name])
    assert values["PYTHON_VERSION"] == platform.python_version()
    assert values["EPICS_VERSION"].startswith("7.")
    assert values["HOSTNAME"] == socket.gethostname()[:39]
    # What `pythonioc probe` reads (tests/test_probe.py): a running IOC is live and ready.
    assert values["LIVE"] == values["READY"] == "Yes"
    assert values["LIVE_MSG"] == values["READY_MSG"] == ""
    assert 0 <= float(values["DISPATCH_AGE"]) < 2


def test_names_are_the_modules():
    from softioc import health

    assert list(health.NAMES) == NAMES


def test_records_counts_builder_and_db_records(ioc):
    assert int(ioc.caget("HLTH:RECORDS")) == ALL_RECORDS
    # create() left the caller's device name alone; the .db record loaded too
    assert ioc.caget("APP:AFTER") == "4"
    assert ioc.caget("DB:SUM") == "6"


def test_uptime_and_heartbeat_count_up(ioc):
    uptime, beat = int(ioc.caget("HLTH:UPTIME")), int(ioc.caget("HLTH:HEARTBEAT"))
    assert int(ioc.wait_value("HLTH:HEARTBEAT", lambda t: int(t) > beat)) > beat
    assert int(ioc.wait_value("HLTH:UPTIME", lambda t: int(t) > uptime, timeout=10)) > uptime


def test_limits_and_units(ioc):
    expected = {"HLTH:CPU.HIGH": "20", "HLTH:CPU.HIHI": "40", "HLTH:CPU.HHSV": "MAJOR",
                "HLTH:MEM_RSS.EGU": "MB", "HLTH:UPTIME.EGU": "s"}
    assert caget_many(ioc, *expected) == expected


def test_ca_clients_while_camonitor_connected(ioc):
    with testing.monitor(ioc, "HLTH:HEARTBEAT", "APP:A", settle=0):
        # camonitor's circuit and 2 channels, and caget's own while it reads
        assert 1 <= int(ioc.wait_value("HLTH:CA_CLIENTS", lambda t: int(t) >= 1)) <= 2
        assert 2 <= int(ioc.wait_value("HLTH:CA_CHANNELS", lambda t: int(t) >= 2)) <= 3
    # camonitor gone: at most the channel of a caget reading it
    assert int(ioc.wait_value("HLTH:CA_CHANNELS", lambda t: int(t) <= 1)) <= 1


def test_pva_clients_follow_pvmonitor(ioc):
    assert ioc.wait_value("HLTH:PVA_CLIENTS", lambda t: t == "0") == "0"
    with testing.monitor(ioc, "HLTH:HEARTBEAT", tool="pvmonitor", settle=0) as mon:
        assert ioc.wait_value("HLTH:PVA_CLIENTS", lambda t: t == "1") == "1"
    assert mon.returncode is not None
    assert ioc.wait_value("HLTH:PVA_CLIENTS", lambda t: t == "0") == "0"


def test_cpu_alarm_when_busy(ioc):
    assert ioc.wait_value("HLTH:CPU.SEVR", lambda t: t == "NO_ALARM") == "NO_ALARM"
    # A low HIHI for this test: on a loaded machine the busy thread may get
    # well under the 40 % of the default limit.
    ioc.caput("HLTH:CPU.HIHI", "10")
    ioc.send("start_burn()")
    try:
        try:
            testing.wait_until(
                lambda: "HIHI MAJOR" in ioc.run_tool("caget", "-a", "HLTH:CPU").stdout,
                timeout=20, what="HLTH:CPU in HIHI MAJOR alarm")
        finally:
            ioc.send("stop_burn()")
        # back under 10 %, the low limit still in place
        assert ioc.wait_value("HLTH:CPU.SEVR", lambda t: t == "NO_ALARM", timeout=10) == "NO_ALARM"
    finally:
        ioc.caput("HLTH:CPU.HIHI", "40")


def test_pva_serves_the_alarm_too(ioc):
    out = ioc.pvget("HLTH:CPU", "-M", "raw")
    assert "alarm" in out and "display" in out


def test_clean_exit(ioc):
    """Last: the updating thread stops with the IOC (end of stdin), no errors."""
    assert ioc.stop() == 0
    assert "Traceback" not in ioc.output() and "rror" not in ioc.output(), ioc.output()


def test_create_checks_its_arguments():
    from softioc import health

    with pytest.raises(ValueError, match="prefix"):
        health.create(":")


def test_cpu_reading_right_after_start_is_not_inflated():
    """A reading a few microseconds after the last one (update() at start) keeps
    the last figure: psutil's cpu_percent turned one 10 ms tick into 1500 %."""
    import psutil

    from softioc.health import Health

    health = Health.__new__(Health)
    health._proc = psutil.Process()
    health._cpu_mark = (time.monotonic(), health._cpu_seconds())
    health._cpu_last = 0.0
    readings, expected = [], []
    for _ in range(3):
        health._cpu_percent()
        wall, cpu = time.monotonic(), time.process_time()
        end = wall + 0.3
        while time.monotonic() < end:       # busy: one core, about 100 % if not loaded
            pass
        readings += [health._cpu_percent(), health._cpu_percent()]
        # what this process really got, however loaded the machine is
        expected.append(100 * (time.process_time() - cpu) / (time.monotonic() - wall))
    assert all(0 <= r <= 100 * (os.cpu_count() or 1) for r in readings), readings
    assert readings[-1] == readings[-2], readings
    assert abs(readings[-1] - expected[-1]) < 15, (readings, expected)
