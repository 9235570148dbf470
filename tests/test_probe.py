"""``pythonioc probe live|ready`` (softioc.probe, and _ext.ca_get in probe.c)
against real IOC processes: a live and ready IOC, no IOC, a wedged dispatcher,
an IOC still starting or still restoring autosave, a health thread that
stopped; and the probe finds the IOC by its own settings, whatever the
environment says about where CA clients should search."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from softioc import probe
from softioc.testing import IOCProcess, client_env, free_port, wait_until

from .conftest import IOCS

PROBE_IOC = str(IOCS / "probe_ioc.py")


class Probe:
    """One run of ``pythonioc probe``: exit status, output, seconds taken."""

    def __init__(self, env: dict[str, str], kind: str, *args: str) -> None:
        start = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "softioc", "probe", kind, *args],
                                env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=30)
        self.seconds = time.monotonic() - start
        self.status = result.returncode
        self.stdout, self.stderr = result.stdout, result.stderr
        self.text = (result.stdout + result.stderr).strip()

    def __repr__(self) -> str:
        return f"<probe exit {self.status} in {self.seconds:.2f} s: {self.text!r}>"


def one_line(result: Probe) -> str:
    assert len(result.text.splitlines()) == 1, result
    return result.text


@pytest.fixture(scope="module")
def ioc():
    with IOCProcess([PROBE_IOC], wait_for="PRB:SP") as started:
        yield started


def test_live_and_ready(ioc):
    for kind in ("live", "ready"):
        result = wait_until(lambda k=kind: (r := Probe(ioc.env, k, "--prefix", "PRB")).status
                            == 0 and r, timeout=10, what=f"probe {kind}")
        assert one_line(result) == f"PRB: {kind}"
        assert result.stderr == ""


def test_prefix_from_ioc_prefix(ioc):
    assert Probe(dict(ioc.env, IOC_PREFIX="PRB"), "live").status == 0
    result = Probe(dict(ioc.env, IOC_PREFIX="NOPE"), "live", "--timeout", "1")
    assert result.status == 1
    assert "does not serve NOPE:LIVE" in one_line(result), result
    assert result.seconds < 5, result


def test_no_prefix_at_all(ioc):
    env = {k: v for k, v in ioc.env.items() if k != "IOC_PREFIX"}
    result = Probe(env, "live")
    assert result.status == 1 and "IOC_PREFIX" in one_line(result), result


@pytest.mark.parametrize("kind", ["live", "ready"])
def test_no_ioc_fails_quickly(kind):
    env = dict(os.environ, **client_env(free_port(), free_port(), free_port()))
    result = Probe(env, kind, "--prefix", "PRB")
    assert result.status == 1, result
    line = one_line(result)
    assert line.startswith(f"PRB: not {kind}: no Channel Access server accepts connections "
                           f"at 127.0.0.1:{env['EPICS_CA_SERVER_PORT']}"), line
    assert result.seconds < 3, result


@pytest.mark.parametrize("search", [{"EPICS_CA_ADDR_LIST": "192.0.2.1"},   # TEST-NET: nowhere
                                    {"EPICS_CA_ADDR_LIST": ""},
                                    {"EPICS_CA_NAME_SERVERS": "192.0.2.1:5064"}])
def test_no_broadcast_and_no_client_settings_needed(ioc, search):
    """The probe asks 127.0.0.1 at the IOC's port, over TCP, whatever the
    environment says about where clients should search (it does not search
    by broadcast: AUTO_ADDR_LIST=NO)."""
    env = dict(ioc.env, EPICS_CA_AUTO_ADDR_LIST="NO", **search)
    if search.get("EPICS_CA_ADDR_LIST") == "":
        del env["EPICS_CA_ADDR_LIST"]
    result = Probe(env, "live", "--prefix", "PRB", "--timeout", "2")
    assert result.status == 0, result


def test_address_option(ioc):
    env = dict(ioc.env, EPICS_CA_SERVER_PORT=str(free_port()))    # not the IOC's port
    assert Probe(env, "live", "--prefix", "PRB", "--timeout", "1").status == 1
    result = Probe(env, "live", "--prefix", "PRB", "--address", f"127.0.0.1:{ioc.ca_port}")
    assert result.status == 0, result


def test_ca_address_follows_the_servers_settings():
    assert probe.ca_address(env={}) == ("127.0.0.1", 5064)
    assert probe.ca_address(env={"EPICS_CA_SERVER_PORT": "6000"}) == ("127.0.0.1", 6000)
    env = {"EPICS_CA_SERVER_PORT": "6000", "EPICS_CAS_SERVER_PORT": "6001",
           "EPICS_CAS_INTF_ADDR_LIST": "192.0.2.7 192.0.2.8"}
    assert probe.ca_address(env=env) == ("192.0.2.7", 6001)
    assert probe.ca_address(env={"EPICS_CAS_INTF_ADDR_LIST": "0.0.0.0"}) == ("127.0.0.1", 5064)
    assert probe.ca_address("10.0.0.1", env=env) == ("10.0.0.1", 6001)
    assert probe.ca_address("10.0.0.1:7000", env=env) == ("10.0.0.1", 7000)
    with pytest.raises(ValueError):
        probe.ca_address("host:port", env={})


def test_wedged_dispatcher_fails_liveness_then_recovers():
    """An on_update that blocks longer than STUCK_AFTER: live fails with the
    IOC's reason (longer than a stringin's 39 characters), ready too; both
    pass again once it returns."""
    env = {"PYTHONIOC_STUCK_AFTER": "1", "PROBE_BLOCK": "6"}
    with IOCProcess([PROBE_IOC], wait_for="PRB:SP", env=env) as ioc:
        assert Probe(ioc.env, "live", "--prefix", "PRB").status == 0
        ioc.caput("PRB:BLOCK", "1", callback=False)
        put = time.monotonic()
        failed = wait_until(lambda: (r := Probe(ioc.env, "live", "--prefix", "PRB")).status
                            == 1 and r, timeout=5, what="live failing")
        line = one_line(failed)
        assert line.startswith("PRB: not live: the dispatcher has not run a callback for "), line
        assert line.endswith("s (a callback blocks it)"), line
        assert Probe(ioc.env, "ready", "--prefix", "PRB").status == 1
        assert time.monotonic() - put < 6, "the callback returned before the probe failed"
        wait_until(lambda: Probe(ioc.env, "live", "--prefix", "PRB").status == 0,
                   timeout=10, what="live again")


def test_starting_ioc_is_live_but_not_ready():
    """iocInit done, CA served, but its start-up hooks still running."""
    with IOCProcess([PROBE_IOC], wait_for="PRB:SP", env={"PROBE_STARTUP": "5"}) as ioc:
        ready = Probe(ioc.env, "ready", "--prefix", "PRB")
        assert ready.status == 1, ready
        assert one_line(ready) == ("PRB: not ready: the IOC is starting (iocInit's start-up "
                                   "hooks are running)")
        assert Probe(ioc.env, "live", "--prefix", "PRB").status == 0
        wait_until(lambda: Probe(ioc.env, "ready", "--prefix", "PRB").status == 0,
                   timeout=10, what="ready once the hooks are done")


def test_still_restoring_autosave_is_not_ready(tmp_path: Path):
    """The autosave file is a FIFO nobody writes yet: LoadDatabase waits on
    it, so nothing is served and neither probe passes; once it is written
    (each time the IOC opens it: restoring reads it, and so does keeping a
    backup) the IOC starts with the value restored, and is ready."""
    saved = tmp_path / "autosave.softsav"
    os.mkfifo(saved)
    env = {"PYTHONIOC_AUTOSAVE_DIR": str(tmp_path), "IOC_PREFIX": "PRB"}
    pythonioc = [sys.executable, "-m", "softioc", "run", PROBE_IOC]
    with IOCProcess(pythonioc, python=False, env=env) as ioc:
        time.sleep(2)
        assert ioc.proc.poll() is None, ioc.output()
        for kind in ("ready", "live"):
            result = Probe(ioc.env, kind)
            assert result.status == 1, result
            assert "no Channel Access server accepts connections" in one_line(result)

        served = threading.Event()

        def write_when_read() -> None:
            while not served.is_set():
                try:        # ENXIO until the IOC opens the FIFO to read it
                    fd = os.open(saved, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    time.sleep(0.05)
                    continue
                os.write(fd, b"PRB:SP: 42.5\n")
                os.close(fd)
                time.sleep(0.3)     # that reader sees the end and closes first

        writer = threading.Thread(target=write_when_read, daemon=True)
        writer.start()
        try:
            ioc.wait_for_pv("PRB:SP")
        finally:
            served.set()
            writer.join(10)
        assert ioc.caget("PRB:SP") == "42.5"
        wait_until(lambda: Probe(ioc.env, "ready").status == 0, timeout=10,
                   what="ready once restored")


def test_pythonioc_run_makes_the_health_records_from_ioc_prefix():
    """PROBE_HEALTH=no: the script makes none; `pythonioc run` makes them."""
    env = {"IOC_PREFIX": "AUTO", "PROBE_HEALTH": "no"}
    cmd = [sys.executable, "-m", "softioc", "run", PROBE_IOC]
    with IOCProcess(cmd, python=False, env=env, wait_for="AUTO:LIVE") as ioc:
        assert ioc.caget("AUTO:SP") == "1"
        wait_until(lambda: Probe(ioc.env, "ready").status == 0, timeout=10, what="ready")
        assert Probe(ioc.env, "live").status == 0
    # The script's own health records under IOC_PREFIX: none made twice.
    with IOCProcess(cmd, python=False, env={"IOC_PREFIX": "AUTO"},
                    wait_for="AUTO:LIVE") as ioc:
        ioc.send("from softioc import health; print('made', len(health.made()))")
        wait_until(lambda: "made 1" in ioc.output(), timeout=10, what="one set of records")


def test_stopped_health_thread_fails_liveness():
    """The records stop moving: their time stamp ages past --max-age."""
    with IOCProcess([PROBE_IOC], wait_for="PRB:SP") as own:
        assert Probe(own.env, "live", "--prefix", "PRB", "--max-age", "2").status == 0
        own.send("stats.stop()")
        failed = wait_until(
            lambda: (r := Probe(own.env, "live", "--prefix", "PRB", "--max-age", "2")).status
            == 1 and r, timeout=10, what="live failing")
        assert "PRB:LIVE was last updated" in one_line(failed), failed
        assert "health thread is not running" in failed.text


def test_time_stamps_move_with_each_update(ioc):
    """health sets LIVE every period, even when it stays Yes."""
    code = ("import os, sys, time\n"
            "from softioc import probe, _ext\n"
            "host, port = probe.ca_address()\n"
            "os.environ.update(probe._client_env(host, port, 3))\n"
            "a = _ext.ca_get(['PRB:LIVE', 'PRB:LIVE_MSG', 'PRB:DISPATCH_AGE'], 3)\n"
            "time.sleep(1.2)\n"
            "b = _ext.ca_get(['PRB:LIVE'], 3)\n"
            "print(a[0][0], repr(a[1][0]), b[0][1] > a[0][1], 0 < time.time() - a[0][1] < 5)\n")
    result = subprocess.run([sys.executable, "-c", code], env=ioc.env, capture_output=True,
                            text=True, timeout=30)
    assert result.stdout.split() == ["Yes", "''", "True", "True"], result
