"""The one EPICS IOC of this process: loading the core, registering support,
loading records, iocInit.

EPICS keeps one database per process and ``iocInit`` runs once, so this module
holds that process-wide state, and only this module: whether the record
definitions (dbd) are loaded, whether the IOC is running, and the dispatcher
that runs Python callbacks.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import tempfile
import threading
from collections.abc import Callable

import epicscorelibs.path
import pvxslibs.path

from . import _ext
from ._dispatch import Dispatcher, ThreadDispatcher
from ._dso import find_dso

__all__ = ["ensure_dbd", "ioc_init", "is_running", "dispatcher", "pva_enabled"]

_lock = threading.RLock()
_dbd_loaded = False
_running = False
_dispatcher: Dispatcher | None = None
_atexit_registered = False
_pva_refused = False        # iocInit(enable_pva=False)

DBD_PATH = os.path.dirname(__file__)


def pva_enabled() -> bool:
    """PV Access is served unless the environment says ``PYTHONIOC_PVA=NO``
    or iocInit was given ``enable_pva=False``."""
    if _pva_refused:
        return False
    return os.environ.get("PYTHONIOC_PVA", "YES").upper() not in ("NO", "0", "FALSE")


def _pvxs_dbd(registrars: bool) -> str:
    """pvxsIoc.dbd split in two: its registrars (which create and start the
    PVA server, so they are loaded only by an iocInit that serves PVA), or
    everything else (the ``pva`` link type, devices), loaded with base.dbd."""
    with open(os.path.join(pvxslibs.path.dbd_path, "pvxsIoc.dbd")) as f:
        lines = [line for line in f
                 if line.lstrip().startswith("registrar(") == registrars]
    fd, path = tempfile.mkstemp(prefix="pythonioc-pvxs-", suffix=".dbd")
    with os.fdopen(fd, "w") as f:
        f.writelines(lines)
    return path


def _load_dbd_file(path: str) -> None:
    try:
        _ext.load_database(os.path.basename(path), os.path.dirname(path), None)
    finally:
        os.unlink(path)


def _load_global(path: str) -> ctypes.CDLL:
    # Our device support and PVXS are found by symbol name, so their shared
    # objects must be visible process-wide.
    return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def dbd_loaded() -> bool:
    """Whether ensure_dbd() has run."""
    return _dbd_loaded


def ensure_dbd() -> None:
    """Load base.dbd (+ PVXS, + our device support) and register, once."""
    global _dbd_loaded
    with _lock:
        if _dbd_loaded:
            return
        libs = {lib: _load_global(epicscorelibs.path.get_lib(lib))
                for lib in ("Com", "dbCore", "dbRecStd")}
        # Record names hash into 65,536 lists (EPICS's default, 512, makes
        # finding one of 1,000,000 records walk a list of 2,000); this must
        # come before the first database is loaded.
        libs["dbCore"].dbPvdTableSize(65536)
        _load_global(_ext.__file__)
        _ext.load_database("base.dbd", os.path.join(epicscorelibs.path.base_path, "dbd"), None)
        if pva_enabled():
            os.environ.setdefault("PVXS_QSRV_ENABLE", "YES")
            _load_global(find_dso("pvxslibs.lib.pvxsIoc"))
            _load_global(find_dso("softioc._qsrvguard"))   # strict puts over QSRV2
            _load_dbd_file(_pvxs_dbd(registrars=False))
        _ext.load_database("softioc.dbd", DBD_PATH, None)
        _ext.register()
        _dbd_loaded = True


def is_running() -> bool:
    """True once iocInit() has completed."""
    return _running


def dispatcher() -> Dispatcher:
    """The dispatcher given to iocInit (a ThreadDispatcher until then)."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = ThreadDispatcher()
    return _dispatcher


class DescribeDone(Exception):
    """Raised by iocInit in describe mode (``pythonioc screen``), after its hook ran."""


_describe_hook: Callable[[], None] | None = None


def describe_only(hook: Callable[[], None] | None) -> None:
    """Describe mode: iocInit calls hook, then raises DescribeDone instead of starting."""
    global _describe_hook
    _describe_hook = hook


