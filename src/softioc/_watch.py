"""The IOC's live view, as data: a row for every record and PVA-only PV,
and the rows that change, for the web page of ``softioc.http``.

::

    from softioc import _watch

    w = _watch.watch()                  # the process's one watcher
    stop = w.subscribe(print)           # changed rows, at most every 0.2 s
    rows = w.snapshot()                 # every row now

A row is a dict::

    {"name": "DEV:TEMP", "kind": "ai", "value": "21.50", "units": "degC",
     "severity": 1, "status": "HIGH", "time": 1765112345.123}

``kind`` is the record type, or ``"pva"`` for a PVA-only PV of
``softioc.pva`` (``PV``, ``Image``, ``Table``).  ``value`` is display text:
a record's value as a Channel Access client reads it as a string (a double
with the record's PREC, an enum by its state's name), arrays by their first
8 elements then ``… (N)``, long strings up to 255 bytes, images and tables
by a summary ("640x480 mono8", "12 rows"); texts that are not UTF-8 are
decoded with replacement.  ``severity`` is 0 (none) to 3 (invalid);
``status`` the alarm status's name (a PVA-only PV's alarm message), "" if
none; ``time`` the value's time stamp, POSIX seconds (0 if never set).  Names
are those clients use: a spare record given a name after iocInit has a row
under that name once it has one; aliases have no rows of their own.

``subscribe(callback)`` calls ``callback(rows)`` from the watcher's thread
with the rows that changed (a value or an alarm), one per name and the
latest, at most every 0.2 s; nothing when nothing changed.  A PVA-only PV
served after the first snapshot comes as a row like any other; one closed
comes as ``{"name": name, "removed": True}``.  ``subscribe(callback,
initial=f)`` also calls ``f(snapshot)`` once, before ``callback`` sees any
change and in order with it, so a client shown the snapshot and then the
changes is never behind.  Callbacks must be quick and must not raise (an
exception is logged); the same list goes to every subscriber, unchanged.

Cost: nothing until the first ``subscribe`` or ``snapshot``.  Then the C
layer (``_ext/watch.c``) subscribes, as a CA server would, to the value and
alarm events of every record and only marks the records that change (no
Python, no GIL); this thread reads the marked records, each once, at most
five times a second.  So the cost follows the changes, not the size of the
database; a ``snapshot`` reads every record (10,000 records: tens of ms).
Started at iocInit (or at once if the IOC runs); ``snapshot`` is empty
before; stopped at shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from . import _core, _sharedpvs
from ._core import IOC, ioc

__all__ = ["Row", "Watch", "watch", "PERIOD"]

log = logging.getLogger("softioc.watch")

Row = dict[str, Any]
Callback = Callable[[list[Row]], None]

PERIOD = 0.2
"""Seconds between two deliveries to subscribers, at least."""


class Watch:
    """The watcher of this IOC (see the module's description)."""

    def __init__(self, owner: IOC) -> None:
        self._lock = threading.RLock()      # deliveries and snapshots, one at a time
        self._subscribers: list[Callback] = []
        self._pva: dict[str, tuple[Any, bool]] = {}     # PVs changed: name -> (pv, removed)
        self._pva_lock = threading.Lock()
        self._records = 0           # records watched (their indexes in the C layer)
        self._running = False       # the IOC runs
        self._active = False        # the subscriptions are on
        self._wanted = False        # a subscriber or snapshot asked for them
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._unobserve: Callable[[], None] | None = None
        if _core.is_running():
            self._running = True
        else:
            _core.after_init(self._start)
        _core.at_shutdown(self.stop)

    # ---- the interface -------------------------------------------------------

    def snapshot(self) -> list[Row]:
        """Every row now, sorted by name (empty before iocInit and after shutdown)."""
        self._activate()
        with self._lock:
            if not self._active or self._stopped:
                return []
            spares = _free_spares()
            rows = [row for row in map(_record_row, range(self._records))
                    if row["name"] not in spares]
            rows += [pv.watch_row() for pv in _sharedpvs.served_pvs()]
        rows.sort(key=lambda row: str(row["name"]))
        return rows

    def subscribe(self, callback: Callback, *,
                  initial: Callback | None = None) -> Callable[[], None]:
        """Call ``callback(rows)`` with the rows that change (and ``initial``
        once with a snapshot first, if given); returns the function that
        unsubscribes."""
        self._activate()
        with self._lock:        # (an RLock: the snapshot and the subscription as one)
            if initial is not None:
                initial(self.snapshot())
            return _core.listen(self._subscribers, callback, self._lock)

    def stop(self) -> None:
        """Stop watching (done when the IOC shuts down)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            unobserve, thread = self._unobserve, self._thread
        if unobserve is not None:
            unobserve()
        _core.watch_wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        _core.watch_stop()

    def named(self, spare_name: str) -> None:
        """A spare record was given a name after iocInit: deliver its row."""
        if self._active:
            _core.watch_mark(spare_name)

    # ---- inside ----------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            self._running = True
        if self._wanted:
            self._activate()

    def _activate(self) -> None:
        """Subscribe to everything, once, when the IOC runs."""
        with self._lock:
            self._wanted = True
            if self._active or self._stopped or not self._running:
                return
            self._records = _core.watch_start()
            self._unobserve = _sharedpvs.observe(self._pv_changed)
            self._active = True
            self._thread = threading.Thread(target=self._run, name="pythonioc-watch",
                                            daemon=True)
            self._thread.start()

    def _pv_changed(self, pv: Any, removed: bool) -> None:
        """A PVA-only PV was served, posted or closed (its poster's thread)."""
        with self._pva_lock:
            self._pva[pv.name] = (pv, removed)
        _core.watch_wake()

    def _run(self) -> None:
        last = 0.0
        while not self._stopped:
            wait = last + PERIOD - time.monotonic()
            if wait > 0:
                time.sleep(wait)            # let changes gather
            indexes = _core.watch_take(1.0)  # waits for the first change
            with self._pva_lock:
                pvs, self._pva = self._pva, {}
            if (not indexes and not pvs) or self._stopped:
                continue
            last = time.monotonic()
            try:
                self._deliver(indexes, pvs)
            except Exception:
                log.exception("the live view's watcher failed to read changes")

    def _deliver(self, indexes: list[int], pvs: dict[str, tuple[Any, bool]]) -> None:
        with self._lock:
            if not self._subscribers:
                return
            spares = _free_spares()
            rows = [row for row in map(_record_row, indexes) if row["name"] not in spares]
            rows += [{"name": name, "removed": True} if removed else pv.watch_row()
                     for name, (pv, removed) in pvs.items()]
            for callback in list(self._subscribers):
                try:
                    callback(rows)
                except Exception:
                    log.exception("live view subscriber %r failed", callback)


def _record_row(index: int) -> Row:
    name, kind, value, units, severity, status, stamp = _core.watch_row(index)
    return {"name": str(name), "kind": kind, "value": value, "units": units,
            "severity": severity, "status": status, "time": stamp}


def _free_spares() -> set[str]:
    """Names of the spare records not yet given a name (they have no row)."""
    return {record.name for pool in ioc.database.spares.values() for record in pool}


def watch() -> Watch:
    """The process's one watcher, made on first use."""
    return ioc.plug("watch", Watch)
