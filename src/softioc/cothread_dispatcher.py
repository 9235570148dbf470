"""Run callbacks as cothreads (the dispatcher the seed's examples use)."""

from __future__ import annotations

import logging
import sys

from ._dispatch import QueueDispatcher

__all__ = ["CothreadDispatcher"]

log = logging.getLogger("softioc")


class CothreadDispatcher(QueueDispatcher):
    """Hand each callback to cothread's scheduler from any thread."""

    def __init__(self) -> None:
        import cothread

        # Like cothread.Callback (a queue served by a cothread), but woken
        # without giving up the GIL in the EPICS thread (see _wakeup).
        super().__init__()
        self._cothread = cothread
        # Callbacks get a stack of their own (1 MB), except on CPython 3.14:
        # there each cothread inherits the main thread's C stack limits, so
        # on a stack of its own every object freed is kept for ever (cothread
        # 2.20.1: 80 MB per 100,000 callbacks); on cothread's shared stack
        # (stack_size=0) they are freed.
        cothread.Spawn(self._serve, stack_size=0 if sys.version_info >= (3, 14) else 1 << 20)

    def _serve(self) -> None:
        ready = [(self._queue.fd, self._cothread.coselect.POLLIN)]
        while True:
            self._cothread.coselect.poll_list(ready)
            self._queue.run_pending()

    def wait_for_input(self, fd: int) -> None:
        """Block the calling cothread (not the scheduler) until fd is readable."""
        self._cothread.coselect.poll_list([(fd, self._cothread.coselect.POLLIN)])
