"""Spare records: made before iocInit (`ReserveRecords`), and given a name and
their fields by a builder call after it (`name_spare`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _core, _lifecycle
from ._database import full_name as _full_name
from ._ioc import ioc as _ioc
from ._record import Record

__all__ = ["ReserveRecords", "SpareRecords", "name_spare"]

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
        record._spare_name = name   # noqa: SLF001
        kind_key = (record._rtype, record._dtyp)  # noqa: SLF001
        _ioc.database.spares.setdefault(kind_key, []).append(record)
        _ioc.database.spare_kinds.setdefault(kind.__name__, []).append(record)


def _spare_list(kind: Callable[..., Any]) -> list[Record]:
    return _ioc.database.spare_kinds.get(kind.__name__, [])


def SpareRecords() -> dict[str, int]:
    """How many spare records of each builder kind are left."""
    free = {id(r) for pool in _ioc.database.spares.values() for r in pool}
    return {k: sum(1 for r in v if id(r) in free)
            for k, v in _ioc.database.spare_kinds.items()}


def name_spare(rtype: str, dtyp: str, full: str, fields: dict[str, Any],
               extra: dict[str, Any]) -> Record:
    """A free spare for ``rtype``/``dtyp`` (big enough for ``extra``'s array),
    given ``fields`` and the name ``full``."""
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
        _core.put_field(f"{record._spare_name}.{field}", str(value))  # noqa: SLF001
    pool.remove(record)
    record.name = full
    return record
