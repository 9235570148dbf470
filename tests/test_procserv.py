"""docs/snippets/oven-ioc.procserv, the procServ recipe of
docs/how-to/run-as-a-service: run as written (paths moved into a temporary
directory), the IOC serves, its shell answers on procServ's console, and
procServ starts it again after it exits or is killed."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softioc.testing import client_env, free_port, run_tool, wait_until

SNIPPETS = Path(__file__).parents[1] / "docs" / "snippets"

pytestmark = pytest.mark.skipif(
    shutil.which("procServ") is None,
    reason="procServ is not installed (Debian: apt-get install procserv)")


def command(tmp: Path) -> list[str]:
    """The recipe's command line, its paths in tmp and a 1 s hold-off."""
    text = (SNIPPETS / "oven-ioc.procserv").read_text().replace("\\\n", " ")
    pythonioc = str(Path(sys.executable).parent / "pythonioc")
    text = (text.replace("/opt/oven/.venv/bin/pythonioc", pythonioc)
            .replace("/opt/oven/autosave_ioc.py", str(SNIPPETS / "autosave_ioc.py"))
            .replace("/var/lib/oven-ioc", str(tmp)).replace("/var/log", str(tmp))
            .replace("/run/oven-ioc", str(tmp)).replace("--holdoff 5", "--holdoff 1"))
    return shlex.split(text)


def children(pid: int) -> list[int]:
    """The process ids of pid's children (Linux)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def daemons(tmp: Path) -> list[int]:
    """The procServ processes started with their files in tmp (found through
    /proc, so a test that fails before the pid file is read still ends them)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if argv and argv[0].endswith(b"procServ") and str(tmp).encode() in b" ".join(argv):
            found.append(int(entry.name))
    return found


class Console:
    """procServ's console, through its unix socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(0.2)
        self.text = ""

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.text and time.monotonic() < deadline:
            try:
                self.text += self.sock.recv(65536).decode(errors="replace")
            except socket.timeout:
                pass
        assert text in self.text, self.text[-2000:]
        return self.text


def test_procserv_recipe(tmp_path: Path) -> None:
    env = dict(os.environ, **client_env(free_port(), free_port(), free_port()))
    def serving() -> bool:
        result = run_tool("caget", "-t", "-w", "1", "OVEN:SETPOINT", env=env, check=False,
                          timeout=10)
        return result.returncode == 0 and result.stdout.strip() == "20"

    subprocess.run(command(tmp_path), env=env, check=True, timeout=10)   # procServ daemonizes
    console = None
    try:
        pidfile = tmp_path / "procserv.pid"          # its daemon writes it a little later
        assert wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=10)
        pid = int(pidfile.read_text())
        assert daemons(tmp_path) == [pid]
        assert wait_until(serving, timeout=30)
        console = Console(tmp_path / "console")
        console.send("dbl()")                        # the IOC shell, on procServ's pty
        console.wait_for("OVEN:LIMIT")
        console.send("exit()")                       # the IOC ends; procServ starts it again
        console.wait_for("Restarting child", timeout=20)
        assert wait_until(serving, timeout=30)
        console.sock.close()                         # nobody attached: it keeps serving
        console = None
        assert serving()
        child = children(pid)
        assert len(child) == 1, child
        os.kill(child[0], signal.SIGKILL)            # killed: procServ starts it again
        assert wait_until(lambda: children(pid) not in ([], child), timeout=20)
        assert wait_until(serving, timeout=30)
        assert (tmp_path / "oven-ioc.log").read_text().count("iocRun: All initialization") >= 3
    finally:
        if console is not None:
            console.sock.close()
        for daemon in daemons(tmp_path):
            os.kill(daemon, signal.SIGTERM)          # procServ ends its child with it
    assert wait_until(lambda: not serving(), timeout=15)
