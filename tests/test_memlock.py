"""iocInit leaves memory unlocked unless PYTHONIOC_MEMLOCK=YES.

With real-time rights (root here) the EPICS core would lock the whole
address space at iocInit (mlockall): every thread stack and the Python heap.
"""

import os

import pytest

from softioc.testing import IOCProcess


def locked_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    raise AssertionError("no VmLck in /proc/PID/status")


def demo(env: dict[str, str]) -> IOCProcess:
    return IOCProcess(["-m", "softioc", "demo", "--non-interactive", "--prefix", "LCK"],
                      wait_for="LCK:SETPOINT", env=env)


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="without real-time rights nothing could be locked anyway: run "
                           "the tests as root")
def test_memory_not_locked_by_default(monkeypatch):
    monkeypatch.delenv("PYTHONIOC_MEMLOCK", raising=False)
    with demo({}) as ioc:
        assert locked_kb(ioc.proc.pid) == 0
        assert ioc.caget("LCK:SETPOINT") != ""


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="EPICS locks memory only with real-time rights: run the tests as root")
def test_memlock_yes_gives_epics_behaviour():
    with demo({"PYTHONIOC_MEMLOCK": "YES"}) as ioc:
        # mlockall(MCL_CURRENT | MCL_FUTURE): at least the interpreter and EPICS libraries.
        assert locked_kb(ioc.proc.pid) > 50 * 1024
