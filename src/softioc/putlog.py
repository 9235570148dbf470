"""The put log: every client write to a record, who made it, and what it changed.

Turn it on before ``LoadDatabase()`` (or before ``iocInit()`` without ``pv``)::

    import logging
    from softioc import builder, putlog, softioc

    logging.basicConfig(level=logging.INFO)
    putlog.enable(file="puts.jsonl", pv="PUTLOG")
    builder.aOut("SETPOINT", 0.0)
    builder.LoadDatabase()
    softioc.iocInit()

Each put a Channel Access or PV Access client makes becomes a :class:`Put`:
its time, protocol, the client's host (the IP address it connected from, over
both protocols, so that one machine reads the same whichever it uses: PV
Access has no other name for a client, and the name a CA client declares is
its own choice; for CA this reads rsrv's own record of the client, one of
the EPICS patches strict puts switch on: without them, the declared name)
and user, record and field, the field's value before and
after, and whether the IOC refused it (``validate``, strict puts).  Every put goes to the Python
logger ``softioc.putlog`` (INFO; WARNING if refused; the :class:`Put` is
the record's ``put`` attribute), so your logging configuration sends it to a
file, syslog or journald; with ``file``, also to a JSON-lines file; with
``pv``, the latest puts (newest first, one a line) are served in a long
string record.

Recording never delays a put: the IOC's servers fill a fixed pool of
``capacity`` entries, which a thread of the put log empties; if that thread
falls behind, puts beyond the pool are counted, not recorded, and a warning
says how many.  Puts refused by access security are not seen (the servers
refuse them before any record is involved); writes from Python
(``record.set()``, ``dbpf``) are not client writes and are not logged.
Puts to PVA-only PVs (``softioc.pva.PV``, ``Image``, ``Table``) are logged
the same way, under their access security group's ``TRAPWRITE``, as field
``value``.  Only
writes allowed by an access rule with ``TRAPWRITE`` are seen, as pythonIOC's
default rules are; keep ``TRAPWRITE`` in your own ACF.  Values are shown as
text: strings up to 40 characters (long strings and char arrays up to 127),
enum states by name (by number if the state has none, as in a ``bo`` made by
``builder.Action``), arrays by their first 8 elements.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from . import _core
from ._core import IOC, ioc

__all__ = ["Put", "enable", "add_listener", "Listener"]

log = logging.getLogger("softioc.putlog")

_PV_BYTES = 512         # room in the PV for each of its entries (a longer text is cut)


@dataclass(frozen=True)
class Put:
    """One client write."""

    time: float         #: when it began (seconds since 1970, UTC)
    protocol: str       #: "ca" or "pva"
    host: str           #: the client's IP address (CA: with strict puts on; no DNS lookup)
    user: str           #: the client's user name (PVA: ``method/account`` if not "ca")
    record: str
    field: str
    old: str            #: the field's value before the put, as text
    new: str            #: and after it (the same as ``old`` if refused)
    refused: bool       #: the IOC refused the put (and told the client)

    def iso_time(self) -> str:
        """The time as ISO 8601 UTC, to the millisecond."""
        when = datetime.fromtimestamp(self.time, timezone.utc)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def __str__(self) -> str:
        outcome = " REFUSED" if self.refused else ""
        return (f"{self.iso_time()} {self.protocol} {self.user}@{self.host} "
                f"{self.record}.{self.field} {self.old!r} -> {self.new!r}{outcome}")

    def to_json(self) -> str:
        """One line of JSON (``time`` as ISO 8601 UTC)."""
        return json.dumps(dict(asdict(self), time=self.iso_time()))


Listener = Callable[[Put], None]


class _PutLog:
    """The put log of the IOC: the C listener's pool, emptied by a thread."""

    def __init__(self) -> None:
        self.capacity = 0
        self.file: IO[str] | None = None
        self.record: Any = None
        self.pv_entries = 10
        self.to_logger = False          # enable() was called
        self.listeners: list[Listener] = []
        self.latest: list[str] = []
        # puts to PVA-only PVs (softioc._sharedpvs), which no C listener sees
        self.queued: list[Put] = []
        self.queue_lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, name="pythonioc-putlog", daemon=True)

    def run(self) -> None:
        while not self.stopping:
            self.take(0.5)
        self.take(0.0)          # whatever arrived while stopping

    def take(self, timeout: float) -> None:
        try:
            raw, dropped = _core.putlog_take(timeout)
            if dropped:
                log.warning("%d client puts not recorded: the put log fell behind", dropped)
            puts = [Put(*entry) for entry in raw]
            with self.queue_lock:
                puts += self.queued
                self.queued = []
            for put in puts:
                if self.to_logger:
                    log.log(logging.WARNING if put.refused else logging.INFO, "%s", put,
                            extra={"put": put})
                for listener in self.listeners:
                    try:
                        listener(put)
                    except Exception:
                        log.exception("put log listener %r failed", listener)
            if puts and self.file:
                self.file.write("".join(put.to_json() + "\n" for put in puts))
                self.file.flush()
            if puts and self.record is not None:
                self.latest = ([str(put) for put in reversed(puts)] + self.latest)
                self.latest = self.latest[: self.pv_entries]
                text = "\n".join(self.latest).encode()[: _PV_BYTES * self.pv_entries - 1]
                self.record.set(text.decode(errors="ignore"))
        except Exception:
            log.exception("the put log could not record puts")

    def add(self, *fields: Any) -> None:
        """A put the C listener cannot see (to a PVA-only PV): Put(*fields),
        recorded by the put log's thread like the others."""
        with self.queue_lock:
            self.queued.append(Put(*fields))
        _core.putlog_wake()

    def stop(self) -> None:
        self.stopping = True
        _core.putlog_wake()
        if self.thread.is_alive():
            self.thread.join(5)
        if self.file:
            self.file.close()


