"""Build records from Python, before the IOC starts.

Each function makes one EPICS record driven by Python and returns its live
handle (see ``softioc._record``).  The second positional argument is the
initial value (``aOut("AVERAGE:CURRENT", 0.0)``), also accepted as
``initial_value=``; further settings are keywords.  Upper-case keywords are
record fields (``EGU="mA"``, ``PREC=3``, ``DRVH=10``, ``SCAN="1 second"``),
checked against the record type's definition now, not at load time.

Note for pythonSoftIOC users: there the arguments after the name are
fields (``aIn(name, LOPR, HOPR, EGU, PREC)``, ``aOut(name, DRVL, DRVH, EGU,
PREC)``, ``boolIn(name, ZNAM, ONAM)``...); here the second is the initial
value and fields are keywords.  More than one value after the name, or one
that cannot be an initial value, is an error that names the keywords.

Other EPICS record types (``calc``, ``calcout``, ``aSub``, ...) are built with
``records.<type>(name, **fields)`` (epicsdbbuilder) and load with the rest.

This module only makes records: the records it made, the spare ones and the
device name belong to the IOC's database (``softioc._ioc``), and names,
aliases and loading are ``softioc._database``'s.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import epicsdbbuilder

from . import _database, _ext, _lifecycle
from ._database import check_new as _check_new
from ._database import field_text as _field_text
from ._database import full_name as _full_name
from ._database import init_builder as _init_builder
from ._ioc import ioc as _ioc
from ._record import (
    NOTHING_GIVEN,
    ArrayInRecord,
    ArrayOutRecord,
    InRecord,
    LongStringIn,
    LongStringOut,
    OnUpdate,
    OutRecord,
    Record,
    Validate,
    builder_defaults,
    ftvl_dtypes,
)
from .errors import BuilderArgumentError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from ._lazy import numpy as np

__all__ = [
    "aIn", "aOut", "boolIn", "boolOut", "longIn", "longOut", "int64In", "int64Out",
    "stringIn", "stringOut", "longStringIn", "longStringOut", "mbbIn", "mbbOut",
    "Waveform", "WaveformIn", "WaveformOut", "aaIn", "aaOut", "Action",
    "SetDeviceName", "UnsetDevice", "GetRecordNames", "LoadDatabase", "ClearRecords",
    "WriteRecords",
    "SetBlocking",
    "SetPrefix", "records", "PP", "CP", "MS", "NP", "Alias", "ReserveRecords", "SpareRecords",
]

_F = TypeVar("_F", bound=Callable[..., Any])

PP, CP, MS, NP = epicsdbbuilder.PP, epicsdbbuilder.CP, epicsdbbuilder.MS, epicsdbbuilder.NP

MAX_NAME = _database.MAX_NAME     # EPICS record names: at most 60 characters


class _Records:
    """``records.calc(name, **fields)``: any record type of base.dbd."""

    def __getattr__(self, rtype: str) -> Callable[..., Any]:
        _init_builder()
        maker = getattr(epicsdbbuilder.records, rtype)

        def make(name: str, **fields: Any) -> Any:
            full = _full_name(name)
            _check_new(full)
            return _checked(lambda: maker(name, **fields), full)

        return make


records = _Records()


def SetDeviceName(name: str) -> None:
    """Prefix every following record name with ``name:``."""
    SetPrefix(name)


def SetPrefix(prefix: str | None) -> None:
    """Same as SetDeviceName; None removes the prefix."""
    _init_builder()
    _ioc.database.prefix = [] if prefix is None else [prefix]


def UnsetDevice() -> None:
    """Stop prefixing record names."""
    SetPrefix(None)


def GetRecordNames() -> Any:
    """The epicsdbbuilder naming object (its ``prefix`` list is the device)."""
    _init_builder()
    return epicsdbbuilder.GetRecordNames()


def _checked(make: Callable[[], Any], full: str) -> Any:
    # epicsdbbuilder reports bad fields with AttributeError/AssertionError;
    # give the caller one clear exception type and message.
    try:
        return make()
    except AttributeError as e:
        raise TypeError(f"{full}: {e}") from None
    except AssertionError as e:
        raise ValueError(f"{full}: {e}") from None


_OUT_OPTIONS = ("on_update", "on_update_name", "validate", "always_update", "blocking")


def SetBlocking(blocking: bool) -> bool:
    """Make following output records ``blocking`` unless they say otherwise;
    returns the previous setting."""
    db = _ioc.database
    previous, db.blocking_default = db.blocking_default, bool(blocking)
    return previous

_SKIP = object()
# Keywords of builder functions that are not fields (fields are upper case).
_OPTIONS = frozenset(("initial_value", "initial_severity", "initial_alarm", "status",
                      "severity", "autosave", "on_field_change", "alias", *_OUT_OPTIONS))


def _make(
    rtype: str,
    cls: type[Record],
    name: str,
    initial: Any,
    fields: dict[str, Any],
    dtyp: str = "Python",
    **extra: Any,
) -> Any:
    """Create the db record (fields validated) and its live handle.

    The common case (fields and an initial value) is the fast path: 100,000
    records are built in a loop of builder calls, so each step here counts."""
    full = _full_name(name)
    severity = alarm = autosave = field_callbacks = None
    aliases: list[str] = []
    out_opts: dict[str, Any] = {}
    if not _OPTIONS.isdisjoint(fields):
        if "initial_value" in fields:
            if initial is not _SKIP and initial is not None:
                raise TypeError(f"{full}: initial value given twice")
            initial = _given_initial(full, fields)
        severity = fields.pop("initial_severity", None)
        alarm = fields.pop("initial_alarm", None)
        severity, alarm = _status_severity(cls, full, fields, severity, alarm)
        autosave = fields.pop("autosave", None)
        field_callbacks = fields.pop("on_field_change", None)
        given_aliases = fields.pop("alias", None) or []
        aliases = [given_aliases] if isinstance(given_aliases, str) else list(given_aliases)
        out_opts = {k: fields.pop(k) for k in _OUT_OPTIONS if k in fields}
    is_output = cls.is_output
    if is_output and "blocking" not in out_opts and _ioc.database.blocking_default and \
            issubclass(cls, OutRecord):
        out_opts["blocking"] = True
    if out_opts and not issubclass(cls, OutRecord):
        raise TypeError(f"{full}: {', '.join(out_opts)} only apply to output records")
    unknown = [k for k in fields if not k.isupper()]
    if unknown:
        raise TypeError(f"{full}: unknown keyword(s) {', '.join(sorted(unknown))}")
    if _ioc.running:
        return _make_at_run_time(rtype, dtyp, full, initial, fields, extra, severity, alarm,
                                 autosave, field_callbacks, aliases, out_opts)
    _check_new(full, duplicates=False)     # create_record refuses a name in use
    _database.check_not_python(full)
    for a in aliases:
        _check_new(a)
    # Straight into EPICS's static database, checked by EPICS (no .db text),
    # with the builder's defaults for fields not given.  A record of the same
    # name and type from a .db file (dbLoadDatabase) becomes this one, as a
    # second definition in a .db file would: pythonSoftIOC's builder allows it.
    _ext.create_record(rtype, full, dtyp, fields, builder_defaults(rtype, is_output, full),
                       _field_text, True)
    try:
        for a in aliases:
            _ext.create_alias(full, a)
        record = cls(rtype, full, None, **out_opts, **extra) if out_opts or extra else \
            cls(rtype, full)
        _apply_initial(record, initial, severity, alarm)
    except Exception:
        _ext.delete_record(full)
        raise
    if field_callbacks:
        for field, callback in field_callbacks.items():
            record.on_field_change(field, callback)
    # (object.__setattr__: not fields, and 100,000 records make it count)
    if dtyp != "Python":
        object.__setattr__(record, "_dtyp", dtyp)
    object.__setattr__(record, "_given", fields or NOTHING_GIVEN)  # FIELD.Value(), WriteRecords
    _ioc.database.pending[full] = record
    if autosave is not None or _ioc.database.autosave_blocks:
        _database.track_autosave(record, autosave)
    return record


def _make_at_run_time(rtype: str, dtyp: str, full: str, initial: Any, fields: dict[str, Any],
                      extra: dict[str, Any], severity: Any, alarm: Any, autosave: Any,
                      field_callbacks: Any, aliases: list[str],
                      out_opts: dict[str, Any]) -> Record:
    """A builder call after iocInit: a spare record, configured and named."""
    _check_new(full)
    for a in aliases:
        _check_new(a)
    if autosave:
        raise TypeError(f"{full}: autosave is set up before iocInit")
    record = _name_spare(rtype, dtyp, full, fields, extra)
    for a in [full, *aliases]:
        _ext.create_alias(record._spare_name, a)
    _apply_initial(record, initial, severity, alarm)
    if isinstance(record, OutRecord):
        record._last = None
        record._configure(**out_opts)     # after the initial value: no on_update for it
    for field, callback in (field_callbacks or {}).items():
        record.on_field_change(field, callback)
    _ioc.database.loaded[full] = record
    watch = _ioc.features.get("watch")     # the live view (softioc._watch), if on
    if watch is not None:
        watch.named(record._spare_name)
    return record


def _refuse_none_initial(name: str, fields: dict[str, Any]) -> None:
    """``initial_value=None`` is refused, as in pythonSoftIOC (leave the
    keyword out for no initial value)."""
    if "initial_value" in fields and fields["initial_value"] is None:
        raise TypeError(f"{name}: initial_value=None is not a value: leave initial_value "
                        "out for a record without one")


def _given_initial(full: str, fields: dict[str, Any]) -> Any:
    """``initial_value=`` taken from ``fields`` (None refused)."""
    _refuse_none_initial(full, fields)
    return fields.pop("initial_value")


def _status_severity(cls: type[Record], full: str, fields: dict[str, Any],
                     severity: int | None, alarm: int | None) -> tuple[Any, Any]:
    """pythonSoftIOC's ``status=``/``severity=`` (input records): the
    initial alarm, as ``initial_alarm=``/``initial_severity=``."""
    status, sevr = fields.pop("status", None), fields.pop("severity", None)
    if status is None and sevr is None:
        return severity, alarm
    if cls.is_output:
        raise TypeError(f"{full}: status= and severity= apply to input records "
                        "(use initial_severity= and initial_alarm=)")
    if (sevr is not None and severity is not None) or (status is not None and alarm is not None):
        raise BuilderArgumentError(
            f"{full}: give severity=/status= or initial_severity=/initial_alarm=")
    for given, field in ((sevr, "SEVR"), (status, "STAT")):
        if given is not None and field in fields:
            raise BuilderArgumentError(
                f"{full}: give {'severity' if field == 'SEVR' else 'status'}= or {field}=, "
                "not both")
    return (severity if sevr is None else sevr), (alarm if status is None else status)


def _apply_initial(record: Record, initial: Any, severity: int | None,
                   alarm: int | None) -> None:
    if initial is not _SKIP and initial is not None:
        try:
            if severity is None and alarm is None and not _ioc.running:
                record._preinit_set(initial, None, None)    # what set() calls, sooner
            else:
                record.set(initial, severity=severity, alarm=alarm)
        except (TypeError, ValueError) as e:
            error = _reworded(e, f"{record.name}: {initial!r} cannot be the initial value ({e})")
            error.initial_value_error = True        # type: ignore[attr-defined]
            raise error from None
    elif severity:
        record.set_alarm(severity, alarm or 0)


def _reworded(error: Exception, text: str) -> Exception:
    """``error``'s class with ``text`` (the same error if the class wants more)."""
    try:
        return type(error)(text)
    except Exception:
        return error


