"""Types of the C layer (src/softioc/_ext/*.c), both directions: what Python
calls in C, and (``RecordHooks``, ``OutputHooks``) what C calls in Python."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .errors import EpicsError

# C raises softioc.errors classes for EPICS statuses (errors.c), constructing
# them as below: EpicsRuntimeError (RecordNotFoundError for a missing record
# or field) where a RuntimeError was raised before, EpicsValueError for a
# ValueError.
class ErrorClass(Protocol):
    def __call__(self, message: str, status: int, text: str) -> EpicsError: ...

RF_ON_WRITE: int
RF_VALIDATE: int
RF_FIELD_WATCH: int
RF_LSTRING: int
RF_BLOCKING: int
RF_ALWAYS: int

class RecordCore:
    _flags: int
    name: str
    _spare_name: str
    _given: Mapping[Any, Any] | None
    _dtyp: str
    @property
    def _rtype(self) -> str: ...
    def __init__(self, rtype: str, name: str, dbrecord: Any = None) -> None: ...
    def set(
        self,
        value: Any,
        process: bool = True,
        severity: int | None = None,
        alarm: int | None = None,
        timestamp: float | None = None,
    ) -> None: ...
    def get(self) -> Any: ...
    def set_alarm(self, severity: int, alarm: int, timestamp: float | None = None) -> None: ...
    def _set_initial(self, value: Any, severity: int = 0, alarm: int = 0) -> None: ...
    def _initial_value(self) -> Any:
        """The value set before iocInit, as get() reads it once the IOC runs."""
    def _complete(self, failed: bool = False) -> None: ...
    def _post_alarm(self, severity: int, alarm: int) -> None: ...
    def _bind(self, name: str) -> None:
        """Bind to the EPICS record ``name`` (LoadDatabase); drops ``_given``."""

class RecordHooks(Protocol):
    """What C calls on every record object (a ``RecordCore`` subclass)."""

    def _preinit_set(self, value: Any, severity: int | None, alarm: int | None) -> None:
        """set() before iocInit: keep the value for init_record (caller's thread)."""
    def _preinit_get(self) -> Any:
        """get() before iocInit (caller's thread)."""
    def _on_field_write(self, field: str) -> None:
        """A client wrote ``field`` (flag RF_FIELD_WATCH; EPICS thread, no lock)."""

class OutputHooks(RecordHooks, Protocol):
    """What C calls on an output record that has RF_ON_WRITE/RF_VALIDATE set."""

    def _on_write(self, raw: Any) -> bool:
        """A client's write was processed (EPICS thread, record locked): hand
        on_update on; True means it completes later, through ``_complete``."""
    def _validate_put(self, raw: Any) -> bool:
        """May the client's put be accepted? (EPICS thread, record locked)."""
    def _set_unprocessed(self, value: Any) -> None:
        """set(process=False) stored ``value`` (caller's thread)."""

def record_types() -> list[tuple[str, bool, str]]:
    """record_types() -> [(rtype, is_output, kind)]: the record types Python drives."""
def patches() -> list[tuple[str, bool]]:
    """patches() -> [(name, applied)]: the changes made to EPICS (patches.c)."""
def state() -> tuple[bool, bool, int]:
    """state() -> (running, python_gone, strict): the C layer's phase and settings."""
def putlog_start(capacity: int) -> None:
    """putlog_start(capacity): record client puts (putlog.c)."""
def putlog_take(
    timeout: float,
) -> tuple[list[tuple[float, str, str, str, str, str, str, str, bool]], int]:
    """putlog_take(timeout) -> (entries, dropped)."""
def putlog_wake() -> None:
    """End a waiting putlog_take()."""
def watch_start() -> int:
    """watch_start() -> records: subscribe to every record's changes (watch.c)."""
def watch_take(timeout: float) -> list[int]:
    """watch_take(timeout) -> [index]: the records changed since the last call."""
def watch_wake() -> None:
    """End a waiting watch_take()."""
def watch_mark(name: str) -> None:
    """watch_mark(name): take record name again."""
def watch_row(index: int) -> tuple[str, str, str, str, int, str, float]:
    """watch_row(index) -> (name, rtype, value, units, severity, status, time)."""
def watch_stop() -> None:
    """Cancel the watcher's subscriptions."""
def wake(fd: int) -> None:
    """wake(fd): write a byte to a non-blocking pipe, GIL kept."""
def write_queue(fd: int) -> None:
    """write_queue(fd): queue on_update writes, waking fd (writeq.c); -1 stops."""
def take_writes() -> list[tuple[Any, Any, int]]:
    """take_writes() -> [(record, raw, busy)]: the queued writes, oldest first."""
def queued_writes() -> int:
    """queued_writes() -> writes waiting for the dispatcher."""
def set_acf(path: str, check_client_ip: bool = False) -> None:
    """set_acf(path, check_client_ip=False): the ACF iocInit loads, and asCheckClientIP."""
def create_alias(name: str, alias: str) -> None:
    """Another name for a record."""
def create_record(rtype: str, name: str, dtyp: str, fields: dict[str, Any],
                  defaults: tuple[tuple[str, Any], ...], text_of: Callable[[Any], str],
                  take_over: bool = False) -> None:
    """Create a record with fields (static)."""
def delete_record(name: str) -> None:
    """Delete a record (before iocInit)."""
def put_static(name: str, field: str, text: str, info: bool) -> None:
    """Set a field or info item (before iocInit)."""
def load_database(file: str, path: str | None, substitutions: str | None) -> None:
    """dbLoadDatabase(file, path, subs)"""
def load_records(file: str, substitutions: str | None) -> None:
    """dbLoadRecords(file, subs)"""
def register() -> None:
    """Register iocsh commands and all record/device support; strict puts' patches (patches.c)."""
def ioc_init(memlock: bool = False) -> None:
    """iocInit(memlock=False)"""
def strict_puts(enable: bool | None = None) -> bool:
    """strict_puts(enable=None) -> bool: refuse puts that conversion would change."""
def iocsh(command: str) -> int:
    """Run one IOC shell command."""
def get_field(name: str) -> str:
    """Read REC.FIELD as text."""
def put_field(name: str, value: str) -> None:
    """Write REC.FIELD from text."""
def field_names(rtype: str) -> tuple[str, ...] | None:
    """field_names(rtype) -> every field of the record type, or None if unknown."""
def record_exists(name: str) -> bool:
    """Is there a record of this name?"""
def call_atexits(status: int = 0) -> None:
    """Run EPICS exit handlers (stops servers)."""
def put_raw(name: str, dbr_type: int, address: int, count: int, process: int) -> None:
    """Put into REC.FIELD from a raw buffer address."""
def get_raw(name: str, dbr_type: int, address: int, count: int) -> None:
    """Get REC.FIELD into a raw buffer address."""
def server_stats(name: str) -> tuple[int, int] | None:
    """server_stats(name) -> (clients, channels) of a server layer (rsrv, qsrv2), or None."""
def record_count() -> int:
    """Records in the database, not aliases."""
def epics_version() -> str | None:
    """EPICS_VERSION_FULL of the C environment (set by the IOC shell), or None."""
# (scanOnce (size, used, most used, overflows), callback (size, used, most used,
# overflows), each of the three by priority low, medium, high); None before iocInit.
def queue_stats() -> tuple[tuple[int, int, int, int],
                           tuple[int, tuple[int, int, int], tuple[int, int, int],
                                 tuple[int, int, int]]] | None:
    """queue_stats() -> the scanOnce and callback queues' statistics, or None before iocInit."""
def suspended_threads() -> int:
    """suspended_threads() -> EPICS threads found suspended since the first call."""
def epics_env() -> list[tuple[str, str]]:
    """epics_env() -> [(name, value)] of EPICS's environment parameters (or defaults)."""
def records_by_type() -> list[tuple[str, int]]:
    """records_by_type() -> [(record type, records)], aliases not counted."""
# {protocol ("ca", "pva"): (accepted, refused by validate(), refused by strict puts)}
def put_counts() -> dict[str, tuple[int, int, int]]:
    """put_counts() -> {protocol: (accepted, refused by validate, by strict puts)}."""
def ca_get(names: Sequence[str], timeout: float) -> list[tuple[str, float, int]]:
    """ca_get(names, timeout) -> [(text, stamp, severity)]: read PVs once over CA (probe.c)."""
