"""The core's interface: how the rest of softioc reaches the IOC and the C layer.

The core is ``_ioc`` (the one IOC object), ``_lifecycle`` (its steps),
``_database`` (definitions), ``_record`` (live handles), ``_status`` (is it
live, is it ready), ``_dispatch``, ``_wakeup``, ``_dso`` and this module.
Features, tools and the HTTP endpoints import the core from here only, and
only core modules import the C extensions (``_ext``, ``_pvaserver``): the
``interface`` contract in ``pyproject.toml`` and ``tests/unit/test_layers.py``
keep it so.  The public API (``builder``, ``softioc.softioc``, pythonSoftIOC's
modules) is the core's own face: it imports core modules directly and the C
layer from here.

Nothing here adds behaviour: each name is a core module's, or a C call under
the name its callers use, its answer made plain (``(0, 0)`` for a server not
running yet, the wheel's EPICS version before the IOC reports its own).
"""

from __future__ import annotations

from typing import Any

from . import _ext, _lifecycle
from ._database import (
    MAX_NAME,
    autosave_fields,
    check_new,
    check_not_python,
    create_alias,
    full_name,
    load_own,
    request_autosave,
)
from ._dispatch import listen
from ._dso import epics_lib
from ._ext import (
    ca_get,
    create_record,
    delete_record,
    epics_env,
    get_field,
    get_raw,
    iocsh,
    load_database,
    put_counts,
    put_field,
    put_raw,
    putlog_start,
    putlog_take,
    putlog_wake,
    queue_stats,
    record_count,
    record_exists,
    records_by_type,
    strict_puts,
    suspended_threads,
    watch_mark,
    watch_row,
    watch_start,
    watch_stop,
    watch_take,
    watch_wake,
)
from ._ext import create_alias as add_alias  # unchecked: the caller checked the name
from ._ioc import DEFAULT_ACF, IOC, ioc
from ._lifecycle import (
    DescribeDone,
    after_init,
    at_shutdown,
    before_init,
    dbd_loaded,
    describe_only,
    dispatcher,
    ensure_dbd,
    is_running,
    is_started,
    load_records,
    pva_enabled,
)
from ._record import Record
from ._status import latency, live, ready, stuck_after
from ._status import start as watchdog  # the dispatcher's watchdog, started at iocInit

__all__ = [
    # the IOC object, its steps and its liveness
    "ioc", "IOC", "DEFAULT_ACF", "is_running", "is_started", "dbd_loaded", "ensure_dbd",
    "pva_enabled", "dispatcher", "before_init", "after_init", "at_shutdown", "load_records",
    "describe_only", "DescribeDone", "live", "ready", "latency", "watchdog", "stuck_after",
    "listen",
    # record definitions and handles
    "MAX_NAME", "full_name", "check_new", "check_not_python", "create_alias", "load_own",
    "autosave_fields", "request_autosave", "Record",
    # the C layer
    "ca_counts", "pva_counts", "epics_version", "epics_env", "record_count", "record_exists",
    "records_by_type", "queue_stats", "suspended_threads", "put_counts", "get_field",
    "put_field", "create_record", "delete_record", "add_alias", "iocsh", "load_database",
    "put_raw", "get_raw", "strict_puts", "putlog_start", "putlog_take", "putlog_wake",
    "watch_start", "watch_take", "watch_wake", "watch_mark", "watch_row", "watch_stop",
    "ca_get", "epics_lib", "pva_server",
]


def ca_counts() -> tuple[int, int]:
    """(client circuits, channels) of the Channel Access server; (0, 0) before it runs."""
    return _ext.server_stats("rsrv") or (0, 0)


def pva_counts() -> tuple[int, int]:
    """(clients, channels) of QSRV2; (0, 0) without PV Access or before it runs."""
    return _ext.server_stats("qsrv2") or (0, 0)


def epics_version() -> str:
    """The EPICS version the IOC reports (``iocshRegisterCommon`` puts it in
    the C environment, not in ``os.environ``), else the epicscorelibs wheel's."""
    found = _ext.epics_version()
    if found:
        return found
    import epicscorelibs.version  # (importlib.metadata: 2.5 MB, so only when needed)

    return str(epicscorelibs.version.version)


def pva_server() -> Any:
    """``softioc._pvaserver``, the C++ module serving PVA-only PVs on the IOC's
    own PV Access server (it imports p4p), once PVXS's IOC library is loaded."""
    if not _lifecycle.dbd_loaded():
        _lifecycle.ensure_dbd()         # PVXS's IOC library, process-wide
    from . import _pvaserver

    return _pvaserver
