"""on_update and blocking puts under the thread, cothread and asyncio dispatchers;
.db files with macros load beside builder records."""

import time

import pytest

from softioc.testing import IOCProcess, wait_until

from .clients import python_client
from .conftest import IOCS


def _has_cothread() -> bool:
    try:
        import cothread  # noqa: F401
    except ImportError:
        return False
    return True


# cothread has no build for free-threaded CPython: those cases skip there, nowhere else.
COTHREAD = pytest.param("cothread", marks=pytest.mark.skipif(
    not _has_cothread(), reason="pip install cothread (in the test extra)"))


@pytest.mark.parametrize("kind, name", [("thread", "ThreadDispatcher"),
                                        pytest.param("cothread", "CothreadDispatcher",
                                                     marks=COTHREAD.marks),
                                        ("asyncio", "AsyncioDispatcher")])
def test_dispatcher(kind, name):
    with IOCProcess([str(IOCS / "dispatch_ioc.py"), kind], wait_for="DISP:IN") as ioc:
        ioc.caput("DISP:OUT", "21")
        ioc.wait_value("DISP:IN", "42")
        ioc.wait_value("DISP:SUM", "142")       # calc from extra.db follows DISP:IN
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
        # the last client's server thread may take a moment to leave
        wait_until(lambda: int(ioc.caget("TS:STATES")) <= before + 1, timeout=10,
                   what=f"TS:STATES back to at most {before + 1}")


PUT_TIMES = """
import statistics, time
from epics import caput
times = []
for i in range(1, 21):
    t0 = time.perf_counter()
    assert caput("BUSY:OUT", i, wait=True, timeout=10) == 1
    times.append(time.perf_counter() - t0)
print("median", statistics.median(times[1:]))
"""


@pytest.mark.parametrize("kind", ["thread", COTHREAD, "asyncio"])
def test_busy_python_does_not_hold_up_client_writes(kind):
    """With pythonIOC's dispatchers the server thread hands a write to
    on_update without the GIL: a Python thread that keeps the GIL for its
    whole 50 ms switch interval does not make put-callbacks wait for it
    (with another dispatcher each put waits for the GIL, ~50 ms)."""
    with IOCProcess([str(IOCS / "busy_ioc.py"), kind], wait_for="BUSY:OUT") as ioc:
        out = python_client(ioc, PUT_TIMES, timeout=60)
        median = float(out.split("median")[-1])
        assert median < 0.035, out      # ~0.05 when each put waits for the GIL
        ioc.wait_value("BUSY:COUNT", "20", timeout=20)      # every on_update ran
