"""Run callbacks as cothreads (the dispatcher the seed's examples use)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ._dispatch import run_callback

__all__ = ["CothreadDispatcher"]

log = logging.getLogger("softioc")


class CothreadDispatcher:
    """Hand each callback to cothread's scheduler from any thread."""

    def __init__(self) -> None:
        import cothread

        self._cothread = cothread
        # Callback() is cothread's thread-safe way into the main-thread scheduler.
        self._callback = cothread.Callback

    def __call__(
        self,
        func: Callable[..., Any],
        func_args: Sequence[Any] = (),
        completion: Callable[..., Any] | None = None,
        completion_args: Sequence[Any] = (),
    ) -> None:
        self._callback(run_callback, func, func_args, completion, completion_args)

    def wait_for_input(self, fd: int) -> None:
        """Block the calling cothread (not the scheduler) until fd is readable."""
        self._cothread.coselect.poll_list([(fd, self._cothread.coselect.POLLIN)])
