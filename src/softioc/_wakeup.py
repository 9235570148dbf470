"""Work for an event loop's thread, handed over from any thread.

The asyncio and cothread dispatchers take ``on_update`` work from EPICS
server threads through a ``WakeQueue``.  Their own thread-safe entries
(``loop.call_soon_threadsafe``, ``cothread.Callback``) wake the loop with
``os.write``, which releases the GIL around the write and must take it back
while the woken loop wants it too: from a CA server thread that wait cost
every client put about 40 µs.  Here the C layer writes the byte with the GIL
kept, and the loop runs everything queued at each wake.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable

from . import _ext

log = logging.getLogger("softioc")


class WakeQueue:
    """Callables queued from any thread, run by ``run_pending()`` in the loop's
    thread when ``fd`` is readable."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write_fd, False)
        self._items: collections.deque[Callable[[], object]] = collections.deque()
        self._signalled = False

    def put(self, item: Callable[[], object]) -> None:
        """Queue item and wake the loop (any thread)."""
        self._items.append(item)
        if not self._signalled:
            self._signalled = True
            _ext.wake(self._write_fd)

    def run_pending(self) -> None:
        """Run what was queued (the loop's thread); later puts wake it again."""
        try:
            os.read(self.fd, 4096)  # drained first: a put after this writes again
        except BlockingIOError:
            pass
        self._signalled = False
        items = self._items
        for _ in range(len(items)):
            item = items.popleft()
            try:
                item()
            except Exception:
                log.exception("Exception in dispatched callback %r", item)

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._write_fd)
