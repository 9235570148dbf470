"""Faults: EPICS's own CA client test (acctst) across a server restart, clean
and quick shutdown (SIGTERM, SIGINT, end of stdin) that flushes autosave and
frees the ports, and a hung on_update that must not stop the IOC serving."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
import yaml

from softioc.testing import IOCProcess, port_free, start_tool, wait_until

from .conftest import SCRIPTS, start_on


@pytest.mark.timeout(300)
def test_acctst_passes_across_a_server_restart(tmp_path: Path):
    """acctst (EPICS base's CA client test) on a builder aOut. It asks for the
    server to go away once: the IOC is stopped and a new one started on the
    same ports, so it also proves a stopped IOC frees its CA port at once."""
    ioc = IOCProcess([str(SCRIPTS / "acctst_ioc.py")], wait_for="ACCTST:AO")
    second: IOCProcess | None = None
    out = tmp_path / "acctst.txt"       # its prompt has no newline: read the file, not lines
    try:
        with start_tool("acctst", "ACCTST:AO", "0", "4", "1", env=ioc.env, output=out) as acc:
            asked = "force test channel to disconnect"
            wait_until(lambda: asked in out.read_text(errors="replace"), 60,
                       what="acctst asking for the server to go away")
            assert ioc.stop() == 0, ioc.output()
            second = start_on(ioc, [str(SCRIPTS / "acctst_ioc.py")], wait_for="ACCTST:AO")
            acc.wait(240)           # about 160 s: it waits out beacon and watchdog periods
    finally:
        ioc.stop()
        if second is not None:
            second.stop()
    output = out.read_text(errors="replace")
    assert acc.returncode == 0, output[-3000:]
    assert "Test Complete" in output, output[-3000:]
    assert "native type was DBF_DOUBLE" in output


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "end of stdin"])
def test_shutdown_is_quick_clean_flushes_autosave_and_frees_ports(how: str, tmp_path: Path):
    ioc = IOCProcess([str(SCRIPTS / "shutdown_ioc.py"), str(tmp_path)], wait_for="SHUT:SP")
    try:
        # Two changes: the second falls within autosave's rate bound (an hour),
        # so only the save at shutdown can hold it.
        ioc.caput("SHUT:SP", "7")
        ioc.caput("SHUT:SP", "42.5")
        assert ioc.caget("SHUT:SP") == "42.5"
        # Held while the IOC runs (so the checks below can fail): CA's TCP
        # (circuits) and UDP (search) port, PVA's TCP and search/broadcast port.
        # Both servers fall back to another TCP port when theirs is taken: bound
        # here means they serve on the ports they were given.
        assert not port_free(ioc.ca_port), "CA TCP port not bound"
        assert not port_free(ioc.ca_port, socket.SOCK_DGRAM), "CA UDP port not bound"
        assert not port_free(ioc.pva_port), "PVA TCP port not bound"
        assert not port_free(ioc.pva_udp, socket.SOCK_DGRAM), "PVA UDP port not bound"
        start = time.monotonic()
        if how == "end of stdin":
            assert ioc.proc.stdin is not None
            ioc.proc.stdin.close()
        else:
            ioc.proc.send_signal(getattr(signal, how))
        code = ioc.proc.wait(10)
        elapsed = time.monotonic() - start
        # The ports, at once: CA TCP and UDP, PVA TCP and UDP.
        assert port_free(ioc.ca_port), "CA port still bound"
        assert port_free(ioc.ca_port, socket.SOCK_DGRAM), "CA UDP port still bound"
        assert port_free(ioc.pva_port), "PVA port still bound"
        assert port_free(ioc.pva_udp, socket.SOCK_DGRAM), "PVA UDP port still bound"
    finally:
        ioc.stop()
    output = ioc.output()
    assert code == 0, output
    assert elapsed < 2.0, f"{how}: {elapsed:.2f} s to exit"
    assert "Traceback" not in output, output
    saved = yaml.safe_load((tmp_path / "shutdown.softsav").read_text())
    assert saved["SHUT:SP"] == 42.5


@pytest.mark.parametrize("dispatcher", ["thread", "asyncio"])
def test_a_hung_on_update_does_not_stop_serving(dispatcher: str):
    """A callback that hangs holds back the callbacks queued behind it on the
    same dispatcher (they run in order), but nothing else: puts complete, gets
    and monitors go on over CA and PVA, and the queued callback runs once the
    hung one returns."""
    with IOCProcess([str(SCRIPTS / "hang_ioc.py"), dispatcher], wait_for="HANG:TICK") as ioc:
        assert "rror" not in ioc.caput("HANG:SLOW", "1", callback=False).stdout
        wait_until(lambda: "slow on_update started" in ioc.output(), 10,
                   what="the slow on_update started")
        start = time.monotonic()
        put = ioc.caput("HANG:FAST", "2")              # put-callback completes
        assert "New : HANG:FAST" in put.stdout and time.monotonic() - start < 5, put.stdout
        assert ioc.caget("HANG:FAST") == "2"
        first = int(ioc.caget("HANG:TICK"))
        ioc.wait_value("HANG:TICK", lambda tick: int(tick) > first + 5, 10)
        pv = ioc.pvget("HANG:TICK")
        assert int(pv.split()[-1]) > first + 5, pv      # PVA reads go on too
        assert "fast on_update" not in ioc.output()   # queued behind the hung one
        ioc.send("release.set()")
        wait_until(lambda: "fast on_update 2.0" in ioc.output(), 10,
                   what="the queued on_update ran")
        assert ioc.stop() == 0
