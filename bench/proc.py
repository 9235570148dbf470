"""Processes of a benchmark run: servers on private loopback ports, C clients.

Every process gets ``softioc.testing.LOOPBACK_ENV`` (no search, beacon or
broadcast leaves 127.0.0.1) and the server's own CA/PVA ports; every wait
here has a timeout, and every process is stopped by its own handle.  The C
tools run and stop as ``softioc.testing`` runs them (``run_tool``,
``start_tool``), and servers stop as its IOCs do (``stop_process``).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from softioc.testing import client_env, free_port, run_tool, start_tool, stop_process

# Big enough for S5's 1,000,000 float64 waveform (8 MB) plus headers.
MAX_ARRAY_BYTES = "20000000"


class ServerError(RuntimeError):
    pass


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ + loopback-only EPICS settings + fresh CA/PVA ports."""
    env = dict(os.environ)
    env.update(client_env(free_port(), free_port(), free_port()))
    env["EPICS_CA_MAX_ARRAY_BYTES"] = MAX_ARRAY_BYTES
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)      # peers' venvs must not see this checkout's src/
    if extra:
        env.update(extra)
    return env


class Server:
    """A server subprocess speaking the benchmark's line protocol.

    Python servers print ``READY`` once serving and answer JSON commands on
    stdin with ``RESULT {json}``; the C softIoc just serves (``protocol=False``).
    """

    def __init__(self, cmd: Sequence[str], env: dict[str, str] | None = None,
                 protocol: bool = True, cwd: str | None = None) -> None:
        self.env = env if env is not None else server_env()
        self.cmd = list(cmd)
        self.protocol = protocol
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=cwd, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, prefix: str, timeout: float) -> str:
        """The rest of the next output line starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerError(f"no {prefix!r} within {timeout} s: {self.tail()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise ServerError(f"server exited ({self.proc.poll()}): {self.tail()}")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def ready(self, timeout: float = 120.0) -> None:
        self.expect("READY", timeout)

    def command(self, timeout: float = 120.0, **cmd: Any) -> dict[str, Any]:
        """Send one JSON command, wait for its RESULT."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self.expect("RESULT", timeout))
        if "error" in result:
            raise ServerError(f"{cmd}: {result['error']}")
        return result

    def tail(self, lines: int = 15) -> str:
        return " | ".join(self.log[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """Close stdin (ends our servers), then SIGTERM (the C softIoc), then SIGKILL."""
        stop_process(self.proc, timeout, stdin_timeout=None if self.protocol else 0.05)
        self._reader.join(timeout=2)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_pv(env: dict[str, str], pv: str, timeout: float, server: Server | None = None,
                poll: float = 0.02) -> float:
    """Poll ``caget`` until ``pv`` answers; returns time.monotonic() then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.proc.poll() is not None:
            raise ServerError(f"server exited ({server.proc.returncode}): {server.tail()}")
        try:
            result = run_tool("caget", "-w", "0.1", pv, env=env, check=False, timeout=10)
        except subprocess.TimeoutExpired:
            continue
        if result.returncode == 0:
            return time.monotonic()
        time.sleep(poll)
    raise ServerError(f"{pv} did not answer within {timeout} s")


def camonitor(env: dict[str, str], pvs: Sequence[str], path: Path,
              options: Sequence[str] = ()) -> AbstractContextManager[subprocess.Popen[str]]:
    """``camonitor`` (line-buffered) writing to a file (a full pipe would stall
    it), interrupted at the end of the ``with`` block."""
    return start_tool("camonitor", "-w", "10", *options, *pvs, env=env, output=path)


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def wait_lines(path: Path, count: int, timeout: float) -> int:
    """Wait until the file has ``count`` lines (or timeout); returns the count."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n = count_lines(path)
        if n >= count:
            break
        time.sleep(0.05)
    return n


def wait_quiet(path: Path, quiet: float, timeout: float) -> None:
    """Wait until the file stops growing for ``quiet`` seconds (or timeout)."""
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory (VmRSS), its peak (VmHWM) and locked memory (VmLck) in MB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmLck"):
                out[key] = int(value.split()[0]) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def listening(pid: int) -> list[str]:
    """Local addresses the process's sockets are bound to (for the loopback check)."""
    result = subprocess.run(["ss", "-Hlnptu"], capture_output=True, text=True, timeout=10)
    found = []
    for line in result.stdout.splitlines():
        if f"pid={pid}," in line:
            parts = line.split()
            found.append(f"{parts[0]} {parts[4]}")
    return found
