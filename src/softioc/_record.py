"""Live record handles: what builder functions return.

``set()``, ``get()`` and ``set_alarm()`` are implemented in C (``_ext``): they
write the record under its lock and process it in the calling thread, so they
are safe from any thread, coroutine or callback, and every value set reaches
monitoring clients (nothing is queued).  This module adds the Python half:
initial values, callbacks for client puts, and field access.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import _database, _ext, _lifecycle, alarm
from ._types import FTVL_DTYPES
from ._wakeup import RunNow
from .errors import NotRunningError, ValueKindError, ValueTooLongError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from ._lazy import numpy as np

__all__ = ["NOTHING_GIVEN", "builder_defaults", "ftvl_dtypes", "Record", "InRecord",
           "OutRecord", "ArrayMixin", "LongStringIn", "LongStringOut"]

log = logging.getLogger("softioc")

OnUpdate = Callable[[Any], Any]
Validate = Callable[[Any, Any], bool]

# Record.__setattr__ treats upper-case names as fields; private attributes set
# on hot paths (building 100,000 records, every client write) skip it.
_set = object.__setattr__
FieldCallback = Callable[[str, str], Any]

_ftvl_dtypes: dict[str, np.dtype[Any]] = {}


def ftvl_dtypes() -> dict[str, np.dtype[Any]]:
    """The numpy dtype of each FTVL choice Python records support."""
    if not _ftvl_dtypes:
        _ftvl_dtypes.update((k, np.dtype(v)) for k, v in FTVL_DTYPES.items())
    return _ftvl_dtypes


# The fields the builder gives each of its records unless told otherwise, as
# pythonSoftIOC's did: device (Python) time, so set(timestamp=...) works; the
# device address naming the record; and for inputs, processing by Python
# (SCAN shows I/O Intr, PINI) with client writes refused (DISP=1; DISP=0
# allows them).  Kept once, not in each record: 100,000 records, 24 MB.
_IN_DEFAULTS = (("PINI", "YES"), ("SCAN", "I/O Intr"), ("DISP", 1))


# A record's _given when the builder was given no fields (100,000 records: 6 MB
# of empty dicts less); None once loaded.
NOTHING_GIVEN: Mapping[Any, Any] = MappingProxyType({})


def builder_defaults(rtype: str, is_output: bool, name: str) -> tuple[tuple[str, Any], ...]:
    """(field, value) pairs the builder sets on a record it makes, unless given."""
    link = ("OUT" if is_output and rtype != "waveform" else "INP", "@" + name)
    return (("TSE", -2), link) if is_output else (("TSE", -2), link, *_IN_DEFAULTS)


class Record(_ext.RecordCore):
    """An EPICS record whose value Python sets; base of every builder record.

    ``set(value, process=True, severity=NO_ALARM, alarm=NO_ALARM,
    timestamp=None)`` writes the value (and processes the record, posting
    monitors) in the calling thread (input records take the positional
    arguments in pythonSoftIOC's order for them: ``set(value, severity,
    alarm, timestamp, process=True)``); ``get()`` reads it back;
    ``set_alarm(severity, alarm)`` changes only the alarm.  ``timestamp`` is
    seconds since the POSIX epoch (``time.time()``).
    """

    is_output = False
    # name, _spare_name (its name in the database, which differs for a spare
    # named at run time), _given (the builder's fields, for
    # FIELD.Value() and WriteRecords until LoadDatabase) and _dtyp are members
    # of RecordCore, set by RecordCore(rtype, name): an input record has no
    # __dict__ at all, and 100,000 records build without a Python __init__.
    __slots__ = ()

    # Called by RecordCore.set() before iocInit.
    def _preinit_set(self, value: Any, severity: int | None, alarm: int | None) -> None:
        self._set_initial(self._to_c(value), severity or 0, alarm or 0)

    # get() before iocInit: what get() will give once the IOC runs (0, 0.0
    # or "" if nothing was set), as pythonSoftIOC's.
    def _preinit_get(self) -> Any:
        return self._from_c(self._initial_value())

    def _to_c(self, value: Any) -> Any:
        return value

    def _from_c(self, value: Any) -> Any:
        return value

    def on_field_change(self, field: str, callback: FieldCallback) -> None:
        """Call ``callback(field, value_text)`` on the dispatcher after a client
        (CA or PVA) writes ``field`` (``"*"``: any field) of this record."""
        if not (field == "*" or (field.isupper() and field.isalnum())):
            raise ValueError(f"{field!r} is not a field name")
        self.__dict__.setdefault("_field_callbacks", {}).setdefault(field, []).append(callback)
        self._flags |= _ext.RF_FIELD_WATCH

    # Called from C (no lock held, GIL held) after a client wrote a field.
    def _on_field_write(self, field: str) -> None:
        callbacks = self.__dict__.get("_field_callbacks", {})
        targets = callbacks.get(field, []) + callbacks.get("*", [])
        if not targets:
            return
        value = _ext.get_field(f"{self.name}.{field}")
        for callback in targets:
            _lifecycle.dispatcher()(callback, (field, value))

    @property
    def record_type(self) -> str:
        """The EPICS record type, e.g. ``"ai"``."""
        return str(self._rtype)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every field this record type has (from the record type's dbd)."""
        return _field_names(self._rtype)

    def add_info(self, name: str, value: Any) -> None:
        """Add an ``info(name, value)`` tag (dicts become JSON), before iocInit."""
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        _ext.put_static(self._spare_name, name, text, True)
        self._remember(("info", name), text)        # for builder.WriteRecords

    def add_alias(self, alias: str) -> None:
        """Give the record another full name (no device prefix added), before
        or after iocInit; clients (CA and PVA) can use either."""
        _database.create_alias(self._spare_name, alias)

    def get_field(self, field: str) -> str:
        """Read any field of the record as text (``dbgf``)."""
        if not _lifecycle.is_running():
            raise NotRunningError(f"{self.name}: get_field() needs a running IOC: call "
                                  "iocInit() first")
        return str(_ext.get_field(f"{self.name}.{field}"))

    def set_field(self, field: str, value: Any) -> None:
        """Write any field of the record as a client would (``dbpf``), once
        the IOC runs; before, give it to the builder or assign it
        (``record.DESC = "text"``)."""
        if not _lifecycle.is_running():
            raise NotRunningError(
                f"{self.name}: set_field() needs a running IOC (as in pythonSoftIOC); "
                f"before iocInit assign the field (record.{field} = value) or give "
                f"{field}= to the builder")
        _ext.put_field(f"{self.name}.{field}", str(value))

    # As in pythonSoftIOC, a record's fields are attributes until the IOC
    # starts: reading one gives an epicsdbbuilder link (for INP/OUT/FLNK of
    # other records) whose Value() is the value given to the builder, and
    # assigning one sets the field (rec.DRVH = 10).
    def __getattr__(self, field: str) -> Any:
        if field.isupper():
            from ._links import FieldLink  # (imports epicsdbbuilder)

            return FieldLink(self, field)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {field!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.isupper():
            super().__setattr__(name, value)
            return
        if _lifecycle.is_running():
            raise AttributeError(f"{self.name}: fields are attributes only before iocInit; "
                                 f"use set_field({name!r}, value)")
        try:
            _ext.put_static(self._spare_name, name, _database.field_text(value), False)
        except TypeError as e:
            raise AttributeError(str(e)) from None
        self._remember(name, value)

    def _remember(self, key: Any, value: Any) -> None:
        """Keep a field (or info tag) set before LoadDatabase with the
        builder's, for FIELD.Value() and WriteRecords."""
        given = self._given
        if given is None:
            return
        if given is NOTHING_GIVEN:
            given = {}
            _set(self, "_given", given)
        given[key] = value      # type: ignore[index]

    def _builder_fields(self) -> dict[Any, Any]:
        """The fields (and info tags) the builder set on this record: those
        given, then its defaults for the rest ({} once loaded)."""
        fields = dict(self._given or {})
        for field, value in builder_defaults(self._rtype, self.is_output, self._spare_name):
            fields.setdefault(field, value)
        return fields if self._given is not None else {}

    def __call__(self, *specifiers: str) -> Any:
        """A link to this record, for another record's fields (``PP``, ``CP``...)."""
        return self._link()(*specifiers)

    def _link(self) -> Any:
        """epicsdbbuilder's handle for links to this record."""
        import epicsdbbuilder

        return epicsdbbuilder.ImportRecord(self._spare_name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self._rtype})>"

    def __str__(self) -> str:
        """The record's name (``caget(str(record))``, ``f"{record}.DESC"``)."""
        return str(self.name)

    def __format__(self, spec: str) -> str:
        return format(str(self.name), spec)


