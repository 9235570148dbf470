"""The one IOC of this process: the only process-wide state of softioc.

EPICS keeps one record database per process and runs ``iocInit`` once, so a
process has exactly one IOC, and this module holds it: ``ioc``, the one
`IOC`, made when softioc is first imported.  No other module of softioc
keeps state of the IOC at module level; each reads and changes ``ioc``
(pythonSoftIOC's names for parts of it, such as ``device.dispatcher`` or
``device_core.RecordLookup._RecordDirectory``, are views of it).

``ioc`` holds:

- ``database``: the records being defined and those loaded (`Database`);
- ``settings``: choices made in code or on the command line, which win over
  the environment variables that give their defaults (`Settings`); strict
  puts, which EPICS threads read at every put, are the one setting the C
  layer holds (``softioc.strict``, ``_ext.state()``);
- the phase: definitions (dbd) loaded, running (held by the C layer, whose
  EPICS threads read it: `IOC.running` reads it there), shut down;
- ``hooks``: what runs when the IOC starts being defined, at LoadDatabase,
  at iocInit and at shutdown (`Hooks`);
- ``features``: the optional parts in use (autosave, PVA groups, put log),
  each plugged in by `IOC.plug` where it is first configured or used, never
  by importing its module.

One exception, kept for pythonSoftIOC's applications: the device-name prefix
is epicsdbbuilder's (``builder.GetRecordNames().prefix``, which such
applications read and set), so `Database.prefix` reads and sets it there
once epicsdbbuilder is in use; until then (an IOC of builder records need
never import it) it is kept here.

This module imports only the standard library and the C layer: the state
the rest of the core reads (``_lifecycle`` runs the IOC's steps,
``_database`` defines its records).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from . import _ext

if TYPE_CHECKING:
    from ._dispatch import Dispatcher
    from ._record import Record

__all__ = ["IOC", "Database", "Hooks", "Settings", "DEFAULT_ACF", "ioc"]

_T = TypeVar("_T")

# Every client may read and write, with TRAPWRITE so that on_field_change
# (and the put log) see client writes: installed at iocInit unless
# access.load_acf() gave other rules.
DEFAULT_ACF = """\
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE)
}
"""


@dataclass
class Settings:
    """Choices for this IOC; ``None`` leaves the choice to the environment."""

    pva: bool | None = None             # pva.disable(), `run --no-pva`, iocInit(enable_pva=False)
    dispatcher: str | None = None       # `run --dispatcher` (else PYTHONIOC_DISPATCHER)
    interactive: bool | None = None     # `run --non-interactive` (else PYTHONIOC_INTERACTIVE)
    acf: str = DEFAULT_ACF              # access.load_acf()
    check_client_ip: bool = False       # access.check_client_ip()
    # Describe mode (``pythonioc screen``): iocInit calls this, then stops.
    describe: Callable[[], None] | None = None


@dataclass
class Hooks:
    """What features and the builder ask to run at the IOC's steps, in order."""

    # When the process starts defining its IOC (its first record, .db file or
    # LoadDatabase: ``_lifecycle.ensure_dbd``), once; the HTTP endpoints start here.
    at_define: list[Callable[[], None]] = field(default_factory=list)
    before_load: list[Callable[[dict[str, Record]], None]] = field(default_factory=list)
    before_init: list[Callable[[], None]] = field(default_factory=list)
    after_init: list[Callable[[], None]] = field(default_factory=list)
    at_shutdown: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class Database:
    """The records of this IOC: built and not yet loaded, loaded, spare."""

    pending: dict[str, Record] = field(default_factory=dict)    # built, not yet loaded
    loaded: dict[str, Record] = field(default_factory=dict)     # in the EPICS database
    # Dropped by ClearRecords() but kept alive, as pythonSoftIOC keeps every
    # record it made: their callbacks' owners live on (pandablocks-ioc relies on it).
    cleared: list[Record] = field(default_factory=list)
    # Spare records (ReserveRecords) by (record type, DTYP), and by builder function.
    spares: dict[tuple[str, str], list[Record]] = field(default_factory=dict)
    spare_kinds: dict[str, list[Record]] = field(default_factory=dict)
    blocking_default: bool = False      # builder.SetBlocking()
    builder_ready: bool = False         # epicsdbbuilder has softioc.dbd
    named: bool = False                 # epicsdbbuilder names records as the builder does
    own_prefix: list[str] = field(default_factory=list)    # the prefix until then
    # Autosave requests, part of the definition like info tags: record name ->
    # (record, fields), and the fields of each open ``with Autosave(...)``.
    autosave: dict[str, tuple[Record, list[str]]] = field(default_factory=dict)
    autosave_blocks: list[list[str]] = field(default_factory=list)

    def names(self) -> Any:
        """epicsdbbuilder's naming object, made the builder's (``DEVICE:NAME``)
        the first time."""
        import epicsdbbuilder

        if not self.named:
            epicsdbbuilder.SetSimpleRecordNames(None, ":")
            epicsdbbuilder.GetRecordNames().prefix = self.own_prefix
            self.named = True
        return epicsdbbuilder.GetRecordNames()

    @property
    def prefix(self) -> list[str]:
        """The device-name prefix (see the module's description)."""
        if not self.named:
            return self.own_prefix
        return self.names().prefix  # type: ignore[no-any-return]

    @prefix.setter
    def prefix(self, parts: Sequence[str]) -> None:
        if not self.named:
            self.own_prefix = list(parts)
        else:
            self.names().prefix = list(parts)

    def records(self) -> list[Record]:
        """Every builder record, loaded first, then those still to load."""
        return [*self.loaded.values(), *self.pending.values()]


@dataclass
class IOC:
    """The IOC of this process (see the module's description)."""

    database: Database = field(default_factory=Database)
    settings: Settings = field(default_factory=Settings)
    hooks: Hooks = field(default_factory=Hooks)
    features: dict[str, Any] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    dbd_loaded: bool = False
    started: bool = False                   # iocInit and its after_init hooks are done
    shut: bool = False
    atexit_registered: bool = False
    dispatcher: Dispatcher | None = None    # given to iocInit (or made when first needed)
    # The access rules' file in memory: EPICS keeps its name and reads it
    # again at a run-time asInit (the iocsh command, a READACF record).
    acf_file: AbstractContextManager[str] | None = None

    @property
    def running(self) -> bool:
        """iocInit has run: the C layer's phase (``_ext.state()``), its one copy,
        which EPICS threads read without the GIL."""
        return _ext.state()[0]

    def plug(self, name: str, make: Callable[[IOC], _T]) -> _T:
        """The feature ``name``: made by ``make(self)`` the first time, which
        plugs it in (it adds its hooks); the same object after that."""
        with self.lock:
            feature = self.features.get(name)
            if feature is None:
                feature = self.features[name] = make(self)
            return feature


ioc = IOC()
