"""Run callbacks on an asyncio event loop (``async def`` callbacks welcome)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._dispatch import (
    QueueDispatcher,
    _complete,
    dispatcher_priority,
    is_awaitable,
    take_epics_priority,
)

__all__ = ["AsyncioDispatcher"]

log = logging.getLogger("softioc")


class AsyncioDispatcher(QueueDispatcher):
    """Dispatch callbacks to ``loop``; without one, start a loop in a thread.

    ``AsyncioDispatcher()`` owns a new loop running in a daemon thread (use
    ``dispatcher.loop`` to schedule your own coroutines on it); pass a loop
    you run yourself, and that is running, to share it.  Usable as a context manager, which stops
    an owned loop on exit.  An owned loop's thread takes an EPICS thread
    priority (``PYTHONIOC_DISPATCHER_PRIORITY``, default 50) when the process
    may use real-time scheduling, as EPICS's own threads then do.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None = None, debug: bool = False
    ) -> None:
        if loop is not None and not loop.is_running():
            # Callbacks would wait for ever; pythonSoftIOC refuses it too.
            raise ValueError("AsyncioDispatcher(loop): the loop is not running; create the "
                             "dispatcher inside it (asyncio.get_running_loop()) or give no "
                             "loop to have one started in a thread")
        priority = dispatcher_priority() if loop is None else None   # first: nothing open yet
        super().__init__()
        self._thread: threading.Thread | None = None
        if loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                take_epics_priority(priority)
                asyncio.set_event_loop(loop)
                loop.add_reader(self._queue.fd, self._queue.run_pending)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=run, name="softioc-asyncio", daemon=True)
            self._thread.start()
            ready.wait()
        else:
            loop.call_soon_threadsafe(loop.add_reader, self._queue.fd, self._queue.run_pending)
        self.loop = loop
        self.loop.set_debug(debug)

    def _run_now(
        self,
        func: Callable[..., Any],
        func_args: Sequence[Any],
        completion: Callable[..., Any] | None,
        completion_args: Sequence[Any] = (),
    ) -> None:
        # A plain function runs straight from the loop's reader callback; only
        # an awaitable result costs a task (a coroutine and a task per call
        # doubled a put-callback's round trip through a blocking record).
        try:
            result = func(*func_args)
        except Exception:
            log.exception("Exception in callback %r", func)
            if completion is not None:
                _complete(completion, completion_args, True)
            return
        if is_awaitable(result):
            self.loop.create_task(self._finish(result, func, completion, completion_args))
        elif completion is not None:
            _complete(completion, completion_args, False)

    async def _finish(self, result: Any, func: Callable[..., Any],
                      completion: Callable[..., Any] | None,
                      completion_args: Sequence[Any]) -> None:
        failed = False
        try:
            await result
        except Exception:
            failed = True
            log.exception("Exception in callback %r", func)
        if completion is not None:
            _complete(completion, completion_args, failed)

    def close(self) -> None:
        """Stop the loop if this dispatcher started it."""
        if self._thread is not None and self.loop.is_running():
            self._queue.stop_writes()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=2)

    def __enter__(self) -> AsyncioDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
