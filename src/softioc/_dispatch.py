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

import functools
import logging
import os
import select
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._wakeup import WakeQueue

if TYPE_CHECKING:
    import asyncio

__all__ = ["Dispatcher", "QueueDispatcher", "ThreadDispatcher", "run_callback", "listen"]

log = logging.getLogger("softioc")

_T = TypeVar("_T")

#: The EPICS priority of the threads pythonIOC's dispatchers start:
#: ``epicsThreadPriorityMedium``, as asyn's port threads and ``dbCaLink``.
DEFAULT_PRIORITY = 50


def dispatcher_priority() -> int | None:
    """The EPICS priority (0-99) for a dispatcher's own thread, from
    ``PYTHONIOC_DISPATCHER_PRIORITY`` (default 50); None for ``NO``."""
    text = os.environ.get("PYTHONIOC_DISPATCHER_PRIORITY", "").strip()
    if not text:
        return DEFAULT_PRIORITY
    if text.upper() in ("NO", "NONE", "OFF"):
        return None
    try:
        priority = int(text)
    except ValueError:
        priority = -1
    if not 0 <= priority <= 99:
        raise ValueError(f"PYTHONIOC_DISPATCHER_PRIORITY={text!r}: use an EPICS priority "
                         "from 0 to 99, or NO")
    return priority


def epics_to_fifo(priority: int, low: int, top: int) -> int:
    """The SCHED_FIFO priority of an EPICS thread of ``priority`` (0-99) when
    the FIFO priorities EPICS may use run from low to top (osdThread.c)."""
    if top == low:
        return top
    return int(priority * ((top - low) / 100.0) + low)


def _may_take(fifo: int) -> bool:
    try:
        # 0: this thread (Linux).  Threads and processes it starts (an executor's
        # workers, subprocesses) begin in the normal class, not at this priority.
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(fifo))
        return True
    except OSError:
        return False


def take_epics_priority(priority: int | None) -> bool:
    """Give the calling thread the real-time priority an EPICS thread of
    ``priority`` has, if this process may use real-time scheduling (the EPICS
    core then gives its own threads SCHED_FIFO priorities; without the right
    every thread stays in the normal class and so does this one).  True if
    the priority was taken.

    As EPICS does (``find_pri_range`` in osdThread.c), the top of the range is
    the highest FIFO priority this process may take (``RLIMIT_RTPRIO`` may
    stop it below the system's maximum), found by trying them in this thread.
    """
    if priority is None or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        low = os.sched_get_priority_min(os.SCHED_FIFO)
        top = os.sched_get_priority_max(os.SCHED_FIFO)
        if not _may_take(low):
            return False
        floor = low
        while floor < top:                      # the highest priority allowed
            middle = (floor + top) // 2
            if _may_take(middle):
                floor = middle + 1
            else:
                top = middle
        if not _may_take(top):
            top -= 1
        if _may_take(epics_to_fifo(priority, low, top)):
            return True
    except Exception:                            # never stop a dispatcher from starting
        log.exception("could not give the dispatcher's thread EPICS priority %s", priority)
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))   # not left at a trial one
    except OSError:
        pass
    return False


class Dispatcher(Protocol):
    """What iocInit() accepts as ``dispatcher``."""

    def __call__(
        self,
        func: Callable[..., Any],
        func_args: Sequence[Any] = (),
        completion: Callable[..., Any] | None = None,
        completion_args: Sequence[Any] = (),
    ) -> None: ...


def is_awaitable(result: object) -> bool:
    """Whether a callback's result must be awaited.  The usual result, None,
    is answered without importing ``inspect``."""
    if result is None:
        return False
    import inspect
    return inspect.isawaitable(result)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new asyncio loop.  asyncio (with ssl, 6 MB and 35 ms at start) is
    imported only by an IOC whose callbacks return awaitables, or that uses
    ``AsyncioDispatcher``."""
    import asyncio
    return asyncio.new_event_loop()


def run_callback(
    func: Callable[..., Any],
    func_args: Sequence[Any],
    completion: Callable[..., Any] | None,
    completion_args: Sequence[Any],
    loop: asyncio.AbstractEventLoop | Callable[[], asyncio.AbstractEventLoop | None] | None = None,
) -> None:
    """Run func synchronously (an awaitable result is run to completion on
    ``loop``, or on what ``loop()`` returns, or on a private loop), log
    failures, always call completion."""
    failed = False
    try:
        result = func(*func_args)
        if is_awaitable(result):
            if callable(loop):
                loop = loop()
            if loop is None:
                loop = new_event_loop()
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


def listen(listeners: list[_T], listener: _T,
           lock: AbstractContextManager[Any]) -> Callable[[], None]:
    """Add ``listener`` to ``listeners`` (a list its owner calls from its
    own thread), under ``lock``; returns the function that takes it out."""
    with lock:
        listeners.append(listener)

    def stop() -> None:
        with lock:
            if listener in listeners:
                listeners.remove(listener)
    return stop


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

    def __call__(self, func: Callable[..., Any], func_args: Sequence[Any] = (),
                 completion: Callable[..., Any] | None = None,
                 completion_args: Sequence[Any] = ()) -> None:     # a Dispatcher
        self._queue.put(functools.partial(
            self._run_now, func, func_args, completion, completion_args))

    def _run_now(self, func: Callable[..., Any], func_args: Sequence[Any],
                 completion: Callable[..., Any] | None,
                 completion_args: Sequence[Any] = ()) -> None:
        run_callback(func, func_args, completion, completion_args, self._awaiting_loop)

    def _awaiting_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop awaitable results run on (None: a private one for each)."""
        return self._loop

    def _serve_writes(self) -> None:
        self._queue.serve_writes()

    def pending(self) -> int:
        """Callbacks and client writes waiting to run (any thread)."""
        return self._queue.pending()


class ThreadDispatcher(QueueDispatcher):
    """Runs callbacks in order on one daemon thread (the default dispatcher),
    which takes an EPICS thread priority as ``AsyncioDispatcher``'s does."""

    def __init__(self) -> None:
        self._priority = dispatcher_priority()    # first: a bad setting leaves nothing open
        super().__init__()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="softioc-dispatch", daemon=True)
        self._thread.start()

    def _awaiting_loop(self) -> asyncio.AbstractEventLoop:
        """The loop awaitable results run on, made for the first of them."""
        if self._loop is None:
            self._loop = new_event_loop()
        return self._loop

    def _serve(self) -> None:
        take_epics_priority(self._priority)
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
