"""Exceptions in user callbacks are logged with their traceback, show as an
alarm on the record, and the IOC keeps serving."""

import time

import pytest

from softioc.testing import IOCProcess

from .conftest import IOCS


@pytest.fixture(scope="module")
def ioc():
    with IOCProcess([str(IOCS / "errors_ioc.py")], wait_for="ERR:FINE") as ioc:
        yield ioc


def wait_sevr(ioc, pv, sevr):
    deadline = time.monotonic() + 5
    while ioc.caget(pv + ".SEVR") != sevr and time.monotonic() < deadline:
        time.sleep(0.05)
    return ioc.caget(pv + ".SEVR")


@pytest.mark.parametrize("pv", ["ERR:SYNC", "ERR:ASYNC", "ERR:BLOCK"])
def test_failed_on_update_alarms(ioc, pv):
    ioc.caput(pv, "3")
    assert wait_sevr(ioc, pv, "INVALID") == "INVALID"
    assert ioc.caget(pv + ".STAT") == "WRITE"
    assert ioc.caget("ERR:FINE") == "1"          # everything else still served
    ioc.send("fine.set(2); fine.set(1)")


def test_next_good_processing_clears_the_alarm(ioc):
    ioc.caput("ERR:SYNC", "4")
    assert wait_sevr(ioc, "ERR:SYNC", "INVALID") == "INVALID"
    ioc.send("sync._configure(on_update=print)")
    ioc.caput("ERR:SYNC", "5")
    assert wait_sevr(ioc, "ERR:SYNC", "NO_ALARM") == "NO_ALARM"


def test_tracebacks_logged(ioc):
    ioc.stop()
    out = ioc.output()
    assert "Traceback" in out
    assert "RuntimeError: sync boom 3.0" in out
    assert "ValueError: async boom 3.0" in out
