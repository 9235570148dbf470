"""Record handles stay small (no epicsdbbuilder handle or __dict__ kept per
input record) and still make links to their records for other records' fields."""

import subprocess
import sys
import time

from softioc.testing import IOCProcess

from .conftest import IOCS


def wait_value(ioc: IOCProcess, pv: str, expected: float, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = ioc.caget(pv)
        if float(got) == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pv} is {got}, expected {expected}")
        time.sleep(0.05)


def test_links_from_record_handles():
    with IOCProcess([str(IOCS / "links_ioc.py")], wait_for="LNK:SUM") as ioc:
        ioc.wait_for_pv("LNK:LATE")
        ioc.caput("LNK:SRC", "5")
        wait_value(ioc, "LNK:SUM", 15.0)         # INPA=src("CP") follows the put
        assert ioc.caget("LNK:SUM.INPA").split() == ["LNK:SRC", "CP", "NMS"]
        assert ioc.caget("LNK:TWICE.INPA").split()[0] == "LNK:SRC.VAL"
        ioc.caput("LNK:FWD", "1")
        wait_value(ioc, "LNK:CNT", 1.0)          # FLNK from a builder record
        assert ioc.stop() == 0
        # the run-time record's link names the spare it was made from
        line = next(x for x in ioc.output().splitlines() if x.startswith("READY"))
        assert line.split()[1:3] == ["<InRecord", "LNK:LATE"]
        assert "SPARE_aIn" in line.split()[4] and line.split()[5] == "CP"


def test_input_record_has_no_instance_dict():
    from softioc._record import InRecord, Record

    assert "__slots__" in Record.__dict__
    rec = InRecord("ai", "X:NODICT", None)
    assert rec.__dict__ == {}       # (made empty on request: nothing was stored there)
    assert rec("CP").__class__.__name__ == "_Link"
    assert str(rec.VAL).startswith("X:NODICT.VAL")


def fresh_python_words(code: str) -> list[str]:
    """What ``code`` prints, split into words, run by a fresh interpreter
    (what a new process imports)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True).stdout.split()


def test_import_does_not_load_setuptools():
    """The wheels' library paths come without setuptools (20 MB resident);
    setuptools_dso itself still imports whole afterwards."""
    code = ("import sys; import softioc.builder, softioc.softioc; "
            "print('setuptools' in sys.modules, 'setuptools_dso' in sys.modules); "
            "import setuptools_dso, setuptools_dso.runtime as r; "
            "print(setuptools_dso.find_dso is r.find_dso, hasattr(setuptools_dso, 'build_dso'))")
    assert fresh_python_words(code) == ["False", "False", "True", "True"]


def test_scalar_records_do_not_import_numpy():
    """numpy (16 MB, 80 ms) is imported when arrays first need it, not by an
    IOC of scalar records; a waveform then gets real numpy arrays."""
    code = ("import sys; from softioc import builder, softioc; "
            "r = builder.aOut('X:A', 1.5, EGU='mA'); s = builder.stringIn('X:S', 'a'); "
            "builder.LoadDatabase(); print('numpy' in sys.modules); "
            "w = builder.WaveformIn('X:W', [1, 2, 3]); print('numpy' in sys.modules, "
            "type(w.get()).__name__, w.dtype)")
    assert fresh_python_words(code) == ["False", "True", "ndarray", "int32"]
