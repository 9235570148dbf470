"""examples/monitor end to end: host_monitor.py watching services, processes
and disks of this machine, with alarms a screen can show.

Every service it probes is on 127.0.0.1: one listener run by the test (up,
then stopped) and a free port with nothing listening (down).
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from softioc.testing import IOCProcess, free_port

yaml = pytest.importorskip("yaml", reason="examples/monitor needs pyyaml: pip install pyyaml")
pytest.importorskip("pvi", reason="examples/monitor needs pvi for its screen: pip install pvi")
psutil = pytest.importorskip("psutil", reason="examples/monitor needs psutil: pip install psutil")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "monitor"
P = "MONTEST"


class Listener:
    """A TCP service on 127.0.0.1 that accepts and hangs up, until stopped."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(OSError):
                conn, _ = self.sock.accept()
                conn.close()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """host_monitor.py with a test configuration, a listener and a helper process."""
    tmp = tmp_path_factory.mktemp("monitor")
    token = f"monitor-helper-{uuid.uuid4().hex}"
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", token])
    listener = Listener()
    config = {
        "prefix": P,
        "period": 0.2,
        "health_period": 0.5,
        "disks": [{"name": "ROOT", "path": "/"},
                  {"name": "TIGHT", "path": "/", "high": 0.001, "hihi": 0.002},
                  {"name": "GONE", "path": str(tmp / "no" / "such" / "dir")}],
        "network": ["lo"],
        "processes": [
            {"name": "TEST", "match": re.escape(" ".join(psutil.Process().cmdline()))},
            {"name": "HELPER", "match": re.escape(token)},
            {"name": "MISSING", "match": f"no-such-process-{uuid.uuid4().hex}"},
            {"name": "OPTIONAL", "match": f"no-such-process-{uuid.uuid4().hex}",
             "severity": "MINOR"},
        ],
        "service_timeout": 0.5,
        "services": [
            {"name": "UP", "host": "127.0.0.1", "port": listener.port},
            {"name": "DOWN", "host": "127.0.0.1", "port": free_port()},
        ],
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    screen = tmp / "host.bob"
    try:
        with IOCProcess([str(EXAMPLE / "host_monitor.py"), str(path), "--screen", str(screen)],
                        wait_for=f"{P}:STATUS") as ioc:
            yield {"ioc": ioc, "listener": listener, "helper": helper, "screen": screen}
    finally:
        listener.stop()
        helper.kill()
        helper.wait(5)


def settles(ioc: IOCProcess, pv: str, value: str, severity: str) -> None:
    """``pv`` comes to ``value``, with the alarm severity ``severity``."""
    ioc.wait_value(pv, value)
    assert ioc.caget(f"{pv}.SEVR") == severity


def test_service_up_and_down(world: dict) -> None:
    ioc = world["ioc"]
    settles(ioc, f"{P}:SVC:UP", "Up", "NO_ALARM")
    settles(ioc, f"{P}:SVC:DOWN", "Down", "MAJOR")
    assert float(ioc.caget(f"{P}:SVC:UP:MS")) < 500


def test_processes(world: dict) -> None:
    ioc = world["ioc"]
    settles(ioc, f"{P}:PROC:TEST", "Running", "NO_ALARM")
    ioc.wait_value(f"{P}:PROC:HELPER:COUNT", "1")
    assert ioc.caget(f"{P}:PROC:MISSING") == "Stopped"
    assert ioc.caget(f"{P}:PROC:MISSING.SEVR") == "MAJOR"
    assert ioc.caget(f"{P}:PROC:OPTIONAL.SEVR") == "MINOR"


def test_disks_and_host(world: dict) -> None:
    ioc = world["ioc"]
    assert 0 < float(ioc.caget(f"{P}:DISK:ROOT")) <= 100
    assert float(ioc.caget(f"{P}:DISK:ROOT:FREE")) > 0
    assert ioc.caget(f"{P}:DISK:TIGHT.SEVR") == "MAJOR"       # limits from the file
    assert ioc.caget(f"{P}:DISK:GONE.SEVR") == "INVALID"      # no such file system
    assert 0 <= float(ioc.caget(f"{P}:CPU")) <= 100
    assert 0 < float(ioc.caget(f"{P}:MEM")) <= 100
    # loopback carries this test's CA traffic
    ioc.wait_value(f"{P}:NET:LO:RX", lambda v: float(v) > 0)


def test_operator_changes_a_limit(world: dict) -> None:
    ioc = world["ioc"]
    ioc.caput(f"{P}:DISK:TIGHT.HIHI", "101")
    ioc.caput(f"{P}:DISK:TIGHT.HIGH", "100")
    ioc.wait_value(f"{P}:DISK:TIGHT.SEVR", "NO_ALARM")


def test_summary(world: dict) -> None:
    ioc = world["ioc"]
    ioc.wait_value(f"{P}:STATUS", "INVALID")        # the missing disk
    faults = ioc.caget(f"{P}:FAULTS", "-S")
    assert "SVC:DOWN MAJOR" in faults and "DISK:GONE INVALID" in faults, faults
    assert "SVC:UP" not in faults and "PROC:TEST" not in faults, faults
    beat = int(ioc.caget(f"{P}:IOC:HEARTBEAT"))                       # softioc.health
    ioc.wait_value(f"{P}:IOC:HEARTBEAT", lambda v: int(v) > beat)    # and it counts


def test_screen(world: dict) -> None:
    root = ET.parse(world["screen"]).getroot()
    assert root.tag == "display"
    pvs = {e.text for e in root.iter("pv_name")}
    for name in ("STATUS", "FAULTS", "CPU", "MEM", "DISK:ROOT", "NET:LO:RX", "PROC:HELPER",
                 "SVC:UP", "SVC:DOWN", "IOC:HEARTBEAT"):
        assert f"{P}:{name}" in pvs, name


# These change the world: they run last.

def test_service_stops(world: dict) -> None:
    ioc = world["ioc"]
    world["listener"].stop()
    ioc.wait_value(f"{P}:SVC:UP", "Down")
    assert ioc.caget(f"{P}:SVC:UP.SEVR") == "MAJOR"
    assert "SVC:UP MAJOR" in ioc.caget(f"{P}:FAULTS", "-S")


def test_process_stops(world: dict) -> None:
    ioc = world["ioc"]
    world["helper"].kill()
    world["helper"].wait(5)
    ioc.wait_value(f"{P}:PROC:HELPER", "Stopped")
    assert ioc.caget(f"{P}:PROC:HELPER.SEVR") == "MAJOR"


def test_clean_exit(world: dict) -> None:
    ioc = world["ioc"]
    assert ioc.stop() == 0
    assert "Traceback" not in ioc.output(), ioc.output()


def test_config_errors(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from host_monitor import load_config
    finally:
        sys.path.remove(str(EXAMPLE))
    bad = tmp_path / "bad.yaml"
    bad.write_text("prefix: X\nservise: []\n")
    with pytest.raises(SystemExit, match="servise"):
        load_config(bad)
    bad.write_text("services: [{name: A, host: 127.0.0.1}]\n")
    with pytest.raises(SystemExit, match="port"):
        load_config(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text("prefix: 'BL99:{host}'\ndisks: [/, /data]\n")
    cfg = load_config(ok)
    assert cfg["prefix"].startswith("BL99:") and "{" not in cfg["prefix"]
    assert [d["name"] for d in cfg["disks"]] == ["ROOT", "DATA"]
    assert load_config(ok, prefix="OTHER")["prefix"] == "OTHER"
