"""aai/aao, waveforms of every numeric type and of strings, enums of >16 states."""

import re

import numpy as np
import pytest

from softioc import testing

from .clients import CLIENTS
from .conftest import module_ioc

DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float32", "float64"]


ioc = module_ioc("types_ioc.py", wait_for="T:AAI")


@pytest.mark.parametrize("dtype", DTYPES)
def test_waveform_types_over_pva(pva, dtype):
    v = pva.get(f"T:WF:{dtype}", timeout=5)["value"]
    assert v.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(v, [1, 2, 3])


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_aai_aao(ioc, protocol):
    client = CLIENTS[protocol](ioc)
    try:
        np.testing.assert_array_equal(client.get("T:AAI", like=[0.0]), [1.5, 2.5])
        assert client.put("T:AAO", [7, 8, 9])
        np.testing.assert_array_equal(client.get("T:AAO", like=[0]), [7, 8, 9])
    finally:
        client.close()


def test_string_waveform(ioc, pva):
    assert list(pva.get("T:STRS", timeout=5)["value"]) == ["alpha", "beta"]
    pva.put("T:STRS", ["x", "y", "z"], wait=True, timeout=5)
    assert list(pva.get("T:STRS", timeout=5)["value"]) == ["x", "y", "z"]
    assert ioc.caget("T:STRS.NORD") == "3"
    assert ioc.caget("T:STRS").split()[1:] == ["x", "y", "z"]


def test_big_enum(ioc, pva):
    assert ioc.caget("T:BIG") == "17"
    assert ioc.caget("T:BIG:CHOICES").split()[:3] == ["20", "State0", "State1"]
    e = pva.get("T:BIG:ENUM", timeout=5)
    assert e["value.index"] == 17
    assert list(e["value.choices"]) == [f"State{i}" for i in range(20)]
    assert "error" in ioc.caput("T:BIGOUT", "25").stdout.lower()  # refused: no such state
    assert ioc.caget("T:BIGOUT") == "3"
    assert "error" not in ioc.caput("T:BIGOUT", "19").stdout.lower()
    assert pva.get("T:BIGOUT:ENUM", timeout=5)["value.index"] == 19


def test_c_refuses_an_array_of_the_wrong_element_size(ioc):
    """RecordCore.set (under the Python layer, which converts to FTVL) checks
    the element size itself: 8 doubles into an 8-element int8 waveform would
    have written 64 bytes into its 8."""
    before = ioc.caget("T:WF:int8")
    ioc.send("import numpy, softioc._ext as x")
    ioc.send("try:\n    x.RecordCore.set(waves['int8'], numpy.zeros(8))\n"
             "except TypeError as e:\n    print('REFUSED', e)\n")
    testing.wait_until(lambda: "REFUSED" in ioc.output(), what="the refusal")
    line = [ln for ln in ioc.output().splitlines() if "REFUSED" in ln][-1]
    assert "8-byte elements" in line and "T:WF:int8" in line and "DBF_CHAR" in line, line
    assert ioc.caget("T:WF:int8") == before              # nothing written
    ioc.send("waves['int8'].set([5, 6])")                 # and the record still works
    ioc.wait_value("T:WF:int8", lambda v: v.split()[:3] == ["8", "5", "6"])


def test_introspection_and_callbacks(ioc, pva):
    """Last (it stops the IOC); its own puts, values no other test uses, so
    it passes run alone or in any order."""
    assert ioc.caput("T:AAO", "2", "5", "6", options=["-a"]).returncode == 0
    assert ioc.caput("T:BIGOUT", "18").returncode == 0
    pva.put("T:STRS", ["p", "q"], wait=True, timeout=5)
    # A put completes when the record has processed; on_update runs after, in
    # the dispatcher, so wait for its line before stopping (the shell's own
    # newline at end of input could land in the middle of it otherwise).
    testing.wait_until(lambda: "STRS got ['p', 'q']" in ioc.output(), what="STRS's on_update")
    ioc.stop()
    out = ioc.output()
    fields = re.search(r"^FIELDS (\d+) True$", out, re.M)   # field_names holds VAL
    assert fields and int(fields[1]) > 50, out
    assert "AAO got [5, 6]" in out
    assert "BIGOUT got 18" in out
    assert "STRS got ['p', 'q']" in out
