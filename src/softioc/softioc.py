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

import atexit
import code
import os
import signal
import stat
import sys
import threading
from typing import TYPE_CHECKING, Any

from . import _core, _lifecycle
from ._dispatch import Dispatcher, ThreadDispatcher
from ._ioc import ioc

if TYPE_CHECKING:
    from .iocstats import IocStats

command_names = [
    "dba", "dbl", "dbnr", "dbgrep", "dbgf", "dbpf", "dbpr", "dbtr", "dbtgf", "dbtpf", "dbtpn",
    "dbior", "dbhcr", "gft", "pft", "tpn", "dblsr", "dbLockShowLocked", "scanppl", "scanpel",
    "scanpiol", "casr", "dbel", "dbcar", "generalTimeReport", "eltc", "exit",
]

__all__ = [
    "iocInit", "interactive_ioc", "non_interactive_ioc", "dbLoadDatabase", "devIocStats",
    "epicsExit", "safeEpicsExit", "command_names", *command_names,
]


def iocInit(dispatcher: Dispatcher | None = None, enable_pva: bool = True) -> None:
    """Start the IOC.  ``dispatcher`` runs on_update callbacks: an
    ``AsyncioDispatcher``, a ``CothreadDispatcher``, or by default cothread's
    when cothread is imported, else a worker thread.  ``enable_pva=False``
    serves Channel Access only: no PV Access server is started at all (so
    the process may run its own, e.g. p4p's)."""
    # Signals stay the application's: interactive_ioc() and
    # non_interactive_ioc() take SIGTERM (and SIGINT) while they run.
    _lifecycle.ioc_init(dispatcher, enable_pva, _default_dispatcher)


def _default_dispatcher() -> Dispatcher:
    """``pythonioc run --dispatcher`` or ``PYTHONIOC_DISPATCHER`` (asyncio,
    cothread, thread) if given; else cothread's when cothread is imported;
    else a worker thread."""
    choice = (ioc.settings.dispatcher or os.environ.get("PYTHONIOC_DISPATCHER", "")).lower()
    if choice == "asyncio":
        from .asyncio_dispatcher import AsyncioDispatcher

        return AsyncioDispatcher()
    if choice == "thread":
        return ThreadDispatcher()
    if choice not in ("", "cothread"):
        raise ValueError(f"PYTHONIOC_DISPATCHER={choice!r}: use asyncio, cothread or thread")
    if choice == "cothread" or "cothread" in sys.modules:
        from .cothread_dispatcher import CothreadDispatcher

        return CothreadDispatcher()
    return ThreadDispatcher()


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
    _core.iocsh(f"{command} {quoted}".strip())


def dbl(pattern: str = "", fields: str = "") -> None:
    """List records (all if ``pattern`` is empty), with ``fields``.

    ``dbl("DEMO:*", "VAL DESC")`` prints each record whose name matches the
    glob and those fields; ``dbl("ai")``, a record type's name, lists the
    records of that type, as the IOC shell's ``dbl`` (and pythonSoftIOC's).
    """
    if pattern and not _is_record_type(pattern):
        _iocsh("dbgrep", pattern, fields or None)
    else:
        _iocsh("dbl", pattern if pattern or fields else None, fields or None)


def _is_record_type(name: str) -> bool:
    # (a type with no records lists nothing either way; epicsdbbuilder's
    # list of types cannot be read after iocInit if it was never read before)
    return name in dict(_core.records_by_type())


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


def dbcar(record: str = "*", level: int = 0) -> None:
    """Channel Access link report (``"*"``: every record)."""
    _iocsh("dbcar", record or None, level)


def scanppl(rate: float = 0.0) -> None:
    """Print the periodic scan lists."""
    _iocsh("scanppl", rate)


def dba(field: str) -> None:
    """Print the database address (dbAddr) of ``REC.FIELD``."""
    _iocsh("dba", field)


def dbnr(all: int = 0) -> None:  # noqa: A002 - pythonSoftIOC's argument name
    """Print the number of records of each record type (all types if ``all``)."""
    _iocsh("dbnr", all)


def dbgrep(pattern: str) -> None:
    """List the record names matching ``pattern`` (``*`` and ``?`` wildcards)."""
    _iocsh("dbgrep", pattern)


def dbtr(record: str) -> None:
    """Process ``record`` once and print its fields (test record processing)."""
    _iocsh("dbtr", record)


def dbtgf(field: str) -> None:
    """Read ``REC.FIELD`` with every request type and print each result."""
    _iocsh("dbtgf", field)


def dbtpf(field: str, value: Any) -> None:
    """Write ``value`` to ``REC.FIELD``, then read it back with every request type."""
    _iocsh("dbtpf", field, value)