# What pythonSoftIOC took positionally after the name (aOut(name, DRVL, DRVH,
# EGU, PREC)), for errors that point old code at the keywords.
_OLD_POSITIONAL = {
    "ai": ("LOPR", "HOPR", "EGU", "PREC"), "ao": ("DRVL", "DRVH", "EGU", "PREC"),
    "longin": ("LOPR", "HOPR", "EGU"), "longout": ("DRVL", "DRVH", "EGU"),
    "int64in": ("LOPR", "HOPR", "EGU"), "int64out": ("DRVL", "DRVH", "EGU"),
    "bi": ("ZNAM", "ONAM"), "bo": ("ZNAM", "ONAM"),
}


def _one_positional(maker: _F) -> _F:
    """Refuse pythonSoftIOC-style positional fields (``aIn("X", 0, 10)``):
    after the name only the initial value may be positional; and refuse
    ``initial_value=None`` (pythonSoftIOC raises too)."""
    rtype = maker.__name__
    old = _OLD_POSITIONAL.get(_MAKER_TYPES.get(rtype, ""))

    @functools.wraps(maker)
    def checked(name: Any, *values: Any, **fields: Any) -> Any:
        if len(values) > 1 and old:
            keywords = ", ".join(f"{f}={v!r}" for f, v in zip(old, values))
            raise TypeError(
                f"{rtype}({name!r}, ...): {len(values)} values after the name, but only "
                f"one, the initial value, may be positional.  In pythonSoftIOC these "
                f"positions were {', '.join(old[:len(values)])}: write "
                f"{rtype}({name!r}, {keywords}), with initial_value=... if you want one")
        _refuse_none_initial(f"{rtype}({name!r}, ...)", fields)
        try:
            return maker(name, *values, **fields)
        except (TypeError, ValueError) as e:
            if not (values and old and getattr(e, "initial_value_error", False)):
                raise
            # The value was positional: old code may have meant a field.
            raise _reworded(e, f"{e}. The 2nd positional argument is the initial value "
                               f"here; in pythonSoftIOC it was {old[0]}: write {old[0]}=... "
                               "for that") from None
    return cast(_F, checked)


