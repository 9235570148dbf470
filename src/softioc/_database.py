"""The database being defined: record names, aliases, loading, and the
checks iocInit makes of it.

The records themselves (built, loaded, spare) are in the one IOC object
(``softioc._ioc.ioc.database``); this module has the operations on them that
the builder, the record handles and the features share.  It keeps no state.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import _ext, _lifecycle
from ._dso import epics_lib, package_dir
from ._ioc import ioc
from .errors import RecordExistsError

if TYPE_CHECKING:
    from ._record import Record

__all__ = ["MAX_NAME", "init_builder", "full_name", "check_new", "check_not_python",
           "create_alias",
           "field_text", "load", "load_own", "clear", "autosave_fields", "request_autosave",
           "track_autosave"]

# EPICS record names: at most 60 characters, none of these.
MAX_NAME = 60
# (a set: checking a name by it is five times faster than a regular expression;
# every whitespace character Unicode has is below U+3001)
_BAD_CHARS = frozenset('"\'.$\\{}' + "".join(c for c in map(chr, range(0x3001)) if c.isspace()))
_BAD_FIRST = frozenset("-+[{")


def init_builder() -> None:
    """Give epicsdbbuilder softioc.dbd's record types, once, before iocInit
    (EPICS reads no dbd after it)."""
    if not ioc.database.builder_ready:
        import epicsdbbuilder
        from epicsdbbuilder import dbd, mydbstatic

        if ioc.database.builder_ready:     # readied as it was imported (_ReadyOnImport)
            return
        if ioc.running:
            raise RuntimeError("builder.records makes records for LoadDatabase(), "
                               "before iocInit(); after it, use the builder's functions")
        # What InitialiseDbd() does, with the libdbCore the IOC loaded: its
        # own way finds it through epicscorelibs.path, which imports
        # setuptools (20 MB; see _dso.py).
        mydbstatic.ImportFunctionsFrom(epics_lib("dbCore"))
        dbd._epics_base = package_dir("epicscorelibs")  # noqa: SLF001 - InitialiseDbd's own
        epicsdbbuilder.LoadDbdFile("base.dbd")
        epicsdbbuilder.LoadDbdFile(os.path.join(_lifecycle.DBD_PATH, "softioc.dbd"))
        ioc.database.names()
        for rtype in epicsdbbuilder.records.GetRecords():
            _memoise_validation(getattr(epicsdbbuilder.records, rtype)._validate)  # noqa: SLF001 - epicsdbbuilder's validator has no public name
        ioc.database.builder_ready = True


def _memoise_validation(validator: Any) -> None:
    """epicsdbbuilder checks each field by walking the record type's field
    list: a pure function of (field, text), so remember the answers (the same
    DTYP, TSE, EGU... recur on every record)."""
    check = validator.ValidFieldValue
    ok: set[tuple[str, str]] = set()

    def valid_field_value(name: str, value: Any) -> None:
        key = (name, str(value))
        if key not in ok:
            check(name, value)
            if len(ok) < 100_000:
                ok.add(key)

    validator.ValidFieldValue = valid_field_value


def ready_if_imported() -> None:
    """Ready epicsdbbuilder (its second reading of the dbd, 12 ms) if the
    application imported it: ``from epicsdbbuilder import records`` then
    works as after pythonSoftIOC's builder, which readies it at import.  An
    IOC of builder records never imports it."""
    if not ioc.database.builder_ready and "epicsdbbuilder" in sys.modules and not ioc.running:
        init_builder()


class _ReadyOnImport:
    """Readies epicsdbbuilder as soon as anything imports it, before iocInit,
    as pythonSoftIOC's builder has it ready: an application may import it
    anywhere and make ``records.calc(...)`` at once.  Until then the IOC
    never imports it (1.5 MB, 20 ms).  (A finder by its methods: importlib.abc
    would import importlib.resources and tempfile.)"""

    def find_spec(self, name: str, path: Any = None, target: types.ModuleType | None = None) -> Any:
        if name != "epicsdbbuilder":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)      # once; the other finders find it
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _ReadyingLoader(spec.loader)  # type: ignore[assignment]
        return spec


class _ReadyingLoader:
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> types.ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        ready_if_imported()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


if "epicsdbbuilder" not in sys.modules:
    sys.meta_path.insert(0, _ReadyOnImport())


def full_name(name: str) -> str:
    """``name`` with the device-name prefix (``builder.SetDeviceName``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"record name must be a non-empty str, got {name!r}")
    ready_if_imported()
    prefix = ioc.database.prefix
    return ":".join([*map(str, prefix), name]) if prefix else name