def _plug(ioc: IOC, capacity: int) -> _PutLog:
    """Start listening (the C pool is made once) and add the put log's
    thread to the IOC's start and stop."""
    _core.putlog_start(capacity)
    put_log = _PutLog()
    put_log.capacity = capacity
    if ioc.running:
        put_log.thread.start()
    else:
        ioc.hooks.after_init.append(put_log.thread.start)
    ioc.hooks.at_shutdown.append(put_log.stop)
    return put_log


def _started(capacity: int) -> _PutLog:
    """The put log, plugged into the IOC by the first call, listening from then on."""
    put_log = ioc.plug("putlog", lambda ioc: _plug(ioc, capacity))
    if capacity != put_log.capacity:
        raise RuntimeError(f"the put log already runs with capacity={put_log.capacity} "
                           f"(call putlog.enable() before importing softioc.pvlog)")
    return put_log


def add_listener(listener: Listener, capacity: int = 1000) -> None:
    """Call ``listener(put)`` with each client put from now on, in the put
    log's thread (never in the thread doing the put); before or after iocInit.
    ``capacity`` as for :func:`enable`, fixed by the first call of either."""
    _check_number("capacity", capacity, 1000000)
    _started(capacity).listeners.append(listener)


def _check_number(name: str, number: int, most: int) -> None:
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= most:
        raise ValueError(f"putlog: {name}={number!r} must be a whole number, 1 to {most}")


def enable(*, file: str | os.PathLike[str] | None = None, pv: str | None = None,
           pv_entries: int = 10, capacity: int = 1000) -> None:
    """Record every client put (see the module's description).

    ``file``: a JSON-lines file to append to.  ``pv``: a long string record
    (made here with the builder, so the device name prefix applies) showing
    the ``pv_entries`` (at most 100) latest puts.  ``capacity``: puts that
    may wait to be recorded before more are dropped.  Once, before iocInit.
    """
    from . import builder

    put_log: _PutLog | None = ioc.features.get("putlog")
    if put_log is not None and put_log.to_logger:
        raise RuntimeError("putlog.enable() was already called")
    if _core.is_running():
        raise RuntimeError("putlog.enable() must come before iocInit()")
    _check_number("pv_entries", pv_entries, 100)
    _check_number("capacity", capacity, 1000000)
    path = Path(file) if file is not None else None
    if path is not None and not path.parent.is_dir():
        raise FileNotFoundError(f"putlog.enable(file={str(file)!r}): no such directory")
    record = None
    if pv is not None:
        record = builder.longStringIn(pv, "", length=pv_entries * _PV_BYTES,
                                      DESC="latest client puts")
    # Open the file before listening: a file that cannot be opened leaves the log off.
    out = open(path, "a", encoding="utf-8") if path is not None else None
    try:
        put_log = _started(capacity)
    except Exception:
        if out:
            out.close()
        raise
    put_log.file, put_log.record, put_log.pv_entries = out, record, pv_entries
    put_log.to_logger = True
