"""How Python callbacks (on_update, blocking completions) are run.

A dispatcher is any callable ``dispatcher(func, func_args=(), completion=None,
completion_args=())`` that runs ``func(*func_args)`` somewhere safe (awaiting it
if it returns an awaitable), logs any exception, then calls
``completion(*completion_args)``.  EPICS threads hand ``on_update`` work to
it; the one piece of user code they run themselves is ``validate``, in the
server thread with the record locked (see docs/explanations/threading.rst).
The asyncio and cothread dispatchers
live in their own modules; this one, the default, is a single worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import select
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ._wakeup import WakeQueue

__all__ = ["Dispatcher", "QueueDispatcher", "ThreadDispatcher", "run_callback"]

log = logging.getLogger("softioc")


class Dispatcher(Protocol):
    """What iocInit() accepts as ``dispatcher``."""

    def __call__(
        self,
        func: Callable[..., Any],
        func_args: Sequence[Any] = (),
        completion: Callable[..., Any] | None = None,
        completion_args: Sequence[Any] = (),
    ) -> None: ...


def run_callback(
    func: Callable[..., Any],
    func_args: Sequence[Any],
    completion: Callable[..., Any] | None,
    completion_args: Sequence[Any],
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Run func synchronously (an awaitable result is run to completion on a
    private loop), log failures, always call completion."""
    failed = False
    try:
        result = func(*func_args)
        if inspect.isawaitable(result):
            if loop is None:
                loop = asyncio.new_event_loop()
                try:
                    loop.run_until_complete(result)
                finally:
                    loop.close()
            else:
                loop.run_until_complete(result)
    except Exception:
        failed = True
        log.exception("Exception in callback %r", func)
    if completion is not None:
        _complete(completion, completion_args, failed)


def _complete(completion: Callable[..., Any], args: Sequence[Any], failed: bool) -> None:
    try:
        if getattr(completion, "_takes_failed", False):
            completion(*args, failed=failed)
        else:
            completion(*args)
    except Exception:
        log.exception("Exception in completion %r", completion)


class QueueDispatcher:
    """Base of pythonIOC's dispatchers: callbacks queued from any thread
    (``WakeQueue``) run one after another in the thread that serves
    ``self._queue``, and so do client writes (``_serve_writes``)."""

    _loop: asyncio.AbstractEventLoop | None = None   # runs awaitable results

    def __init__(self) -> None:
        self._queue = WakeQueue(self._run_now)

    def __call__(
        self,
        func: Callable[..., Any],
        func_args: Sequence[Any] = (),
        completion: Callable[..., Any] | None = None,
        completion_args: Sequence[Any] = (),
    ) -> None:
        self._queue.put(functools.partial(
            self._run_now, func, func_args, completion, completion_args))

    def _run_now(self, func: Callable[..., Any], func_args: Sequence[Any],
                 completion: Callable[..., Any] | None,
                 completion_args: Sequence[Any] = ()) -> None:
        run_callback(func, func_args, completion, completion_args, self._loop)

    def _serve_writes(self) -> None:
        self._queue.serve_writes()


class ThreadDispatcher(QueueDispatcher):
    """Runs callbacks in order on one daemon thread (the default dispatcher)."""

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.new_event_loop()     # for callbacks that return awaitables
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="softioc-dispatch", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self._queue.fd, select.POLLIN)
        while not self._stopping:
            poller.poll()
            self._queue.run_pending()
        if self._loop is not None:
            self._loop.close()

    def stop(self) -> None:
        """Finish queued work and stop the thread."""
        self._queue.stop_writes()

        def stop() -> None:
            self._stopping = True

        self._queue.put(stop)
        self._thread.join(timeout=2)
