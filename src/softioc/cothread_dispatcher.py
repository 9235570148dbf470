"""Run callbacks as cothreads (the dispatcher the seed's examples use)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ._dispatch import run_callback
from ._wakeup import WakeQueue

__all__ = ["CothreadDispatcher"]

log = logging.getLogger("softioc")


class CothreadDispatcher:
    """Hand each callback to cothread's scheduler from any thread."""

    def __init__(self) -> None:
        import cothread

        self._cothread = cothread
        # Like cothread.Callback (a queue served by a cothread), but woken
        # without giving up the GIL in the EPICS thread (see _wakeup).
        self._queue = WakeQueue(self._run_now)
        cothread.Spawn(self._serve, stack_size=1 << 20)

    def _serve(self) -> None:
        ready = [(self._queue.fd, self._cothread.coselect.POLLIN)]
        while True:
            self._cothread.coselect.poll_list(ready)
            self._queue.run_pending()

    def __call__(
        self,
        func: Callable[..., Any],
        func_args: Sequence[Any] = (),
        completion: Callable[..., Any] | None = None,
        completion_args: Sequence[Any] = (),
    ) -> None:
        self._queue.put(functools.partial(
            run_callback, func, func_args, completion, completion_args))

    def _run_now(self, func: Callable[..., Any], func_args: Sequence[Any],
                 completion: Callable[..., Any] | None) -> None:
        run_callback(func, func_args, completion, ())

    def _serve_writes(self) -> None:
        self._queue.serve_writes()

    def wait_for_input(self, fd: int) -> None:
        """Block the calling cothread (not the scheduler) until fd is readable."""
        self._cothread.coselect.poll_list([(fd, self._cothread.coselect.POLLIN)])
