"""PV Access extras: group PVs (several records served as one structure) and
NTTable of records; and PVs that are no record (`PV`, `Image`, `Table`, from
``softioc._ntpvs``), made and closed at any time.

Every record is served over PV Access by QSRV2 as it is (NTScalar, NTEnum,
NTScalarArray with alarm, timeStamp, display and control).  A *group* is one
more PV whose fields map onto records, read and monitored atomically::

    from softioc import builder, pva

    x = builder.aIn("X", 1.0)
    y = builder.aIn("Y", 2.0)
    pva.Group("XY", {"x": x, "y": pva.Field(y, trigger="*")})

    a = builder.WaveformOut("TBL:A", [1.0, 2.0], length=100)
    b = builder.WaveformOut("TBL:B", [3.0, 4.0], length=100)
    pva.NTTable("TBL", {"A": a, "B": b}, labels=["Column A", "Column B"])

Group and table names are prefixed like record names: after
``builder.SetDeviceName("STAGE")``, ``pva.Group("XY", ...)`` serves
``STAGE:XY`` (``builder.UnsetDevice()`` first for a name outside the device).

Declare groups before ``builder.LoadDatabase()``; they become ``info(Q:group,
...)`` tags on the records (QSRV2's own format, see the PVXS documentation).
QSRV2 builds groups at iocInit, so groups cannot be added later.

``disable()`` (or ``PYTHONIOC_PVA=NO`` in the environment) turns PV Access off
for this process; it must come before the first ``LoadDatabase()``.

The first group declared plugs the groups into the IOC (``softioc._ioc``):
from then on each ``LoadDatabase()`` tags the records it loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _core, _sharedpvs, builder
from ._core import IOC, Record, ioc
from ._ntpvs import PV, Image, Table

__all__ = ["Field", "Group", "Image", "NTTable", "PV", "Table", "disable", "enabled", "served"]

served = _sharedpvs.served

_MAPPING_TYPES = ("scalar", "plain", "any", "meta", "proc")


@dataclass(frozen=True)
class Field:
    """How one record maps into a group.

    ``type``: ``scalar`` (a whole NTScalar: value, alarm, time, display...),
    ``plain`` (the value only), ``any``, ``meta`` (alarm and time only), or
    ``proc`` (processed on a put, no data).  ``trigger``: which group fields
    a change of this record posts to monitors (``"*"`` all, ``""`` none,
    default just this one).  ``putorder``: makes the field writable through
    the group; puts apply in increasing order.
    """

    record: Record
    type: str = "scalar"
    channel: str = "VAL"
    trigger: str | None = None
    putorder: int | None = None

    def __post_init__(self) -> None:
        if self.type not in _MAPPING_TYPES:
            raise ValueError(f"mapping type must be one of {_MAPPING_TYPES}, got {self.type!r}")
        if not isinstance(self.record, Record):
            raise TypeError(f"a group field maps a builder record, got {self.record!r}")


class _Groups:
    """The groups declared and not yet loaded, plugged into LoadDatabase."""

    def __init__(self, ioc: IOC) -> None:
        # group name -> (structure id, {field name: Field}, atomic)
        self.groups: dict[str, tuple[str | None, dict[str, Field], bool]] = {}
        # db records (not builder records) that carry a part of a group: name -> (record, info)
        self.extra_info: dict[str, tuple[Any, dict[str, Any]]] = {}
        # every group name declared, loaded or not (PVA-only PVs may not take one)
        self.names: set[str] = set()
        ioc.hooks.before_load.append(self.attach)

    def info_for_records(self) -> dict[str, dict[str, Any]]:
        """The Q:group JSON each record carries, merged over all groups."""
        per_record: dict[str, dict[str, Any]] = {}
        for group, (gid, fields, atomic) in self.groups.items():
            first = True
            for key, f in fields.items():
                mapping: dict[str, Any] = {"+type": f.type, "+channel": f.channel}
                if f.type == "proc":
                    mapping.pop("+channel")
                    mapping["+channel"] = "PROC"
                mapping["+trigger"] = key if f.trigger is None else f.trigger
                if f.putorder is not None:
                    mapping["+putorder"] = f.putorder
                entry = per_record.setdefault(f.record.name, {}).setdefault(group, {})
                if first:
                    if gid:
                        entry["+id"] = gid
                    entry["+atomic"] = atomic
                    first = False
                entry[key] = mapping
        return per_record

    def attach(self, pending: Mapping[str, Record]) -> None:
        """Put the Q:group info tags on records about to be loaded."""
        for name, info in self.info_for_records().items():
            record = pending.get(name)
            if record is None:
                raise RuntimeError(f"group field maps {name}, which is not being loaded now")
            record.add_info("Q:group", info)
        for dbrecord, info in self.extra_info.values():
            dbrecord.add_info("Q:group", info)
        self.groups.clear()
        self.extra_info.clear()


def _groups() -> _Groups:
    return ioc.plug("pva", _Groups)


def Group(name: str, fields: Mapping[str, Record | Field], *,  # noqa: N802
          id: str | None = None, atomic: bool = True) -> None:
    """Serve the records in ``fields`` together as the PVA structure ``name``.

    ``name`` gets the device-name prefix (``builder.SetDeviceName``) as a
    record name would.
    """
    _group(_core.full_name(name), fields, id=id, atomic=atomic)


def _group(name: str, fields: Mapping[str, Record | Field], *,
           id: str | None, atomic: bool) -> None:
    if _core.is_running():
        raise RuntimeError("groups are declared before iocInit()")
    if not fields:
        raise ValueError("a group needs at least one field")
    groups = _groups().groups
    if name in groups or name in _groups().names:
        raise ValueError(f"group {name!r} already declared")
    if _sharedpvs.exists(name):
        raise ValueError(f"{name!r} is already a PV Access PV of this IOC")
    mapped = {k: v if isinstance(v, Field) else Field(v) for k, v in fields.items()}
    for key in mapped:
        if key and not all(part.isidentifier() for part in key.split(".")):
            raise ValueError(f"group field name {key!r} must be dotted identifiers")
    groups[name] = (id, mapped, atomic)
    _groups().names.add(name)


def NTTable(name: str, columns: Mapping[str, Record], *,  # noqa: N802
            labels: Sequence[str] | None = None, writable: bool = True) -> None:
    """Serve waveform records as the columns of an ``epics:nt/NTTable:1.0``.

    A change of the *last* column posts the whole table to monitors: set the
    columns in order.  With ``writable`` a PVA put of the table writes each
    column (in order) and runs their on_update callbacks; the labels are
    read-only.  ``name`` gets the device-name prefix, as in `Group`.
    """
    names = list(columns)
    labels = list(labels) if labels is not None else names
    if len(labels) != len(names):
        raise ValueError(f"{len(labels)} labels for {len(names)} columns")
    fields: dict[str, Field] = {}
    for i, (column, record) in enumerate(columns.items()):
        last = i == len(names) - 1
        fields[f"value.{column}"] = Field(
            record, type="plain", trigger="*" if last else "",
            putorder=i if writable else None)
    # The meta field (alarm, timeStamp) maps the structure's root, which every
    # put marks: with no putorder QSRV2 would warn "no putorder, ignore write"
    # on each one.  A putorder makes it take part (writing meta changes nothing).
    fields[""] = Field(list(columns.values())[-1], type="meta", trigger="",
                       putorder=len(names) if writable else None)
    full = _core.full_name(name)
    # The labels live in a string waveform that reads them once, at init
    # (named NAME:LABELS_ under the same prefix).  NELM is at least 2: QSRV2
    # serves a one-element waveform as a scalar, and labels must be a string[].
    label_record = builder.records.waveform(
        f"{name}:LABELS_", FTVL="STRING", NELM=max(2, len(labels)),
        INP={"const": labels}, PINI="YES")
    _group(full, fields, id="epics:nt/NTTable:1.0", atomic=True)
    _groups().extra_info[label_record.name] = (label_record, {
        full: {"labels": {"+type": "plain", "+channel": "VAL", "+trigger": ""}}})


def disable() -> None:
    """Serve Channel Access only (call before the first LoadDatabase)."""
    if _core.dbd_loaded():
        raise RuntimeError("pva.disable() must come before the first LoadDatabase()")
    ioc.settings.pva = False


def enabled() -> bool:
    """Will (or does) this IOC serve PV Access?"""
    return _core.pva_enabled()