_MAKER_TYPES = {"aIn": "ai", "aOut": "ao", "longIn": "longin", "longOut": "longout",
                "int64In": "int64in", "int64Out": "int64out", "boolIn": "bi", "boolOut": "bo"}


# ---- records after iocInit -------------------------------------------------
#
# EPICS cannot add records to a running database safely (lock sets and scan
# lists are built once by iocInit, and clients may find a half-made record).
# What it can do at run time is give an existing record another name
# (dbCreateAlias, live for CA and PVA at once) and change its fields.  So
# ReserveRecords() makes spare records before iocInit, and builder calls after
# iocInit configure a spare and name it.

_FIXED_AT_INIT = {"NELM", "FTVL", "SIZV", "DTYP", "INP", "OUT", "PINI", "TSE"}


def ReserveRecords(kind: Callable[..., Any], count: int, **fields: Any) -> None:
    """Make ``count`` spare records so that ``kind`` (a builder function, e.g.
    ``builder.aIn``) can create records after iocInit.

    For arrays give the largest ``length`` (and the ``datatype``) needed.
    A record made at run time is a spare renamed by an alias: clients and
    Python use the new name; ``dbl`` and its NAME field show the spare's.
    """
    if _lifecycle.is_running():
        raise RuntimeError("ReserveRecords() must come before iocInit()")
    if count < 0:
        raise ValueError("count must be >= 0")
    base = _full_name(f"SPARE_{kind.__name__}")
    for _ in range(count):
        name = f"{base}_{len(_spare_list(kind)) + 1}"
        db = _ioc.database
        saved = list(db.prefix)
        db.prefix = []
        try:
            record = kind(name, **dict(fields))
        finally:
            db.prefix = saved
        record._spare_name = name
        _ioc.database.spares.setdefault((record._rtype, record._dtyp), []).append(record)
        _ioc.database.spare_kinds.setdefault(kind.__name__, []).append(record)


