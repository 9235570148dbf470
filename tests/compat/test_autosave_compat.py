"""Autosave files move both ways between pythonSoftIOC and pythonIOC: its
YAML ``.softsav`` is restored, ours is written in the same layout, a file we
cannot read is kept, and ``with Autosave([...])`` fields add to a record's
own ``autosave=[...]`` as pythonSoftIOC documents.

The last two tests run the real pythonSoftIOC 4.7.2 (PyPI ``softioc``) in its
own virtualenv, built once and kept outside the repository (see
:func:`psi_python`): a file our IOC saved is restored by pythonSoftIOC's, and
one pythonSoftIOC saved is restored by ours.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from pathlib import Path

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
    builder.longStringOut("LSO", initial_value="built-in long", length=80, autosave=True)
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


# --- Against the real pythonSoftIOC 4.7.2 -----------------------------------

PSI_VERSION = "4.7.2"
PSI_CHECK = "from softioc import asyncio_dispatcher, autosave, builder, softioc"


def psi_venv() -> Path:
    """Where pythonSoftIOC's virtualenv is kept: outside the repository (the
    system's temporary directory, or $PYTHONIOC_PEER_VENVS), one per version
    and Python, so the suite builds it once per machine."""
    root = os.environ.get("PYTHONIOC_PEER_VENVS") or Path(tempfile.gettempdir()) / \
        "pythonioc-peer-venvs"
    return Path(root) / f"softioc-{PSI_VERSION}-py{sys.version_info[0]}.{sys.version_info[1]}"


def _imports(python: Path) -> bool:
    return python.exists() and subprocess.run(
        [str(python), "-c", PSI_CHECK], capture_output=True, timeout=120).returncode == 0


@pytest.fixture(scope="module")
def psi_python() -> str:
    """The interpreter of a virtualenv with pythonSoftIOC 4.7.2 (and only what
    it requires: no cothread, so its IOCs use the asyncio dispatcher)."""
    where = psi_venv()
    python = where / "bin" / "python"
    where.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{where}.lock", "w") as lock:            # one build at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (where / "installed").exists() and _imports(python):
            return str(python)
        venv.EnvBuilder(clear=True, with_pip=True).create(where)
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
        try:
            pip = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", f"softioc=={PSI_VERSION}"],
                capture_output=True, text=True, env=env, timeout=300)
            failed = pip.returncode != 0
            why = " | ".join((pip.stderr or pip.stdout).strip().splitlines()[-2:])
        except subprocess.TimeoutExpired:
            failed, why = True, "timed out after 300 s"
        if failed:
            pytest.skip(f"pip install softioc=={PSI_VERSION} must reach PyPI ({why})")
        assert _imports(python), f"pythonSoftIOC {PSI_VERSION} installed in {where} " \
                                 "but does not import"
        (where / "installed").write_text(f"softioc=={PSI_VERSION}\n")
    return str(python)


# One application for both: pythonSoftIOC 4.7.2's documented API.
CROSS_IOC = textwrap.dedent('''
    import sys
    from softioc import asyncio_dispatcher, autosave, builder, softioc
    autosave.configure(sys.argv[1], "cross", 0.2)
    builder.SetDeviceName("X")
    builder.aOut("AO", initial_value=1.0, DRVH=100, EGU="V", autosave=["VAL", "DRVH", "EGU"])
    ai = builder.aIn("AI", initial_value=2.0, autosave=True)
    builder.longOut("LO", initial_value=3, autosave=True)
    builder.boolOut("BO", ZNAM="Off", ONAM="On", initial_value=0, autosave=True)
    builder.stringOut("SO", initial_value="built-in", autosave=True)
    builder.mbbOut("MO", "Off", "On", "Fault", initial_value=0, autosave=True)
    builder.WaveformOut("WO", [0.0, 0.0, 0.0, 0.0], autosave=True)
    builder.longStringOut("LSO", initial_value="built-in long", length=80, autosave=True)
    with autosave.Autosave(["VAL", "LOPR"]):
        builder.aOut("CTX", initial_value=4.0)
    builder.LoadDatabase()
    softioc.iocInit(asyncio_dispatcher.AsyncioDispatcher())
    package = sys.modules["softioc"]
    print("IMPLEMENTATION", getattr(package, "__version__", "?"), package.__file__, flush=True)
    softioc.interactive_ioc(globals())
''')

# (pv, caput options, value put, what caget -t then shows); X:AI is an input
# record, set from its IOC's shell.
LONG_A = "a long string saved by pythonIOC, longer than forty characters"
LONG_B = "a long string saved by pythonSoftIOC 4.7.2, also over forty"
VALUES_A = [("X:AO", (), "42.5", "42.5"), ("X:AO.DRVH", (), "60", "60"),
            ("X:AO.EGU", (), "mA", "mA"), ("X:LO", (), "-17", "-17"), ("X:BO", (), "1", "On"),
            ("X:SO", (), "saved text", "saved text"), ("X:MO", (), "2", "Fault"),
            ("X:WO", ("-a",), "3 1.5 2.5 3.5", "3 1.5 2.5 3.5"),
            ("X:LSO", ("-S",), LONG_A, LONG_A), ("X:CTX", (), "5.5", "5.5"),
            ("X:CTX.LOPR", (), "-3", "-3")]
VALUES_B = [("X:AO", (), "12.25", "12.25"), ("X:AO.DRVH", (), "80", "80"),
            ("X:AO.EGU", (), "kV", "kV"), ("X:LO", (), "99", "99"), ("X:BO", (), "1", "On"),
            ("X:SO", (), "from pythonSoftIOC", "from pythonSoftIOC"),
            ("X:MO", (), "1", "On"), ("X:WO", ("-a",), "2 9.5 8.5", "2 9.5 8.5"),
            ("X:LSO", ("-S",), LONG_B, LONG_B), ("X:CTX", (), "6.5", "6.5"),
            ("X:CTX.LOPR", (), "-4", "-4")]


def run_cross(tmp_path: Path, python: str | None) -> IOCProcess:
    """CROSS_IOC on ``tmp_path/state``: ours (python None) or pythonSoftIOC's."""
    script = tmp_path / "cross_ioc.py"
    script.write_text(CROSS_IOC)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    if python is None:
        return IOCProcess([str(script), str(state)], wait_for="X:AO")
    # Nothing of this repository on its path (PYTHONPATH); the loopback
    # environment and its own ports come from IOCProcess, as for ours.
    return IOCProcess([python, "-s", str(script), str(state)], python=False, wait_for="X:AO",
                      env={"PYTHONPATH": "", "PYTHONNOUSERSITE": "1"})


