"""One test body, two protocols: every builder record over CA and over PVA."""

import time

import numpy as np
import pytest

from softioc.testing import start_tool, wait_until

from .clients import CLIENTS
from .conftest import module_ioc

ioc = module_ioc("records_ioc.py", wait_for="REC:AI")


@pytest.fixture(params=["ca", "pva"])
def client(request, ioc):
    c = CLIENTS[request.param](ioc)
    yield c
    c.close()


def log(ioc):
    return ioc.caget("REC:LOG", "-S")


def wait_log(ioc, text, timeout=5.0):
    ioc.wait_value("REC:LOG", lambda logged: text in logged, timeout, options=["-S"])


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


def test_put_to_a_missing_pv_is_no_success(client):
    # Neither accepted nor refused: the client's put raises.
    with pytest.raises((RuntimeError, TimeoutError), match="REC:NO_SUCH"):
        client.put("REC:NO_SUCH", 1.0, timeout=2)


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
    out = ioc.run_tool("pvput", "-w", "5", "REC:VALID", "999", check=False)
    assert out.returncode != 0
    assert "refused by the IOC's validate" in out.stdout


def _monitor_lines(path):
    return [ln for ln in path.read_text().splitlines() if "REC:LI" in ln]


def test_monitors_see_the_same_updates(ioc, tmp_path):
    """CA and PVA monitors get the same number of updates and the same last value."""
    ca_path, pva_path = tmp_path / "ca.txt", tmp_path / "pva.txt"

    def updates(path):
        """The values 1000..1039 a monitor printed after its first (connect-time) line."""
        lines = _monitor_lines(path)[1:]
        return [ln for ln in lines if any(f" {i}" in ln for i in range(1000, 1040))]

    with start_tool("camonitor", "REC:LI", env=ioc.env, output=ca_path), \
            start_tool("pvmonitor", "REC:LI", env=ioc.env, output=pva_path):
        # Both monitors connected and got their first value before anything changes.
        wait_until(lambda: _monitor_lines(ca_path) and _monitor_lines(pva_path), 30,
                   what="both monitors' first value")
        # In lock-step, each value seen by both before the next: a loaded
        # machine cannot make a monitor's queue merge two of them.
        for i in range(1000, 1040):
            ioc.send(f"li.set({i})")
            wait_until(lambda i=i: all((updates(p) or ["-"])[-1].split()[-1] == str(i)
                                       for p in (ca_path, pva_path)), 30,
                       what=f"both monitors show {i}")
        time.sleep(0.5)                 # room for any extra (wrong) update to show
    ca_updates, pva_updates = updates(ca_path), updates(pva_path)
    assert [ln.split()[-1] for ln in ca_updates] == [str(i) for i in range(1000, 1040)]
    assert "1039" in pva_updates[-1]
    assert len(pva_updates) == len(ca_updates) == 40
