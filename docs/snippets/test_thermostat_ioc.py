import time
from pathlib import Path

import pytest
from p4p.client.thread import Context

from softioc.testing import IOCProcess

IOC = Path(__file__).parent / "thermostat_ioc.py"


def wait_for(read, wanted, timeout=5.0):
    """Poll until read() returns wanted: the IOC updates in its own time."""
    deadline = time.monotonic() + timeout
    while read() != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return read()


def test_target_reaches_temperature(pythonioc):
    # A fresh IOC for this test: a subprocess on ports of its own, on
    # 127.0.0.1 only, stopped when the test ends.
    ioc = pythonioc(IOC, wait_for="THERMO:TEMPERATURE")
    assert ioc.caget("THERMO:TEMPERATURE") == "20"
    ioc.caput("THERMO:TARGET", "25")
    assert wait_for(lambda: ioc.caget("THERMO:TEMPERATURE"), "25") == "25"
    ioc.caput("THERMO:TARGET", "99")
    assert ioc.caget("THERMO:TARGET") == "30"          # DRVH


@pytest.fixture(scope="module")
def thermostat():
    # One IOC shared by the tests of this module.
    with IOCProcess([str(IOC)], wait_for="THERMO:TEMPERATURE") as ioc:
        yield ioc


def test_over_pv_access(thermostat):
    # thermostat.env holds the client settings for this IOC: give them to p4p.
    conf = {k: v for k, v in thermostat.env.items() if k.startswith("EPICS_PVA")}
    with Context("pva", conf=conf, useenv=False) as ctx:
        ctx.put("THERMO:TARGET", 22.5)
        assert wait_for(lambda: ctx.get("THERMO:TEMPERATURE"), 22.5) == 22.5


def test_units(thermostat):
    assert thermostat.caget("THERMO:TEMPERATURE.EGU") == "degC"
    assert "degC" in thermostat.pvget("THERMO:TEMPERATURE", "-v")