def _spare_list(kind: Callable[..., Any]) -> list[Record]:
    return _ioc.database.spare_kinds.get(kind.__name__, [])


def SpareRecords() -> dict[str, int]:
    """How many spare records of each builder kind are left."""
    return {k: sum(1 for r in v if r in _free()) for k, v in _ioc.database.spare_kinds.items()}


def _free() -> list[Record]:
    return [r for pool in _ioc.database.spares.values() for r in pool]


def _name_spare(rtype: str, dtyp: str, full: str, fields: dict[str, Any],
                extra: dict[str, Any]) -> Record:
    pool = _ioc.database.spares.get((rtype, dtyp), [])
    for record in pool:
        dtype, nelm = extra.get("dtype"), extra.get("nelm")
        if dtype is not None and (record.dtype != dtype or record.nelm < nelm):
            continue
        break
    else:
        raise RuntimeError(
            f"cannot create {full!r} after iocInit: no spare {rtype} record left "
            f"(reserve some with builder.ReserveRecords(...) before iocInit)")
    if "dtype" in extra:        # checked against the spare above
        fields = {k: v for k, v in fields.items() if k not in ("NELM", "FTVL")}
    fixed = sorted(set(fields) & _FIXED_AT_INIT)
    if fixed:
        raise TypeError(f"{full}: {', '.join(fixed)} cannot change after iocInit")
    for field, value in fields.items():
        _ext.put_field(f"{record._spare_name}.{field}", str(value))
    pool.remove(record)
    record.name = full
    return record


def _limits(**limits: Any) -> dict[str, Any]:
    return {k: v for k, v in limits.items() if v is not None}


def _drive_limits(**limits: Any) -> dict[str, Any]:
    """LOPR/HOPR default to DRVL/DRVH, as in pythonSoftIOC (display ranges)."""
    if limits.get("LOPR") is None:
        limits["LOPR"] = limits.get("DRVL")
    if limits.get("HOPR") is None:
        limits["HOPR"] = limits.get("DRVH")
    return _limits(**limits)


# ---- analogue --------------------------------------------------------------

@_one_positional
def aIn(name: str, initial_value: Any = _SKIP, *, LOPR: float | None = None,
        HOPR: float | None = None, EGU: str | None = None, PREC: int | None = None,
        **fields: Any) -> InRecord:
    """An ``ai`` record holding a float."""
    # (no _limits(): aIn is the builder call made 100,000 times in a loop)
    if LOPR is not None:
        fields["LOPR"] = LOPR
    if HOPR is not None:
        fields["HOPR"] = HOPR
    if EGU is not None:
        fields["EGU"] = EGU
    if PREC is not None:
        fields["PREC"] = PREC
    return _make("ai", InRecord, name, initial_value, fields)  # type: ignore[no-any-return]


