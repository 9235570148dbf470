"""softioc.testing.monitor: output readable during and after the block, no pipe left open."""

import os
import time

from softioc import testing
from softioc.testing import IOCProcess

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
        assert any("again" in line for line in mon.stdout)
