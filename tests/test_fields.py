"""Client writes to non-VAL fields reach Python; a client changing SCAN does
not stop values set from Python reaching monitors."""

import time

import pytest

from softioc.testing import start_tool, wait_until

from .clients import CLIENTS
from .conftest import module_ioc

ioc = module_ioc("fields_ioc.py", wait_for="FLD:SP")


def seen(ioc):
    return ioc.caget("FLD:SEEN", "-S")


def wait_seen(ioc, text):
    ioc.wait_value("FLD:SEEN", lambda seen: text in seen, options=["-S"])


@pytest.mark.parametrize("protocol, egu", [("ca", "uA"), ("pva", "nA")])
def test_field_change_callback(ioc, protocol, egu):
    client = CLIENTS[protocol](ioc)
    try:
        assert client.put("FLD:SP.EGU", egu)
    finally:
        client.close()
    wait_seen(ioc, f"EGU={egu}")


def test_unwatched_field_is_quiet_and_any_field_is_seen(ioc):
    ioc.caput("FLD:SP.DESC", "hello")
    ioc.caput("FLD:SP.HIHI", "42")
    wait_seen(ioc, "HIHI=42")
    assert "DESC" not in seen(ioc)
    ioc.caput("FLD:ANY.DRVH", "99")
    ioc.caput("FLD:ANY", "5")
    wait_seen(ioc, "DRVH=99")
    wait_seen(ioc, "VAL=5")


@pytest.mark.parametrize("scan", ["1 second", ".1 second", "I/O Intr", "Passive"])
def test_set_reaches_monitor_whatever_scan(ioc, scan, tmp_path):
    assert "rror" not in ioc.caput("FLD:AI.SCAN", scan).stdout
    assert ioc.caget("FLD:AI.SCAN") == scan
    path = tmp_path / "mon.txt"
    with start_tool("camonitor", "FLD:AI", env=ioc.env, output=path):
        time.sleep(1.0)
        value = 100 + len(scan)
        ioc.send(f"ai.set({value})")
        wait_until(lambda: str(value) in path.read_text(), 5, what=f"camonitor shows {value}")
