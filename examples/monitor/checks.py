"""Host and service checks: plain Python, nothing to do with EPICS.

This stands for the monitoring code a facility already has (scripts that
print a report, feed a dashboard or send mail); host_monitor.py serves the
same functions as PVs with alarms, unchanged.
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass

import psutil

__all__ = ["cpu_percent", "load_average", "memory", "disk", "NetRates", "count_processes",
           "probe", "Probe", "interfaces"]


def cpu_percent() -> float:
    """Use of all cores since the last call, 0-100 %."""
    return float(psutil.cpu_percent(None))


def load_average() -> float:
    """The 1-minute load average (0 where the OS has none)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def memory() -> tuple[float, float]:
    """(% of memory in use, GB available)."""
    mem = psutil.virtual_memory()
    return float(mem.percent), mem.available / 1e9


def disk(path: str) -> tuple[float, float]:
    """(% used, GB free) of the file system holding ``path`` (OSError if none)."""
    usage = psutil.disk_usage(path)
    return float(usage.percent), usage.free / 1e9


def interfaces() -> list[str]:
    """Network interfaces that are up, loopback left out."""
    stats = psutil.net_if_stats()
    return sorted(name for name, s in stats.items()
                  if s.isup and name != "lo" and "loopback" not in getattr(s, "flags", ""))


class NetRates:
    """Bytes per second received and sent per interface, between two calls."""

    def __init__(self) -> None:
        self._last = psutil.net_io_counters(pernic=True)
        self._time = time.monotonic()

    def __call__(self) -> dict[str, tuple[float, float]]:
        now, counters = time.monotonic(), psutil.net_io_counters(pernic=True)
        dt = max(now - self._time, 1e-6)
        rates = {}
        for name, c in counters.items():
            before = self._last.get(name)
            if before is not None:
                rates[name] = (max(c.bytes_recv - before.bytes_recv, 0) / dt,
                               max(c.bytes_sent - before.bytes_sent, 0) / dt)
        self._last, self._time = counters, now
        return rates


def count_processes(patterns: dict[str, str]) -> dict[str, int]:
    """How many processes (other than this one) match each regex, searched in
    the command line (or the name, for processes without one)."""
    compiled = {key: re.compile(p) for key, p in patterns.items()}
    counts = dict.fromkeys(patterns, 0)
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        info = proc.info
        if info["pid"] == me:
            continue
        text = " ".join(info["cmdline"] or []) or (info["name"] or "")
        for key, regex in compiled.items():
            if regex.search(text):
                counts[key] += 1
    return counts


@dataclass
class Probe:
    """The answer of one TCP service."""

    up: bool
    milliseconds: float
    error: str = ""


def probe(host: str, port: int, timeout: float = 1.0) -> Probe:
    """Does ``host:port`` accept a TCP connection within ``timeout`` s?"""
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        return Probe(False, (time.monotonic() - start) * 1e3, str(e) or type(e).__name__)
    return Probe(True, (time.monotonic() - start) * 1e3)
