"""IOC health records, like devIocStats, under a prefix you choose.

::

    from softioc import builder, health, softioc
    health.create("BL99-IOC-01:HEALTH", period=1.0)    # any time before iocInit
    builder.LoadDatabase()
    softioc.iocInit()

makes ``PREFIX:NAME`` for each NAME below; a daemon thread started by iocInit
updates them every ``period`` seconds (needs ``psutil``).

=============== ========= ====================================================
UPTIME          longin    seconds since the process started
START_TOD       stringin  when it started (local time)
CPU             ai        % of one core used by this process (HIGH/HIHI alarms)
MEM_RSS         ai        resident memory, MB
THREADS         longin    threads of this process
FDS             longin    open file descriptors (alarms near the soft limit)
CA_CLIENTS      longin    Channel Access client circuits (rsrv's count)
CA_CHANNELS     longin    Channel Access channels (rsrv's count)
PVA_CLIENTS     longin    PV Access client connections to this IOC
RECORDS         longin    records in the database (.db-loaded ones too)
HEARTBEAT       longin    counts up once per update
PYTHON_VERSION  stringin
EPICS_VERSION   stringin
HOSTNAME        stringin
LIVE            bi        Yes when the IOC is live (``softioc._status.live()``:
                          serving CA, its dispatcher running callbacks), else No
                          (MAJOR alarm)
LIVE_MSG        waveform  why it is not live, "" when it is (a long string:
                          ``caget -S``)
READY           bi        Yes when it is ready (``softioc._status.ready()``: live
                          and iocInit's start-up done), else No (MINOR alarm)
READY_MSG       waveform  why it is not ready, "" when it is
DISPATCH_AGE    ai        seconds the dispatcher's pending no-op has waited (0: it
                          keeps up; HIHI at ``$PYTHONIOC_STUCK_AFTER`` s)
=============== ========= ====================================================

``LIVE``, ``READY`` and their texts are what ``pythonioc probe live`` and
``pythonioc probe ready`` read over Channel Access (with the time stamp of
``LIVE`` or ``READY``, which stops moving if this updating thread does), so
that a liveness or readiness probe in another process sees what the IOC
knows of itself.

Where the numbers come from, all through public EPICS interfaces in the C
layer: CA and PVA counts from each server layer's statistics (Base's
``dbServerStats()`` for ``rsrv`` and for QSRV2, ``qsrv2``); records from a
walk of EPICS's record types (``dbGetNRecords`` less ``dbGetNAliases``).
"""

from __future__ import annotations

import logging
import platform
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil

from . import _core, builder
from ._core import IOC, Record, ioc
from ._readings import Readings

__all__ = ["create", "create_at_init", "made", "Health", "NAMES"]

log = logging.getLogger("softioc.health")

_INT_MAX = 2**31 - 1


def _text(value: str) -> str:
    """At most 39 bytes of UTF-8: what a stringin holds."""
    return value.encode()[:39].decode(errors="ignore")


