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


def test_server_threads_keep_one_thread_state_each():
    """A CA server thread calling Python keeps its thread state while it
    lives (a new one per call was half a put's round trip) and gives it back
    when its client leaves: 20 clients one after another leave no states."""
    with IOCProcess([str(IOCS / "threadstate_ioc.py")], wait_for="TS:STATES") as ioc:
        ioc.caput("TS:OUT", "1")
        ioc.caput("TS:CHECKED", "1")
        time.sleep(0.3)
        before = int(ioc.caget("TS:STATES"))
        for i in range(2, 22):
            ioc.caput("TS:OUT", str(i))              # each caput: a new client thread
            ioc.caput("TS:CHECKED", str(i))
        ioc.wait_value("TS:WRITES", "21")
        time.sleep(0.3)
        assert int(ioc.caget("TS:STATES")) <= before + 1
