"""A dispatcher's own thread takes an EPICS thread priority when the process
may use real-time scheduling, with EPICS's mapping onto SCHED_FIFO, and the
normal class otherwise (or with PYTHONIOC_DISPATCHER_PRIORITY=NO)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from softioc import _dispatch
from softioc.asyncio_dispatcher import AsyncioDispatcher
from softioc.testing import IOCProcess

T = TypeVar("T")


def in_thread(func: Callable[[], T]) -> T:
    """func() run in a thread of its own (scheduling changes stay there)."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(func()))
    thread.start()
    thread.join()
    return result[0]


def may_use_realtime() -> bool:
    """Whether a thread of this process may take SCHED_FIFO."""
    def probe() -> bool:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            return True
        except OSError:
            return False

    return in_thread(probe)


realtime = pytest.mark.skipif(not may_use_realtime(),
                              reason="this process may not use real-time scheduling: run "
                                     "the tests as root (or with CAP_SYS_NICE)")


def threads(pid: int) -> list[tuple[str, int, int]]:
    """(name, policy, priority) of every thread of pid."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            name = f.read().strip()
        policy = os.sched_getscheduler(int(tid)) & ~os.SCHED_RESET_ON_FORK
        out.append((name, policy, os.sched_getparam(int(tid)).sched_priority))
    return out


def python_fifo_threads(pid: int) -> list[int]:
    """The SCHED_FIFO priorities of the threads Python started: EPICS names its
    own; Python's carry the interpreter's name, or from 3.14 their own."""
    return [prio for name, policy, prio in threads(pid)
            if name.startswith(("python", "softioc-")) and policy == os.SCHED_FIFO]


IOC = """
from softioc import builder, softioc
echo = builder.aIn("PRIO:ECHO", 0.0)
builder.aOut("PRIO:SET", 0.0, blocking=True, on_update=lambda v: echo.set(2 * v))
builder.LoadDatabase()
softioc.iocInit()
softioc.non_interactive_ioc()
"""


def serve(tmp_path, dispatcher: str, priority: str | None = None) -> IOCProcess:
    """An IOC whose blocking output runs on_update on the dispatcher."""
    script = tmp_path / "ioc.py"
    script.write_text(IOC)
    env = {"PYTHONIOC_DISPATCHER": dispatcher}
    if priority is not None:
        env["PYTHONIOC_DISPATCHER_PRIORITY"] = priority
    return IOCProcess([str(script)], wait_for="PRIO:SET", env=env)


@pytest.mark.parametrize("priority, low, top, fifo", [
    (50, 1, 99, 50), (59, 1, 99, 58), (10, 1, 99, 10), (99, 1, 99, 98), (0, 1, 99, 1),
    (50, 1, 50, 25), (50, 1, 59, 29), (50, 1, 1, 1),
])
def test_mapping_is_epics_own(priority, low, top, fifo):
    """osdThread.c: (int)(priority * ((max - min) / 100.0) + min), max if max == min."""
    assert _dispatch.epics_to_fifo(priority, low, top) == fifo


@pytest.mark.parametrize("limit, taken", [(99, 50), (50, 25), (1, 1), (0, None)])
def test_rtprio_limit_lowers_the_top_as_in_epics(monkeypatch, limit, taken):
    """With RLIMIT_RTPRIO = limit the highest FIFO priority allowed is found by
    trying (EPICS's find_pri_range) and the EPICS scale spread up to it."""
    state: dict[str, tuple[int, int]] = {}

    def setscheduler(pid: int, policy: int, param: os.sched_param) -> None:
        if policy != os.SCHED_OTHER and param.sched_priority > limit:
            raise PermissionError(1, "Operation not permitted")
        state["now"] = (policy, param.sched_priority)

    monkeypatch.setattr(os, "sched_get_priority_min", lambda policy: 1)
    monkeypatch.setattr(os, "sched_get_priority_max", lambda policy: 99)
    monkeypatch.setattr(os, "sched_setscheduler", setscheduler)
    assert _dispatch.take_epics_priority(50) is (taken is not None)
    if taken is None:
        assert "now" not in state                  # never left at a trial priority
    else:
        assert state["now"] == (os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, taken)


@pytest.mark.parametrize("text", ["abc", "100", "-1", "5.5"])
def test_bad_priority_is_refused(monkeypatch, text):
    monkeypatch.setenv("PYTHONIOC_DISPATCHER_PRIORITY", text)
    with pytest.raises(ValueError, match="PYTHONIOC_DISPATCHER_PRIORITY"):
        AsyncioDispatcher()
    with pytest.raises(ValueError, match="0 to 99"):
        _dispatch.ThreadDispatcher()


@realtime
@pytest.mark.parametrize("dispatcher", ["asyncio", "thread"])
def test_dispatcher_thread_has_epics_priority(tmp_path, dispatcher):
    with serve(tmp_path, dispatcher) as ioc:
        by_name = {name: (policy, prio) for name, policy, prio in threads(ioc.proc.pid)}
        # EPICS runs dbCaLink at epicsThreadPriorityMedium (50): the dispatcher has
        # the same FIFO priority; and cbLow (59) the one our mapping gives 59.
        policy, medium = by_name["dbCaLink"]
        assert policy == os.SCHED_FIFO
        assert python_fifo_threads(ioc.proc.pid) == [medium]
        assert by_name["cbLow"] == (os.SCHED_FIFO, fifo_of(59))
        assert ioc.caput("PRIO:SET", "7").returncode == 0   # caput -c waits for on_update
        assert float(ioc.caget("PRIO:ECHO")) == 14


@realtime
def test_priority_can_be_chosen_or_refused(tmp_path):
    with serve(tmp_path, "asyncio", "20") as ioc:
        assert python_fifo_threads(ioc.proc.pid) == [fifo_of(20)]
    with serve(tmp_path, "thread", "NO") as ioc:
        assert python_fifo_threads(ioc.proc.pid) == []
        assert ("cbLow", os.SCHED_FIFO) in [(n, p) for n, p, _ in threads(ioc.proc.pid)]


def fifo_of(epics_priority: int) -> int:
    """The SCHED_FIFO priority a thread of epics_priority gets, read back from a
    thread that took it."""
    def take() -> int:
        assert _dispatch.take_epics_priority(epics_priority)
        return os.sched_getparam(0).sched_priority

    return in_thread(take)


@realtime
def test_threads_started_from_the_dispatcher_thread_are_normal():
    """An executor's worker or a thread on_update starts does not inherit the
    real-time priority."""
    def child() -> tuple[int, int]:
        return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority

    def dispatcher_thread() -> tuple[int, int]:
        assert _dispatch.take_epics_priority(_dispatch.DEFAULT_PRIORITY)
        assert os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO
        return in_thread(child)

    assert in_thread(dispatcher_thread) == (os.SCHED_OTHER, 0)