class Health:
    """The health records (``records``, by short name) and their updater."""

    def __init__(self, prefix: str, period: float, cpu_high: float, cpu_hihi: float) -> None:
        if period <= 0:
            raise ValueError("period must be > 0")
        self.prefix = prefix
        self.period = period
        self.heartbeat = 0
        self._proc = psutil.Process()
        self._started = self._proc.create_time()
        fd_limits = _fd_alarm_limits()
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._started))
        b = builder
        self.records: dict[str, Record] = {
            "UPTIME": b.longIn("UPTIME", 0, EGU="s"),
            "START_TOD": b.stringIn("START_TOD", started),
            "CPU": b.aIn("CPU", 0.0, EGU="%", PREC=1, LOPR=0, HOPR=100,
                         HIGH=cpu_high, HSV="MINOR", HIHI=cpu_hihi, HHSV="MAJOR", HYST=1),
            "MEM_RSS": b.aIn("MEM_RSS", 0.0, EGU="MB", PREC=1),
            "THREADS": b.longIn("THREADS", 0),
            "FDS": b.longIn("FDS", 0, **fd_limits),
            "CA_CLIENTS": b.longIn("CA_CLIENTS", 0),
            "CA_CHANNELS": b.longIn("CA_CHANNELS", 0),
            "PVA_CLIENTS": b.longIn("PVA_CLIENTS", 0),
            "RECORDS": b.longIn("RECORDS", 0),
            "HEARTBEAT": b.longIn("HEARTBEAT", 0),
            "PYTHON_VERSION": b.stringIn("PYTHON_VERSION", _text(platform.python_version())),
            "EPICS_VERSION": b.stringIn("EPICS_VERSION", _text(_core.epics_version())),
            "HOSTNAME": b.stringIn("HOSTNAME", _text(socket.gethostname())),
            # What `pythonioc probe` reads (softioc.probe); "Yes" is what it expects.
            "LIVE": b.boolIn("LIVE", 0, ZNAM="No", ONAM="Yes", ZSV="MAJOR"),
            "LIVE_MSG": b.longStringIn("LIVE_MSG", _NOT_STARTED, length=256),
            "READY": b.boolIn("READY", 0, ZNAM="No", ONAM="Yes", ZSV="MINOR"),
            "READY_MSG": b.longStringIn("READY_MSG", _NOT_STARTED, length=256),
            "DISPATCH_AGE": b.aIn("DISPATCH_AGE", 0.0, EGU="s", PREC=1,
                                  HIHI=_core.stuck_after(), HHSV="MAJOR"),
        }
        self._readers: dict[str, Callable[[], Any]] = {
            "UPTIME": lambda: min(int(time.time() - self._started), _INT_MAX),
            "CPU": self._cpu_percent,
            "MEM_RSS": lambda: self._proc.memory_info().rss / 1e6,
            "THREADS": self._proc.num_threads,
            "FDS": _open_fds(self._proc),
            "CA_CLIENTS": lambda: _core.ca_counts()[0],
            "CA_CHANNELS": lambda: _core.ca_counts()[1],
            "PVA_CLIENTS": lambda: _core.pva_counts()[0],
            "RECORDS": _core.record_count,
            "DISPATCH_AGE": _core.watchdog().waiting,
        }
        self._readings = Readings(log, "health")
        self._cpu_mark = (time.monotonic(), self._cpu_seconds())
        self._cpu_last = 0.0

    def _cpu_seconds(self) -> float:
        times = self._proc.cpu_times()
        return float(times.user + times.system)

    def _cpu_percent(self) -> float:
        """% of one core since the last reading, over at least a tenth of a second.

        The kernel counts CPU time in ticks (10 ms), so a shorter interval would
        turn one tick into hundreds of per cent: the last figure stands instead.
        """
        now, cpu = time.monotonic(), self._cpu_seconds()
        then, cpu_then = self._cpu_mark
        if now - then >= 0.1:
            self._cpu_last = max(0.0, 100 * (cpu - cpu_then) / (now - then))
            self._cpu_mark = (now, cpu)
        return self._cpu_last

    def update(self) -> None:
        """Read everything once and set the records (any thread)."""
        for name, read in self._readers.items():
            self._readings.set(self.records[name], read)
        self.heartbeat = 0 if self.heartbeat >= _INT_MAX else self.heartbeat + 1
        self.records["HEARTBEAT"].set(self.heartbeat)
        self._update_status()

    def _update_status(self) -> None:
        """LIVE, READY and their reasons (set every time: their time stamps
        tell a probe this thread runs)."""
        records = self.records
        for name, check in (("LIVE", _core.live), ("READY", _core.ready)):
            try:
                reason = check()
            except Exception as e:      # noqa: BLE001 - reported as the reason
                reason = f"checking failed: {e}"
            records[f"{name}_MSG"].set(reason or "")
            records[name].set(0 if reason else 1)

    def start(self) -> None:
        """Start the updating thread (done by iocInit)."""
        if not self._readings.started:
            self._cpu_mark = (time.monotonic(), self._cpu_seconds())
            self._readings.start("softioc-health", self._run)

    def stop(self) -> None:
        """Stop updating (done when the IOC shuts down)."""
        self._readings.stop(self.period + 5)

    def _run(self) -> None:
        stopping = self._readings.stopping
        while not stopping.is_set():
            self.update()
            deadline = time.monotonic() + self.period
            if not _core.is_started():
                # Starting (the first update runs among iocInit's start-up hooks):
                # READY turns Yes as soon as they are done, not a period later.
                while not stopping.wait(0.05) and time.monotonic() < deadline:
                    if _core.is_started():
                        self._update_status()
                        break
            stopping.wait(max(0.0, deadline - time.monotonic()))


