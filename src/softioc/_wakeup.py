"""Work for a dispatcher's thread, handed over from any thread.

pythonIOC's dispatchers (thread, asyncio, cothread) each wait on a
``WakeQueue``'s pipe.  Two kinds of work wake them:

* client writes to records with ``on_update``, which the C layer copies into
  its write queue (``_ext.take_writes``) without taking the GIL, so a busy
  Python thread never holds up a put;
* callables put here from Python.  The byte that wakes the loop is written by
  the C layer with the GIL kept: ``os.write`` (used by
  ``loop.call_soon_threadsafe`` and ``cothread.Callback``) gives the GIL up
  around the write and must take it back while the woken loop wants it too,
  which cost every client put about 40 µs.

The dispatcher given to ``iocInit`` serves the write queue (``serve_writes``);
work of both kinds runs in the order it arrived within each kind.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Optional

from . import _ext

log = logging.getLogger("softioc")

#: How a dispatcher runs a callback at once, in its own thread:
#: ``run(func, func_args, completion)``.
RunNow = Callable[[Callable[..., Any], Sequence[Any], Optional[Callable[..., Any]]], None]


class WakeQueue:
    """Work queued from any thread, run by ``run_pending()`` in the loop's
    thread when ``fd`` is readable; ``run`` runs one callback there."""

    def __init__(self, run: RunNow) -> None:
        self.fd, self._write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write_fd, False)
        self._run = run
        self._items: collections.deque[Callable[[], object]] = collections.deque()
        self._signalled = False
        self._writes = False

    def serve_writes(self) -> None:
        """Take over the C layer's queue of client writes (one queue per process)."""
        _ext.write_queue(self._write_fd)
        self._writes = True

    def stop_writes(self) -> None:
        """Give the write queue up (the server threads call Python directly again)."""
        if self._writes:
            _ext.write_queue(-1)
            self._writes = False

    def put(self, item: Callable[[], object]) -> None:
        """Queue item and wake the loop (any thread)."""
        self._items.append(item)
        if not self._signalled:
            self._signalled = True
            _ext.wake(self._write_fd)

    def pending(self) -> int:
        """Work waiting to run: callables queued and client writes the C
        layer holds for this loop (any thread; a figure, not a promise)."""
        return len(self._items) + (_ext.queued_writes() if self._writes else 0)

    def run_pending(self) -> None:
        """Run what was queued (the loop's thread); later work wakes it again."""
        try:
            os.read(self.fd, 4096)  # drained first: work queued after this writes again
        except BlockingIOError:
            pass
        self._signalled = False
        if self._writes:
            for record, raw, busy in _ext.take_writes():
                try:
                    record._queued_write(raw, bool(busy), self._run)
                except Exception:
                    log.exception("Exception handing on a write to %s", record.name)
        items = self._items
        for _ in range(len(items)):
            item = items.popleft()
            try:
                item()
            except Exception:
                log.exception("Exception in dispatched callback %r", item)