def dbtpn(field: str, value: Any = None) -> None:
    """Process ``REC.FIELD`` through dbProcessNotify (a put of ``value`` if given)."""
    _iocsh("dbtpn", field, value)


def dbhcr() -> None:
    """Print the hardware configuration report."""
    _iocsh("dbhcr")


def gft(field: str) -> None:
    """Get-field test of the old database access API."""
    _iocsh("gft", field)


def pft(field: str, value: Any) -> None:
    """Put-field test of the old database access API."""
    _iocsh("pft", field, value)


def tpn(field: str, value: Any) -> None:
    """Process-notify test of the old database access API."""
    _iocsh("tpn", field, value)


def dblsr(recordname: str, level: int) -> None:
    """Report lock sets: all (``recordname`` ``""`` or ``"*"``) or ``recordname``'s,
    at ``level`` 0 (sets), 1 (and records) or 2 (and links)."""
    _iocsh("dblsr", recordname, level)


def dbLockShowLocked(level: int) -> None:
    """Report the lock sets that are locked now, and which thread holds each."""
    _iocsh("dbLockShowLocked", level)


def scanpel(event: int = 0) -> None:
    """Print the records on event scan lists (``event`` 0: all events)."""
    _iocsh("scanpel", event)


def scanpiol() -> None:
    """Print the records on I/O Intr scan lists."""
    _iocsh("scanpiol")


def dbel(record_name: str) -> None:
    """Print the Channel Access event (monitor) list of a record."""
    _iocsh("dbel", record_name)


def generalTimeReport(level: int = 0) -> None:
    """Report the time providers (at level 1 with their current times)."""
    _iocsh("generalTimeReport", level)


def eltc(noYes: int) -> None:
    """Show (1) or hide (0) EPICS error messages on the console."""
    _iocsh("eltc", noYes)


def devIocStats(ioc_name: str, *, allow_restart: bool = False) -> IocStats:
    """Serve devIocStats' records ``ioc_name:NAME`` (``UPTIME``, ``HEARTBEAT``,
    ``IOC_CPU_LOAD``, ``CA_CLNT_CNT``, ``SYSRESET``...), with devIocStats' names
    and record types, as pythonSoftIOC's compiled devIocStats does; the list,
    and what is left out and why, is :mod:`softioc.iocstats`'s.

    Call it any time before iocInit, before or after ``LoadDatabase()``: its
    records are loaded at once, apart from the application's.  After iocInit
    it raises ``RuntimeError``.  ``allow_restart=True`` lets a client's write
    of 1 to ``SYSRESET`` stop the IOC (exit status 0) for its supervisor to
    restart it; by default such writes are refused.  Returns the
    :class:`softioc.iocstats.IocStats` (pythonSoftIOC's returns None).
    """
    from . import iocstats

    return iocstats.create(ioc_name, allow_restart=allow_restart)


def safeEpicsExit(code: int = 0) -> None:
    """Run Python's exit handlers, then stop the IOC and leave with ``code``."""
    exit(code)


epicsExit = safeEpicsExit


class _Exiter:
    """The shell's ``exit``: ``exit(code)`` leaves; so does plain ``exit``."""

    def __call__(self, code: int = 0) -> None:
        exit(code)

    def __repr__(self) -> str:
        exit(0)
        return "exit"


def exit(status: int = 0) -> None:  # noqa: A001 - the IOC shell command's name
    """Run Python's exit handlers (``atexit``), stop the IOC and leave the
    process with ``status``, as pythonSoftIOC's ``safeEpicsExit`` does."""
    atexit._run_exitfuncs()  # noqa: SLF001 - the only way to run them before os._exit
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


def _require_running(what: str) -> None:
    # A shell (or a wait) over an IOC that was never started would serve
    # nothing, silently: a forgotten iocInit() is refused here instead.
    if not _lifecycle.is_running():
        raise RuntimeError(f"{what} needs a running IOC: call softioc.iocInit() first "
                           "(after builder.LoadDatabase())")


def non_interactive_ioc() -> None:
    """Serve until SIGINT or SIGTERM, then stop the IOC and exit."""
    _require_running("non_interactive_ioc()")
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
    _require_running("interactive_ioc()")
    kind = _stdin_kind()
    _install_sigterm()
    if ioc.settings.interactive is False or \
            os.environ.get("PYTHONIOC_INTERACTIVE", "").upper() in ("NO", "0", "FALSE"):
        kind = "none"           # `pythonioc run --non-interactive`
    if kind == "none":
        non_interactive_ioc()
        return
    namespace = dict(context or {})
    namespace.update({name: globals()[name] for name in command_names})
    namespace["exit"] = _Exiter()      # typing just `exit` ends the IOC
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
