"""A simulated device for the "Dynamically created PVs" example (device_ioc.py).

``Device(hostname)`` stands in for a real device library: it has a few
parameters, each with a PV-safe ``name`` and a ``value``:

=============  ==========================================================
SIMDEV:COUNT   counts up once every ``poll_period`` (0.1 s)
SIMDEV:WAVE    sin(t), t in seconds since connect(), refreshed each period
SIMDEV:GAIN    2.5; changes only when told to (see below)
=============  ==========================================================

``poll_changed_params()`` blocks *cooperatively* (the calling cothread waits,
other cothreads and the IOC keep running) until the next period or until a
command arrives, then returns the parameters whose value changed.

Commands, for trying it out and for tests: when the environment variable
``SIMDEV_PORT`` is set, ``connect()`` listens for UDP datagrams on
127.0.0.1:$SIMDEV_PORT, each ``NAME VALUE`` (e.g. ``SIMDEV:GAIN 7.25``),
which sets that parameter as if the device had changed it itself::

    python -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\
.sendto(b'SIMDEV:GAIN 7.25', ('127.0.0.1', 5099))"

Nothing is contacted: ``hostname`` is only remembered.
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass

import cothread

__all__ = ["Param", "Device"]


@dataclass(eq=False)            # eq=False: hashed by identity, usable as a dict key
class Param:
    """One device parameter: a PV-safe ``name`` and its current ``value``."""

    name: str
    value: float


class Device:
    """A pretend device at ``hostname``."""

    def __init__(self, hostname: str, poll_period: float = 0.1) -> None:
        self.hostname = hostname
        self.poll_period = poll_period
        self._count = Param("SIMDEV:COUNT", 0.0)
        self._wave = Param("SIMDEV:WAVE", 0.0)
        self._gain = Param("SIMDEV:GAIN", 2.5)
        self._params = {p.name: p for p in (self._count, self._wave, self._gain)}
        self._start = self._next_tick = time.monotonic()
        self._control: socket.socket | None = None

    def connect(self) -> None:
        """Start the simulation (and the command port, if SIMDEV_PORT is set)."""
        self._start = time.monotonic()
        self._next_tick = self._start + self.poll_period
        port = os.environ.get("SIMDEV_PORT")
        if port and self._control is None:
            self._control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._control.bind(("127.0.0.1", int(port)))
            self._control.setblocking(False)

    def get_params(self) -> list[Param]:
        """All parameters of the device."""
        return list(self._params.values())

    def set_param(self, name: str, value: float) -> None:
        """Change a parameter, as the device itself might (also from the IOC shell)."""
        self._params[name].value = float(value)

    def poll_changed_params(self) -> list[Param]:
        """Wait (cooperatively) for the next period or a command; return what changed."""
        before = {p: p.value for p in self._params.values()}
        timeout = max(0.0, self._next_tick - time.monotonic())
        if self._control is None:
            cothread.Sleep(timeout)
        else:
            cothread.select([self._control], [], [], timeout)
            self._read_commands()
        now = time.monotonic()
        if now >= self._next_tick:
            self._count.value += 1
            self._wave.value = round(math.sin(now - self._start), 6)
            # Skip missed periods rather than catching up in a burst.
            periods = math.floor((now - self._next_tick) / self.poll_period) + 1
            self._next_tick += periods * self.poll_period
        return [p for p, old in before.items() if p.value != old]

    def _read_commands(self) -> None:
        assert self._control is not None
        for _ in range(100):                # bounded: at most 100 commands per poll
            try:
                data = self._control.recv(1024)
            except OSError:                 # BlockingIOError: nothing more to read
                return
            try:
                name, value = data.decode().split()
                self.set_param(name, float(value))
            except (ValueError, KeyError, UnicodeDecodeError):
                print(f"my_device_lib: ignored command {data!r}")
