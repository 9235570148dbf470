"""Autosave files move both ways between pythonSoftIOC and pythonIOC: its
YAML ``.softsav`` is restored, ours is written in the same layout, a file we
cannot read is kept, and ``with Autosave([...])`` fields add to a record's
own ``autosave=[...]`` as pythonSoftIOC documents."""

from __future__ import annotations

import textwrap
import time

import pytest
import yaml

from softioc.testing import IOCProcess

from ..clients import pva_context

IOC = textwrap.dedent('''
    import sys
    from softioc import autosave, builder, softioc
    autosave.configure(sys.argv[1], "dev", 0.2, sys.argv[2] == "stamped")
    builder.SetDeviceName("DEV")
    builder.aOut("AO", initial_value=1.0, DRVH=100, autosave=["VAL", "DRVH"])
    builder.aIn("AI", initial_value=2.0, autosave=["EGU", "PREC"])
    builder.longOut("LO", initial_value=3, autosave=True)
    builder.stringOut("SO", initial_value="built-in", autosave=True)
    builder.mbbOut("MO", "Off", "On", "Fault", autosave=True)
    builder.WaveformOut("WO", [0.0, 0.0, 0.0, 0.0], autosave=True)
    builder.longStringOut("LSO", initial_value="built-in long", autosave=True)
    with autosave.Autosave(["VAL", "LOPR"]):
        builder.aOut("BOTH", initial_value=4.0, autosave=["EGU"])
        builder.aOut("NONE", initial_value=5.0, autosave=False)
        builder.aOut("CONTEXT", initial_value=6.0)
    with autosave.Autosave(False):
        builder.aOut("OWN", initial_value=7.0, autosave=True)
    builder.aOut("FIELD", initial_value=8.0, autosave="EGU")
    builder.LoadDatabase()
    softioc.iocInit()
    softioc.interactive_ioc(globals())
''')

# A file as pythonSoftIOC writes it (its documented layout: the record name
# for VAL in its Python type, NAME.FIELD for other fields as text, arrays as
# flow lists), with values that differ from the built-in ones.
PSI_FILE = """\
DEV:AI.EGU: mA
DEV:AI.PREC: '3'
DEV:AO: 42.5
DEV:AO.DRVH: '60'
DEV:LO: -17
DEV:LSO: a long string saved by pythonSoftIOC, longer than forty characters
DEV:MO: 2
DEV:SO: saved text
DEV:WO: [1.5, 2.5, 3.5]
"""


def start(tmp_path, backups="stamped"):
    script = tmp_path / "ioc.py"
    script.write_text(IOC)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return IOCProcess([str(script), str(state), backups], wait_for="DEV:AO")


def saved_after_stop(ioc, tmp_path):
    assert ioc.stop() == 0, ioc.output()
    return yaml.safe_load((tmp_path / "state" / "dev.softsav").read_text())


