"""The live view's watcher (softioc._watch): the IOC (tests/iocs/watch_ioc.py)
subscribes and prints what it is given; clients change values."""

from __future__ import annotations

import json
import time
from typing import Any

from softioc.testing import IOCProcess, wait_until

from .clients import pva_context
from .conftest import IOCS, module_ioc

ioc = module_ioc("watch_ioc.py", "W:TEMP")

Row = dict[str, Any]


def printed(ioc: IOCProcess, kind: str, since: int = 0) -> list[list[Row]]:
    """The row lists the IOC printed as ``KIND <json>`` after output offset ``since``."""
    lines = ioc.output()[since:].splitlines()
    return [json.loads(line[len(kind) + 1:]) for line in lines if line.startswith(kind + " ")]


def rows_of(ioc: IOCProcess, name: str, since: int) -> list[Row]:
    """Every row delivered for ``name`` after output offset ``since``."""
    return [row for rows in printed(ioc, "DELIVERY", since) for row in rows
            if row["name"] == name]


def wait_row(ioc: IOCProcess, name: str, since: int, check: Any = lambda row: True,
             timeout: float = 10.0) -> Row:
    """The latest row for ``name`` delivered after ``since`` once ``check(row)``."""
    def found() -> Row | None:
        rows = [row for row in rows_of(ioc, name, since) if check(row)]
        return rows[-1] if rows else None
    row = wait_until(found, timeout, what=f"a row for {name}")
    assert row is not None
    return row


def snapshot(ioc: IOCProcess) -> dict[str, Row]:
    since = len(ioc.output())
    ioc.send("snapshot()")
    rows = wait_until(lambda: printed(ioc, "SNAPSHOT", since), 10, what="a snapshot")[0]
    assert [row["name"] for row in rows] == sorted(row["name"] for row in rows)
    return {row["name"]: row for row in rows}


def test_snapshot_has_every_record_and_pv(ioc: IOCProcess) -> None:
    rows = snapshot(ioc)
    # builder records, .db records (no alias of its own), PVA-only PVs; no unused spare
    assert set(rows) == {"W:TEMP", "W:SET", "W:MODE", "W:TEXT", "W:WAVE", "W:LONG", "W:GO",
                         "W:FAST", "W:DB:DBAI", "W:DB:CALC", "W:PVA", "W:IMG", "W:TBL"}
    temp = rows["W:TEMP"]
    assert (temp["kind"], temp["value"], temp["units"], temp["severity"], temp["status"]) == \
        ("ai", "21.50", "degC", 0, "")
    assert abs(temp["time"] - time.time()) < 60
    assert (rows["W:DB:DBAI"]["kind"], rows["W:DB:DBAI"]["value"],
            rows["W:DB:DBAI"]["units"]) == ("ai", "3.5", "mm")
    assert rows["W:DB:CALC"]["value"] == "3"
    assert rows["W:MODE"]["value"] == "On"
    assert rows["W:WAVE"]["value"] == "0, 1, 2, 3, 4, 5, 6, 7 \u2026 (20)"
    assert rows["W:LONG"]["value"] == "x" * 60
    assert (rows["W:GO"]["severity"], rows["W:GO"]["status"]) == (3, "UDF")  # never set
    assert (rows["W:PVA"]["kind"], rows["W:PVA"]["value"], rows["W:PVA"]["units"]) == \
        ("pva", "1.50", "A")
    assert rows["W:IMG"]["value"] == "64x48 mono8"
    assert rows["W:TBL"]["value"] == "2 rows"


def test_client_puts_are_delivered(ioc: IOCProcess) -> None:
    since = len(ioc.output())
    ioc.caput("W:SET", "2.5")
    row = wait_row(ioc, "W:SET", since, lambda row: row["value"] == "2.500")
    assert (row["kind"], row["units"], row["severity"], row["status"]) == ("ao", "V", 0, "")
    assert abs(row["time"] - time.time()) < 10
    ioc.caput("W:SET", "12")
    row = wait_row(ioc, "W:SET", since, lambda row: row["value"] == "12.000")
    assert (row["severity"], row["status"]) == (2, "HIHI")
    ioc.caput("W:SET", "7")
    row = wait_row(ioc, "W:SET", since, lambda row: row["value"] == "7.000")
    assert (row["severity"], row["status"]) == (1, "HIGH")
    ioc.caput("W:MODE", "Off")
    assert wait_row(ioc, "W:MODE", since)["value"] == "Off"
    ioc.caput("W:SET", "1")


def test_pva_put_is_delivered(ioc: IOCProcess) -> None:
    since = len(ioc.output())
    ctx = pva_context(ioc)
    try:
        ctx.put("W:PVA", 3.25, timeout=5)
    finally:
        ctx.close()
    row = wait_row(ioc, "W:PVA", since)
    assert (row["kind"], row["value"], row["units"]) == ("pva", "3.25", "A")
    since = len(ioc.output())
    ioc.send("pv.post(2.0, severity=2, message='too high')")
    row = wait_row(ioc, "W:PVA", since)
    assert (row["value"], row["severity"], row["status"]) == ("2.00", 2, "too high")


def test_text_not_utf8_is_replaced(ioc: IOCProcess) -> None:
    since = len(ioc.output())
    ioc.caput("W:TEXT", "caf\udce9")       # the byte 0xE9 (Latin-1), not UTF-8
    assert wait_row(ioc, "W:TEXT", since)["value"] == "caf\ufffd"


def test_a_burst_is_coalesced(ioc: IOCProcess) -> None:
    since = len(ioc.output())
    ioc.send("burst()")
    wait_row(ioc, "W:FAST", since, lambda row: row["value"] == "99")
    time.sleep(0.5)
    rows = rows_of(ioc, "W:FAST", since)
    took = float(ioc.output()[since:].split("BURST ")[1].split()[0])
    # one delivery at the first change, then one each 0.2 s at most
    assert 1 <= len(rows) <= 2 + int(took / 0.2), (took, rows)
    assert all(len([r for r in rows if r["name"] == "W:FAST"]) <= 1
               for rows in printed(ioc, "DELIVERY", since))


def test_nothing_changed_nothing_delivered(ioc: IOCProcess) -> None:
    time.sleep(0.5)                 # what earlier tests changed
    since = len(ioc.output())
    time.sleep(1.5)
    assert printed(ioc, "DELIVERY", since) == []


def test_pvs_and_records_made_at_run_time(ioc: IOCProcess) -> None:
    since = len(ioc.output())
    ioc.send("new = pva.PV('NEW', 7)")
    assert wait_row(ioc, "W:NEW", since)["value"] == "7"
    assert "W:NEW" in snapshot(ioc)
    ioc.send("new.close()")
    assert wait_row(ioc, "W:NEW", since, lambda row: row.get("removed")) == \
        {"name": "W:NEW", "removed": True}
    assert "W:NEW" not in snapshot(ioc)
    # a spare record given a name
    ioc.send("builder.aIn('LATE', 4.5, PREC=1, EGU='s')")
    row = wait_row(ioc, "W:LATE", since)
    assert (row["kind"], row["value"], row["units"]) == ("ai", "4.5", "s")
    assert "W:LATE" in snapshot(ioc)


def test_shutdown_is_clean() -> None:
    with IOCProcess([str(IOCS / "watch_ioc.py")], wait_for="W:TEMP") as own:
        snapshot(own)
        own.caput("W:SET", "3")
        wait_row(own, "W:SET", 0)
        assert own.stop() == 0
    assert "Traceback" not in own.output()
