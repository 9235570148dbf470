"""softioc.testing.epics_tool gives tools whose exit status can be trusted;
IOCProcess cleans up after an IOC that never starts."""

import gc
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from softioc.testing import IOCProcess, client_env, epics_tool, free_port


def test_tool_exits_nonzero_for_a_missing_pv():
    env = client_env(free_port(), free_port(), free_port())
    result = subprocess.run([epics_tool("caget"), "-w", "0.3", "NO:SUCH:PV"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=20)
    assert result.returncode != 0, result.stdout       # the wrapper would say 0
    assert "not found" in result.stdout, result.stdout


def test_unknown_tool_raises():
    with pytest.raises(FileNotFoundError, match="no binary nosuchtool"):
        epics_tool("nosuchtool")


def test_wait_until_returns_the_true_result():
    from softioc.testing import wait_until

    calls = iter([0, "", None, 42, 43])
    assert wait_until(lambda: next(calls), timeout=2, interval=0.01) == 42


def test_wait_until_times_out_with_the_last_result():
    import time

    from softioc.testing import wait_until

    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"the door.*last: 0"):
        wait_until(lambda: 0, timeout=0.2, interval=0.01, what="the door")
    assert 0.2 <= time.monotonic() - start < 2


def test_an_ioc_that_dies_at_start_leaves_no_pipe_open(tmp_path: Path) -> None:
    """IOCProcess stops what it started when the IOC never answers: no
    process, and no pipe left for the garbage collector to warn about."""
    script = tmp_path / "dies.py"
    script.write_text("raise SystemExit(3)\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match=r"IOC exited \(3\)") as info:
            IOCProcess([str(script)], wait_for="NO:SUCH:PV", timeout=10)
        del info                    # its traceback holds the IOCProcess
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], caught


def test_start_tool_stops_a_tool_that_ignores_sigint() -> None:
    """A test run as a background job (SIGINT ignored, which its tools
    inherit) still stops each tool at once, not after the 5 s grace."""
    code = (
        "import signal, time\n"
        "from softioc.testing import start_tool\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "with start_tool('camonitor', '-w', '1', 'NO:SUCH:PV') as proc:\n"
        "    time.sleep(0.5)\n"
        "    t = time.monotonic()\n"
        "print(round(time.monotonic() - t, 1), proc.returncode)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, env=client_env(free_port(), free_port(), free_port()))
    seconds, status = out.stdout.split()
    assert float(seconds) < 2.0, out
    assert status != "None"