@_one_positional
def aOut(name: str, initial_value: Any = _SKIP, *, LOPR: float | None = None,
         HOPR: float | None = None, EGU: str | None = None, PREC: int | None = None,
         DRVL: float | None = None, DRVH: float | None = None,
         **fields: Any) -> OutRecord:
    """An ``ao`` record: a float clients can write (clamped to DRVL/DRVH,
    which are also LOPR/HOPR unless given)."""
    fields.update(_drive_limits(LOPR=LOPR, HOPR=HOPR, EGU=EGU, PREC=PREC, DRVL=DRVL, DRVH=DRVH))
    return _make("ao", OutRecord, name, initial_value, fields)  # type: ignore[no-any-return]


# ---- binary ----------------------------------------------------------------

@_one_positional
def boolIn(name: str, initial_value: Any = _SKIP, *, ZNAM: str | None = None,
           ONAM: str | None = None, **fields: Any) -> InRecord:
    """A ``bi`` record: 0 or 1, named ZNAM/ONAM."""
    fields.update(_limits(ZNAM=ZNAM, ONAM=ONAM))
    return _make("bi", InRecord, name, initial_value, fields)  # type: ignore[no-any-return]


@_one_positional
def boolOut(name: str, initial_value: Any = _SKIP, *, ZNAM: str | None = None,
            ONAM: str | None = None, **fields: Any) -> OutRecord:
    """A ``bo`` record: 0 or 1 that clients can write."""
    fields.update(_limits(ZNAM=ZNAM, ONAM=ONAM))
    return _make("bo", OutRecord, name, initial_value, fields)  # type: ignore[no-any-return]


def Action(name: str, **fields: Any) -> OutRecord:
    """A ``bo`` whose on_update runs on every write, even of the same value."""
    fields.setdefault("always_update", True)
    return boolOut(name, **fields)


# ---- integers --------------------------------------------------------------

@_one_positional
def longIn(name: str, initial_value: Any = _SKIP, *, LOPR: int | None = None,
           HOPR: int | None = None, EGU: str | None = None, **fields: Any) -> InRecord:
    """A ``longin`` record: a 32-bit signed integer (MDEL -1: every set() posts)."""
    fields.setdefault("MDEL", -1)               # as pythonSoftIOC
    fields.update(_limits(LOPR=LOPR, HOPR=HOPR, EGU=EGU))
    return _make("longin", InRecord, name, initial_value, fields)  # type: ignore[no-any-return]


@_one_positional
def longOut(name: str, initial_value: Any = _SKIP, *, LOPR: int | None = None,
            HOPR: int | None = None, EGU: str | None = None, DRVL: int | None = None,
            DRVH: int | None = None, **fields: Any) -> OutRecord:
    """A ``longout`` record: a 32-bit signed integer clients can write
    (DRVL/DRVH are also LOPR/HOPR unless given)."""
    fields.update(_drive_limits(LOPR=LOPR, HOPR=HOPR, EGU=EGU, DRVL=DRVL, DRVH=DRVH))
    return _make("longout", OutRecord, name, initial_value, fields)  # type: ignore[no-any-return]


@_one_positional
def int64In(name: str, initial_value: Any = _SKIP, *, LOPR: int | None = None,
            HOPR: int | None = None, EGU: str | None = None, **fields: Any) -> InRecord:
    """An ``int64in`` record: a 64-bit signed integer (MDEL -1: every set() posts)."""
    fields.setdefault("MDEL", -1)               # as pythonSoftIOC
    fields.update(_limits(LOPR=LOPR, HOPR=HOPR, EGU=EGU))
    return _make("int64in", InRecord, name, initial_value, fields)  # type: ignore[no-any-return]


@_one_positional
def int64Out(name: str, initial_value: Any = _SKIP, *, LOPR: int | None = None,
             HOPR: int | None = None, EGU: str | None = None, DRVL: int | None = None,
             DRVH: int | None = None, **fields: Any) -> OutRecord:
    """An ``int64out`` record: a 64-bit signed integer clients can write
    (DRVL/DRVH are also LOPR/HOPR unless given)."""
    fields.update(_drive_limits(LOPR=LOPR, HOPR=HOPR, EGU=EGU, DRVL=DRVL, DRVH=DRVH))
    return _make("int64out", OutRecord, name, initial_value, fields)  # type: ignore[no-any-return]


# ---- strings ---------------------------------------------------------------

@_one_positional
def stringIn(name: str, initial_value: Any = _SKIP, **fields: Any) -> InRecord:
    """A ``stringin`` record: up to 39 bytes of UTF-8."""
    return _make("stringin", InRecord, name, initial_value, fields)  # type: ignore[no-any-return]


@_one_positional
def stringOut(name: str, initial_value: Any = _SKIP, **fields: Any) -> OutRecord:
    """A ``stringout`` record: up to 39 bytes clients can write."""
    return _make("stringout", OutRecord, name, initial_value, fields)  # type: ignore[no-any-return]


