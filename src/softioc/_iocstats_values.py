"""The values of devIocStats' records (``softioc.iocstats``): what each one
reads, once at iocInit or from a thread every second, each group as often as
its ``*_UPD_TIME`` record says."""

from __future__ import annotations

import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil

from . import _core
from ._readings import Readings

if TYPE_CHECKING:
    from ._core import Record

__all__ = ["Values", "uptime_text", "cut", "epics_settings", "NOT_AVAILABLE", "TEXT"]

log = logging.getLogger("softioc.iocstats")

NOT_AVAILABLE = "<not available>"
TEXT = 39                       # bytes a stringin holds (with its NUL: 40)


def uptime_text(seconds: float) -> str:
    """``hh:mm:ss``, with ``1 day, `` or ``N days, `` before it past a day
    (devIocStats' ``UPTIME``)."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    day = "" if days == 0 else "1 day, " if days == 1 else f"{days} days, "
    return f"{day}{hours:02d}:{minutes:02d}:{secs:02d}"


def cut(text: str, start: int = 0, size: int = TEXT) -> str:
    """``size`` bytes of ``text``'s UTF-8 from byte ``start`` (a character
    split at either end is dropped)."""
    return text.encode()[start:start + size].decode(errors="ignore")


def epics_settings() -> list[tuple[str, str]]:
    """(record name, value) of each EPICS_* setting libCom knows, as
    devIocStats' siteEnvVars (not the EPICS_BUILD_* facts of the build)."""
    return [(name[6:], value) for name, value in _core.epics_env()
            if name.startswith("EPICS_") and not name.startswith("EPICS_BUILD_")]


def startup_script() -> str:
    """devIocStats' ``$STARTUP/$ST_CMD``; else the script Python runs."""
    startup = os.environ.get("STARTUP")
    if startup:
        command = os.environ.get("ST_CMD", "")
        return f"{startup}/{command}" if command else startup
    script = sys.argv[0] if sys.argv else ""
    if script and script not in ("-c", "-m") and os.path.exists(script):
        return os.path.abspath(script)
    return NOT_AVAILABLE


def _engineer() -> str:
    for name in ("ENGINEER", "LOGNAME", "USER"):
        value = os.environ.get(name)
        if value:
            return value
    return NOT_AVAILABLE


