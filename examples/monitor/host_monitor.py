"""A host and service monitoring IOC: existing Python checks served as PVs.

Each computer of a beamline runs one instance with its own prefix::

    python host_monitor.py config.yaml [--prefix BL99:HOST1] [--screen host.bob]

and serves, over Channel Access and PV Access (``P`` = the prefix):

==================== ====================================================
P:STATUS             worst severity of the checks below (OK/MINOR/MAJOR)
P:FAULTS             which checks are in alarm, as text
P:CPU, P:LOAD1       CPU use of all cores (%, HIGH/HIHI), 1-minute load
P:MEM, P:MEM:AVAIL   memory in use (%, HIGH/HIHI), GB available
P:DISK:N, :FREE      % used per listed file system (HIGH/HIHI), GB free
P:NET:IF:RX, :TX     bytes/s per network interface
P:PROC:N, :COUNT     Running/Stopped (Stopped alarms), matching processes
P:SVC:N, :MS         Up/Down (Down alarms) of a TCP host:port, connect time
P:IOC:...            this IOC's own health (softioc.health)
==================== ====================================================

Alarm limits come from the YAML file and are ordinary record fields, so an
operator can change them (``caput P:DISK:DATA.HIHI 97``) without a restart.
The checks themselves are plain functions in checks.py, knowing nothing of
EPICS.  ``--screen`` also writes a Phoebus screen (.bob, with pvi) of the same
PVs.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import checks
import yaml

from softioc import alarm, builder, health, screen, softioc

log = logging.getLogger("host_monitor")
Record = Any        # what builder functions return

SEVERITIES = ["NO_ALARM", "MINOR", "MAJOR", "INVALID"]
DEFAULTS: dict[str, Any] = {
    "prefix": "{host}",
    "period": 2.0,
    "cpu": {"high": 80, "hihi": 95},
    "memory": {"high": 85, "hihi": 95},
    "disk_limits": {"high": 90, "hihi": 95},
    "disks": [{"name": "ROOT", "path": "/"}],
    "network": "auto",
    "processes": [],
    "services": [],
    "service_timeout": 1.0,
    "health_period": 1.0,
}


# ---- configuration -------------------------------------------------------------

def pv_part(text: str) -> str:
    """``text`` made safe for a PV name component (upper case)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text)).upper()