def _long_string(cls: type[Record], name: str, initial: Any, length: int | None,
                 fields: dict[str, Any], dtyp: str) -> Any:
    """A CHAR waveform served as text (``info(Q:form, "String")``), as in
    pythonSoftIOC: CA clients read and write the whole text at the record's
    name (``caget -S``), PVA clients see a string."""
    given = {k: v for k, v in (("length", length), ("NELM", fields.pop("NELM", None)),
                               ("SIZV", fields.pop("SIZV", None))) if v is not None}
    if len(given) > 1:
        raise TypeError(f"{name}: give one of {', '.join(given)}")
    if "FTVL" in fields:
        raise TypeError(f"{name}: a long string is a CHAR waveform; FTVL cannot change")
    if initial is _SKIP or initial is None:
        initial = ""                    # as pythonSoftIOC: served from the start, no UDF
    if given:
        nelm = next(iter(given.values()))
    else:
        text = initial.encode() if isinstance(initial, str) else initial
        nelm = max(256, len(text) + 1) if isinstance(text, bytes) else 256
    if isinstance(nelm, bool) or not isinstance(nelm, int) or nelm < 1:
        raise ValueError(f"{name}: long string length {nelm!r} must be an int >= 1")
    fields.update(NELM=nelm, FTVL="CHAR")
    record = _make("waveform", cls, name, initial, fields, dtyp,
                   dtype=ftvl_dtypes()["CHAR"], nelm=nelm)
    if not _lifecycle.is_running():     # a spare named at run time has it already
        record.add_info("Q:form", "String")
    return record


@_one_positional
def longStringIn(name: str, initial_value: Any = _SKIP, *, length: int | None = None,
                 **fields: Any) -> LongStringIn:
    """A long string Python sets: a CHAR ``waveform`` of ``length`` bytes
    (default 256, or longer to fit the initial value) holding UTF-8 text and its
    NUL, served as a string (``caget -S NAME``, PVA string)."""
    return _long_string(  # type: ignore[no-any-return]
        LongStringIn, name, initial_value, length, fields, "PythonLongStringIn")


@_one_positional
def longStringOut(name: str, initial_value: Any = _SKIP, *, length: int | None = None,
                  **fields: Any) -> LongStringOut:
    """A long string clients can write (``caput -S NAME text``, PVA put of a
    string); on_update gets a str.  With strict puts a text with no room left
    for its NUL is refused."""
    return _long_string(  # type: ignore[no-any-return]
        LongStringOut, name, initial_value, length, fields, "PythonLongStringOut")


# ---- enums -----------------------------------------------------------------

_MBB_STATES = ["ZR", "ON", "TW", "TH", "FR", "FV", "SX", "SV",
               "EI", "NI", "TE", "EL", "TV", "TT", "FT", "FF"]
_SEVERITY_NAMES = {0: "NO_ALARM", 1: "MINOR", 2: "MAJOR", 3: "INVALID"}


def _mbb_fields(options: Sequence[Any], fields: dict[str, Any]) -> None:
    if len(options) > len(_MBB_STATES):
        raise ValueError(f"mbb records have at most 16 states, got {len(options)}")
    for prefix, option in zip(_MBB_STATES, options):
        if isinstance(option, tuple):
            label, severity = option
            if isinstance(severity, int):
                severity = _SEVERITY_NAMES[severity]
            fields[prefix + "SV"] = severity
        else:
            label = option
        if not isinstance(label, str):
            raise TypeError(f"mbb state must be a str or (str, severity), got {option!r}")
        fields[prefix + "ST"] = label
        fields.setdefault(prefix + "VL", _MBB_STATES.index(prefix))


def mbbIn(name: str, *options: Any, **fields: Any) -> InRecord:
    """An ``mbbi`` record; ``options`` are state names or (name, severity).

    More than 16 states (beyond what mbbi can hold) make a ``longin`` holding
    the index, ``NAME:CHOICES`` (a string waveform of the states) and, over
    PV Access, ``NAME:ENUM``, an NTEnum with the full choice list.
    """
    if len(options) > len(_MBB_STATES):
        return _big_enum("longin", InRecord, name, options, fields)  # type: ignore[return-value]
    _mbb_fields(options, fields)
    return _make("mbbi", InRecord, name, _SKIP, fields)  # type: ignore[no-any-return]


def mbbOut(name: str, *options: Any, **fields: Any) -> OutRecord:
    """An ``mbbo`` record; ``options`` are state names or (name, severity).

    More than 16 states: a ``longout`` as for mbbIn, whose puts outside the
    states are refused.
    """
    if len(options) > len(_MBB_STATES):
        return _big_enum("longout", OutRecord, name, options, fields)  # type: ignore[return-value]
    _mbb_fields(options, fields)
    return _make("mbbo", OutRecord, name, _SKIP, fields)  # type: ignore[no-any-return]