def _fd_limit() -> int:
    """The soft limit of open files; 0 if there is none (FD_FREE then shows
    devIocStats' fallback, 1000)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 0
    return 0 if soft == resource.RLIM_INFINITY or soft < 0 else int(soft)


def _free_memory() -> int:
    """Linux: MemFree + Buffers + Cached, as devIocStats; elsewhere what is available."""
    memory = psutil.virtual_memory()
    if sys.platform.startswith("linux"):
        return int(memory.free + getattr(memory, "buffers", 0) + getattr(memory, "cached", 0))
    return int(memory.available)


class Values:
    """Sets devIocStats' ``records`` (by short name): ``start`` sets what is
    read once and starts the thread, ``stop`` ends it.  ``settings`` and
    ``pva_settings``: the environment settings served, by record name."""

    def __init__(self, records: dict[str, Record], settings: list[str],
                 pva_settings: list[str]) -> None:
        self.records = records
        self._settings = settings
        self._pva_settings = pva_settings
        self._script = startup_script()
        self._proc = psutil.Process()
        self._started = time.time()
        self._readings = Readings(log, "devIocStats")
        self._cpu_mark = (0.0, 0.0, 0.0)

    def _set(self, name: str, read: Callable[[], Any]) -> None:
        self._readings.set(self.records[name], read)

    def _set_static(self) -> None:
        """What devIocStats reads once, at iocInit."""
        cwd, uname = os.getcwd(), platform.uname()
        release = "EPICS " + _core.epics_version()
        texts = {
            "ST_SCRIPT1": cut(self._script), "ST_SCRIPT2": cut(self._script, TEXT),
            "KERNEL_VERS": cut(f"{uname.system} {uname.release} {uname.machine}"),
            "EPICS_VERS": cut(release), "HOSTNAME": cut(socket.gethostname()),
            "APP_DIR1": cut(cwd), "APP_DIR2": cut(cwd, TEXT), "ENGINEER": cut(_engineer()),
            "LOCATION": cut(os.environ.get("LOCATION") or NOT_AVAILABLE),
            "ST_SCRIPT": cut(self._script, size=119),
            "EPICS_VERSION": cut(release, size=119), "APP_DIR": cut(cwd, size=159),
        }
        settings = {name: value for name, value in epics_settings() if name in self._settings}
        texts.update((name, cut(value)) for name, value in settings.items())
        texts.update((name, cut(os.environ.get("EPICS_" + name) or NOT_AVAILABLE))
                     for name in self._pva_settings)
        for name, value in texts.items():
            self.records[name].set(value)
        queues = _core.queue_stats()
        sizes = (queues[0][0], queues[1][0]) if queues else (0, 0)
        self._set("SCANONCE_Q_SIZE", lambda: sizes[0])
        self._set("CB_Q_SIZE", lambda: sizes[1])
        self._set("CPU_CNT", lambda: os.cpu_count() or 1)
        self._set("RECORD_CNT", _core.record_count)
        self._set("PROCESS_ID", os.getpid)
        self._set("PARENT_ID", os.getppid)
        self._set("FD_MAX", _fd_limit)

    def _update_queues(self) -> None:
        stats = _core.queue_stats()
        if stats is None:
            return
        (_, once_used, once_high, once_over), (_, used, high, over) = stats
        figures = {"SCANONCE": (once_high, once_used, once_over)}
        figures.update((q, (high[i], used[i], over[i]))
                       for i, q in enumerate(("CBLOW", "CBMEDIUM", "CBHIGH")))
        for q, (most, now, overruns) in figures.items():
            self.records[f"{q}_Q_HIGH"].set(most)
            self.records[f"{q}_Q_USED"].set(now)
            self.records[f"{q}_Q_OVERRUNS"].set(overruns)

    def _cpu_times(self) -> tuple[float, float, float]:
        """(now, this process's CPU seconds, the machine's busy CPU seconds)."""
        mine = self._proc.cpu_times()
        machine = psutil.cpu_times()
        busy = machine.user + getattr(machine, "nice", 0.0) + machine.system
        return time.monotonic(), mine.user + mine.system, busy

    def _update_load(self) -> None:
        mark, self._cpu_mark = self._cpu_mark, self._cpu_times()
        now, mine, busy = self._cpu_mark
        span = (now - mark[0]) * (os.cpu_count() or 1)
        if span > 0:
            self._set("IOC_CPU_LOAD", lambda: max(0.0, 100 * (mine - mark[1]) / span))
            self._set("SYS_CPU_LOAD", lambda: max(0.0, 100 * (busy - mark[2]) / span))
        self._set("SUSP_TASK_CNT", _core.suspended_threads)

    def _update_memory(self) -> None:
        self._set("MEM_USED", lambda: self._proc.memory_info().rss)
        self._set("MEM_FREE", _free_memory)
        self._set("MEM_MAX", lambda: psutil.virtual_memory().total)

    def _update_ca(self) -> None:
        counts = _core.ca_counts()
        self._set("CA_CLNT_CNT", lambda: counts[0])
        self._set("CA_CONN_CNT", lambda: counts[1])

    def _update_fds(self) -> None:
        if sys.platform == "win32":
            self._set("FD_CNT", self._proc.num_handles)
        else:
            self._set("FD_CNT", self._proc.num_fds)

    def _period(self, group: str) -> float:
        return max(0.1, float(self.records[f"{group}_UPD_TIME"].get()))

    def start(self) -> None:
        """Set what is read once and start the updating thread (done by iocInit)."""
        if self._readings.started:
            return
        self._started = time.time()
        self._cpu_mark = self._cpu_times()
        self._set_static()
        self._readings.start("softioc-iocstats", self._run)

    def stop(self) -> None:
        """Stop updating (done when the IOC shuts down)."""
        self._readings.stop(5)

    def _run(self) -> None:
        updates = {"CA": self._update_ca, "FD": self._update_fds,
                   "LOAD": self._update_load, "MEM": self._update_memory}
        # When each group was updated last (a changed period counts from
        # there).  The CPU load wants an interval to measure: its first
        # figure comes a second after the start.
        now = time.monotonic()
        last = dict.fromkeys(updates, -1e9)
        last["LOAD"] = now + 1.0 - self._period("LOAD")
        stopping = self._readings.stopping
        while not stopping.is_set():
            now = time.monotonic()
            self._readings.run("UPTIME", lambda: self.records["UPTIME"].set(
                uptime_text(time.time() - self._started)))
            self._readings.run("queues", self._update_queues)
            for group, update in updates.items():
                if now >= last[group] + self._period(group):
                    self._readings.run(group, update)
                    last[group] = now
            stopping.wait(max(0.0, 1.0 - (time.monotonic() - now)))
