"""devIocStats' records, as ``softioc.devIocStats(ioc_name)`` serves them.

C IOCs load the ``iocAdminSoft`` database of the devIocStats module, and
screens, archivers and liveness probes (``caget $IOC:UPTIME``) expect its
record names and types.  pythonIOC has no compiled devIocStats: this module
makes the same records, with the same names, record types and alarm fields,
and a daemon thread started by iocInit gives them their values (from
``psutil`` and the EPICS core's own counts).  Some are plain EPICS records
with no Python behind them, as in devIocStats' database (the ``calc`` and
``calcout`` ones, ``ACCESS``, the time stamps and ``GTIM_*``)::

    from softioc import builder, softioc
    builder.SetDeviceName("BL99-IOC-01")
    builder.aOut("SETPOINT", 1.0)
    builder.LoadDatabase()
    softioc.devIocStats("BL99-IOC-01")       # anywhere before iocInit
    softioc.iocInit()

makes ``PREFIX:NAME`` for each NAME below (A: an alias of the record above
it).  As in devIocStats, the figures of a group are read every so many
seconds, as its ``*_UPD_TIME`` record says (clients may set it, 1 to 60);
"at start" means once, right after iocInit.

===================== ========= ===============================================
UPTIME                stringin  time since iocInit, ``hh:mm:ss`` or
                                ``N days, hh:mm:ss`` (every second)
STARTTOD              stringin  when iocInit ran, ``mm/dd/yyyy hh:mm:ss``
TOD                   stringin  the time now, the same format (every second)
HEARTBEAT             calcout   counts up once a second
START_CNT             calcout   1 (counts starts where devIocStats has
                                autosave; pythonIOC's autosave skips it)
ACCESS                mbbo      Running/Maintenance/Test/OFFLINE, for ACF rules
CA_CLNT_CNT           ai        Channel Access client circuits (HIGH 100 MINOR,
                                HIHI 175 MAJOR)
CA_CONN_CNT           ai        Channel Access channels (HIGH 4000, HIHI 4500)
CA_UPD_TIME           ao        their period, s (default 15, 1 to 60)
FD_CNT                ai        open file descriptors
FD_MAX                ai        the soft limit of open files (0: none)
FD_FREE               calc      FD_MAX - FD_CNT (LOW 20 MINOR, LOLO 5 MAJOR)
FD_UPD_TIME           ao        the period of FD_CNT, s (default 20)
IOC_CPU_LOAD          ai        CPU used by this process, % of all CPUs
                                (HIGH 70 MINOR, HIHI 80 MAJOR)
LOAD                  A         of IOC_CPU_LOAD
SYS_CPU_LOAD          ai        CPU used by the machine (user, nice, system),
                                % of all CPUs (HIGH 70, HIHI 80)
CPU_CNT               ai        CPUs of the machine (at start)
SUSP_TASK_CNT         ai        EPICS threads found suspended since start
                                (HIHI 1 MAJOR)
LOAD_UPD_TIME         ao        the period of these three, s (default 10)
MEM_USED              ai        resident memory of this process, bytes
MEM_FREE              ai        free memory of the machine (Linux: MemFree,
                                Buffers and Cached, as devIocStats; elsewhere
                                the memory available), bytes
MEM_MAX               ai        memory of the machine, bytes
MEM_UPD_TIME          ao        the period of these three, s (default 10)
RECORD_CNT            ai        records in the database, at start (aliases
                                are not counted; devIocStats counts them)
PROCESS_ID            ai        this process's id
PARENT_ID             ai        its parent's id
ST_SCRIPT1, 2         stringin  the startup script: ``$STARTUP/$ST_CMD`` if
                                ``STARTUP`` is set (as devIocStats), else the
                                Python script run; in pieces of 39 bytes
ST_SCRIPT             waveform  all of it (CHAR, 120)
APP_DIR1, 2           stringin  the working directory, in pieces of 39 bytes
APP_DIR               waveform  all of it (CHAR, 160)
KERNEL_VERS           stringin  ``Linux 6.8.0 x86_64``: system, release, machine
EPICS_VERS            stringin  ``EPICS 7.0...``
EPICS_VERSION         waveform  the same (CHAR, 120)
HOSTNAME              stringin  the host's name
ENGINEER              stringin  ``$ENGINEER``, else ``$LOGNAME``, else ``$USER``
LOCATION              stringin  ``$LOCATION``
SCANONCE_Q_SIZE       ai        size of EPICS's scanOnce queue (at start)
CB_Q_SIZE             ai        size of each callback queue (at start)
SCANONCE_Q_HIGH       ai        most entries the scanOnce queue has held
                                (every second)
SCANONCE_Q_HIGHPER    calc      that, % of the queue's size
SCANONCE_Q_USED       ai        entries in the queue now
SCANONCE_Q_USEDPER    calc      that, % of its size
SCANONCE_Q_OVERRUNS   ai        requests lost because the queue was full
CBLOW_Q_HIGH...       ai, calc  the same five for the low priority callback
                                queue, and ``CBMEDIUM_Q_*``, ``CBHIGH_Q_*``
                                for the medium and high priority ones
SYSRESET              ao        write 1 to restart the IOC: see below
SysReset              A         of SYSRESET
READACF               ao        refuses writes: see below
GTIM_TIME             ai        EPICS time, s since 1990 (EPICS's General Time)
GTIM_ERR_CNT          longin    General Time errors (HIHI 1 MAJOR)
GTIM_RESET            bo        write to zero GTIM_ERR_CNT
GTIM_CUR_SRC          stringin  the time provider in use
GTIM_EVT_SRC          stringin  the event time provider in use
GTIM_HI_SRC           stringin  the highest priority time provider
===================== ========= ===============================================

And, read once at start, a ``stringin`` for each environment setting, named
as devIocStats names them: the EPICS ones libCom knows (``CA_ADDR_LIST``,
``CA_AUTO_ADDR_LIST``, ``CA_CONN_TMO``, ``CAS_INTF_ADDR_LIST``, ``TZ``,
``IOC_LOG_INET``...: ``EPICS_NAME`` without ``EPICS_``; the value in the
environment, else Base's default), with devIocStats' older names as aliases
(``CA_CONN_TIME``, ``CA_AUTO_ADDR``, ``CA_RPTR_PORT``, ``CA_SRVR_PORT``,
``CA_MAX_ARRAY``, ``CA_SRCH_TIME``, ``CA_BEAC_TIME``, ``CAS_SRVR_PORT``,
``CAS_AUTO_ADDR``, ``CAS_ADDR_LIST``, ``CAS_ADDR_INTF_LIST``,
``CAS_ADDR_IGNORE_LIST``), and the PV Access ones (``PVA_ADDR_LIST``,
``PVA_AUTO_ADDR_LIST``, ``PVA_BEACON_PERIOD``, ``PVA_CONN_TMO``,
``PVA_MAX_ARRAY_BYTES``, ``PVA_MAX_SEARCH_PERIOD``, ``PVA_SERVER_PORT``,
``PVAS_INTF_ADDR_LIST``, ``PVAS_BEACON_ADDR_LIST``,
``PVAS_AUTO_BEACON_ADDR_LIST``, ``PVAS_BEACON_PERIOD``,
``PVAS_BROADCAST_PORT``, ``PVAS_PROVIDER_NAMES``, ``PVAS_SERVER_PORT``:
the environment's value, else ``<not available>``).  A setting whose full
name would pass EPICS's 60 characters is left out, with a warning.  Text
longer than a ``stringin``'s 39 bytes is cut, as devIocStats does.

``SYSRESET``: devIocStats reboots the IOC when it is written (a soft IOC
exits).  Here a client's write is refused (the client's put fails, and the
IOC logs why) unless ``allow_restart=True``: then writing 1 logs the
request and, a second later, stops the IOC cleanly (exit handlers, last
autosave, servers shut down) with exit status 0, for its supervisor
(procServ, systemd with ``Restart=always``, a container's restart policy)
to start it again.  Any client may write it unless access security says
otherwise: give it an ``ASG`` whose WRITE rule names who may (see
:mod:`softioc.access`).  ``READACF`` re-reads the access security file in
devIocStats; pythonIOC's rules are given in code and installed at iocInit,
so there is no file to re-read: writes are refused, with a log message.
Both are ``ao`` records where devIocStats has ``sub`` records (which need
C subroutines); clients see the same type, a double.

Not served: devIocStats' scan monitors (``*_UPD_TIME`` of each scan period,
``*_MODE``, ``SCANMON_SEVR``: they need devIocStats' C subroutine
``scanMon``), and its VxWorks and RTEMS records (memory pools, network
buffers, boot line), which its soft IOC set does not have either.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from . import _core, builder
from ._core import Record
from ._iocstats_values import Values, cut, epics_settings, uptime_text
from .softioc import exit as _exit_ioc

__all__ = ["create", "IocStats", "uptime_text"]

log = logging.getLogger("softioc.iocstats")

TOD_FORMAT = "%m/%d/%Y %H:%M:%S"
_QUEUES = ("SCANONCE", "CBLOW", "CBMEDIUM", "CBHIGH")
# What each *_UPD_TIME sets the period of (s), with devIocStats' defaults.
_PERIODS = {"CA": 15.0, "FD": 20.0, "LOAD": 10.0, "MEM": 10.0}
# devIocStats' older names of some EPICS settings: alias -> record.
_ENV_ALIASES = {
    "CA_CONN_TIME": "CA_CONN_TMO", "CA_AUTO_ADDR": "CA_AUTO_ADDR_LIST",
    "CA_RPTR_PORT": "CA_REPEATER_PORT", "CA_SRVR_PORT": "CA_SERVER_PORT",
    "CA_MAX_ARRAY": "CA_MAX_ARRAY_BYTES", "CA_SRCH_TIME": "CA_MAX_SEARCH_PERIOD",
    "CA_BEAC_TIME": "CA_BEACON_PERIOD", "CAS_SRVR_PORT": "CAS_SERVER_PORT",
    "CAS_AUTO_ADDR": "CAS_AUTO_BEACON_ADDR_LIST", "CAS_ADDR_LIST": "CAS_BEACON_ADDR_LIST",
    "CAS_ADDR_INTF_LIST": "CAS_INTF_ADDR_LIST", "CAS_ADDR_IGNORE_LIST": "CAS_IGNORE_ADDR_LIST",
}
_PVA_SETTINGS = (
    "PVA_ADDR_LIST", "PVA_AUTO_ADDR_LIST", "PVA_BEACON_PERIOD", "PVA_CONN_TMO",
    "PVA_MAX_ARRAY_BYTES", "PVA_MAX_SEARCH_PERIOD", "PVA_SERVER_PORT", "PVAS_INTF_ADDR_LIST",
    "PVAS_BEACON_ADDR_LIST", "PVAS_AUTO_BEACON_ADDR_LIST", "PVAS_BEACON_PERIOD",
    "PVAS_BROADCAST_PORT", "PVAS_PROVIDER_NAMES", "PVAS_SERVER_PORT",
)
_ALARM = {"HHSV": "MAJOR", "HSV": "MINOR"}


def _db_text(records: list[tuple[str, str, dict[str, Any]]]) -> str:
    lines = []
    for rtype, name, fields in records:
        lines.append(f'record({rtype}, "{name}") {{')
        lines += [f'    field({field}, "{value}")' for field, value in fields.items()]
        lines.append("}")
    return "\n".join(lines) + "\n"


class IocStats:
    """devIocStats' records under ``prefix`` (``records``: the ones Python
    sets, by short name) and the thread that updates them."""

    def __init__(self, prefix: str, allow_restart: bool = False) -> None:
        self.prefix = prefix
        self.allow_restart = allow_restart
        self._refusals_logged: dict[str, float] = {}   # record: when its refusal was logged
        self.records: dict[str, Record] = {}
        self._settings = [name for name, _ in epics_settings() if self._fits(name)]
        self._pva_settings = [name for name in _PVA_SETTINGS if self._fits(name)]
        aliases = {"LOAD": "IOC_CPU_LOAD", "SysReset": "SYSRESET"}
        aliases.update((a, r) for a, r in _ENV_ALIASES.items() if r in self._settings)
        python, plain = self._python_records(), self._plain_records()
        for name in [*(spec[1] for spec in python), *(spec[1] for spec in plain), *aliases]:
            _core.check_new(self._full(name))
        self._make_python_records(python)
        for alias, name in aliases.items():
            _core.create_alias(self._full(name), self._full(alias))
        self._load_plain(plain)
        _core.load_own(list(self.records.values()))
        self._values = Values(self.records, self._settings, self._pva_settings)

    def _full(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def _fits(self, name: str) -> bool:
        if len(self._full(name)) <= _core.MAX_NAME:
            return True
        log.warning("devIocStats: %s is longer than EPICS's %d characters: not served",
                    self._full(name), _core.MAX_NAME)
        return False

    # ---- the records ---------------------------------------------------------

    def _python_records(self) -> list[tuple[Callable[..., Record], str, Any, dict[str, Any]]]:
        """devIocStats' records that Python sets: (builder function, name,
        initial value, fields and options)."""
        b = builder
        cpu = {"EGU": "%", "PREC": 1, "HOPR": 100, "HIHI": 80, "HIGH": 70, **_ALARM}
        specs: list[tuple[Callable[..., Record], str, Any, dict[str, Any]]] = []

        def ai(name: str, desc: str, **fields: Any) -> None:
            specs.append((b.aIn, name, 0.0, {"DESC": desc, **fields}))

        def text(name: str, desc: str, length: int = 0) -> None:
            if length:
                specs.append((b.longStringIn, name, "", {"DESC": desc, "length": length}))
            else:
                specs.append((b.stringIn, name, "", {"DESC": desc}))

        ai("CA_CLNT_CNT", "CA client circuits", HOPR=200, HIHI=175, HIGH=100, **_ALARM)
        ai("CA_CONN_CNT", "CA channels", HOPR=5000, HIHI=4500, HIGH=4000, **_ALARM)
        ai("RECORD_CNT", "Records in the database")
        ai("FD_MAX", "Open files allowed")
        ai("FD_CNT", "Open files", FLNK=self._full("FD_FREE") + " PP MS")
        ai("SYS_CPU_LOAD", "Machine CPU load", **cpu)
        ai("IOC_CPU_LOAD", "IOC CPU load", **cpu)
        ai("CPU_CNT", "CPUs of the machine")
        ai("SUSP_TASK_CNT", "Suspended EPICS threads", HIHI=1, HHSV="MAJOR")
        ai("MEM_USED", "IOC resident memory", EGU="byte")
        ai("MEM_FREE", "Free memory", EGU="byte", LLSV="MAJOR", LSV="MINOR")
        ai("MEM_MAX", "Memory of the machine", EGU="byte")
        for group, period in _PERIODS.items():
            specs.append((b.aOut, f"{group}_UPD_TIME", period, {
                "DESC": f"{group} update period", "EGU": "sec", "DRVL": 1, "DRVH": 60,
                "HOPR": 60, "LOPR": 0, "blocking": False}))
        text("ST_SCRIPT1", "Startup script, part 1")
        text("ST_SCRIPT2", "Startup script, part 2")
        text("ST_SCRIPT", "Startup script", 120)
        text("KERNEL_VERS", "Kernel version")
        text("EPICS_VERS", "EPICS version")
        text("EPICS_VERSION", "EPICS version", 120)
        text("HOSTNAME", "Host name")
        text("APP_DIR1", "Working directory, part 1")
        text("APP_DIR2", "Working directory, part 2")
        text("APP_DIR", "Working directory", 160)
        text("UPTIME", "Time since iocInit")
        text("ENGINEER", "Engineer")
        text("LOCATION", "Location")
        ai("PROCESS_ID", "Process id")
        ai("PARENT_ID", "Parent process id")
        ai("SCANONCE_Q_SIZE", "scanOnce queue size")
        ai("CB_Q_SIZE", "Callback queue size")
        for q in _QUEUES:
            ai(f"{q}_Q_HIGH", f"{q} queue: most used",
               FLNK=self._full(f"{q}_Q_HIGHPER") + " PP MS")
            ai(f"{q}_Q_USED", f"{q} queue: used", FLNK=self._full(f"{q}_Q_USEDPER") + " PP MS")
            ai(f"{q}_Q_OVERRUNS", f"{q} queue: overruns")
        specs.append((b.aOut, "SYSRESET", 0.0, {
            "DESC": "IOC restart", "validate": self._may_restart, "on_update": self._restart,
            "always_update": True, "blocking": False}))
        specs.append((b.aOut, "READACF", 0.0, {
            "DESC": "Re-read access rules", "validate": self._refuse_readacf,
            "blocking": False}))
        for name in [*self._settings, *self._pva_settings]:
            text(name, cut("EPICS_" + name, size=40))
        return specs

    def _make_python_records(self, specs: list[tuple[Callable[..., Record], str, Any,
                                                     dict[str, Any]]]) -> None:
        names = builder.GetRecordNames()
        saved = list(names.prefix)
        names.prefix = [self.prefix]
        try:
            for make, name, initial, fields in specs:
                self.records[name] = make(name, initial, autosave=False, **fields)
        finally:
            names.prefix = saved

    def _plain_records(self) -> list[tuple[str, str, dict[str, Any]]]:
        """devIocStats' records that need no Python: (type, short name, fields)."""
        p = self._full
        stamp = {"DTYP": "Soft Timestamp", "INP": "@" + TOD_FORMAT}
        gtim = {"DTYP": "General Time"}
        records: list[tuple[str, str, dict[str, Any]]] = [
            ("mbbo", "ACCESS", {
                "DESC": "IOC access mode", "PINI": "YES", "VAL": "0", "ZRST": "Running",
                "ZRSV": "NO_ALARM", "ONST": "Maintenance", "ONSV": "MINOR", "TWST": "Test",
                "TWSV": "MINOR", "THST": "OFFLINE", "THSV": "MAJOR"}),
            ("stringin", "STARTTOD", {"DESC": "Time of iocInit", "PINI": "YES", **stamp}),
            ("stringin", "TOD", {"DESC": "Time now", "SCAN": "1 second", **stamp}),
            ("calcout", "HEARTBEAT", {
                "DESC": "Counts up each second", "SCAN": "1 second",
                "CALC": "(A<2147483647)?A+1:1", "INPA": p("HEARTBEAT")}),
            ("calcout", "START_CNT", {
                "DESC": "Starts of the IOC", "PINI": "YES", "CALC": "A+1",
                "INPA": p("START_CNT")}),
            ("calc", "FD_FREE", {
                "DESC": "Open files left", "CALC": "B>0?B-A:C", "INPA": p("FD_CNT") + " NPP MS",
                "INPB": p("FD_MAX") + " NPP MS", "INPC": "1000", "HOPR": "150", "LOLO": "5",
                "LOW": "20", "LLSV": "MAJOR", "LSV": "MINOR"}),
            ("ai", "GTIM_TIME", {"DESC": "EPICS time, s since 1990", "SCAN": "1 second",
                                 "PREC": "3", "INP": "@TIME", "EGU": "sec", **gtim}),
            ("bo", "GTIM_RESET", {"DESC": "Reset General Time errors", "OUT": "@RSTERRCNT",
                                  "ZNAM": "Reset", "ONAM": "Reset", **gtim}),
            ("longin", "GTIM_ERR_CNT", {"DESC": "General Time errors", "SCAN": "1 second",
                                        "INP": "@GETERRCNT", "HIHI": "1", "HHSV": "MAJOR",
                                        **gtim}),
        ]
        for name, what, inp in (("GTIM_CUR_SRC", "current", "@BESTTCP"),
                                ("GTIM_EVT_SRC", "event", "@BESTTEP"),
                                ("GTIM_HI_SRC", "highest", "@TOPTCP")):
            records.append(("stringin", name, {"DESC": f"Time provider: {what}",
                                               "SCAN": "1 second", "INP": inp, **gtim}))
        for q in _QUEUES:
            size = p("SCANONCE_Q_SIZE" if q == "SCANONCE" else "CB_Q_SIZE")
            for what in ("HIGH", "USED"):
                records.append(("calc", f"{q}_Q_{what}PER", {
                    "DESC": f"{q} queue: {what.lower()}, %", "CALC": "100*A/B",
                    "INPA": p(f"{q}_Q_{what}") + " NPP MS", "INPB": size + " NPP MS",
                    "LOPR": "0", "HOPR": "100", "EGU": "%"}))
        return records

    def _load_plain(self, records: list[tuple[str, str, dict[str, Any]]]) -> None:
        fd, path = tempfile.mkstemp(suffix=".db", prefix="pythonioc-iocstats-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(_db_text([(rtype, self._full(name), fields)
                                  for rtype, name, fields in records]))
            _core.load_records(path)
        finally:
            os.unlink(path)

    # ---- writes by clients -----------------------------------------------------

    def _refused(self, record: Any, why: str) -> None:
        """Log a refused write, once a minute per record at most (a client
        writing in a loop must not fill the log)."""
        now = time.monotonic()
        if now - self._refusals_logged.get(record.name, -60.0) >= 60.0:
            self._refusals_logged[record.name] = now
            log.warning("%s: %s", record.name, why)

    def _may_restart(self, record: Any, value: Any) -> bool:
        if not self.allow_restart:
            self._refused(record, "restarting the IOC from a client is off, the write is "
                          "refused (softioc.devIocStats(..., allow_restart=True) turns it on)")
        return self.allow_restart

    def _restart(self, value: Any) -> None:
        if value != 1:
            return
        log.warning("%s written 1: the IOC stops in 1 s (exit status 0) for its "
                    "supervisor to start it again", self._full("SYSRESET"))
        later = threading.Timer(1.0, _exit_ioc, (0,))
        later.daemon = True
        later.start()

    def _refuse_readacf(self, record: Any, value: Any) -> bool:
        self._refused(record, "refused: this IOC's access rules are given in code "
                      "(softioc.access.load_acf) and installed at iocInit; there is no "
                      "file to re-read (restart the IOC to change them)")
        return False

    # ---- the values (softioc._iocstats_values) --------------------------------------

    def start(self) -> None:
        """Set what is read once and start the updating thread (done by iocInit)."""
        self._values.start()

    def stop(self) -> None:
        """Stop updating (done when the IOC shuts down)."""
        self._values.stop()


def create(ioc_name: str, *, allow_restart: bool = False) -> IocStats:
    """Make devIocStats' records ``ioc_name:NAME`` (any time before iocInit,
    before or after LoadDatabase); iocInit starts their updates.

    ``allow_restart``: a client writing 1 to ``SYSRESET`` stops the IOC
    (exit status 0) for its supervisor to restart it; otherwise such writes
    are refused.  The current device name (SetDeviceName) is left as it was.
    """
    if _core.is_running():
        raise RuntimeError("devIocStats() must come before iocInit(): its records are "
                           "made before the IOC starts, as in pythonSoftIOC")
    prefix = ioc_name.rstrip(":")
    if not prefix:
        raise ValueError("devIocStats() needs an IOC name")
    stats = IocStats(prefix, allow_restart)
    _core.after_init(stats.start)
    _core.at_shutdown(stats.stop)
    return stats
