"""EPICS patched in one place (softioc/_ext/patches.c) with one switch, strict
puts: off, no patch is applied and validate() still refuses puts over CA and
PVA (EPICS's public device support interface is all it needs)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from softioc.testing import IOCProcess, start_tool

IOC = str(Path(__file__).parent / "iocs" / "patches_ioc.py")
ALL = {"put-conversions", "qsrv2-put-guard", "put-check", "rsrv-peer-address"}


def start(strict: bool) -> IOCProcess:
    return IOCProcess([IOC], wait_for="READY", timeout=60,
                      env={"PYTHONIOC_STRICT_PUTS": "YES" if strict else "NO"})


def applied(ioc: IOCProcess) -> set[str]:
    found = re.search(r"^PATCHES (\S+)$", ioc.output(), re.M)
    assert found, ioc.output()
    return set(found.group(1).split(",")) - {"none"}


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "plain"])
def test_patches_follow_the_one_switch(strict: bool) -> None:
    ioc = start(strict)
    try:
        assert applied(ioc) == (ALL if strict else set())
        # validate() refuses over both protocols either way, and the value stays
        assert "ERROR" in ioc.caput("PT:VALIDATED", "20").stdout
        assert float(ioc.caget("PT:VALIDATED")) == 1.0
        refused = ioc.run_tool("pvput", "-w", "5", "PT:VALIDATED", "30", check=False)
        assert refused.returncode != 0 and "refused" in refused.stdout, refused.stdout
        assert float(ioc.caget("PT:VALIDATED")) == 1.0
        ioc.caput("PT:VALIDATED", "5")
        assert float(ioc.caget("PT:VALIDATED")) == 5.0
    finally:
        ioc.stop()


def test_strict_puts_cannot_come_on_unguarded_while_running() -> None:
    """Started without them and serving PVA, an IOC refuses to switch strict
    puts on (QSRV2's blocking put is not guarded), and stays as it was."""
    ioc = start(False)
    try:
        ioc.send("try:\n    strict.strict_puts(True)\nexcept RuntimeError as e:\n"
                 "    print('REFUSED', e)\n")
        ioc.send("print('NOW', strict.strict_puts())")
        ioc.wait_value("PT:VALIDATED", "1")
        ioc.stop()
        out = ioc.output()
    finally:
        ioc.stop()
    assert "REFUSED strict puts: strict puts were off at iocInit" in out, out
    assert "NOW False" in out, out


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "plain"])
def test_validate_is_asked_for_new_values(strict: bool) -> None:
    """As in pythonSoftIOC: validate() is asked for a value that differs from
    the record's, and for every put with always_update."""
    ioc = start(strict)
    try:
        assert "ERROR" not in ioc.caput("PT:NEVER", "1").stdout      # the same value
        assert "ERROR" in ioc.caput("PT:NEVER", "2").stdout
        assert "ERROR" in ioc.caput("PT:ALWAYS", "1").stdout
        assert float(ioc.caget("PT:NEVER")) == float(ioc.caget("PT:ALWAYS")) == 1.0
    finally:
        ioc.stop()


def test_a_refused_put_is_never_seen_with_strict_puts(tmp_path: Path) -> None:
    """Checked as dbPut stores it (the put-check patch): a refused value
    raises no alarm, and one put to a busy record is never read or sent."""
    ioc = start(True)
    try:
        assert "ERROR" in ioc.caput("PT:ALARMED", "2000").stdout
        assert ioc.caget("PT:ALARMED.SEVR") == "NO_ALARM"
        seen = tmp_path / "camonitor.txt"
        with start_tool("camonitor", "-t", "n", "PT:BUSY", env=ioc.env, output=seen):
            with start_tool("caput", "-c", "-w", "10", "PT:BUSY", "5", env=ioc.env):
                ioc.wait_value("PT:BUSY.PACT", "1")     # on_update holds it busy for 2 s
                ioc.caput("PT:BUSY", "50", callback=False)
                assert float(ioc.caget("PT:BUSY")) == 5.0
                ioc.wait_value("PT:BUSY.PACT", "0", timeout=10)
            time.sleep(0.5)
        assert float(ioc.caget("PT:BUSY")) == 5.0
        text = seen.read_text()
        assert re.search(r"PT:BUSY\s+5\b", text) and not re.search(r"\b50\b", text), text
    finally:
        ioc.stop()
