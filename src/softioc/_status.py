"""Is the IOC alive, and is it ready?  One answer for the health records,
the ``pythonioc probe`` command (through them) and the HTTP endpoints.

* **live**: iocInit is done, the Channel Access server runs, and the
  dispatcher runs callbacks: a watchdog thread hands it a no-op every
  ``INTERVAL`` seconds; one that has waited longer than `stuck_after`
  seconds (``PYTHONIOC_STUCK_AFTER``, default 10) means a callback blocks
  it (a wedged dispatcher).
* **ready**: live, and iocInit has finished (autosave restored at
  LoadDatabase, every record initialised and its PINI processing done).

Each check returns None when it passes, else one line saying what failed.
There is one IOC per process (``softioc._ioc``), so one watchdog.
"""

from __future__ import annotations

import functools
import os
import threading
import time

from . import _ext, _lifecycle
from ._ioc import ioc as _ioc

__all__ = ["INTERVAL", "stuck_after", "start", "live", "ready", "latency", "Watchdog"]

INTERVAL = 1.0          # s between the watchdog's no-ops


@functools.cache
def stuck_after() -> float:
    """Seconds a no-op may wait before the dispatcher counts as wedged:
    ``PYTHONIOC_STUCK_AFTER`` (default 10), read when first asked for."""
    text = os.environ.get("PYTHONIOC_STUCK_AFTER", "").strip()
    if not text:
        return 10.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"PYTHONIOC_STUCK_AFTER={text!r}: use a number of seconds above 0")
    return seconds


class Watchdog:
    """Hands the dispatcher a no-op every ``interval`` s and notes how long
    each waited to run."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.stuck_after = stuck_after()    # a bad PYTHONIOC_STUCK_AFTER fails here, once
        self.sent = 0.0             # monotonic time the waiting no-op was handed over (0: none)
        self.last_ran = 0.0         # monotonic time the last no-op ran
        self.last_latency = 0.0     # s the last no-op waited
        self.max_latency = 0.0      # s, the longest wait since start
        self.ran = 0                # no-ops run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="softioc-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        dispatcher = _lifecycle.dispatcher()
        while not self._stop.is_set():
            if not self.sent:       # the last one ran: hand over the next
                self.sent = time.monotonic()
                try:
                    dispatcher(self._ran, (self.sent,))
                except Exception:   # a dispatcher closed at shutdown
                    return
            self._stop.wait(self.interval)

    def _ran(self, sent: float) -> None:
        now = time.monotonic()
        self.last_latency = now - sent
        self.max_latency = max(self.max_latency, self.last_latency)
        self.last_ran = now
        self.ran += 1
        self.sent = 0.0

    def waiting(self) -> float:
        """Seconds the current no-op has waited (0 if none waits)."""
        sent = self.sent
        return time.monotonic() - sent if sent else 0.0


_watchdog: Watchdog | None = None
_lock = threading.Lock()


def start() -> Watchdog:
    """The process's watchdog, started at iocInit (or now, if running)."""
    global _watchdog
    with _lock:
        if _watchdog is None:
            _watchdog = Watchdog()
            if _lifecycle.is_running():
                _watchdog.start()
            else:
                _lifecycle.after_init(_watchdog.start)
            _lifecycle.at_shutdown(_watchdog.stop)
        return _watchdog


def live() -> str | None:
    """None if the IOC serves and its dispatcher runs callbacks; else why not."""
    if not _lifecycle.is_running():
        return "the IOC has not started (iocInit not done)"
    if _ioc.shut:
        return "the IOC is stopping"
    if _ext.server_stats("rsrv") is None:
        return "the Channel Access server is not running"
    watchdog = start()
    waited = watchdog.waiting()
    if waited > watchdog.stuck_after:
        return f"the dispatcher has not run a callback for {waited:.0f} s (a callback blocks it)"
    return None


def ready() -> str | None:
    """None if the IOC is live and fully started; else why not."""
    if _lifecycle.is_running() and not _lifecycle.is_started():
        return ("the IOC is stopping" if _ioc.shut else
                "the IOC is starting (iocInit's start-up hooks are running)")
    return live()


def latency() -> tuple[float, float]:
    """(last, longest) seconds a callback waited for the dispatcher."""
    dog = start()
    return dog.last_latency, dog.max_latency
