"""softioc.testing.monitor: output readable during and after the block, no pipe left open."""

import os
import time

import pytest

from softioc import testing
from softioc.testing import IOCProcess, epics_tool

DEMO = ["-m", "softioc", "demo"]


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_monitor_output_after_the_block_and_pipe_closed():
    with IOCProcess(DEMO, wait_for="DEMO:UPTIME") as ioc:
        before = open_fds()
        with testing.monitor(ioc, "DEMO:SETPOINT") as mon:
            first = mon.stdout.readline()               # camonitor's initial value
            assert first.startswith("DEMO:SETPOINT") and first.endswith("\n"), first
            for value in ("12.5", "42"):
                assert "rror" not in ioc.caput("DEMO:SETPOINT", value).stdout
        assert mon.returncode is not None               # stopped at the end of the block
        # The real pipe is closed already: no file descriptor left for the GC.
        deadline = time.monotonic() + 10
        while open_fds() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_fds() == before
        # ... and what it printed after the first line is still there to read.
        rest = mon.stdout.read()
        lines = [line for line in rest.splitlines() if line.startswith("DEMO:SETPOINT")]
        assert [line.split()[-1] for line in lines][-2:] == ["12.5", "42"], rest
        assert mon.stdout.read() == ""
        mon.stdout.close()                              # harmless, as on a pipe


def test_monitor_lines_iterate_like_a_pipe():
    with IOCProcess(DEMO, wait_for="DEMO:UPTIME") as ioc:
        with testing.monitor(ioc, "DEMO:MESSAGE", tool="pvmonitor") as mon:
            for line in mon.stdout:
                if "hello" in line:
                    break
            ioc.caput("DEMO:MESSAGE", "again")
            for line in mon.stdout:                     # the iteration goes on live
                if "again" in line:
                    break
            ioc.caput("DEMO:MESSAGE", "last")
        # The block's end waited for the monitor to catch up, and iteration
        # after the block ends where the monitor's output ended.
        assert any("last" in line for line in mon.stdout)
        assert list(mon.stdout) == []


LATE_DB = """
record(ao, "LATE:SET") {
    field(FLNK, "LATE:DELAY")
}
record(calcout, "LATE:DELAY") {
    field(INPA, "LATE:SET")
    field(CALC, "A")
    field(ODLY, "0.1")
    field(OUT, "LATE:ECHO PP")
}
record(ao, "LATE:ECHO") {}
"""


@pytest.mark.parametrize("tool", ["camonitor", "pvmonitor"])
def test_monitor_end_waits_for_an_update_still_on_its_way(tmp_path, tool):
    """An update 0.1 s after the caput, past the block's end, is still in the output."""
    db = tmp_path / "late.db"
    db.write_text(LATE_DB)
    with IOCProcess([epics_tool("softIocPVA"), "-d", str(db)], python=False,
                    wait_for="LATE:ECHO") as ioc:
        with testing.monitor(ioc, "LATE:ECHO", tool=tool) as mon:
            mon.stdout.readline()                       # connected: the first value
            ioc.caput("LATE:SET", "7", callback=False)   # returns before ECHO changes
        assert [line.split()[-1] for line in mon.stdout.read().splitlines()] == ["7"]
