"""docs/snippets/oven-ioc.service, the systemd recipe of docs/how-to/run-as-a-service:
systemd accepts it, and its command line and environment serve the IOC on
the address it names, keep state in its working directory and stop cleanly
on SIGTERM (what systemd sends).  Restart and the service user are
systemd's part, not run here."""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .netns import Network, Proc, wait_until

UNIT = Path(__file__).parents[2] / "docs" / "snippets" / "oven-ioc.service"


def settings(text: str) -> dict[str, list[str]]:
    """The unit's ``key=value`` lines (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def here(text: str) -> str:
    """The unit with its /opt/oven paths replaced by this checkout's."""
    pythonioc = Path(sys.executable).parent / "pythonioc"
    return (text.replace("/opt/oven/.venv/bin/pythonioc", str(pythonioc))
            .replace("/opt/oven/autosave_ioc.py", str(UNIT.parent / "autosave_ioc.py")))


def test_unit_settings() -> None:
    unit = settings(UNIT.read_text())
    assert unit["Type"] == ["exec"] and unit["Restart"] == ["on-failure"]
    assert "KillSignal" not in unit                 # SIGTERM, systemd's default
    assert unit["DynamicUser"] == ["yes"]           # not root
    assert unit["WorkingDirectory"] == [f"/var/lib/{unit['StateDirectory'][0]}"]
    assert shlex.split(unit["ExecStart"][0])[1:3] == ["run", "--non-interactive"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="no systemd-analyze: apt-get install systemd")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    path = tmp_path / "oven-ioc.service"
    path.write_text(here(UNIT.read_text()))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                            text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if "oven-ioc.service" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_the_units_command_serves_saves_and_stops(net: Network) -> None:
    unit = settings(here(UNIT.read_text()))
    command = shlex.split(unit["ExecStart"][0])
    env = dict(line.split("=", 1) for line in unit["Environment"])
    assert env["EPICS_CAS_INTF_ADDR_LIST"] == net.hosts["ioc1"].ip     # the layout's ioc1
    workdir = net.logdir / "oven-ioc"                                   # the StateDirectory
    workdir.mkdir()
    opi = net.hosts["opi"]
    timeout = float(unit["TimeoutStopSec"][0])

    def start() -> Proc:
        ioc = net.hosts["ioc1"].popen(command, env=env, cwd=workdir)
        wait_until(lambda: opi.tool("caget", "-w", "1", "OVEN:SETPOINT").returncode == 0, 30,
                   f"the service's IOC\n{ioc.output()}")
        return ioc

    ioc = start()
    assert opi.tool("pvget", "-w", "3", "OVEN:SETPOINT").returncode == 0
    assert opi.tool("caput", "-c", "-w", "3", "OVEN:SETPOINT", "42").returncode == 0
    began = time.monotonic()
    assert ioc.stop(timeout, signal.SIGTERM) == 0, ioc.output()
    print(f"stopped by SIGTERM in {time.monotonic() - began:.1f} s")
    assert "OVEN:SETPOINT: 42.0" in (workdir / "state" / "oven.softsav").read_text()
    start()                                         # as Restart= would
    assert opi.tool("caget", "-t", "-w", "3", "OVEN:SETPOINT").stdout.strip() == "42"