def _big_enum(rtype: str, cls: type[Record], name: str, options: Sequence[Any],
              fields: dict[str, Any]) -> Record:
    if any(isinstance(o, tuple) for o in options):
        raise TypeError("per-state severities need at most 16 states (an mbb record)")
    if not all(isinstance(o, str) and len(o.encode()) < 40 for o in options):
        raise ValueError("enum states must be str of at most 39 bytes")
    n = len(options)
    fields.update(LOPR=0, HOPR=n - 1)
    if rtype == "longout":
        user_validate = fields.pop("validate", None)

        def in_range(record: Any, value: Any) -> bool:
            ok = 0 <= value < n
            return ok and (user_validate is None or bool(user_validate(record, value)))

        fields["validate"] = in_range
    initial = _given_initial(name, fields) if "initial_value" in fields else _SKIP
    if initial is not _SKIP and not (isinstance(initial, int) and 0 <= initial < n):
        raise ValueError(f"initial state {initial!r} is not an index 0..{n - 1}")
    record: Record = _make(rtype, cls, name, initial, fields)
    full = record.name
    choices = records.waveform(f"{name}:CHOICES", FTVL="STRING", NELM=n,
                               INP={"const": list(options)}, PINI="YES")
    group = f"{full}:ENUM"
    index_map: dict[str, Any] = {"+type": "plain", "+channel": "VAL", "+trigger": "*"}
    if rtype == "longout":
        index_map["+putorder"] = 0
    record.add_info("Q:group", {group: {
        "+id": "epics:nt/NTEnum:1.0",
        "value": {"+type": "structure", "+id": "enum_t"},
        "value.index": index_map,
        "": {"+type": "meta", "+channel": "VAL"},
    }})
    choices.add_info("Q:group", {group: {
        "value.choices": {"+type": "plain", "+channel": "VAL", "+trigger": ""}}})
    return record


# ---- arrays ----------------------------------------------------------------

def _array_fields(name: str, value: Any, fields: dict[str, Any]) -> tuple[np.dtype[Any], int]:
    length = fields.pop("length", None)
    datatype = fields.pop("datatype", None)
    nelm = fields.pop("NELM", None)
    ftvl = fields.pop("FTVL", None)
    if length is not None and nelm is not None and length != nelm:
        raise TypeError("give length or NELM, not both")
    nelm = nelm if nelm is not None else length
    if ftvl is None:
        dtype: np.dtype[Any]
        if datatype is int or datatype == "int":
            dtype = np.dtype(np.int32)              # as pythonSoftIOC: FTVL LONG
        elif datatype is not None:
            dtype = np.dtype(datatype)
        elif value is not None:
            v = np.asarray(value)
            if v.dtype.kind in "US" and v.ndim == 0:
                dtype = np.dtype(np.uint8)          # one text: a CHAR waveform
            elif v.dtype.kind in "US" or (v.dtype.kind == "O" and any(
                    isinstance(item, (str, bytes)) for item in v.ravel())):
                dtype = np.dtype("S40")             # a list of texts: FTVL=STRING
            elif isinstance(value, np.ndarray):
                dtype = v.dtype                     # a numpy array keeps its type
            else:
                dtype = _narrow_ints(v)
        else:
            dtype = np.dtype(np.float64)
        names = {d: n for n, d in ftvl_dtypes().items()}
        if dtype == np.dtype(np.bool_):
            dtype = np.dtype(np.uint8)
        if dtype.kind == "i" and dtype.itemsize == 8 and dtype not in names:
            dtype = np.dtype(np.int64)
        if dtype.kind in "US":
            dtype = np.dtype("S40")
        if dtype not in names:
            raise TypeError(f"no waveform element type for numpy dtype {dtype}")
        ftvl = names[dtype]
    if ftvl not in ftvl_dtypes():
        raise ValueError(f"FTVL {ftvl!r} is not an element type Python records support")
    if nelm is None:
        if value is None:
            raise BuilderArgumentError(
                f"{name}: a waveform needs an initial value, length= or NELM=")
        v = np.asarray(value)
        text = v.dtype.kind == "U" and v.ndim == 0
        nelm = len(v.item().encode()) + 1 if text else np.atleast_1d(v).size
        if not nelm:
            raise BuilderArgumentError(
                f"{name}: an empty initial value gives no length: add length=")
    fields["NELM"] = int(nelm)
    fields["FTVL"] = ftvl
    return ftvl_dtypes()[ftvl], int(nelm)