def load_config(path: Path, prefix: str | None = None) -> dict[str, Any]:
    """The YAML file merged over DEFAULTS, checked; ``{host}`` in the prefix
    becomes this computer's short host name."""
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise SystemExit(f"{path}: expected a mapping at the top level")
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise SystemExit(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    cfg = {**DEFAULTS, **raw}
    host = pv_part(socket.gethostname().split(".")[0])
    cfg["prefix"] = str(prefix or cfg["prefix"]).replace("{host}", host).rstrip(":")
    disks = [{"path": d} if isinstance(d, str) else dict(d) for d in cfg["disks"]]
    for d in disks:
        d.setdefault("name", pv_part(str(d["path"]).strip("/")) or "ROOT")
    cfg["disks"] = disks
    for kind, needed in (("processes", ("name", "match")), ("services", ("name", "host", "port"))):
        for entry in cfg[kind]:
            missing = [k for k in needed if k not in entry]
            if missing:
                raise SystemExit(f"{path}: {kind} entry {entry} lacks {', '.join(missing)}")
            severity = entry.setdefault("severity", "MAJOR")
            if severity not in SEVERITIES[1:]:
                raise SystemExit(f"{path}: severity {severity!r}: use MINOR, MAJOR or INVALID")
    return cfg


# ---- the IOC ------------------------------------------------------------------

class HostMonitor:
    """Records for every check in the configuration, and the polling loop."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.prefix: str = cfg["prefix"]
        self.checked: dict[str, Record] = {}       # records counted in STATUS/FAULTS
        self.screen: dict[str, list[tuple[str, str, str]]] = {}   # group: (label, pv, widget)
        self.updates: list[Callable[[], None]] = []
        self.net = checks.NetRates()
        self.pool = ThreadPoolExecutor(max(1, min(16, len(cfg["services"]))), "probe")
        self.health_prefix = f"{self.prefix}:IOC"
        builder.SetDeviceName(self.prefix)
        self.status = builder.mbbIn("STATUS", ("OK", 0), ("MINOR", 1), ("MAJOR", 2),
                                    ("INVALID", 3))
        self.faults = builder.longStringIn("FAULTS", "", length=1024)
        self._show("Summary", "Status", "STATUS", "text")
        self._show("Summary", "Faults", "FAULTS", "string")
        self._host()
        self._disks()
        self._network()
        self._processes()
        self._services()
        builder.UnsetDevice()
        health.create(self.health_prefix, cfg["health_period"])

    def _show(self, group: str, label: str, name: str, widget: str) -> None:
        self.screen.setdefault(group, []).append((label, f"{self.prefix}:{name}", widget))

    def _limited(self, name: str, limits: dict[str, Any], **fields: Any) -> Record:
        # DISP=0: operators move its alarm limits at run time (builder input
        # records refuse client puts by default, as in pythonSoftIOC).
        record = builder.aIn(name, PREC=1, LOPR=0, HOPR=100, EGU="%", HIGH=limits["high"],
                             HSV="MINOR", HIHI=limits["hihi"], HHSV="MAJOR", DISP=0, **fields)
        self.checked[name] = record
        return record

    def _host(self) -> None:
        cpu = self._limited("CPU", self.cfg["cpu"])
        load = builder.aIn("LOAD1", PREC=2)
        mem = self._limited("MEM", self.cfg["memory"])
        avail = builder.aIn("MEM:AVAIL", PREC=2, EGU="GB")

        def update() -> None:
            cpu.set(checks.cpu_percent())
            load.set(checks.load_average())
            used, free = checks.memory()
            mem.set(used)
            avail.set(free)

        self.updates.append(update)
        for label, name, widget in (("CPU %", "CPU", "bar"), ("Load (1 min)", "LOAD1", "text"),
                                    ("Memory %", "MEM", "bar"),
                                    ("Memory free GB", "MEM:AVAIL", "text")):
            self._show("Host", label, name, widget)

    def _disks(self) -> None:
        for d in self.cfg["disks"]:
            name = f"DISK:{pv_part(d['name'])}"
            limits = {**self.cfg["disk_limits"], **{k: d[k] for k in ("high", "hihi") if k in d}}
            used = self._limited(name, limits, DESC=str(d["path"])[:40])
            free = builder.aIn(f"{name}:FREE", PREC=1, EGU="GB")
            self.updates.append(self._disk_update(d["path"], used, free))
            self._show("Disks", f"{d['path']} %", name, "bar")
            self._show("Disks", f"{d['path']} free GB", f"{name}:FREE", "text")

    @staticmethod
    def _disk_update(path: str, used: Record, free: Record) -> Callable[[], None]:
        def update() -> None:
            try:
                percent, gb = checks.disk(path)
            except OSError:
                for r in (used, free):
                    r.set_alarm(alarm.INVALID_ALARM, alarm.READ_ALARM)
                return
            used.set(percent)
            free.set(gb)
        return update

    def _network(self) -> None:
        wanted = self.cfg["network"]
        names = checks.interfaces() if wanted == "auto" else list(wanted or [])
        records = {}
        for iface in names:
            base = f"NET:{pv_part(iface)}"
            records[iface] = (builder.aIn(f"{base}:RX", PREC=0, EGU="B/s"),
                              builder.aIn(f"{base}:TX", PREC=0, EGU="B/s"))
            self._show("Network", f"{iface} RX B/s", f"{base}:RX", "text")
            self._show("Network", f"{iface} TX B/s", f"{base}:TX", "text")

        def update() -> None:
            rates = self.net()
            for iface, (rx, tx) in records.items():
                if iface in rates:
                    rx.set(rates[iface][0])
                    tx.set(rates[iface][1])
                else:
                    rx.set_alarm(alarm.INVALID_ALARM, alarm.READ_ALARM)
                    tx.set_alarm(alarm.INVALID_ALARM, alarm.READ_ALARM)

        self.updates.append(update)

    def _processes(self) -> None:
        procs = self.cfg["processes"]
        records = {}
        for p in procs:
            name = f"PROC:{pv_part(p['name'])}"
            running = builder.boolIn(name, ZNAM="Stopped", ONAM="Running", ZSV=p["severity"],
                                     DESC=str(p["match"])[:40])
            records[p["name"]] = (running, builder.longIn(f"{name}:COUNT"))
            self.checked[name] = running
            self._show("Processes", p["name"], name, "led")
            self._show("Processes", f"{p['name']} count", f"{name}:COUNT", "text")
        patterns = {p["name"]: p["match"] for p in procs}

        def update() -> None:
            if not patterns:
                return
            for key, n in checks.count_processes(patterns).items():
                running, count = records[key]
                running.set(int(n >= 1))
                count.set(n)

        self.updates.append(update)

    def _services(self) -> None:
        services = self.cfg["services"]
        timeout = float(self.cfg["service_timeout"])
        records = []
        for s in services:
            name = f"SVC:{pv_part(s['name'])}"
            up = builder.boolIn(name, ZNAM="Down", ONAM="Up", ZSV=s["severity"],
                                DESC=f"{s['host']}:{s['port']}"[:40])
            records.append((s, up, builder.aIn(f"{name}:MS", PREC=1, EGU="ms")))
            self.checked[name] = up
            self._show("Services", f"{s['name']} ({s['host']}:{s['port']})", name, "led")
            self._show("Services", f"{s['name']} connect ms", f"{name}:MS", "text")
        was_up: dict[str, bool] = {}

        def update() -> None:
            probes = [self.pool.submit(checks.probe, s["host"], int(s["port"]),
                                       float(s.get("timeout", timeout))) for s, _, _ in records]
            for (s, up, ms), future in zip(records, probes):
                result = future.result()
                up.set(int(result.up))
                ms.set(result.milliseconds)
                if was_up.get(s["name"], True) != result.up:
                    log.warning("service %s at %s:%s is %s%s", s["name"], s["host"], s["port"],
                                "up" if result.up else "down",
                                f" ({result.error})" if result.error else "")
                was_up[s["name"]] = result.up

        self.updates.append(update)

    def poll(self) -> None:
        """Run every check once, then the summary."""
        for update in self.updates:
            try:
                update()
            except Exception:
                log.exception("a check failed")
        faults = []
        worst = 0
        for name, record in self.checked.items():
            sevr = record.get_field("SEVR")
            level = SEVERITIES.index(sevr) if sevr in SEVERITIES else 3
            worst = max(worst, level)
            if level:
                faults.append(f"{name} {sevr}")
        self.status.set(worst)
        self.faults.set("; ".join(faults) or "none")

    def run(self, stop: threading.Event) -> None:
        """poll() every period until ``stop`` is set."""
        while not stop.is_set():
            self.poll()
            stop.wait(float(self.cfg["period"]))

    def write_screen(self, path: Path) -> None:
        """A Phoebus .bob of every PV, grouped as above, made by pvi."""
        try:
            from pvi.device import LED, ProgressBar, SignalR, TextFormat, TextRead
        except ImportError:
            raise SystemExit("--screen needs pvi: pip install pvi") from None

        def widget(kind: str) -> Any:
            if kind == "led":
                return LED()
            if kind == "bar":
                return ProgressBar()
            return TextRead(format=TextFormat.string) if kind == "string" else TextRead()

        groups = {group: [SignalR(name=screen.widget_name(pv[len(self.prefix):]), label=label,
                                  read_pv=pv, read_widget=widget(kind))
                          for label, pv, kind in rows]
                  for group, rows in self.screen.items()}
        groups["This IOC"] = [
            SignalR(name=screen.widget_name(n), label=n, read_pv=f"{self.health_prefix}:{n}",
                    read_widget=TextRead())
            for n in ("HEARTBEAT", "UPTIME", "CPU", "MEM_RSS", "CA_CLIENTS", "PVA_CLIENTS")]
        screen.write_groups(path, f"{self.prefix} host monitor", groups)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, nargs="?",
                        default=Path(__file__).with_name("config.yaml"), help="YAML settings")
    parser.add_argument("--prefix", help="PV prefix (overrides the file's)")
    parser.add_argument("--screen", type=Path, help="also write a Phoebus screen here (.bob)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg = load_config(args.config, args.prefix)
    monitor = HostMonitor(cfg)
    if args.screen:
        monitor.write_screen(args.screen)
        log.info("wrote %s", args.screen)
    builder.LoadDatabase()
    softioc.iocInit()
    stop = threading.Event()
    threading.Thread(target=monitor.run, args=(stop,), name="poll", daemon=True).start()
    log.info("monitoring %s as %s every %s s", socket.gethostname(), cfg["prefix"],
             cfg["period"])
    softioc.interactive_ioc({"monitor": monitor, "stop": stop})


if __name__ == "__main__":
    main()
