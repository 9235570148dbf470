"""The put log (softioc.putlog): every client write, over CA and PVA, to
logging, a JSON-lines file and a PV; refusals marked; never delays a put."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from softioc import putlog
from softioc.testing import IOCProcess, wait_until

from .clients import pva_context, python_client
from .conftest import IOCS


def entries(path: Path, count: int, timeout: float = 10.0) -> list[dict[str, object]]:
    """The file's entries, once it has ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.1)


def test_every_client_put_is_logged(tmp_path: Path) -> None:
    path = tmp_path / "puts.jsonl"
    with IOCProcess([str(IOCS / "putlog_ioc.py"), str(path)], wait_for="PL:SETPOINT") as ioc:
        assert "New" in ioc.caput("PL:SETPOINT", "0.1").stdout
        assert "validate" in ioc.run_tool("pvput", "-w", "3", "PL:SETPOINT", "500",
                                          check=False).stdout
        assert "New" in ioc.caput("PL:MODE", "On").stdout
        assert "New" not in ioc.caput("PL:MODE", "7").stdout        # strict puts: no state 7
        # the same over PVA, blocking: strict puts refuse it before QSRV2 takes it
        put = ioc.run_tool("pvput", "-w", "3", "-r", "record[block=true]", "PL:MODE", "7",
                           check=False)
        assert "no such state" in put.stdout, put.stdout
        assert "New" in ioc.caput("PL:SETPOINT.DRVH", "200").stdout
        ioc.run_tool("caput", "-c", "-w", "3", "-a", "PL:WAVE", "2", "8", "9.5")
        ctx = pva_context(ioc)
        try:
            ctx.put("PL:TEXT", "a text longer than the forty characters of a DBR_STRING")
            # Not client puts the IOC sees: refused by access security, and Python's own.
            assert "Write access denied" in ioc.caput("PL:LOCKED", "1").stdout
            ioc.send("dbpf('PL:SETPOINT', 3)")
            entries(path, 8)
            time.sleep(0.5)
            got = entries(path, 8)
            log_pv = ctx.get("PL:LOG", timeout=5)["value"]
        finally:
            ctx.close()
        ioc.stop()
    for entry in got:
        assert entry["user"] and entry["host"], entry
        assert str(entry["time"]).endswith("Z")
    seen = [(e["protocol"], e["record"], e["field"], e["old"], e["new"], e["refused"])
            for e in got]
    assert seen == [
        ("ca", "PL:SETPOINT", "VAL", "1.5", "0.1", False),
        ("pva", "PL:SETPOINT", "VAL", "0.1", "0.1", True),
        ("ca", "PL:MODE", "VAL", "Off", "On", False),
        ("ca", "PL:MODE", "VAL", "On", "On", True),
        ("pva", "PL:MODE", "VAL", "On", "On", True),
        ("ca", "PL:SETPOINT", "DRVH", "1000", "200", False),
        ("ca", "PL:WAVE", "VAL", "[1, 2, 3]", "[8, 9.5]", False),
        ("pva", "PL:TEXT", "VAL", "short",
         "a text longer than the forty characters of a DBR_STRING", False),
    ]
    assert got[1]["host"] == "127.0.0.1"           # PVA: the peer's address
    out = ioc.output()
    assert "LOG WARNING " in out and "PL:SETPOINT.VAL '0.1' -> '0.1' REFUSED" in out
    assert "LOG INFO " in out and "PL:MODE.VAL 'Off' -> 'On'" in out
    # The PV: the five latest, newest first.
    lines = log_pv.splitlines()
    assert len(lines) == 5
    assert "PL:TEXT.VAL" in lines[0] and "PL:MODE.VAL 'On' -> 'On' REFUSED" in lines[3]
    assert got[4]["host"] == "127.0.0.1"           # the guard's entry: the peer's address too


