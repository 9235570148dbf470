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

This module only makes records (each through ``softioc._making``): the
records it made, the spare ones and the device name belong to the IOC's
database (``softioc._ioc``), names, aliases and loading are
``softioc._database``'s, spare records ``softioc._spares``' and
``WriteRecords`` ``softioc._dbwrite``'s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import _database, _lifecycle
from ._database import check_new as _check_new
from ._database import full_name as _full_name
from ._database import init_builder as _init_builder
from ._dbwrite import WriteRecords
from ._ioc import ioc as _ioc
from ._making import SKIP as _SKIP
from ._making import given_initial as _given_initial
from ._making import make as _make
from ._making import refuse_none_initial as _refuse_none_initial
from ._making import reworded as _reworded
from ._record import (
    ArrayInRecord,
    ArrayOutRecord,
    InRecord,
    LongStringIn,
    LongStringOut,
    OnUpdate,
    OutRecord,
    Record,
    Validate,
    ftvl_dtypes,
)
from ._spares import ReserveRecords, SpareRecords
from ._types import MAKERS
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



# epicsdbbuilder's link modifiers.  (epicsdbbuilder itself, 1.5 MB with what
# it imports, is imported only by IOCs that use it: builder.records, links
# between records, names with a device prefix.)
def PP(record: Any) -> Any:
    """A link to ``record`` that processes it (epicsdbbuilder's ``PP``)."""
    import epicsdbbuilder
    return epicsdbbuilder.PP(record)


def CP(record: Any) -> Any:
    """A link to ``record`` processing this record when it changes (``CP``)."""
    import epicsdbbuilder
    return epicsdbbuilder.CP(record)


def MS(record: Any) -> Any:
    """A link to ``record`` that carries its alarm severity (``MS``)."""
    import epicsdbbuilder
    return epicsdbbuilder.MS(record)


def NP(record: Any) -> Any:
    """A link to ``record`` that does not process it (``NP``)."""
    import epicsdbbuilder
    return epicsdbbuilder.NP(record)


MAX_NAME = _database.MAX_NAME     # EPICS record names: at most 60 characters


class _Records:
    """``records.calc(name, **fields)``: any record type of base.dbd."""

    def __getattr__(self, rtype: str) -> Callable[..., Any]:
        import epicsdbbuilder

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
    _database.ready_if_imported()
    _ioc.database.prefix = [] if prefix is None else [prefix]


def UnsetDevice() -> None:
    """Stop prefixing record names."""
    SetPrefix(None)


def GetRecordNames() -> Any:
    """The epicsdbbuilder naming object (its ``prefix`` list is the device)."""
    import epicsdbbuilder  # noqa: F401  (imported: readied, see _database)

    _database.ready_if_imported()
    return _ioc.database.names()


def _checked(make: Callable[[], Any], full: str) -> Any:
    # epicsdbbuilder reports bad fields with AttributeError/AssertionError;
    # give the caller one clear exception type and message.
    try:
        return make()
    except AttributeError as e:
        raise TypeError(f"{full}: {e}") from None
    except AssertionError as e:
        raise ValueError(f"{full}: {e}") from None


def SetBlocking(blocking: bool) -> bool:
    """Make following output records ``blocking`` unless they say otherwise;
    returns the previous setting."""
    db = _ioc.database
    previous, db.blocking_default = db.blocking_default, bool(blocking)
    return previous


def _one_positional(maker: _F) -> _F:
    """Refuse pythonSoftIOC-style positional fields (``aIn("X", 0, 10)``):
    after the name only the initial value may be positional; and refuse
    ``initial_value=None`` (pythonSoftIOC raises too)."""
    rtype = maker.__name__
    old = MAKERS[rtype].old_positional      # what pythonSoftIOC took positionally

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

def _integer_in(rtype: str, name: str, initial: Any, fields: dict[str, Any],
                **limits: Any) -> InRecord:
    fields.setdefault("MDEL", -1)               # every set() posts, as pythonSoftIOC
    fields.update(_limits(**limits))
    return _make(rtype, InRecord, name, initial, fields)  # type: ignore[no-any-return]


@_one_positional
def longIn(name: str, initial_value: Any = _SKIP, *, LOPR: int | None = None,
           HOPR: int | None = None, EGU: str | None = None, **fields: Any) -> InRecord:
    """A ``longin`` record: a 32-bit signed integer (MDEL -1: every set() posts)."""
    return _integer_in("longin", name, initial_value, fields, LOPR=LOPR, HOPR=HOPR, EGU=EGU)


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
    return _integer_in("int64in", name, initial_value, fields, LOPR=LOPR, HOPR=HOPR, EGU=EGU)


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
    if isinstance(record, Record):
        record.add_alias(alias)
    else:
        _database.create_alias(str(record), alias)


def LoadDatabase() -> None:
    """Load every record built so far into the IOC's database (before iocInit)."""
    _database.load()


def ClearRecords() -> None:
    """Forget records built but not yet loaded."""
    _database.clear()


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