def ioc_init(disp: Dispatcher | None, enable_pva: bool = True) -> None:
    """Run iocInit once, with disp running Python callbacks; PV Access is
    served if ``enable_pva`` and the environment allow it."""
    global _running, _dispatcher, _atexit_registered, _pva_refused
    if _describe_hook is not None:
        _describe_hook()
        raise DescribeDone
    with _lock:
        if _running:
            raise RuntimeError("iocInit() was already called: EPICS runs one IOC per process")
        for check in _checks:
            check()
        ensure_dbd()
        if pva_enabled() and enable_pva:
            _load_dbd_file(_pvxs_dbd(registrars=True))
            _ext.register()         # runs the PVXS registrar: QSRV2 starts with iocInit
        elif not enable_pva:
            _pva_refused = True
        for hook in _init_hooks:
            hook()
        if disp is not None:
            _dispatcher = disp
        elif _dispatcher is None:
            _dispatcher = _default_dispatcher()
        # pythonIOC's dispatchers take client writes from the C layer's queue
        # (no GIL in the server threads); another dispatcher is called with it.
        serve_writes = getattr(_dispatcher, "_serve_writes", None)
        if serve_writes is not None:
            serve_writes()
        else:
            _ext.write_queue(-1)
        _ext.ioc_init(memlock_wanted())
        _running = True
        _started_hooks_run()
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True


def load_records(file: str, substitutions: str | None = None) -> None:
    """dbLoadRecords(file, substitutions), shielded from an EPICS parser crash.

    EPICS 7.0.10's .db parser dereferences a NULL pointer (in yyerror) when a
    syntax error is only found at the end of the input, e.g. a file that stops
    inside a record, so the whole process dies.  The file is therefore read
    through a small wrapper that includes it and then has one more harmless
    statement (``addpath "."``), so such an error is found before the end.

    Its macro parser (macParseDefns) sizes its work arrays by the length of
    the substitutions, which definitions with empty names or values outgrow
    ("=,=,=" corrupts the heap): trailing blanks, which it ignores, give it
    the room.
    """
    if substitutions:
        substitutions += " " * (len(substitutions) + 4)
    path = os.path.abspath(file)
    if '"' in path or "$" in path or "\\" in path:
        _ext.load_records(file, substitutions)      # cannot be quoted in an include
        return
    fd, wrapper = tempfile.mkstemp(suffix=".db", prefix="pythonioc-load-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f'include "{path}"\n\naddpath "."\n')
        try:
            _ext.load_records(wrapper, substitutions)
        except ValueError:
            raise ValueError(f"EPICS could not load records from {file} (see the messages "
                             "above; an error 'at or before addpath' means the file ends "
                             "inside a record or statement)") from None
    finally:
        os.unlink(wrapper)


def memlock_wanted() -> bool:
    """Whether iocInit may lock all memory (``PYTHONIOC_MEMLOCK=YES``; default no).

    With real-time rights (root or CAP_SYS_NICE) the EPICS core locks the whole
    address space at iocInit (``mlockall``), as a C IOC wants for real-time
    response.  In a Python process that pins every thread stack, the Python heap
    and every import and array that follows (10,000 records: 230 MB resident
    instead of 78 MB), so pythonIOC leaves memory unlocked unless asked.
    """
    return os.environ.get("PYTHONIOC_MEMLOCK", "NO").strip().upper() in ("YES", "1", "TRUE", "ON")


_start_hooks: list[Callable[[], None]] = []
_init_hooks: list[Callable[[], None]] = []
_checks: list[Callable[[], None]] = []


def check_before_init(check: Callable[[], None]) -> None:
    """Run check first thing in iocInit; its exception stops iocInit
    before anything is started (the builder refuses unloaded records here)."""
    _checks.append(check)


def before_init(hook: Callable[[], None]) -> None:
    """Run hook just before iocInit (access security installs its ACF here)."""
    _init_hooks.append(hook)


def after_init(hook: Callable[[], None]) -> None:
    """Run hook right after iocInit (features such as autosave start here)."""
    _start_hooks.append(hook)


def _started_hooks_run() -> None:
    for hook in _start_hooks:
        hook()


def _default_dispatcher() -> Dispatcher:
    """``PYTHONIOC_DISPATCHER`` (asyncio, cothread, thread) if set; else
    cothread's when cothread is imported; else a worker thread."""
    import sys

    choice = os.environ.get("PYTHONIOC_DISPATCHER", "").lower()
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


_shut = False
_shutdown_hooks: list[Callable[[], None]] = []


def at_shutdown(hook: Callable[[], None]) -> None:
    """Run hook (e.g. a last autosave) when the IOC stops, before the servers go."""
    _shutdown_hooks.append(hook)


def shutdown() -> None:
    """Run shutdown hooks, then stop the CA and PVA servers (EPICS exit handlers), once."""
    global _shut
    with _lock:
        if _shut or not _running:
            return
        _shut = True
    for hook in _shutdown_hooks:
        try:
            hook()
        except Exception:
            logging.getLogger("softioc").exception("shutdown hook %r failed", hook)
    _ext.call_atexits()
