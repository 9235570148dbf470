"""``pythonioc screen``: a Phoebus .bob for an IOC script's records (describe mode),
and ``--help`` of the command and each subcommand."""

import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

SCRIPT = """\
from softioc import builder, softioc
builder.SetDeviceName("SCR:PUMP")
builder.aIn("SPEED", 1450.0, EGU="rpm")
builder.aOut("SETPOINT", 1000.0)
builder.boolIn("RUNNING", 1, ZNAM="Off", ONAM="On")
builder.mbbOut("MODE", "Auto", "Manual")
builder.SetDeviceName("SCR:VALVE")
builder.longOut("POSITION", 3)
builder.LoadDatabase()
softioc.iocInit()
print("SERVING")            # never reached in describe mode
softioc.interactive_ioc(globals())
"""


def pythonioc(*args, cwd=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "softioc", *args], cwd=cwd,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def test_help_explains_every_command():
    main = pythonioc("--help")
    assert main.returncode == 0
    for command in ("demo", "run", "screen"):
        assert command in main.stdout
        sub = pythonioc(command, "--help")
        assert sub.returncode == 0, sub.stdout
        assert f"usage: pythonioc {command}" in sub.stdout
    assert "describe mode" in pythonioc("screen", "--help").stdout


def test_screen_of_a_described_ioc(tmp_path):
    pytest.importorskip("pvi", reason="pip install 'epics-pythonioc[screen]' (pvi)")
    script = tmp_path / "pump_ioc.py"
    script.write_text(SCRIPT)
    start = time.monotonic()
    result = pythonioc("screen", "--title", "Pump", "-o", "pump.bob", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert time.monotonic() - start < 30
    assert "SERVING" not in result.stdout          # stopped at iocInit, served nothing
    assert "5 records" in result.stdout
    tree = ET.parse(tmp_path / "pump.bob")
    widgets = [(w.get("type"), w.findtext("pv_name")) for w in tree.iter("widget")
               if w.findtext("pv_name")]
    pvs = {pv for _, pv in widgets}
    assert pvs == {"SCR:PUMP:SPEED", "SCR:PUMP:SETPOINT", "SCR:PUMP:RUNNING",
                   "SCR:PUMP:MODE", "SCR:VALVE:POSITION"}
    assert ("led", "SCR:PUMP:RUNNING") in widgets
    assert ("combo", "SCR:PUMP:MODE") in widgets
    assert ("textentry", "SCR:PUMP:SETPOINT") in widgets
    assert ("textupdate", "SCR:PUMP:SETPOINT") in widgets      # read-back beside it
    assert ("textentry", "SCR:PUMP:SPEED") not in widgets     # an input: read only
    groups = {w.findtext("name") for w in tree.iter("widget") if w.get("type") == "group"}
    assert {"SCR:PUMP", "SCR:VALVE"} <= groups
    assert tree.getroot().findtext("name") == "Pump"


def test_screen_default_name_and_script_without_iocinit(tmp_path):
    pytest.importorskip("pvi", reason="pip install 'epics-pythonioc[screen]' (pvi)")
    (tmp_path / "mine.py").write_text(SCRIPT)
    assert pythonioc("screen", "mine.py", cwd=tmp_path).returncode == 0
    assert (tmp_path / "mine.bob").exists()
    (tmp_path / "no_init.py").write_text("from softioc import builder\nbuilder.aIn('X', 1.0)\n")
    result = pythonioc("screen", "no_init.py", cwd=tmp_path)
    assert result.returncode != 0
    assert "without calling softioc.iocInit()" in result.stdout
    assert not (tmp_path / "no_init.bob").exists()