def test_pythonsoftioc_file_is_restored_and_written_back_in_its_layout(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "dev.softsav").write_text(PSI_FILE)
    with start(tmp_path) as ioc:
        assert ioc.caget("DEV:AO") == "42.5"
        assert ioc.caget("DEV:AO.DRVH") == "60"
        assert ioc.caget("DEV:AI.EGU") == "mA"
        assert ioc.caget("DEV:AI.PREC") == "3"
        assert ioc.caget("DEV:LO") == "-17"
        assert ioc.caget("DEV:SO") == "saved text"
        assert ioc.caget("DEV:MO") == "Fault"
        assert ioc.caget("DEV:WO.NORD") == "3"
        assert ioc.caget("DEV:WO").split()[1:4] == ["1.5", "2.5", "3.5"]
        assert ioc.caget("DEV:LSO", "-S") == yaml.safe_load(PSI_FILE)["DEV:LSO"]
        ctx = pva_context(ioc)
        try:
            assert ctx.get("DEV:LO", timeout=5)["value"] == -17
            assert ctx.get("DEV:LSO", timeout=5)["value"].startswith("a long string")
        finally:
            ctx.close()
        ioc.caput("DEV:LO", "18")
        saved = saved_after_stop(ioc, tmp_path)
    # Written back the way pythonSoftIOC reads it: the same keys and types.
    want = yaml.safe_load(PSI_FILE)
    want["DEV:LO"] = 18
    for key in ("DEV:BOTH", "DEV:BOTH.LOPR", "DEV:BOTH.EGU", "DEV:CONTEXT",
                "DEV:CONTEXT.LOPR", "DEV:OWN", "DEV:FIELD.EGU"):
        want[key] = saved[key]
    assert saved == want
    text = (state / "dev.softsav").read_text()
    assert "DEV:WO: [1.5, 2.5, 3.5]" in text
    assert "DEV:AO.DRVH: '60'" in text
    assert "{" not in text                      # YAML lines, not JSON
    # the pythonSoftIOC file found at start is kept as it was
    backups = list(state.glob("dev.softsav.2*"))
    assert [b.read_text() for b in backups] == [PSI_FILE]


def test_context_and_keyword_fields_combine(tmp_path):
    with start(tmp_path) as ioc:
        saved = saved_after_stop(ioc, tmp_path)
    keys = {k for k in saved if k.split(".")[0] in
            ("DEV:BOTH", "DEV:NONE", "DEV:CONTEXT", "DEV:OWN", "DEV:FIELD")}
    assert keys == {"DEV:BOTH", "DEV:BOTH.LOPR", "DEV:BOTH.EGU",     # context + keyword
                    "DEV:CONTEXT", "DEV:CONTEXT.LOPR",               # context alone
                    "DEV:OWN",                                      # Autosave(False)
                    "DEV:FIELD.EGU"}                                # a single field name
    assert saved["DEV:BOTH"] == 4.0 and saved["DEV:BOTH.LOPR"] == "0"


@pytest.mark.parametrize("content", [
    b"DEV:AO: [unclosed\n", b"{\"DEV:AO\": {\"VAL\": 1}", b"\xff\xfe not text",
    b"just a scalar\n", b""])
def test_unreadable_file_is_kept_never_overwritten(tmp_path, content):
    state = tmp_path / "state"
    state.mkdir()
    (state / "dev.softsav").write_bytes(content)
    with start(tmp_path) as ioc:
        assert ioc.caget("DEV:AO") == "1"               # built-in value
        ioc.caput("DEV:AO", "9")
        deadline = time.monotonic() + 5
        while (state / "dev.softsav").read_bytes() == content and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ioc.stop() == 0
    out = ioc.output()
    assert "dev.softsav is unreadable" in out and "it is kept as dev.softsav.unreadable-" in out
    kept = list(state.glob("dev.softsav.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert yaml.safe_load((state / "dev.softsav").read_text())["DEV:AO"] == 9.0


def test_single_backup_without_timestamps(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "dev.softsav").write_text(PSI_FILE)
    with start(tmp_path, backups="single") as ioc:
        assert ioc.caget("DEV:AO") == "42.5"
        assert ioc.stop() == 0
    assert (state / "dev.softsav.bu").read_text() == PSI_FILE
    assert not list(state.glob("dev.softsav.2*"))


def test_old_pythonioc_json_is_read(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "dev.softsav").write_text(
        '{"DEV:AO": {"VAL": 1e-05, "DRVH": "70"}, "DEV:SO": {"VAL": "from json"}}')
    with start(tmp_path) as ioc:
        assert float(ioc.caget("DEV:AO", "-g6")) == 1e-05
        assert ioc.caget("DEV:AO.DRVH") == "70"
        assert ioc.caget("DEV:SO") == "from json"
        saved = saved_after_stop(ioc, tmp_path)
    assert saved["DEV:AO"] == 1e-05 and saved["DEV:SO"] == "from json"
