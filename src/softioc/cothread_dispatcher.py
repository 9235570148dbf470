"""Run callbacks as cothreads (the dispatcher the seed's examples use)."""

from __future__ import annotations

import logging
import sys
import weakref
from typing import Any

from ._dispatch import QueueDispatcher

__all__ = ["CothreadDispatcher"]

log = logging.getLogger("softioc")


class CothreadDispatcher(QueueDispatcher):
    """Hand each callback to cothread's scheduler from any thread."""

    def __init__(self) -> None:
        if sys.version_info[:3] == (3, 14, 0) and "cothread" not in sys.modules:
            # Importing cothread aborts CPython 3.14.0 ("Fatal Python error:
            # _Py_CheckRecursiveCall: Unrecoverable stack overflow" as cothread
            # starts its scheduler): say so rather than crash.
            raise RuntimeError(
                "cothread cannot run on CPython 3.14.0 (the interpreter aborts as cothread "
                "starts): use a later CPython 3.14 (3.14.4 and 3.14.10 run it), or "
                "AsyncioDispatcher "
                "(PYTHONIOC_DISPATCHER=asyncio)")
        try:
            import cothread
        except ImportError as error:
            raise ImportError(
                f"the cothread dispatcher needs cothread ({error}): pip install cothread "
                "(it has no wheel for CPython 3.14 and builds from source there, with a C "
                "compiler and the Python headers), or use AsyncioDispatcher or "
                "PYTHONIOC_DISPATCHER=asyncio|thread") from error

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
        if sys.version_info >= (3, 14) and not _frees_on_own_stack(cothread):
            log.warning(
                "cothread %s on CPython %d.%d: objects freed in a cothread with a stack of its "
                "own (cothread's scheduler, Callback, catools callbacks) are never freed, so a "
                "long-running IOC grows; our dispatcher avoids it, cothread itself does not. "
                "Use a cothread with the fix in pythonIOC's installation page, or the asyncio "
                "dispatcher.", getattr(cothread, "__version__", "?"), *sys.version_info[:2])

    def _serve(self) -> None:
        ready = [(self._queue.fd, self._cothread.coselect.POLLIN)]
        while True:
            self._cothread.coselect.poll_list(ready)
            self._queue.run_pending()

    def wait_for_input(self, fd: int) -> None:
        """Block the calling cothread (not the scheduler) until fd is readable."""
        self._cothread.coselect.poll_list([(fd, self._cothread.coselect.POLLIN)])


def _frees_on_own_stack(cothread: Any) -> bool:
    """Whether an object dropped in a cothread with its own stack is freed at once.

    CPython 3.14 checks the C stack against limits kept per thread state;
    cothread gives each cothread a thread state of its own, and unless it
    also tells CPython where that cothread's stack is (an API of 3.14.1 on),
    CPython finds itself below its stack, defers every free, and never
    frees.  Answered by a probe in a short-lived cothread (microseconds)."""

    class Probe:
        pass

    refs: list[weakref.ref[Probe]] = []

    def drop() -> None:
        probe = Probe()
        refs.append(weakref.ref(probe))
        del probe

    try:
        cothread.Spawn(drop, stack_size=1 << 20).Wait(5)
    except Exception:           # not in cothread's thread: nothing can be said
        return True
    return bool(refs) and refs[0]() is None
