"""Start the IOC and talk to it: iocInit, the interactive shell, IOC commands.

``iocInit()`` starts the one EPICS IOC of this process (Channel Access, and
PV Access unless ``PYTHONIOC_PVA=NO``).  ``interactive_ioc(globals())`` then
gives a Python shell with the IOC commands ``dbl``, ``dbgf``, ``dbpf``,
``dbpr``, ``dbior``, ``casr``, ``exit``.

How the shell treats standard input (so services, procServ and terminals all
work): a terminal gets a prompt, and Ctrl-D ends the IOC; a pipe is read
command by command, and its end ends the IOC; a closed stdin or ``/dev/null``
gives no shell and the IOC serves until SIGINT/SIGTERM.  The shell only ever
waits in its own thread (or cothread), so it never holds up the IOC.
"""

from __future__ import annotations

import code
import os
import signal
import stat
import sys
import threading
from typing import Any

from . import _ext, _lifecycle
from ._dispatch import Dispatcher

__all__ = [
    "iocInit", "interactive_ioc", "non_interactive_ioc", "dbLoadDatabase",
    "dbl", "dbgf", "dbpf", "dbpr", "dbior", "casr", "dbcar", "scanppl", "exit",
    "command_names",
]

command_names = ["dbl", "dbgf", "dbpf", "dbpr", "dbior", "casr", "dbcar", "scanppl", "exit"]


def iocInit(dispatcher: Dispatcher | None = None) -> None:
    """Start the IOC.  ``dispatcher`` runs on_update callbacks: an
    ``AsyncioDispatcher``, a ``CothreadDispatcher``, or by default cothread's
    when cothread is imported, else a worker thread."""
    _lifecycle.ioc_init(dispatcher)
    # From now on SIGTERM (and SIGINT, unless a terminal's Ctrl-C should reach
    # the shell) stop the IOC cleanly, even before interactive_ioc() starts.
    if threading.current_thread() is threading.main_thread():
        _install_sigterm()
        if _stdin_kind() != "tty":
            signal.signal(signal.SIGINT, lambda signum, frame: exit(0))


def dbLoadDatabase(database: str, path: str | None = None,
                   substitutions: str | None = None) -> None:
    """Load an EPICS ``.db`` file, with macros ``"P=X:,R=Y"`` (before iocInit)."""
    if _lifecycle.is_running():
        raise RuntimeError("dbLoadDatabase() must come before iocInit()")
    _lifecycle.ensure_dbd()
    file = os.path.join(path, database) if path else database
    if not os.path.exists(file):
        raise FileNotFoundError(file)
    _lifecycle.load_records(file, substitutions)


def _iocsh(command: str, *args: Any) -> None:
    quoted = " ".join('"' + str(a).replace('"', '\\"') + '"' for a in args if a is not None)
    sys.stdout.flush()
    _ext.iocsh(f"{command} {quoted}".strip())


def dbl(pattern: str = "", fields: str = "") -> None:
    """List record names matching the glob ``pattern`` (all if empty), with ``fields``.

    ``dbl("DEMO:*", "VAL DESC")`` prints each matching record's name and those
    fields.  (The IOC shell's ``dbl`` takes a record type, not a name; a
    pattern is listed here with the IOC shell's ``dbgrep``.)
    """
    if pattern:
        _iocsh("dbgrep", pattern, fields or None)
    else:
        _iocsh("dbl", "" if fields else None, fields or None)


def dbgf(pv: str) -> None:
    """Print a field's value."""
    _iocsh("dbgf", pv)


def dbpf(pv: str, value: Any) -> None:
    """Write a field as a client put would, and print it."""
    _iocsh("dbpf", pv, value)


def dbpr(record: str, level: int = 0) -> None:
    """Print a record's fields up to ``level`` of interest."""
    _iocsh("dbpr", record, level)


def dbior(driver: str = "", level: int = 0) -> None:
    """Report device and driver support."""
    _iocsh("dbior", driver or None, level)


def casr(level: int = 0) -> None:
    """Channel Access server report."""
    _iocsh("casr", level)


def dbcar(record: str = "", level: int = 0) -> None:
    """Channel Access link report."""
    _iocsh("dbcar", record or None, level)


def scanppl(rate: float = 0.0) -> None:
    """Print the periodic scan lists."""
    _iocsh("scanppl", rate)


def exit(status: int = 0) -> None:  # noqa: A001 - the IOC shell command's name
    """Stop the IOC and leave the process."""
    _lifecycle.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _stdin_kind() -> str:
    """'tty', 'stream' (pipe or file) or 'none' (closed, /dev/null)."""
    if sys.stdin is None:
        return "none"           # started with fd 0 closed (it may since be reused)
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return "none"
    if os.isatty(fd):
        return "tty"
    if stat.S_ISCHR(mode):
        return "none"           # /dev/null and friends
    return "stream"


def _wait_for_signal() -> None:
    done = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        done.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    if "cothread" in sys.modules:
        import cothread

        while not done.is_set():
            cothread.Sleep(0.2)
    else:
        while not done.wait(0.5):
            pass


def non_interactive_ioc() -> None:
    """Serve until SIGINT or SIGTERM, then stop the IOC and exit."""
    _wait_for_signal()
    exit(0)


def _install_sigterm() -> None:
    def on_term(signum: int, frame: Any) -> None:
        exit(0)

    signal.signal(signal.SIGTERM, on_term)


def _read_line(prompt: str) -> str:
    """input() that lets cothreads run while it waits."""
    if "cothread" in sys.modules and threading.current_thread() is threading.main_thread():
        import cothread.coselect as coselect

        sys.stdout.write(prompt)
        sys.stdout.flush()
        coselect.poll_list([(sys.stdin.fileno(), coselect.POLLIN)])
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")
    return input(prompt)


def interactive_ioc(context: dict[str, Any] | None = None, call_exit: bool = True) -> None:
    """Run a Python shell over ``context`` with the IOC commands added.

    Ends (and, with ``call_exit``, stops the IOC) at end of input; with no
    usable stdin it serves until SIGINT/SIGTERM instead.
    """
    kind = _stdin_kind()
    _install_sigterm()
    if os.environ.get("PYTHONIOC_INTERACTIVE", "").upper() in ("NO", "0", "FALSE"):
        kind = "none"           # `pythonioc run --non-interactive`
    if kind == "none":
        non_interactive_ioc()
        return
    namespace = dict(context or {})
    namespace.update({name: globals()[name] for name in command_names})
    if kind == "stream":
        signal.signal(signal.SIGINT, lambda signum, frame: exit(0))
    console = code.InteractiveConsole(namespace)
    console.raw_input = _read_line  # type: ignore[method-assign,assignment]
    prompt_banner = "pythonIOC shell: Python with dbl(), dbgf(), dbpf(), dbpr(), exit()."
    try:
        if kind == "tty":
            console.interact(banner=prompt_banner, exitmsg="")
        else:
            sys.ps1 = sys.ps2 = ""
            console.interact(banner="", exitmsg="")
    except SystemExit as e:
        if call_exit:
            exit(e.code if isinstance(e.code, int) else 0)
        raise
    if call_exit:
        exit(0)
