"""One record from a builder call: its options checked, the record made in
EPICS's static database with its fields (checked by EPICS), its live handle,
initial value and alarm; after iocInit a spare record (``softioc._spares``),
configured and named.  The builder's makers (``softioc.builder``) call `make`."""

from __future__ import annotations

from typing import Any

from . import _core, _database
from ._database import check_new as _check_new
from ._database import field_text as _field_text
from ._database import full_name as _full_name
from ._ioc import ioc as _ioc
from ._record import NOTHING_GIVEN, OutRecord, Record, builder_defaults
from ._spares import name_spare
from .errors import BuilderArgumentError

__all__ = ["SKIP", "make", "given_initial", "refuse_none_initial", "reworded"]

_OUT_OPTIONS = ("on_update", "on_update_name", "validate", "always_update", "blocking")
SKIP = object()         # no initial value given
# Keywords of builder functions that are not fields (fields are upper case).
_OPTIONS = frozenset(("initial_value", "initial_severity", "initial_alarm", "status",
                      "severity", "autosave", "on_field_change", "alias", *_OUT_OPTIONS))


def make(
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
            if initial is not SKIP and initial is not None:
                raise TypeError(f"{full}: initial value given twice")
            initial = given_initial(full, fields)
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
        return make_at_run_time(rtype, dtyp, full, initial, fields, extra, severity, alarm,
                                 autosave, field_callbacks, aliases, out_opts)
    _check_new(full, duplicates=False)     # create_record refuses a name in use
    _database.check_not_python(full)
    for a in aliases:
        _check_new(a)
    # Straight into EPICS's static database, checked by EPICS (no .db text),
    # with the builder's defaults for fields not given.  A record of the same
    # name and type from a .db file (dbLoadDatabase) becomes this one, as a
    # second definition in a .db file would: pythonSoftIOC's builder allows it.
    _core.create_record(rtype, full, dtyp, fields, builder_defaults(rtype, is_output, full),
                       _field_text, True)
    try:
        for a in aliases:
            _core.add_alias(full, a)
        record = cls(rtype, full, None, **out_opts, **extra) if out_opts or extra else \
            cls(rtype, full)
        _apply_initial(record, initial, severity, alarm)
    except Exception:
        _core.delete_record(full)
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


def make_at_run_time(rtype: str, dtyp: str, full: str, initial: Any, fields: dict[str, Any],
                      extra: dict[str, Any], severity: Any, alarm: Any, autosave: Any,
                      field_callbacks: Any, aliases: list[str],
                      out_opts: dict[str, Any]) -> Record:
    """A builder call after iocInit: a spare record, configured and named."""
    _check_new(full)
    for a in aliases:
        _check_new(a)
    if autosave:
        raise TypeError(f"{full}: autosave is set up before iocInit")
    record = name_spare(rtype, dtyp, full, fields, extra)
    for a in [full, *aliases]:
        _core.add_alias(record._spare_name, a)  # noqa: SLF001
    _apply_initial(record, initial, severity, alarm)
    if isinstance(record, OutRecord):
        # after the initial value: no on_update for it
        record._last = None                 # noqa: SLF001
        record._configure(**out_opts)       # noqa: SLF001
    for field, callback in (field_callbacks or {}).items():
        record.on_field_change(field, callback)
    _ioc.database.loaded[full] = record
    watch = _ioc.features.get("watch")     # the live view (softioc._watch), if on
    if watch is not None:
        watch.named(record._spare_name)     # noqa: SLF001
    return record


def refuse_none_initial(name: str, fields: dict[str, Any]) -> None:
    """``initial_value=None`` is refused, as in pythonSoftIOC (leave the
    keyword out for no initial value)."""
    if "initial_value" in fields and fields["initial_value"] is None:
        raise TypeError(f"{name}: initial_value=None is not a value: leave initial_value "
                        "out for a record without one")


def given_initial(full: str, fields: dict[str, Any]) -> Any:
    """``initial_value=`` taken from ``fields`` (None refused)."""
    refuse_none_initial(full, fields)
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
    if initial is not SKIP and initial is not None:
        try:
            if severity is None and alarm is None and not _ioc.running:
                # what set() calls, sooner
                record._preinit_set(initial, None, None)    # noqa: SLF001
            else:
                record.set(initial, severity=severity, alarm=alarm)
        except (TypeError, ValueError) as e:
            error = reworded(e, f"{record.name}: {initial!r} cannot be the initial value ({e})")
            error.initial_value_error = True        # type: ignore[attr-defined]
            raise error from None
    elif severity:
        record.set_alarm(severity, alarm or 0)


def reworded(error: Exception, text: str) -> Exception:
    """``error``'s class with ``text`` (the same error if the class wants more)."""
    try:
        return type(error)(text)
    except Exception:
        return error