def test_an_action_logs_its_values(tmp_path: Path) -> None:
    """builder.Action makes a bo without state names: its writes log the
    numbers written, over CA and PVA, even a write of the same value."""
    path = tmp_path / "puts.jsonl"
    with IOCProcess([str(IOCS / "putlog_ioc.py"), str(path)], wait_for="PL:GO") as ioc:
        ioc.caput("PL:GO", "1")
        ioc.run_tool("pvput", "-w", "3", "PL:GO", "1")
        with pva_context(ioc) as ctx:
            ctx.put("PL:GO", 0, timeout=5)
        got = entries(path, 3)
        wait_until(lambda: "GO 0\n" in ioc.output(), 5)
        ioc.stop()
    assert [(e["protocol"], e["record"], e["old"], e["new"], e["refused"]) for e in got] == [
        ("ca", "PL:GO", "0", "1", False),
        ("pva", "PL:GO", "1", "1", False),
        ("pva", "PL:GO", "1", "0", False),
    ]
    out = ioc.output()
    assert [line for line in out.splitlines() if line.startswith("GO ")] == \
        ["GO 1", "GO 1", "GO 0"]                    # on_update ran for each write
    assert "PL:GO.VAL '0' -> '1'" in out and "PL:GO.VAL '1' -> '0'" in out


def test_ca_and_pva_name_a_client_alike(tmp_path: Path) -> None:
    """Four clients on this machine, two over CA (caput, pyepics) and two over
    PVA (pvput, p4p): one identity, ``user@host``, in the file and in the log."""
    path = tmp_path / "puts.jsonl"
    with IOCProcess([str(IOCS / "putlog_ioc.py"), str(path)], wait_for="PL:SETPOINT") as ioc:
        ioc.caput("PL:SETPOINT", "1")
        python_client(ioc, "import epics\n"
                           "assert epics.caput('PL:SETPOINT', 2, wait=True, timeout=5) == 1")
        ioc.run_tool("pvput", "-w", "3", "PL:SETPOINT", "3")
        with pva_context(ioc) as ctx:
            ctx.put("PL:SETPOINT", 4.0, timeout=5)
        got = entries(path, 4)
        ioc.stop()
    assert [(e["protocol"], e["new"]) for e in got] == [
        ("ca", "1"), ("ca", "2"), ("pva", "3"), ("pva", "4")]
    who = {(e["user"], e["host"]) for e in got}
    assert len(who) == 1, got
    user, host = who.pop()
    assert user and host == "127.0.0.1"             # the address the clients connect from
    lines = [line for line in ioc.output().splitlines() if "PL:SETPOINT.VAL" in line]
    assert len(lines) == 4 and all(f" {user}@{host} PL:SETPOINT.VAL " in x for x in lines), lines


def test_a_slow_log_never_delays_a_put(tmp_path: Path) -> None:
    """Capacity 4 and a log handler taking 0.2 s a put: 40 quick puts all
    succeed at once; the log keeps what fits and says how many it lost."""
    path = tmp_path / "puts.jsonl"
    with IOCProcess([str(IOCS / "putlog_ioc.py"), str(path), "4", "0.2"],
                    wait_for="PL:SETPOINT") as ioc:
        ctx = pva_context(ioc)
        try:
            start = time.monotonic()
            for i in range(40):
                ctx.put("PL:SETPOINT", float(i), timeout=5)
            elapsed = time.monotonic() - start
            assert ctx.get("PL:SETPOINT", timeout=5)["value"] == 39.0
        finally:
            ctx.close()
        deadline = time.monotonic() + 10
        while "not recorded" not in ioc.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        ioc.stop()
    assert elapsed < 4.0, f"40 puts took {elapsed:.1f} s: the log held them up"
    lost = sum(int(line.split("LOG WARNING ")[1].split()[0])
               for line in ioc.output().splitlines() if "puts not recorded" in line)
    kept = len(path.read_text().splitlines())
    assert lost > 0 and kept + lost == 40, (kept, lost)


@pytest.mark.parametrize("kwargs", [{"capacity": 0}, {"pv_entries": -1}, {"pv_entries": 101},
                                    {"capacity": 1.5}, {"file": "/no/such/dir/puts.jsonl"}])
def test_bad_arguments_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, FileNotFoundError)):
        putlog.enable(**kwargs)  # type: ignore[arg-type]
