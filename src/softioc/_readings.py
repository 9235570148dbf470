"""Records a thread keeps up to date with what it reads (``softioc.health``,
``softioc.iocstats``): the thread, started at iocInit and stopped at
shutdown, and the readings: one that fails puts its record in an INVALID
READ alarm and is logged once, until it works again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import alarm

if TYPE_CHECKING:
    from ._core import Record

__all__ = ["Readings"]


class Readings:
    """The readings of one feature (``what``: its name in ``log``'s messages)
    and the thread that makes them."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.failing: set[str] = set()      # what failed last time, logged once
        self.stopping = threading.Event()   # the thread's loop ends when it is set
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self, name: str, loop: Callable[[], None]) -> None:
        """Run ``loop`` in a daemon thread called ``name``."""
        self._thread = threading.Thread(target=loop, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Set `stopping` and give the thread ``timeout`` s to end (unless this is it)."""
        self.stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def set(self, record: Record, read: Callable[[], Any]) -> None:
        """``record.set(read())``, or its alarm if ``read`` fails."""
        try:
            value = read()
        except Exception:
            self._failed(record.name, "reading")
            record.set_alarm(alarm.INVALID_ALARM, alarm.READ_ALARM)
            return
        self.failing.discard(record.name)
        record.set(value)

    def run(self, what: str, update: Callable[[], None]) -> None:
        """Run one ``update`` (of several records); a failure is logged."""
        try:
            update()
        except Exception:
            self._failed(what, "updating")
        else:
            self.failing.discard(what)

    def _failed(self, name: str, doing: str) -> None:
        """Log the exception being handled, unless ``name`` failed last time too."""
        if name not in self.failing:
            self.log.exception("%s: %s %s failed", self.what, doing, name)
            self.failing.add(name)
