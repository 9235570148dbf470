"""One test body, two protocols: every builder record over CA and over PVA."""

import subprocess
import time

import numpy as np
import pytest

from softioc.testing import IOCProcess, epics_tool

from .clients import CLIENTS
from .conftest import IOCS


@pytest.fixture(scope="module")
def ioc():
    with IOCProcess([str(IOCS / "records_ioc.py")], wait_for="REC:AI") as ioc:
        yield ioc


@pytest.fixture(params=["ca", "pva"])
def client(request, ioc):
    c = CLIENTS[request.param](ioc)
    yield c
    c.close()


def log(ioc):
    return ioc.caget("REC:LOG.VAL$", "-S")


def wait_log(ioc, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while text not in log(ioc) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text in log(ioc)


@pytest.mark.parametrize("pv, expected", [
    ("REC:AI", 1.5), ("REC:BI", 1), ("REC:LI", 7), ("REC:QI", 2**40),
    ("REC:SI", "hello"), ("REC:LSI", "x" * 100), ("REC:MI", 1),
    ("REC:WI", [0, 1, 2, 3, 4]),
])
def test_read(client, pv, expected):
    value = client.get(pv, like=expected)
    if isinstance(expected, list):
        np.testing.assert_array_equal(value, expected)
    else:
        assert value == expected


@pytest.mark.parametrize("pv, value, logged", [
    ("REC:AO", 4.25, "AO=4.25"),
    ("REC:BO", 1, "BO=1"),
    ("REC:LO", -99, "LO=-99"),
    ("REC:SO", "via client", "SO=via client"),
    ("REC:LSO", "L" * 120, "LSO=" + "L" * 120),
    ("REC:MO", 0, "MO=0"),
    ("REC:WO", [5.0, 6.0], "WO=[5. 6.]"),
])
def test_put_runs_on_update(client, ioc, pv, value, logged):
    # a value unique to this protocol, so the on_update log tells them apart
    if client.protocol == "pva" and isinstance(value, float):
        value, logged = value + 1, logged.replace(str(value), str(value + 1))
    assert client.put(pv, value)
    got = client.get(pv, like=value)
    if isinstance(value, list):
        np.testing.assert_array_equal(got, value)
    else:
        assert got == value
    wait_log(ioc, logged)


def test_int64_full_range_over_pva(ioc):
    c = CLIENTS["pva"](ioc)
    try:
        big = 2**62 + 7
        assert c.put("REC:QO", big)
        assert c.get("REC:QO") == big          # a double would have lost the +7
        wait_log(ioc, f"QO={big}")
    finally:
        c.close()


@pytest.mark.parametrize("wait", [True, False])
def test_validate_refusal_is_an_error(client, ioc, wait):
    assert client.put("REC:VALID", 42, wait=wait)
    assert client.get("REC:VALID", like=1) == 42
    assert not client.put("REC:VALID", 4200, wait=wait)
    assert client.get("REC:VALID", like=1) == 42
    assert "VALID=4200" not in log(ioc)
    # the record is not stuck afterwards
    assert client.put("REC:VALID", 43, wait=wait)
    assert client.get("REC:VALID", like=1) == 43


def test_blocking_put(client):
    start = time.monotonic()
    assert client.put("REC:BLOCK", 11 if client.protocol == "ca" else 12, wait=True)
    assert time.monotonic() - start >= 0.9


def test_pvput_tool_refusal_message(ioc):
    out = subprocess.run([epics_tool("pvput"), "-w", "5", "REC:VALID", "999"], env=ioc.env,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "refused by the IOC's validate" in out.stdout + out.stderr


def test_monitors_see_the_same_updates(ioc, tmp_path):
    """CA and PVA monitors get the same number of updates and the same last value."""
    ca_file = open(tmp_path / "ca.txt", "w")
    pva_file = open(tmp_path / "pva.txt", "w")
    ca = subprocess.Popen(["stdbuf", "-oL", epics_tool("camonitor"), "REC:LI"], env=ioc.env,
                          stdout=ca_file, stderr=subprocess.STDOUT)
    pva = subprocess.Popen(["stdbuf", "-oL", epics_tool("pvmonitor"), "REC:LI"], env=ioc.env,
                           stdout=pva_file, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)
        ioc.send("for i in range(1000, 1040): li.set(i); time.sleep(0.01)")
        ioc.send("")
        deadline = time.monotonic() + 10
        while ioc.caget("REC:LI") != "1039" and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        for p in (ca, pva):
            p.terminate()
            p.wait(5)
        ca_file.close()
        pva_file.close()
    ca_lines = [ln for ln in (tmp_path / "ca.txt").read_text().splitlines() if "REC:LI" in ln]
    pva_lines = [ln for ln in (tmp_path / "pva.txt").read_text().splitlines() if "REC:LI" in ln]
    ca_values = [ln.split()[-1] for ln in ca_lines]
    assert ca_values[-1] == "1039"
    assert "1039" in pva_lines[-1]
    ca_updates = [v for v in ca_values if v.isdigit() and int(v) >= 1000]
    pva_updates = [ln for ln in pva_lines if any(f" {i}" in ln for i in range(1000, 1040))]
    assert len(ca_updates) == 40
    assert len(pva_updates) == len(ca_updates)