_FIELD_NAMES: dict[str, tuple[str, ...]] = {}


def _field_names(rtype: str) -> tuple[str, ...]:
    if rtype not in _FIELD_NAMES:
        _FIELD_NAMES[rtype] = _ext.field_names(rtype) or ()
    return _FIELD_NAMES[rtype]


class InRecord(Record):
    """An input record: Python sets its value, clients read it."""

    if TYPE_CHECKING:
        def set(self, value: Any, severity: int | None = None,  # type: ignore[override]
                alarm: int | None = None, timestamp: float | None = None,
                process: bool = True) -> None: ...


class OutRecord(Record):
    """An output record: clients (and Python) write it, Python is told.

    ``on_update(value)`` (or ``on_update_name(value, name)``) runs on the
    dispatcher after each processed write whose value changed (every write
    with ``always_update``).  ``validate(record, value) -> bool`` runs in the
    server thread before a client's put is accepted; False (or an exception)
    refuses the put: the client gets an error and the record keeps its value.
    With ``blocking=True`` the record stays busy until on_update returns, so
    ``caput -c`` / put-callback completes only then, and fails if on_update
    raised (the value stays as written, in WRITE/INVALID alarm).
    """

    is_output = True

    def __init__(self, rtype: str, name: str, dbrecord: Any = None, **callbacks: Any) -> None:
        """``callbacks``: `_configure`'s keywords (on_update, validate...)."""
        super().__init__(rtype, name, dbrecord)
        self._last: Any
        _set(self, "_last", None)
        self._configure(**callbacks)

    def _configure(
        self,
        on_update: OnUpdate | None = None,
        on_update_name: Callable[[Any, str], Any] | None = None,
        validate: Validate | None = None,
        always_update: bool = False,
        blocking: bool = False,
    ) -> None:
        """Set the callbacks (also used when a spare record is named at run time)."""
        if on_update is not None and on_update_name is not None:
            raise TypeError("give on_update or on_update_name, not both")
        self._on_update: OnUpdate | None
        if on_update_name is not None:
            callback = on_update_name
            on_update = lambda value: callback(value, self.name)  # noqa: E731
        self._validate: Validate | None
        self._always_update: bool
        self._blocking: bool
        self.__dict__.update(_on_update=on_update, _validate=validate,
                             _always_update=always_update, _blocking=blocking)
        flags = self._flags & ~(_ext.RF_ON_WRITE | _ext.RF_VALIDATE | _ext.RF_BLOCKING |
                                _ext.RF_ALWAYS)
        if always_update:
            flags |= _ext.RF_ALWAYS
        if on_update is not None:
            flags |= _ext.RF_ON_WRITE
        if blocking:
            flags |= _ext.RF_BLOCKING
        if validate is not None:
            flags |= _ext.RF_VALIDATE
        _set(self, "_flags", flags)

    def _preinit_set(self, value: Any, severity: int | None, alarm: int | None) -> None:
        super()._preinit_set(value, severity, alarm)
        _set(self, "_last", self._preinit_get())

    def _unchanged(self, value: Any) -> bool:
        return bool(self._last == value)

    # Called from C after set(value, process=False): a client's next write is
    # "changed" (on_update runs) if it differs from this value.
    def _set_unprocessed(self, value: Any) -> None:
        _set(self, "_last", self._from_c(value))

    def _client_write(self, raw: Any, blocking: bool) -> tuple[OnUpdate, Any, Any] | None:
        """(on_update, value, completion) for a processed write, or None if
        there is nothing to call (no on_update, or the value did not change)."""
        value = self._from_c(raw)
        if not self._always_update and self._last is not None and self._unchanged(value):
            return None
        _set(self, "_last", value)
        callback = self._on_update
        if callback is None:
            return None
        return callback, value, self._finish_write if blocking else self._after_update

    # Called from C in the EPICS thread processing the record (record locked,
    # GIL held) when the dispatcher does not serve the write queue: hand
    # on_update to the dispatcher; True means "completes later".
    def _on_write(self, raw: Any) -> bool:
        work = self._client_write(raw, self._blocking)
        if work is None:
            return False
        callback, value, completion = work
        _lifecycle.dispatcher()(callback, (value,), completion)
        return self._blocking

    # A write from C's queue (_ext.take_writes), in the dispatcher's thread;
    # ``busy``: the record waits (PACT) for _complete().
    def _queued_write(self, raw: Any, busy: bool, run: RunNow) -> None:
        work = self._client_write(raw, busy)
        if work is None:
            if busy:
                self._complete()
            return
        callback, value, completion = work
        run(callback, (value,), completion)

    def _finish_write(self, failed: bool = False) -> None:
        # A failed on_update leaves the record in WRITE/INVALID alarm and
        # fails the put-callback that waits on it (RecordCore_complete).
        self._complete(failed)

    _finish_write._takes_failed = True  # type: ignore[attr-defined]

    def _after_update(self, failed: bool = False) -> None:
        if failed:
            self._post_alarm(alarm.INVALID_ALARM, alarm.WRITE_ALARM)

    _after_update._takes_failed = True  # type: ignore[attr-defined]

    # Called from C after a client put, before it is accepted (record locked).
    def _validate_put(self, raw: Any) -> bool:
        if self._validate is None:
            return True
        try:
            return bool(self._validate(self, self._from_c(raw)))
        except Exception:
            log.exception("validate of %s raised: put refused", self.name)
            return False


