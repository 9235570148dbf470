"""The record defaults of pythonSoftIOC's builder, as clients see them:
input records refuse client puts (DISP=1), output drive limits give the
display range, and the other fields pythonSoftIOC sets."""

from __future__ import annotations

import textwrap
import time

import pytest

from ..clients import caget_many, pva_context
from ..conftest import module_ioc

IOC = textwrap.dedent('''
    from softioc import builder, softioc
    builder.SetDeviceName("DF")
    ins = {
        "AI": builder.aIn("AI", initial_value=1.5),
        "BI": builder.boolIn("BI", initial_value=1, ZNAM="Off", ONAM="On"),
        "LI": builder.longIn("LI", initial_value=7),
        "QI": builder.int64In("QI", initial_value=8),
        "SI": builder.stringIn("SI", initial_value="in"),
        "MI": builder.mbbIn("MI", "A", "B", initial_value=1),
        "WI": builder.WaveformIn("WI", [1, 2, 3]),
        "LSI": builder.longStringIn("LSI", initial_value="long in"),
    }
    open_in = builder.aIn("OPEN", initial_value=2.0, DISP=0)
    builder.aOut("AO", initial_value=1.0, DRVL=0, DRVH=10)
    builder.aOut("AOL", initial_value=1.0, DRVL=0, DRVH=10, LOPR=-5, HOPR=20)
    builder.longOut("LO", initial_value=1, DRVL=-3, DRVH=30)
    builder.int64Out("QO", initial_value=1, DRVL=-4, DRVH=40)
    builder.aOut("FREE", initial_value=1.0)
    builder.WaveformIn("WDT", length=4, datatype=int)
    builder.WaveformIn("WBIG", [1, 2**40])
    builder.WaveformOut("WO", length=5)
    builder.LoadDatabase()
    softioc.iocInit()
    softioc.interactive_ioc(globals())
''')

INPUTS = {"AI": ("1.5", "3"), "BI": ("On", "0"), "LI": ("7", "9"), "QI": ("8", "9"),
          "SI": ("in", "other"), "MI": ("B", "0")}


ioc = module_ioc("defaults_ioc.py", "DF:AI", text=IOC)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_inputs_refuse_client_puts_over_ca_and_pva(ioc, name):
    pv = f"DF:{name}"
    shown, other = INPUTS[name]
    assert ioc.caget(f"{pv}.DISP") == "1"
    ca = ioc.caput(pv, other)
    assert "Channel write request failed" in ca.stdout, ca.stdout
    pva = ioc.run_tool("pvput", "-w", "5", pv, other, check=False, timeout=30)
    assert pva.returncode != 0 and "S_db_putDisabled" in pva.stdout, pva.stdout
    desc = ioc.caput(f"{pv}.DESC", "changed")           # every field, as pythonSoftIOC
    assert "Channel write request failed" in desc.stdout
    assert ioc.caget(pv) == shown
    assert ioc.caget(f"{pv}.DESC") == ""


def test_array_and_long_string_inputs_refuse_puts(ioc):
    ca = ioc.caput("DF:WI", "2", "7", "7", options=["-a"])
    assert "Channel write request failed" in ca.stdout
    ca = ioc.caput("DF:LSI", "other text", options=["-S"])
    assert "Channel write request failed" in ca.stdout
    ctx = pva_context(ioc)
    try:
        with pytest.raises(Exception, match="putDisabled|Disabled"):  # noqa: B017 (p4p)
            ctx.put("DF:LSI", "other text", wait=True, timeout=5)
    finally:
        ctx.close()
    assert ioc.caget("DF:WI").split()[1:4] == ["1", "2", "3"]
    assert ioc.caget("DF:LSI", "-S") == "long in"


def test_python_still_writes_inputs(ioc):
    ioc.send("ins['AI'].set(4.5); ins['AI'].set_field('EGU', 'mA')")
    deadline = time.monotonic() + 5
    while ioc.caget("DF:AI.EGU") != "mA" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ioc.caget("DF:AI") == "4.5"
    assert ioc.caget("DF:AI.EGU") == "mA"


def test_disp_0_lets_clients_write(ioc):
    assert ioc.caget("DF:OPEN.DISP") == "0"
    assert "failed" not in ioc.caput("DF:OPEN", "6").stdout
    assert ioc.caget("DF:OPEN") == "6"


@pytest.mark.parametrize("pv, low, high", [
    ("DF:AO", "0", "10"), ("DF:AOL", "-5", "20"), ("DF:LO", "-3", "30"),
    ("DF:QO", "-4", "40"), ("DF:FREE", "0", "0")])
def test_drive_limits_give_display_limits(ioc, pv, low, high):
    assert (ioc.caget(f"{pv}.LOPR"), ioc.caget(f"{pv}.HOPR")) == (low, high)
    ctrl = " ".join(ioc.run_tool("caget", "-w", "5", "-d", "DBR_CTRL_DOUBLE", pv).stdout.split())
    assert f"Lo disp limit: {low} Hi disp limit: {high}" in ctrl, ctrl
    ctx = pva_context(ioc)
    try:
        display = ctx.get(pv, timeout=5)["display"]
    finally:
        ctx.close()
    assert (display["limitLow"], display["limitHigh"]) == (float(low), float(high))


def test_other_fields_as_pythonsoftioc_sets_them(ioc):
    expected = {f"DF:{name}.{field}": value for name in ("AI", "LI", "SI", "WI", "LSI")
                for field, value in [("SCAN", "I/O Intr"), ("PINI", "YES"),
                                     ("INP", f"@DF:{name}")]}
    expected.update({"DF:LI.MDEL": "-1", "DF:QI.MDEL": "-1", "DF:AO.OUT": "@DF:AO",
                     "DF:AO.OMSL": "supervisory", "DF:AO.PINI": "NO"})
    assert caget_many(ioc, *expected) == expected


def test_integer_waveforms_are_long(ioc):
    assert ioc.caget("DF:WI.FTVL") == "LONG"
    assert ioc.caget("DF:WDT.FTVL") == "LONG"
    assert "DBF_LONG" in ioc.run_tool("cainfo", "DF:WI").stdout
    assert ioc.caget("DF:WBIG.FTVL") == "INT64"           # does not fit: not wrapped


def test_waveform_out_without_value_has_no_alarm(ioc):
    assert ioc.caget("DF:WO.DTYP") == "PythonWfOut"
    assert ioc.caget("DF:WO.SEVR") == "NO_ALARM"
    assert ioc.caget("DF:WO.NORD") == "0"
