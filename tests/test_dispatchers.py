"""on_update and blocking puts under the thread, cothread and asyncio dispatchers;
.db files with macros load beside builder records."""

import time

import pytest

from softioc.testing import IOCProcess

from .conftest import IOCS


def wait_value(ioc, pv, value, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ioc.caget(pv) == value:
            return
        time.sleep(0.05)
    assert ioc.caget(pv) == value


@pytest.mark.parametrize("kind, name", [("thread", "ThreadDispatcher"),
                                        ("cothread", "CothreadDispatcher"),
                                        ("asyncio", "AsyncioDispatcher")])
def test_dispatcher(kind, name):
    with IOCProcess([str(IOCS / "dispatch_ioc.py"), kind], wait_for="DISP:IN") as ioc:
        ioc.caput("DISP:OUT", "21")
        wait_value(ioc, "DISP:IN", "42")
        wait_value(ioc, "DISP:SUM", "142")       # calc from extra.db follows DISP:IN
        start = time.monotonic()
        result = ioc.caput("DISP:BLOCK", "5")
        assert time.monotonic() - start >= 0.45
        assert "rror" not in result.stdout
        assert ioc.caget("DISP:IN") == "1005"     # on_update done before put completed
        assert ioc.stop() == 0
        assert f"dispatcher {name}" in ioc.output()
