"""The steps of the IOC's life: loading the EPICS core and the record
definitions (dbd), registering support, loading .db files, iocInit, shutdown.

The state these steps change (definitions loaded, running, the dispatcher,
the hooks features add) is the one IOC object of ``softioc._ioc``; this
module keeps none of its own.  Which dispatcher to make when iocInit is given
none is the caller's choice (``softioc.softioc.iocInit``): the core does not
import the dispatchers built on it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
from collections.abc import Callable, Iterator

from . import _ext
from ._dispatch import Dispatcher, ThreadDispatcher
from ._dso import epics_lib, find_dso, package_dir
from ._ioc import ioc

__all__ = ["ensure_dbd", "ioc_init", "is_running", "dispatcher", "pva_enabled"]

DBD_PATH = os.path.dirname(__file__)


def pva_enabled() -> bool:
    """PV Access is served unless turned off in code (``pva.disable()``,
    ``iocInit(enable_pva=False)``, ``pythonioc run --no-pva``) or by the
    environment (``PYTHONIOC_PVA=NO``)."""
    if ioc.settings.pva is not None:
        return ioc.settings.pva
    return os.environ.get("PYTHONIOC_PVA", "YES").upper() not in ("NO", "0", "FALSE")


def _memory_file(text: str, suffix: str) -> int | None:
    """A file in memory holding ``text`` that EPICS can open by name, or None
    where there is none (no memfd_create, no /proc, a seccomp refusal)."""
    try:
        fd = os.memfd_create(f"pythonioc{suffix}")
    except (AttributeError, OSError):
        return None
    try:
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data):]
        if os.path.exists(f"/proc/self/fd/{fd}"):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


@contextlib.contextmanager
def scratch_file(text: str, suffix: str) -> Iterator[str]:
    """A path EPICS can read ``text`` from, gone after the block: a file in
    memory (``memfd``) where Linux has them, so the IOC never imports
    ``tempfile`` (and shutil, bz2, lzma: 1 MB), else a temporary file."""
    fd = _memory_file(text, suffix)
    if fd is not None:
        try:
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    import tempfile
    fd, path = tempfile.mkstemp(prefix="pythonioc-", suffix=suffix)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        yield path
    finally:
        os.unlink(path)


def _load_pvxs_dbd(registrars: bool) -> None:
    """Load pvxsIoc.dbd's registrars (which create and start the PVA server,
    so they are loaded only by an iocInit that serves PVA), or everything
    else (the ``pva`` link type, devices), loaded with base.dbd."""
    with open(os.path.join(package_dir("pvxslibs"), "dbd", "pvxsIoc.dbd")) as f:
        lines = [line for line in f
                 if line.lstrip().startswith("registrar(") == registrars]
    with scratch_file("".join(lines), ".dbd") as path:
        _ext.load_database(os.path.basename(path), os.path.dirname(path), None)


def _load_global(path: str) -> ctypes.CDLL:
    # Our device support and PVXS are found by symbol name, so their shared
    # objects must be visible process-wide.
    return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def dbd_loaded() -> bool:
    """Whether ensure_dbd() has run."""
    return ioc.dbd_loaded


def ensure_dbd() -> None:
    """Load base.dbd (+ PVXS, + our device support) and register, once."""
    with ioc.lock:
        if ioc.dbd_loaded:
            return
        defining, ioc.hooks.at_define = ioc.hooks.at_define, []
        for hook in defining:           # the process becomes an IOC (HTTP endpoints)
            hook()
        libs = {lib: _load_global(epics_lib(lib))
                for lib in ("Com", "dbCore", "dbRecStd")}
        # Record names hash into 65,536 lists (EPICS's default, 512, makes
        # finding one of 1,000,000 records walk a list of 2,000); this must
        # come before the first database is loaded.
        libs["dbCore"].dbPvdTableSize(65536)
        _load_global(_ext.__file__)
        _ext.load_database("base.dbd", os.path.join(package_dir("epicscorelibs"), "dbd"), None)
        if pva_enabled():
            os.environ.setdefault("PVXS_QSRV_ENABLE", "YES")
            _load_global(find_dso("pvxslibs.lib.pvxsIoc"))
            _load_global(find_dso("softioc._qsrvguard"))   # strict puts over QSRV2
            _load_pvxs_dbd(registrars=False)
        _ext.load_database("softioc.dbd", DBD_PATH, None)
        _ext.register()
        ioc.dbd_loaded = True


def is_running() -> bool:
    """True once iocInit() has completed."""
    return ioc.running


def is_started() -> bool:
    """True once iocInit() and its after_init hooks have completed, until shutdown."""
    return ioc.started and not ioc.shut


def dispatcher() -> Dispatcher:
    """The dispatcher given to iocInit (a ThreadDispatcher until then)."""
    disp = ioc.dispatcher
    if disp is None:
        disp = ioc.dispatcher = ThreadDispatcher()
    return disp


class DescribeDone(Exception):
    """Raised by iocInit in describe mode (``pythonioc screen``), after its hook ran."""


def describe_only(hook: Callable[[], None] | None) -> None:
    """Describe mode: iocInit calls hook, then raises DescribeDone instead of starting."""
    ioc.settings.describe = hook


def ioc_init(disp: Dispatcher | None, enable_pva: bool = True,
             default_dispatcher: Callable[[], Dispatcher] = ThreadDispatcher) -> None:
    """Run iocInit once, with disp running Python callbacks (if None, the one
    already made, else ``default_dispatcher()``); PV Access is served if
    ``enable_pva`` and the settings allow it."""
    if ioc.settings.describe is not None:
        ioc.settings.describe()
        raise DescribeDone
    with ioc.lock:
        if ioc.running:
            raise RuntimeError("iocInit() was already called: EPICS runs one IOC per process")
        _refuse_unloaded()
        ensure_dbd()
        if pva_enabled() and enable_pva:
            _load_pvxs_dbd(registrars=True)
            _ext.register()         # runs the PVXS registrar: QSRV2 starts with iocInit
        elif not enable_pva:
            ioc.settings.pva = False
        # The access security rules (access.load_acf, or the default that lets
        # every client write, with TRAPWRITE), read by iocInit.
        acf_file = scratch_file(ioc.settings.acf, ".acf")
        acf = acf_file.__enter__()
        try:
            _ext.set_acf(acf, ioc.settings.check_client_ip)
            for hook in ioc.hooks.before_init:
                hook()
            if disp is not None:
                ioc.dispatcher = disp
            elif ioc.dispatcher is None:
                ioc.dispatcher = default_dispatcher()
            # pythonIOC's dispatchers take client writes from the C layer's
            # queue (no GIL in the server threads); another is called with it.
            serve_writes = getattr(ioc.dispatcher, "_serve_writes", None)
            if serve_writes is not None:
                serve_writes()
            else:
                _ext.write_queue(-1)
            _ext.ioc_init(memlock_wanted())
        except BaseException:
            acf_file.__exit__(None, None, None)
            raise
        if acf.startswith("/proc/self/fd/"):
            # kept open: EPICS reads the file again at a run-time asInit (the
            # iocsh command, a READACF record), as a C IOC rereads its .acf
            ioc.acf_file = acf_file
        else:
            acf_file.__exit__(None, None, None)     # a temporary file: removed
        for hook in ioc.hooks.after_init:
            hook()
        ioc.started = True
        if not ioc.atexit_registered:
            atexit.register(shutdown)
            ioc.atexit_registered = True


def _refuse_unloaded() -> None:
    """Stop iocInit before anything starts if builder records were never loaded."""
    pending = ioc.database.pending
    soft = 0
    if ioc.database.builder_ready:          # builder.records were used
        import epicsdbbuilder
        soft = epicsdbbuilder.CountRecords()
    if pending or soft:
        names = list(pending)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        if soft:
            shown += f"{', ' if names else ''}{soft} made with builder.records"
        raise RuntimeError(
            f"iocInit(): {len(names) + soft} builder record(s) were made but never loaded: "
            f"{shown}.  Call builder.LoadDatabase() after making the records and "
            f"before softioc.iocInit() (or builder.ClearRecords() to drop them).")


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
    with scratch_file(f'include "{path}"\n\naddpath "."\n', ".db") as wrapper:
        try:
            _ext.load_records(wrapper, substitutions)
        except ValueError:
            raise ValueError(f"EPICS could not load records from {file} (see the messages "
                             "above; an error 'at or before addpath' means the file ends "
                             "inside a record or statement)") from None


def memlock_wanted() -> bool:
    """Whether iocInit may lock all memory (``PYTHONIOC_MEMLOCK=YES``; default no).

    With real-time rights (root or CAP_SYS_NICE) the EPICS core locks the whole
    address space at iocInit (``mlockall``), as a C IOC wants for real-time
    response.  In a Python process that pins every thread stack, the Python heap
    and every import and array that follows (10,000 records as root: 118 MB
    resident instead of 55 MB, README), so pythonIOC leaves memory unlocked
    unless asked.
    """
    return os.environ.get("PYTHONIOC_MEMLOCK", "NO").strip().upper() in ("YES", "1", "TRUE", "ON")


def before_init(hook: Callable[[], None]) -> None:
    """Run hook just before iocInit."""
    ioc.hooks.before_init.append(hook)


def after_init(hook: Callable[[], None]) -> None:
    """Run hook right after iocInit (features such as autosave start here)."""
    ioc.hooks.after_init.append(hook)


def at_shutdown(hook: Callable[[], None]) -> None:
    """Run hook (e.g. a last autosave) when the IOC stops, before the servers go."""
    ioc.hooks.at_shutdown.append(hook)


def shutdown() -> None:
    """Run shutdown hooks, then stop the CA and PVA servers (EPICS exit handlers), once."""
    with ioc.lock:
        if ioc.shut or not ioc.running:
            return
        ioc.shut = True
    for hook in ioc.hooks.at_shutdown:
        try:
            hook()
        except Exception:
            logging.getLogger("softioc").exception("shutdown hook %r failed", hook)
    _ext.call_atexits()
