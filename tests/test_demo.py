"""README's first command: ``pythonioc demo`` serves its records over CA and PVA."""

import pytest

from softioc.testing import IOCProcess


@pytest.mark.timeout(120)
def test_demo_serves_ca_and_pva():
    with IOCProcess(["-m", "softioc", "demo"], wait_for="DEMO:UPTIME") as ioc:
        assert ioc.caget("DEMO:MESSAGE") == "hello"
        assert "42" in ioc.caput("DEMO:SETPOINT", "42").stdout
        ioc.wait_value("DEMO:READBACK", lambda v: 41 < float(v) < 43, timeout=10)
        put = ioc.run_tool("pvput", "-w", "5", "DEMO:MESSAGE", "over pva")
        assert put.returncode == 0, put.stdout
        assert "over pva" in ioc.pvget("DEMO:MESSAGE")
        assert ioc.caget("DEMO:MESSAGE") == "over pva"      # one record, both protocols
        assert ioc.pvget("DEMO:SETPOINT").split()[-1] == "42"