def change(ioc: IOCProcess, values: list[tuple[str, tuple[str, ...], str, str]],
           ai: float) -> None:
    for pv, options, value, _ in values:
        result = ioc.caput(pv, *value.split(" ") if options == ("-a",) else (value,),
                           options=options)
        assert result.returncode == 0, result.stdout
    ioc.send(f"ai.set({ai})")
    ioc.wait_value("X:AI", str(ai))


def check(ioc: IOCProcess, values: list[tuple[str, tuple[str, ...], str, str]],
          ai: float) -> dict[str, str]:
    """{pv: (caget -t) shown, wanted} of each value that is not as wanted."""
    shown = {pv: ioc.caget(pv, *([] if options == ("-a",) else list(options)))
             for pv, options, _, _ in values}
    nord = ioc.caget("X:WO.NORD")
    shown["X:WO"] = " ".join([nord, *ioc.caget("X:WO").split()[1:1 + int(nord)]])
    shown["X:AI"] = ioc.caget("X:AI")
    want = {pv: after for pv, _, _, after in values}
    want["X:AI"] = str(ai)
    return {pv: (shown[pv], want[pv]) for pv in want if shown[pv] != want[pv]}


def stop(ioc: IOCProcess) -> str:
    assert ioc.stop() == 0, ioc.output()
    out = ioc.output()
    assert "Traceback" not in out and "Exception" not in out, out
    return out


# Fields other than VAL that CROSS_IOC saves, with their built-in values.
# pythonSoftIOC 4.7.2 saves them but restores none, from any file (its own
# included): its restore assigns them as attributes of a Python object.
PSI_UNRESTORED = {"X:AO.DRVH": "100", "X:AO.EGU": "V", "X:CTX.LOPR": "0"}


@pytest.mark.timeout(420)
def test_file_saved_here_is_restored_by_pythonsoftioc(tmp_path, psi_python):
    sav = tmp_path / "state" / "cross.softsav"
    with run_cross(tmp_path, None) as ours:
        change(ours, VALUES_A, 7.25)
        stop(ours)
    saved = yaml.safe_load(sav.read_text())
    assert saved["X:AO"] == 42.5 and saved["X:AO.DRVH"] == "60" and saved["X:AI"] == 7.25
    with run_cross(tmp_path, psi_python) as theirs:
        assert f"IMPLEMENTATION {PSI_VERSION} {psi_venv()}" in theirs.output()
        wrong = check(theirs, VALUES_A, 7.25)
        assert wrong == {pv: (built_in, next(v[3] for v in VALUES_A if v[0] == pv))
                         for pv, built_in in PSI_UNRESTORED.items()}
        # Holding the same values (its unrestored fields put back, and one
        # change so that it saves), pythonSoftIOC writes the file we wrote.
        for pv, options, value, _ in VALUES_A:
            if pv in PSI_UNRESTORED:
                theirs.caput(pv, value, options=options)
        theirs.caput("X:LO", "-18")
        stop(theirs)
    assert yaml.safe_load(sav.read_text()) == dict(saved, **{"X:LO": -18})


@pytest.mark.timeout(420)
def test_file_saved_by_pythonsoftioc_is_restored_here(tmp_path, psi_python):
    with run_cross(tmp_path, psi_python) as theirs:
        assert f"IMPLEMENTATION {PSI_VERSION} {psi_venv()}" in theirs.output()
        change(theirs, VALUES_B, -1.5)
        stop(theirs)
    saved = yaml.safe_load((tmp_path / "state" / "cross.softsav").read_text())
    assert saved["X:AO"] == 12.25 and saved["X:AO.EGU"] == "kV" and saved["X:MO"] == 1
    with run_cross(tmp_path, None) as ours:
        assert "IMPLEMENTATION" in ours.output() and str(psi_venv()) not in ours.output()
        assert check(ours, VALUES_B, -1.5) == {}           # fields too
        stop(ours)