def check_new(full: str, duplicates: bool = True) -> None:
    """Refuse a full record name EPICS would not take, or (unless
    ``duplicates`` is False: the caller's creation checks it) one already used."""
    if not ioc.dbd_loaded:
        _lifecycle.ensure_dbd()
    if len(full) > MAX_NAME:
        raise ValueError(f"record name {full!r} is {len(full)} characters; EPICS allows {MAX_NAME}")
    if not _BAD_CHARS.isdisjoint(full) or full[:1] in _BAD_FIRST:
        raise ValueError(f"record name {full!r} has a character EPICS does not allow there")
    if not duplicates:
        return
    check_not_python(full)
    if _ext.record_exists(full):
        raise RecordExistsError(f"record {full!r} already exists")


def check_not_python(full: str) -> None:
    """Refuse a name Python made already (a builder record or a PVA PV);
    records of .db files are left to the caller."""
    db = ioc.database
    if full in db.pending or full in db.loaded:
        raise RecordExistsError(f"record {full!r} already exists")
    pvs = ioc.features.get("pvs")           # PVA-only PVs (softioc._sharedpvs)
    if pvs is not None and pvs.has(full):
        raise RecordExistsError(f"{full!r} is already a PV Access PV of this IOC")


def create_alias(name: str, alias: str) -> None:
    """Give the record named ``name`` in the database another name."""
    check_new(alias)
    _ext.create_alias(name, alias)


def field_text(value: Any) -> str:
    """A field value as .db text (records become links, dicts JSON)."""
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    if callable(value):
        value = value()
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def load() -> None:
    """Load every record built so far (LoadDatabase): before-load hooks
    first (autosave restores, PVA groups add their tags), then the
    ``records.<type>`` ones as .db text; the builder's are in EPICS already."""
    if ioc.running:
        raise RuntimeError("LoadDatabase() must come before iocInit()")
    _lifecycle.ensure_dbd()
    db = ioc.database
    for hook in ioc.hooks.before_load:
        hook(db.pending)
    ready_if_imported()
    if db.builder_ready and _count_records():       # records.<type>(...) made
        import tempfile  # (rare: the IOC imports it only here)

        import epicsdbbuilder

        fd, path = tempfile.mkstemp(suffix=".db", prefix="pythonioc-")
        os.close(fd)
        try:
            epicsdbbuilder.WriteRecords(path)
            _ext.load_records(path, None)
        finally:
            os.unlink(path)
    loaded = db.loaded
    for full, record in db.pending.items():
        # The record's C half, bound once here; it drops the builder's fields.
        record._bind(full)        # noqa: SLF001
        loaded[full] = record
    db.pending.clear()
    _reset_records()


def _count_records() -> int:
    import epicsdbbuilder
    return int(epicsdbbuilder.CountRecords())


def _reset_records() -> None:
    if ioc.database.builder_ready:
        import epicsdbbuilder
        epicsdbbuilder.ResetRecords()


def load_own(records: Sequence[Record]) -> None:
    """Load a feature's own builder records now, apart from the application's
    (softioc.health's and devIocStats's records, like pythonSoftIOC's
    devIocStats .db file): they serve whether they were made before or after
    LoadDatabase, and ``before_load`` hooks (autosave restores, PVA groups),
    which are for the application's records, do not see them."""
    if ioc.running:
        raise RuntimeError("records are loaded before iocInit()")
    db = ioc.database
    for record in records:
        full = record.name
        del db.pending[full]
        record._bind(full)        # noqa: SLF001
        db.loaded[full] = record


def clear() -> None:
    """Forget records built but not yet loaded (ClearRecords)."""
    db = ioc.database
    for name in db.pending:
        _ext.delete_record(name)
    db.cleared.extend(db.pending.values())
    db.pending.clear()
    _reset_records()


def autosave_fields(spec: bool | str | Sequence[str]) -> list[str]:
    """The fields an ``autosave=`` value names (True means VAL)."""
    if spec is True:
        return ["VAL"]
    if isinstance(spec, str):
        return [spec]
    fields = list(spec) if spec else []
    bad = [f for f in fields if not (isinstance(f, str) and f.isupper())]
    if bad:
        raise ValueError(f"autosave fields must be upper-case field names, got {bad}")
    return fields


def request_autosave(record: Record, fields: list[str]) -> None:
    """Ask for ``fields`` of ``record`` to be autosaved (with those asked before)."""
    if fields:
        requests = ioc.database.autosave
        old = requests.get(record.name, (record, []))[1]
        requests[record.name] = (record, old + [f for f in fields if f not in old])


def track_autosave(record: Record, spec: bool | str | Sequence[str] | None) -> None:
    """The builder's ``autosave=`` keyword: its fields and those of the
    enclosing ``with Autosave(...)`` combined, as in pythonSoftIOC;
    ``autosave=False`` saves nothing, even inside the block."""
    if spec is False:
        return
    blocks = ioc.database.autosave_blocks
    request_autosave(record, (autosave_fields(spec) if spec is not None else [])
                     + (list(blocks[-1]) if blocks else []))
