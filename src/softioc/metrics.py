"""The IOC's figures in Prometheus's text format, for ``GET /metrics`` of
``softioc.http`` (needs ``prometheus_client``: ``pip install
'epics-pythonioc[web]'``).

::

    from softioc import metrics
    text = metrics.exposition()          # bytes, metrics.CONTENT_TYPE

Everything is read when asked (a scrape), from the C layer and the IOC
object, by one ``prometheus_client`` collector on a registry of its own
(not the library's global one, so an application's own metrics stay its
own).  Names start with ``pythonioc_``; when ``IOC_NAME`` is set in the
environment every sample has the label ``ioc`` with its value.

Counters end in ``_total``; the rest are gauges.

* ``pythonioc_info{version, epics_version, python_version}``: 1, the versions
  as labels;
* ``pythonioc_live``, ``pythonioc_ready``: 1 or 0, as ``/healthz`` and
  ``/readyz`` answer;
* ``pythonioc_records{type}``: records of each record type (aliases not
  counted);
* ``pythonioc_ca_clients``, ``pythonioc_ca_channels``: Channel Access client
  circuits and channels;
* ``pythonioc_pva_clients``, ``pythonioc_pva_channels``: PV Access client
  connections and channels (QSRV2);
* ``pythonioc_pva_pvs``: PVA-only PVs served (``softioc.pva``'s PV, Image,
  Table);
* ``pythonioc_puts_accepted_total{protocol}``: client puts accepted
  (protocol ``ca`` or ``pva``);
* ``pythonioc_puts_refused_total{protocol, reason}``: client puts refused,
  reason ``validate`` (the record's ``validate``) or ``strict`` (strict puts);
* ``pythonioc_dispatcher_queue_length``: callbacks and client writes waiting
  for the dispatcher;
* ``pythonioc_dispatcher_latency_seconds``: how long the last callback of the
  health watchdog waited for the dispatcher; ``..._latency_max_seconds``: the
  longest such wait; ``..._waiting_seconds``: how long the one now waiting has
  waited (0: none waits);
* ``pythonioc_process_cpu_seconds_total``: CPU time of the process (user and
  system);
* ``pythonioc_process_resident_memory_bytes``: resident memory (RSS);
* ``pythonioc_process_start_time_seconds``: when the process started (POSIX
  time); ``pythonioc_uptime_seconds``: seconds since then;
* ``pythonioc_process_threads``: threads of the process (the OS's count);
  ``pythonioc_python_threads``: Python threads (``threading.active_count()``);
* ``pythonioc_process_open_fds``: open file descriptors;
* ``pythonioc_autosave_saves_total``, ``pythonioc_autosave_failures_total``:
  autosave files written, and writes that failed;
  ``pythonioc_autosave_last_save_timestamp_seconds``: when the file was last
  written (POSIX time, 0: not yet; it is written only when a value changed);
* from ``softioc.http``: ``pythonioc_http_connections`` (open) and
  ``pythonioc_http_event_streams`` (live pages open).

The autosave figures appear once ``autosave.configure()`` was called, the
dispatcher's queue with pythonIOC's own dispatchers.  Client puts are
counted from when the HTTP endpoints start (before the IOC serves), as they
end, for puts covered by a TRAPWRITE access security rule (pythonIOC's
default rules cover every put): ``validate`` counts puts a record's
``validate`` refused, ``strict`` those strict puts refused.  Puts refused by
access security or by a record's DISP field are never seen by the IOC's
code (the CA and PVA servers refuse them first), so they are not counted.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable, Iterator

import psutil
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from . import _core
from ._core import ioc
from ._version import __version__

__all__ = ["CONTENT_TYPE", "IOCCollector", "registry", "exposition"]

#: The Content-Type of what `exposition` returns.
CONTENT_TYPE = CONTENT_TYPE_LATEST

_REFUSALS = ("validate", "strict")


class IOCCollector(Collector):
    """The ``prometheus_client`` collector of this IOC's figures (see the
    module's description); ``ioc_name`` gives every sample the label ``ioc``."""

    def __init__(self, ioc_name: str | None = None) -> None:
        self.ioc_name = ioc_name or None
        self._proc = psutil.Process()
        self._started = self._proc.create_time()
        _core.put_counts()          # counting starts now (before clients can put)

    def describe(self) -> list[Metric]:
        return []                   # names vary (record types, autosave): never collect to register

    def collect(self) -> Iterator[Metric]:
        ioc_label = [self.ioc_name] if self.ioc_name else []
        ioc_names = ["ioc"] if self.ioc_name else []

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            metric = GaugeMetricFamily(name, doc, labels=ioc_names)
            metric.add_metric(ioc_label, value)
            return metric

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            metric = CounterMetricFamily(name, doc, labels=ioc_names)
            metric.add_metric(ioc_label, value)
            return metric

        info = InfoMetricFamily("pythonioc", "pythonIOC, EPICS and Python versions",
                                labels=ioc_names)
        info.add_metric(ioc_label, {"version": __version__,
                                    "epics_version": _core.epics_version(),
                                    "python_version": platform.python_version()})
        yield info
        yield gauge("pythonioc_live", "1 if the IOC serves and its dispatcher runs "
                    "callbacks (GET /healthz)", _core.live() is None)
        yield gauge("pythonioc_ready", "1 if the IOC is live and iocInit has finished "
                    "(GET /readyz)", _core.ready() is None)

        records = GaugeMetricFamily("pythonioc_records", "Records in the database by "
                                    "record type (aliases not counted)",
                                    labels=[*ioc_names, "type"])
        if ioc.dbd_loaded:          # the record types are not being loaded
            for rtype, count in _core.records_by_type():
                records.add_metric([*ioc_label, rtype], count)
        yield records

        ca, pva = _core.ca_counts(), _core.pva_counts()
        yield gauge("pythonioc_ca_clients", "Channel Access client circuits", ca[0])
        yield gauge("pythonioc_ca_channels", "Channel Access channels", ca[1])
        yield gauge("pythonioc_pva_clients", "PV Access client connections (QSRV2)", pva[0])
        yield gauge("pythonioc_pva_channels", "PV Access channels (QSRV2)", pva[1])
        pvs = ioc.features.get("pvs")
        yield gauge("pythonioc_pva_pvs", "PVA-only PVs served (softioc.pva PV, Image, Table)",
                    len(getattr(pvs, "served", ())))

        accepted = CounterMetricFamily("pythonioc_puts_accepted", "Client puts accepted",
                                       labels=[*ioc_names, "protocol"])
        refused = CounterMetricFamily("pythonioc_puts_refused", "Client puts refused, by "
                                      "what refused them (validate: the record's validate; "
                                      "strict: strict puts)",
                                      labels=[*ioc_names, "protocol", "reason"])
        for protocol, (ok, *nos) in sorted(_core.put_counts().items()):
            accepted.add_metric([*ioc_label, protocol], ok)
            for reason, count in zip(_REFUSALS, nos):
                refused.add_metric([*ioc_label, protocol, reason], count)
        yield accepted
        yield refused

        pending: Callable[[], int] | None = getattr(ioc.dispatcher, "pending", None)
        if callable(pending):
            yield gauge("pythonioc_dispatcher_queue_length", "Callbacks and client writes "
                        "waiting for the dispatcher", pending())
        last, longest = _core.latency() if ioc.running else (0.0, 0.0)
        waiting = _core.watchdog().waiting() if ioc.running else 0.0
        yield gauge("pythonioc_dispatcher_latency_seconds", "How long the last watchdog "
                    "callback waited for the dispatcher", last)
        yield gauge("pythonioc_dispatcher_latency_max_seconds", "The longest wait of a "
                    "watchdog callback for the dispatcher", longest)
        yield gauge("pythonioc_dispatcher_waiting_seconds", "How long the watchdog callback "
                    "now waiting has waited (0: none waits)", waiting)

        proc = self._proc
        with proc.oneshot():
            cpu = proc.cpu_times()
            yield counter("pythonioc_process_cpu_seconds", "CPU time of the process, user "
                          "and system, in seconds", cpu.user + cpu.system)
            yield gauge("pythonioc_process_resident_memory_bytes", "Resident memory",
                        proc.memory_info().rss)
            yield gauge("pythonioc_process_threads", "Threads of the process",
                        proc.num_threads())
            if hasattr(proc, "num_fds"):
                yield gauge("pythonioc_process_open_fds", "Open file descriptors",
                            proc.num_fds())
        yield gauge("pythonioc_process_start_time_seconds", "When the process started, "
                    "POSIX time", self._started)
        yield gauge("pythonioc_uptime_seconds", "Seconds since the process started",
                    max(0.0, time.time() - self._started))
        yield gauge("pythonioc_python_threads", "Python threads alive",
                    threading.active_count())

        autosave = ioc.features.get("autosave")
        if autosave is not None and getattr(autosave, "directory", None) is not None:
            yield counter("pythonioc_autosave_saves", "Autosave files written",
                          autosave.saves)
            yield counter("pythonioc_autosave_failures", "Autosave writes that failed",
                          autosave.failures)
            yield gauge("pythonioc_autosave_last_save_timestamp_seconds", "When the autosave "
                        "file was last written, POSIX time (0: not yet)",
                        autosave.last_save_time or 0.0)


def registry(ioc_name: str | None = None) -> CollectorRegistry:
    """A registry of its own with an `IOCCollector` (``ioc_name``: the label
    ``ioc``; default ``$IOC_NAME``); more collectors may be added to it."""
    if ioc_name is None:
        ioc_name = os.environ.get("IOC_NAME", "").strip() or None
    reg = CollectorRegistry(auto_describe=False)
    reg.register(IOCCollector(ioc_name))
    return reg


_registry: CollectorRegistry | None = None
_lock = threading.Lock()


def exposition(reg: CollectorRegistry | None = None) -> bytes:
    """The metrics of ``reg`` (default: the process's, made on first use
    with `registry`) in Prometheus's text format."""
    global _registry
    if reg is None:
        with _lock:
            if _registry is None:
                _registry = registry()
            reg = _registry
    return generate_latest(reg)