def _narrow_ints(v: npt.NDArray[Any]) -> np.dtype[Any]:
    """Python ints (a list) make a LONG (ULONG) waveform as in pythonSoftIOC,
    when they fit (CA clients get DBR_LONG); else the 64-bit type, not wrapped
    values."""
    if v.dtype.kind in "iu" and v.dtype.itemsize == 8:
        small = np.dtype(np.int32 if v.dtype.kind == "i" else np.uint32)
        if np.array_equal(v.astype(small), v):
            return small
    return v.dtype


def _waveform(cls: type[Record], name: str, value: tuple[Any, ...],
              fields: dict[str, Any], dtyp: str, rtype: str = "waveform") -> Any:
    if len(value) > 1:
        raise TypeError("give at most one initial value")
    if value:
        if "initial_value" in fields:
            raise TypeError(f"{name}: initial value given twice")
        initial = value[0]
    else:
        initial = _given_initial(name, fields) if "initial_value" in fields else None
    dtype, nelm = _array_fields(name, initial, fields)
    if initial is None:             # as pythonSoftIOC: empty, served without a UDF alarm
        initial = np.zeros(0, dtype)
    return _make(rtype, cls, name, initial, fields, dtyp, dtype=dtype, nelm=nelm)


def WaveformIn(name: str, *value: Any, **fields: Any) -> ArrayInRecord:
    """A ``waveform`` of numbers Python sets (``length=``/NELM, ``datatype=``/FTVL)."""
    return _waveform(ArrayInRecord, name, value, fields, "Python")  # type: ignore[no-any-return]


def WaveformOut(name: str, *value: Any, **fields: Any) -> ArrayOutRecord:
    """A ``waveform`` of numbers clients can write."""
    return _waveform(ArrayOutRecord, name, value, fields, "PythonWfOut")  # type: ignore[no-any-return]


Waveform = WaveformIn    # pythonSoftIOC's older name


def aaIn(name: str, *value: Any, **fields: Any) -> ArrayInRecord:
    """An ``aai`` (array analogue input) record; as WaveformIn."""
    return _waveform(ArrayInRecord, name, value, fields, "Python", "aai")  # type: ignore[no-any-return]


def aaOut(name: str, *value: Any, **fields: Any) -> ArrayOutRecord:
    """An ``aao`` (array analogue output) record; as WaveformOut."""
    return _waveform(ArrayOutRecord, name, value, fields, "Python", "aao")  # type: ignore[no-any-return]


# ---- loading ---------------------------------------------------------------

def Alias(record: Record | str, alias: str) -> None:
    """Give a record (a builder record, or the name of any record, e.g. one
    from a .db file) another name, before or after iocInit."""
    _database.create_alias(record._spare_name if isinstance(record, Record) else str(record),
                           alias)


def LoadDatabase() -> None:
    """Load every record built so far into the IOC's database (before iocInit)."""
    _database.load()


def ClearRecords() -> None:
    """Forget records built but not yet loaded."""
    _database.clear()


def WriteRecords(filename: str | os.PathLike[str], header: str | None = None,
                 alphabetical: bool = True) -> None:
    """Write the records built so far and not yet loaded as a ``.db`` file:
    ``builder.records`` ones as epicsdbbuilder writes them (after ``header``),
    then the builder's records with the fields they were given."""
    epicsdbbuilder.WriteRecords(filename, header, alphabetical)
    pending = _ioc.database.pending
    names = sorted(pending) if alphabetical else list(pending)
    with open(filename, "a") as out:
        for full in names:
            record = pending[full]
            given = {k: v for k, v in record._builder_fields().items() if v is not None}
            out.write(f'\nrecord({record.record_type}, "{full}")\n{{\n')
            out.write(f'    field(DTYP, "{record._dtyp}")\n')
            for field, value in given.items():
                if isinstance(field, tuple):
                    out.write(f'    info({field[1]}, "{_db_escape(value)}")\n')
                else:
                    out.write(f'    field({field}, "{_db_escape(_field_text(value))}")\n')
            out.write("}\n")


def _db_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def loaded_records() -> dict[str, Record]:
    """Records loaded by LoadDatabase, by full name."""
    return dict(_ioc.database.loaded)


# Typing helpers re-exported for users' annotations.
__all__ += ["OnUpdate", "Validate"]


def __getattr__(name: str) -> Any:
    """pythonSoftIOC's builder also offers these (from its device modules)."""
    if name == "to_epics_str_array":
        from .device import to_epics_str_array

        return to_epics_str_array
    if name == "PythonDevice":
        from .pythonSoftIoc import PythonDevice

        return PythonDevice
    raise AttributeError(f"module 'softioc.builder' has no attribute {name!r}")
