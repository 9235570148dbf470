"""A simulated device for the seed's "Dynamically created PVs" example.

``Device(hostname)`` has a few parameters; ``poll_changed_params()`` waits a
little (cooperatively, so cothreads keep running) and returns those whose
value changed: SIMDEV:COUNT counts up on every poll, SIMDEV:WAVE follows a sine.
"""

from __future__ import annotations

import math
import time


class Param:
    """One device parameter: a PV-safe ``name`` and its current ``value``."""

    def __init__(self, name: str, value: float) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.value!r})"


class Device:
    """A pretend device at ``hostname`` (nothing is contacted)."""

    def __init__(self, hostname: str, poll_period: float = 0.1) -> None:
        self.hostname = hostname
        self.poll_period = poll_period
        self._params = [Param("SIMDEV:COUNT", 0.0), Param("SIMDEV:WAVE", 0.0),
                        Param("SIMDEV:GAIN", 2.5)]
        self._start = time.time()

    def connect(self) -> None:
        """Pretend to connect."""

    def get_params(self) -> list[Param]:
        """All parameters of the device."""
        return list(self._params)

    def poll_changed_params(self) -> list[Param]:
        """Wait one poll period, then return the parameters that changed."""
        try:
            import cothread

            cothread.Sleep(self.poll_period)
        except ImportError:
            time.sleep(self.poll_period)
        count, wave, _ = self._params
        count.value += 1
        wave.value = round(math.sin(time.time() - self._start), 6)
        return [count, wave]