class ArrayMixin(Record):
    """Waveform, aai, aao: values are 1-D numpy arrays of the FTVL type
    (lists of str for FTVL=STRING)."""

    def __init__(self, rtype: str, name: str, dbrecord: Any = None, *, dtype: np.dtype[Any],
                 nelm: int, **options: Any) -> None:
        self.dtype = dtype
        self.nelm = nelm
        super().__init__(rtype, name, dbrecord, **options)

    def _to_c(self, value: Any) -> npt.NDArray[Any]:
        if self.dtype.kind == "S":
            return self._strings_to_c(value)
        arr = np.asarray(value)
        if arr.dtype.kind in "US":
            if self.dtype.itemsize != 1:
                raise ValueKindError(f"{self.name}: text needs a CHAR or UCHAR waveform")
            data = arr.item().encode() if arr.dtype.kind == "U" else arr.item()
            arr = np.frombuffer(data + b"\0", dtype=self.dtype)
        arr = np.atleast_1d(arr)
        if arr.ndim != 1:
            raise ValueError(f"{self.name}: needs a 1-D array, got shape {arr.shape}")
        if arr.size > self.nelm:
            raise ValueTooLongError(
                f"{self.name}: {arr.size} elements do not fit NELM={self.nelm}")
        if arr.dtype != self.dtype:
            if arr.size and not np.can_cast(arr.dtype, self.dtype, "safe"):
                converted = arr.astype(self.dtype)
                with np.errstate(invalid="ignore"):
                    same = np.array_equal(converted, arr) or (
                        arr.dtype.kind == "f" and self.dtype.kind == "f")
                if not same:
                    raise ValueError(
                        f"{self.name}: values do not fit the record's {self.dtype} elements")
                arr = converted
            else:
                arr = arr.astype(self.dtype)
        return np.ascontiguousarray(arr)

    def _strings_to_c(self, value: Any) -> npt.NDArray[Any]:
        items = [value] if isinstance(value, (str, bytes)) else list(value)
        if len(items) > self.nelm:
            raise ValueTooLongError(
                f"{self.name}: {len(items)} strings do not fit NELM={self.nelm}")
        # Items that are not text are stored as their str(), as in pythonSoftIOC.
        encoded = [v if isinstance(v, bytes) else str(v).encode() for v in items]
        for v in encoded:
            if len(v) >= 40:
                raise ValueTooLongError(f"{self.name}: {v!r} is longer than 39 bytes")
        return np.array(encoded, dtype=self.dtype)

    def _from_c(self, value: Any) -> Any:
        if isinstance(value, bytes):
            arr = np.frombuffer(value, dtype=self.dtype)
            if self.dtype.kind == "S":
                return [b.decode(errors="replace") for b in arr]
            return arr.copy()
        return value if self.dtype.kind == "S" else np.asarray(value)

    def set(self, value: Any, *args: Any, **kwargs: Any) -> None:
        """Write a 1-D array (of at most NELM elements) and process; further
        arguments as for the record's ``set``."""
        super().set(self._to_c(value), *args, **kwargs)

    def get(self) -> Any:
        """A copy of the current array (NORD elements)."""
        return self._from_c(super().get())


