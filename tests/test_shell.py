"""The IOC serves the same with stdin a terminal, an open pipe, /dev/null or
closed, and stops cleanly (exit 0, within 2 s) at end of input or on a signal."""

import os
import pty
import signal
import subprocess
import sys
import time

import pytest

from softioc.testing import IOCProcess, wait_until

DEMO = ["-m", "softioc", "demo"]


def assert_updating(ioc):
    """DEMO:WAVE changes while nobody types anything: the shell starves nothing."""
    first = ioc.caget("DEMO:WAVE")
    time.sleep(0.5)
    assert ioc.caget("DEMO:WAVE") != first


def wait_exit(ioc, within=2.0):
    start = time.monotonic()
    code = ioc.proc.wait(timeout=10)
    elapsed = time.monotonic() - start
    assert elapsed < within, f"took {elapsed:.1f}s to exit"
    return code


def test_pipe_commands_then_eof():
    with IOCProcess(DEMO, wait_for="DEMO:UPTIME") as ioc:
        assert_updating(ioc)
        ioc.send("setpoint.set(33.0)")
        ioc.send("print('MODE', mode.get())")
        deadline = time.monotonic() + 5
        while ioc.caget("DEMO:SETPOINT") != "33" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ioc.caget("DEMO:SETPOINT") == "33"
        ioc.proc.stdin.close()
        assert wait_exit(ioc) == 0
        assert "MODE 1" in ioc.output()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_pipe_signal(sig):
    with IOCProcess(DEMO, wait_for="DEMO:UPTIME") as ioc:
        # The shell reads (so interactive_ioc() has taken the signals): until
        # then they are the application's, with Python's default actions.
        ioc.send("print('SHELL' + 'READY')")
        wait_until(lambda: "SHELLREADY" in ioc.output(), what="the shell's answer")
        ioc.proc.send_signal(sig)
        assert wait_exit(ioc) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_devnull_serves_until_signal(sig):
    with IOCProcess(DEMO, wait_for="DEMO:UPTIME", stdin=subprocess.DEVNULL) as ioc:
        assert_updating(ioc)
        assert ioc.proc.poll() is None          # /dev/null's EOF did not end it
        ioc.proc.send_signal(sig)
        assert wait_exit(ioc) == 0


def test_closed_stdin_serves_until_sigterm():
    cmd = ["sh", "-c", f'exec "{sys.executable}" -m softioc demo <&-']
    with IOCProcess(cmd, wait_for="DEMO:UPTIME", python=False,
                    stdin=subprocess.DEVNULL) as ioc:
        assert_updating(ioc)
        ioc.proc.send_signal(signal.SIGTERM)
        assert wait_exit(ioc) == 0


def test_terminal_prompt_and_ctrl_d():
    leader, follower = pty.openpty()
    try:
        with IOCProcess(DEMO, wait_for="DEMO:UPTIME", stdin=follower) as ioc:
            assert_updating(ioc)
            os.write(leader, b"print(6 * 7)\n")
            time.sleep(0.5)
            os.write(leader, b"\x04")
            assert wait_exit(ioc) == 0
            assert "42" in ioc.output()
    finally:
        os.close(leader)
        os.close(follower)


def test_cli_run_options(tmp_path):
    script = tmp_path / "ioc.py"
    script.write_text(
        "from softioc import builder, softioc, _lifecycle\n"
        "rec = builder.longIn('CLI:X', 5)\n"
        "builder.LoadDatabase()\n"
        "softioc.iocInit()\n"
        "print('DISPATCHER', type(_lifecycle.dispatcher()).__name__, flush=True)\n"
        "softioc.interactive_ioc(globals())\n")
    cmd = ["-m", "softioc", "run", "--dispatcher", "asyncio", "--non-interactive",
           "--no-pva", str(script)]
    with IOCProcess(cmd, wait_for="CLI:X") as ioc:
        assert ioc.caget("CLI:X") == "5"
        assert ioc.run_tool("pvget", "-w", "1", "CLI:X", check=False).returncode != 0
        ioc.proc.stdin.close()              # not interactive: EOF does not end it
        time.sleep(0.5)
        assert ioc.proc.poll() is None
        ioc.proc.send_signal(signal.SIGTERM)
        assert wait_exit(ioc) == 0
        assert "DISPATCHER AsyncioDispatcher" in ioc.output()


def test_cli_help_explains_itself():
    out = subprocess.run([sys.executable, "-m", "softioc", "run", "--help"],
                         capture_output=True, text=True).stdout
    assert "--dispatcher" in out and "--non-interactive" in out
