"""The seed's two examples, verbatim, end to end with real clients."""

import time
from pathlib import Path

import pytest

from softioc.testing import IOCProcess, epics_tool

EXAMPLES = Path(__file__).parent.parent / "examples"
pytest.importorskip("cothread")


def wait_for(get, check, timeout=10.0):
    deadline = time.monotonic() + timeout
    value = get()
    while not check(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = get()
    return value


def test_dynamically_created_pvs():
    with IOCProcess([str(EXAMPLES / "device_ioc.py")], wait_for="SIMDEV:COUNT",
                    cwd=str(EXAMPLES)) as ioc:
        assert ioc.caget("SIMDEV:GAIN") == "2.5"
        first = float(ioc.caget("SIMDEV:COUNT"))
        later = wait_for(lambda: float(ioc.caget("SIMDEV:COUNT")), lambda v: v >= first + 5)
        assert later >= first + 5          # the device's changes reach the PV
        assert ioc.stop() == 0


def test_calculating_pvs_from_other_values():
    upstream = IOCProcess([epics_tool("softIoc"), "-S", "-d",
                           str(EXAMPLES / "upstream_devices.db")],
                          python=False, wait_for="DEVICE99:CURRENT")
    try:
        # The upstream on its port, and this IOC itself on its own (default) port.
        env = {"EPICS_CA_ADDR_LIST": f"127.0.0.1:{upstream.ca_port} 127.0.0.1"}
        with IOCProcess([str(EXAMPLES / "average_ioc.py")], env=env,
                        wait_for="AVERAGE:CURRENT", cwd=str(EXAMPLES)) as ioc:
            assert float(ioc.caget("AVERAGE:CURRENT")) == pytest.approx(49.5)
            upstream.caput("DEVICE0:CURRENT", "100")
            value = wait_for(lambda: float(ioc.caget("AVERAGE:CURRENT")),
                             lambda v: v == pytest.approx(50.5))
            assert value == pytest.approx(50.5)
            assert ioc.stop() == 0
    finally:
        upstream.stop()