class ArrayOutRecord(ArrayMixin, OutRecord):
    """Output waveform/aao."""

    def _unchanged(self, value: Any) -> bool:
        return bool(np.array_equal(self._last, value))


class ArrayInRecord(ArrayMixin, InRecord):
    """Input waveform/aai."""


class LongStringMixin(ArrayMixin):
    """A long string: a CHAR waveform served as text (``info(Q:form, "String")``),
    as pythonSoftIOC makes it.  Values are str; the record holds NELM-1 bytes
    of UTF-8 and the NUL that ends them."""

    def __init__(self, rtype: str, name: str, dbrecord: Any = None, **options: Any) -> None:
        super().__init__(rtype, name, dbrecord, **options)
        self._flags |= _ext.RF_LSTRING

    def _to_c(self, value: Any) -> npt.NDArray[Any]:
        if isinstance(value, np.ndarray) and value.dtype == self.dtype:
            return value                    # already converted (set() before iocInit)
        if isinstance(value, str):
            data = value.encode()
        elif isinstance(value, bytes):
            data = value
        else:
            raise TypeError(f"{self.name}: a long string needs a str, got {value!r}")
        if len(data) >= self.nelm:
            raise ValueTooLongError(f"{self.name}: text of {len(data)} bytes is too long "
                                    f"(the record holds {self.nelm - 1})")
        return np.frombuffer(data + b"\0", dtype=self.dtype)

    def _from_c(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        data = bytes(np.asarray(value, dtype=self.dtype).tobytes()) \
            if not isinstance(value, bytes) else value
        return data.split(b"\0", 1)[0].decode(errors="replace")

    def _unchanged(self, value: Any) -> bool:
        return bool(self._last == value)


class LongStringIn(LongStringMixin, InRecord):
    """``builder.longStringIn``: text Python sets."""


class LongStringOut(LongStringMixin, OutRecord):
    """``builder.longStringOut``: text clients can write."""