_NOT_STARTED = "the IOC has not started (iocInit not done)"

#: The records' short names, in the order they are made.
NAMES = ("UPTIME", "START_TOD", "CPU", "MEM_RSS", "THREADS", "FDS", "CA_CLIENTS",
         "CA_CHANNELS", "PVA_CLIENTS", "RECORDS", "HEARTBEAT", "PYTHON_VERSION",
         "EPICS_VERSION", "HOSTNAME", "LIVE", "LIVE_MSG", "READY", "READY_MSG",
         "DISPATCH_AGE")


def _open_fds(proc: psutil.Process) -> Callable[[], int]:
    if sys.platform == "win32":
        return proc.num_handles
    return proc.num_fds


def _fd_alarm_limits() -> dict[str, Any]:
    """FDS alarms at 80 % (MINOR) and 95 % (MAJOR) of the soft limit, if any."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return {}
    if soft == resource.RLIM_INFINITY or not 0 < soft <= _INT_MAX:
        return {}
    return {"HOPR": soft, "HIGH": int(soft * 0.8), "HSV": "MINOR",
            "HIHI": int(soft * 0.95), "HHSV": "MAJOR"}


def create(prefix: str, period: float = 1.0, *, cpu_high: float = 80.0,
           cpu_hihi: float = 95.0) -> Health:
    """Make the health records ``prefix:NAME`` (any time before iocInit, before
    or after LoadDatabase: they are loaded at once, apart from the application's
    records); iocInit starts their updates every ``period`` seconds.

    ``cpu_high``/``cpu_hihi``: CPU (% of one core) giving MINOR/MAJOR alarms.
    The current device name (SetDeviceName) is left as it was.
    """
    if _core.is_running():
        raise RuntimeError("health.create() must come before iocInit()")
    prefix = prefix.rstrip(":")
    if not prefix:
        raise ValueError("health.create() needs a prefix")
    names = builder.GetRecordNames()
    saved = list(names.prefix)
    names.prefix = [prefix]
    try:
        health = Health(prefix, period, cpu_high, cpu_hihi)
    finally:
        names.prefix = saved
    _core.load_own(list(health.records.values()))
    _core.after_init(health.start)
    _core.at_shutdown(health.stop)
    _made().append(health)
    return health


def _made() -> list[Health]:
    return ioc.plug("health", _new_list)


def _new_list(ioc: IOC) -> list[Health]:
    return []


def made() -> list[Health]:
    """The health records made so far in this process (by ``create()``)."""
    return list(_made())


def _taken(name: str) -> bool:
    """Is ``name`` a record, alias or PVA-only PV already?"""
    try:
        _core.check_not_python(name)
    except ValueError:
        return True
    return bool(_core.record_exists(name))


def create_at_init(prefix: str, period: float = 1.0) -> None:
    """Make the health records under ``prefix`` when iocInit starts, unless
    ``create()`` made some under that prefix by then (``pythonioc run`` calls
    this with ``$IOC_PREFIX``, for ``pythonioc probe``).  If one of their
    names is taken by another record, none is made, with a warning."""
    prefix = prefix.rstrip(":")
    if not prefix:
        raise ValueError("create_at_init() needs a prefix")

    def make() -> None:
        if any(h.prefix == prefix for h in _made()):
            return
        taken = [f"{prefix}:{name}" for name in NAMES if _taken(f"{prefix}:{name}")]
        if taken:
            log.warning("health records not made under %s: %s is another record, so "
                        "`pythonioc probe` will not find %s:LIVE (call "
                        "softioc.health.create() with a prefix of your own and give "
                        "the probe that --prefix)", prefix, taken[0], prefix)
            return
        create(prefix, period)

    _core.before_init(make)
