"""PVA-only PVs (softioc.pva.PV, Image, Table) on the IOC's own PV Access
server, beside its records: read, written and monitored by p4p and the C
pvget/pvput/pvmonitor tools; made and closed while the IOC runs; bad input
refused with a reason, the IOC serving on."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from softioc.testing import IOCProcess, monitor, pva_context, wait_until

pytest.importorskip("p4p", reason="pip install p4p (in the test extra)")
from p4p.client.thread import RemoteError  # noqa: E402

IOCS = Path(__file__).parent / "iocs"
_marks = itertools.count()


@pytest.fixture(scope="module")
def putlog_file(tmp_path_factory: Any) -> Path:
    return Path(tmp_path_factory.mktemp("putlog")) / "puts.jsonl"


@pytest.fixture(scope="module")
def ioc(putlog_file: Path) -> Iterator[IOCProcess]:
    with IOCProcess([str(IOCS / "pvs_ioc.py"), str(putlog_file)],
                    wait_for="PVS:READY") as started:
        yield started


def shell(ioc: IOCProcess, code: str) -> str:
    """Run code in the IOC's shell: "OK" or "RAISED Type: message"."""
    mark = f"MARK{next(_marks)}"
    ioc.send(f"print({mark!r}, _try({code!r}), flush=True)")
    wait_until(lambda: f"{mark} " in ioc.output(), timeout=10, what=f"{code!r} in the shell")
    line = next(x for x in ioc.output().splitlines() if x.startswith(f"{mark} "))
    return line[len(mark) + 1:]


def pvtool(ioc: IOCProcess, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return ioc.run_tool(tool, "-w", "5", *args, check=False, timeout=30)


def test_types_and_metadata(ioc: IOCProcess) -> None:
    raw = pva_context(ioc, nt=False)
    try:
        num = raw.get("PVS:NUM", timeout=5)
        count = raw.get("PVS:COUNT", timeout=5)
        flag, text = raw.get("PVS:FLAG", timeout=5), raw.get("PVS:TEXT", timeout=5)
        mode, arr = raw.get("PVS:MODE", timeout=5), raw.get("PVS:ARR", timeout=5)
        names = raw.get("PVS:NAMES", timeout=5)
    finally:
        raw.close()
    assert num.getID() == "epics:nt/NTScalar:1.0" and num.value == 1.5
    assert (num.display.units, num.display.precision, num.display.description) == (
        "mm", 3, "a number")
    assert (num.display.limitLow, num.display.limitHigh) == (0, 10)
    assert (num.control.limitLow, num.control.limitHigh) == (0, 5)
    assert num.timeStamp.secondsPastEpoch > 1.7e9
    assert count.type()["value"] == "l" and count.value == 3
    assert flag.value is True and text.value == "hello"
    assert mode.getID() == "epics:nt/NTEnum:1.0"
    assert (mode.value.index, list(mode.value.choices)) == (0, ["Off", "On", "Auto"])
    assert arr.getID() == "epics:nt/NTScalarArray:1.0" and arr.value.dtype == np.int32
    assert arr.value.tolist() == [0, 1, 2, 3]
    assert list(names.value) == ["a", "b"]


def test_served_beside_the_records(ioc: IOCProcess, pva_nt: Any) -> None:
    """One server, one port: the record over CA and PVA, the PVs over PVA."""
    assert float(ioc.caget("PVS:REC")) == 1.0
    assert pva_nt.get("PVS:REC", timeout=5) == 1.0
    out = pvtool(ioc, "pvget", "PVS:NUM", "PVS:REC")
    assert out.returncode == 0 and "PVS:NUM" in out.stdout and "1.5" in out.stdout, out.stdout
    ca = ioc.run_tool("caget", "-w", "1", "PVS:NUM", check=False, timeout=30)
    assert ca.returncode != 0, ca.stdout                # PV Access only


def test_on_put_runs_in_the_dispatcher_and_may_refuse(ioc: IOCProcess, pva_nt: Any) -> None:
    pva_nt.put("PVS:COUNT", 5, wait=True, timeout=5)
    assert pva_nt.get("PVS:COUNT", timeout=5) == 5
    wait_until(lambda: "COUNT put 5" in ioc.output(), timeout=5, what="on_put ran")
    with pytest.raises(RemoteError, match="refused by on_put"):
        pva_nt.put("PVS:COUNT", 13, wait=True, timeout=5)
    assert pva_nt.get("PVS:COUNT", timeout=5) == 5
    with pytest.raises(RemoteError, match="ValueError: cannot take 2.5"):
        pva_nt.put("PVS:FAIL", 2.5, wait=True, timeout=5)
    assert pva_nt.get("PVS:FAIL", timeout=5) == 0.0
    # an async on_put; an enum written by choice and by index
    pva_nt.put("PVS:MODE", "Auto", wait=True, timeout=5)
    assert pva_nt.get("PVS:MODE", timeout=5).raw.value.index == 2
    assert "MODE put 2" in ioc.output()
    with pytest.raises(RemoteError, match="out of range"):
        pva_nt.put("PVS:MODE", {"value.index": 65538}, wait=True, timeout=5)
    assert pva_nt.get("PVS:MODE", timeout=5).raw.value.index == 2


def test_writes_without_on_put_are_stored_or_refused(ioc: IOCProcess, pva_nt: Any) -> None:
    pva_nt.put("PVS:NUM", 2.25, wait=True, timeout=5)
    assert pva_nt.get("PVS:NUM", timeout=5) == 2.25
    pva_nt.put("PVS:ARR", np.array([7, 8], dtype=np.int32), wait=True, timeout=5)
    assert pva_nt.get("PVS:ARR", timeout=5).tolist() == [7, 8]
    pva_nt.put("PVS:NAMES", ["x", "y", "z"], wait=True, timeout=5)
    assert list(pva_nt.get("PVS:NAMES", timeout=5)) == ["x", "y", "z"]
    with pytest.raises(RemoteError):
        pva_nt.put("PVS:RO", 8, wait=True, timeout=5)      # not writeable
    assert pva_nt.get("PVS:RO", timeout=5) == 7
    out = pvtool(ioc, "pvput", "PVS:TEXT", "from pvput")
    assert out.returncode == 0, out.stdout
    assert pva_nt.get("PVS:TEXT", timeout=5) == "from pvput"
    out = pvtool(ioc, "pvput", "PVS:RO", "9")
    assert out.returncode != 0 and pva_nt.get("PVS:RO", timeout=5) == 7, out.stdout


def test_post_from_python_reaches_monitors(ioc: IOCProcess, pva_nt: Any) -> None:
    with monitor(ioc, "PVS:COUNT", tool="pvmonitor") as mon:
        assert mon.stdout is not None
        assert "PVS:COUNT" in mon.stdout.readline()             # its first update
        assert shell(ioc, "count.post(42, severity=2, message='too many')") == "OK"
        value = pva_nt.get("PVS:COUNT", timeout=5)
        assert (value, value.severity, value.raw.alarm.message) == (42, 2, "too many")
    out = mon.stdout.read()
    assert "42" in out and "MAJOR" in out and "too many" in out, out
    assert shell(ioc, "flag.post(np.False_)") == "OK"
    assert not pva_nt.get("PVS:FLAG", timeout=5)
    assert shell(ioc, "count.post(43, timestamp=1e9)") == "OK"
    assert pva_nt.get("PVS:COUNT", timeout=5).raw.timeStamp.secondsPastEpoch == 1_000_000_000
    assert shell(ioc, "assert count.get() == 43") == "OK"


@pytest.mark.parametrize("code, error", [
    ("count.post(1.5)", "ValueError: PVS:COUNT: 1.5 is not a whole number"),
    ("count.post('7')", "TypeError: PVS:COUNT: an integer is needed"),
    ("count.post(2**63)", "ValueError: PVS:COUNT: 9223372036854775808 is out of range"),
    ("num.post('abc')", "TypeError: PVS:NUM: a number is needed"),
    ("flag.post(2)", "TypeError: PVS:FLAG: a bool"),
    ("text.post(5)", "TypeError: PVS:TEXT: a str is needed"),
    ("mode.post('Maybe')", "ValueError: PVS:MODE: 'Maybe' is not one of"),
    ("mode.post(3)", "ValueError: PVS:MODE: 3 is out of range"),
    ("arr.post([1.5, 2])", "ValueError: PVS:ARR: the values do not fit int32 exactly"),
    ("arr.post([[1, 2]])", "ValueError: PVS:ARR: a 1-D array is needed"),
    ("arr.post([2**40])", "ValueError: PVS:ARR: the values do not fit int32 exactly"),
    ("count.post(1, severity=5)", "ValueError: severity must be 0"),
    ("num.post(2**53 + 1)", "ValueError: PVS:NUM: 9007199254740993 has no exact double"),
    ("num.post(10**400)", "ValueError: PVS:NUM: 1000"),
    ("u8.post([-5, 1])", "ValueError: PVS:U8: the values do not fit uint8 exactly"),
    ("u8.post(np.array([-1], np.int8))", "ValueError: PVS:U8: the values do not fit uint8"),
    ("u8.post([256])", "ValueError: PVS:U8: the values do not fit uint8 exactly"),
    ("farr.post([2**53 + 1])", "ValueError: PVS:FARR: the values do not fit float64 exactly"),
    ("farr.post(np.array([2**63], np.uint64) + 1)", "ValueError: PVS:FARR: the values do not"),
    ("img.post(np.zeros((6, 4), np.uint16))", "ValueError: PVS:IMG: shape (6, 4)"),
    ("img.post(np.zeros((4, 6), np.float64))", "TypeError: PVS:IMG: dtype float64"),
    ("img.post([[0] * 6] * 4)", "TypeError: PVS:IMG: a numpy array is needed"),
    ("img.post(np.zeros((4, 6), np.uint16), attributes={'a': [1]})", "TypeError: PVS:IMG: attr"),
    ("tbl.post({'name': ['a'], 'x': [1.0, 2.0], 'n': [1]})", "ValueError: PVS:TBL: columns of"),
    ("tbl.post({'name': ['a'], 'x': [1.0]})", "ValueError: PVS:TBL: columns"),
    ("tbl.post({'name': [1], 'x': [1.0], 'n': [1]})", "TypeError: PVS:TBL: column 'name'"),
    ("tbl.post({'name': ['a'], 'x': [1.0], 'n': [0.5]})", "ValueError: PVS:TBL: column 'n'"),
    ("pva.PV('REC', 1)", "RecordExistsError: record 'PVS:REC' already exists"),
    ("pva.PV('GRP', 1)", "ValueError: 'PVS:GRP' is already a PV Access group"),
    ("pva.PV('NUM', 1)", "RecordExistsError: 'PVS:NUM' is already a PV Access PV"),
    ("pva.PV('BAD NAME', 1)", "ValueError: record name 'PVS:BAD NAME' has a character"),
    ("pva.PV('X' * 80, 1)", "ValueError: record name"),
    ("pva.PV('OBJ', object())", "TypeError: no PV Access type"),
    ("pva.Image('I2', dtype='complex64', shape=(2, 2))", "TypeError: PVS:I2: dtype must be"),
    ("pva.Image('I2', dtype='uint8', shape=(2, 2, 4))", "ValueError: PVS:I2: shape must be"),
    ("pva.Table('T2', {'a b': str})", "ValueError: PVS:T2: column name"),
    ("pva.Table('T2', {'a': list})", "TypeError: PVS:T2: column 'a' type"),
])
def test_bad_input_is_a_clear_error(ioc: IOCProcess, pva_nt: Any, code: str, error: str) -> None:
    before = {name: pva_nt.get(name, timeout=5) for name in ("PVS:COUNT", "PVS:ARR", "PVS:TBL")}
    assert shell(ioc, code).startswith(f"RAISED {error}")
    after = {name: pva_nt.get(name, timeout=5) for name in before}
    assert str(after) == str(before)        # nothing changed
    assert ioc.proc.poll() is None


def test_image_as_a_viewer_sees_it(ioc: IOCProcess, pva_nt: Any) -> None:
    shell(ioc, "frame = np.arange(24, dtype=np.uint16).reshape(4, 6) * 100")
    assert shell(ioc, "img.post(frame, attributes={'Exposure': 0.5, 'Camera': 'sim'})") == "OK"
    image = pva_nt.get("PVS:IMG", timeout=5)
    assert image.shape == (4, 6) and image.dtype == np.uint16
    assert image.tolist() == (np.arange(24).reshape(4, 6) * 100).tolist()
    raw = image.raw
    assert [d.size for d in raw.dimension] == [6, 4]            # innermost (width) first
    assert raw.codec.name == "" and raw.uncompressedSize == 48 and raw.compressedSize == 48
    first = raw.uniqueId
    attrs = {a.name: a.value for a in raw.attribute}
    assert attrs == {"ColorMode": 0, "Exposure": 0.5, "Camera": "sim"}
    assert raw.dataTimeStamp.secondsPastEpoch == raw.timeStamp.secondsPastEpoch > 1.7e9
    assert shell(ioc, "img.post(frame + 1)") == "OK"
    again = pva_nt.get("PVS:IMG", timeout=5)
    assert again.raw.uniqueId == first + 1 and int(again[0, 0]) == 1
    assert shell(ioc, "rgb.post(np.full((2, 3, 3), 9, np.uint8))") == "OK"
    color = pva_nt.get("PVS:RGB", timeout=5)
    assert color.shape == (2, 3, 3) and {a.name: a.value for a in color.raw.attribute} == {
        "ColorMode": 2}
    out = pvtool(ioc, "pvget", "PVS:IMG")
    assert out.returncode == 0 and "NTNDArray" in out.stdout, out.stdout


def test_table_with_string_columns(ioc: IOCProcess, pva_nt: Any) -> None:
    table = pva_nt.get("PVS:TBL", timeout=5)
    assert table.getID() == "epics:nt/NTTable:1.0"
    assert list(table.labels) == ["Name", "X (mm)", "N"]
    assert shell(ioc, "tbl.post({'name': ['a', 'b'], 'x': [1, 2.5], 'n': [3, 4]})") == "OK"
    value = pva_nt.get("PVS:TBL", timeout=5).value
    assert (list(value.name), value.x.tolist(), value.n.tolist()) == (
        ["a", "b"], [1.0, 2.5], [3, 4])
    pva_nt.put("PVS:TBL", {"value": {"name": ["c"], "x": [9.0], "n": [1]}}, wait=True, timeout=5)
    assert list(pva_nt.get("PVS:TBL", timeout=5).value.name) == ["c"]
    with pytest.raises(RemoteError, match="columns of different lengths"):
        pva_nt.put("PVS:TBL", {"value": {"name": ["c", "d"]}}, wait=True, timeout=5)
    with pytest.raises(RemoteError, match="labels are read-only"):
        pva_nt.put("PVS:TBL", {"labels": ["a", "b", "c"]}, wait=True, timeout=5)
    with pytest.raises(RemoteError, match="a put must write a column"):
        pva_nt.put("PVS:TBL", {"alarm.severity": 2}, wait=True, timeout=5)
    out = pvtool(ioc, "pvget", "PVS:TBL")
    assert out.returncode == 0 and '"X (mm)"' in out.stdout and "c" in out.stdout, out.stdout


def test_pvs_come_and_go_while_the_ioc_runs(ioc: IOCProcess, pva_nt: Any) -> None:
    assert shell(ioc, "late = pva.PV('LATE', 1.0, writeable=True)") == "OK"
    assert pva_nt.get("PVS:LATE", timeout=5) == 1.0
    out = pvtool(ioc, "pvinfo", "PVS:LATE")
    assert out.returncode == 0 and "double value" in out.stdout, out.stdout
    server = f"127.0.0.1:{ioc.env['EPICS_PVA_SERVER_PORT']}"
    listed = pvtool(ioc, "pvlist", server).stdout.split()
    assert "PVS:LATE" in listed and "PVS:REC" in listed, listed    # beside the records
    with monitor(ioc, "PVS:LATE", tool="pvmonitor") as mon:
        assert mon.stdout is not None
        assert "PVS:LATE" in mon.stdout.readline()              # its first update
        assert shell(ioc, "late.close()") == "OK"
    assert "disconnect" in mon.stdout.read().lower()           # clients see it go
    assert shell(ioc, "late.close()") == "OK"                   # twice: nothing more
    assert shell(ioc, "late.post(2.0)").startswith("RAISED RuntimeError: PVS:LATE: the PV was")
    with pytest.raises(TimeoutError):
        pva_nt.get("PVS:LATE", timeout=1)
    assert "PVS:LATE" not in pvtool(ioc, "pvlist", server).stdout.split()
    # the name is free again, for another type
    assert shell(ioc, "late = pva.PV('LATE', 'again')") == "OK"
    assert pva_nt.get("PVS:LATE", timeout=5) == "again"
    assert shell(ioc, "print(pva.served())") == "OK"
    assert "'PVS:LATE'" in ioc.output()
    assert shell(ioc, "late.close()") == "OK"


def test_access_security_and_the_put_log(ioc: IOCProcess, pva_nt: Any, putlog_file: Path) -> None:
    """The IOC's ACF covers these PVs as it covers records (asg=), and a
    put allowed under TRAPWRITE is in the put log, refused or not."""
    with pytest.raises(RemoteError, match="Put not permitted"):
        pva_nt.put("PVS:LOCKED", 2.0, wait=True, timeout=5)
    assert pva_nt.get("PVS:LOCKED", timeout=5) == 1.0
    assert shell(ioc, "count.post(20)") == "OK"                # not a client's: not logged
    pva_nt.put("PVS:COUNT", 21, wait=True, timeout=5)
    with pytest.raises(RemoteError, match="refused by on_put"):
        pva_nt.put("PVS:COUNT", 13, wait=True, timeout=5)

    def last_two() -> list[dict[str, Any]] | None:
        lines = putlog_file.read_text().splitlines() if putlog_file.exists() else []
        found = [json.loads(x) for x in lines if '"PVS:COUNT"' in x][-2:]
        return found if len(found) == 2 and found[-1]["refused"] else None

    logged = wait_until(last_two, timeout=10, what="the two puts in the put log")
    assert [(e["protocol"], e["field"], e["old"], e["new"], e["refused"]) for e in logged] == [
        ("pva", "value", "20", "21", False), ("pva", "value", "21", "21", True)], logged
    assert logged[0]["host"] == "127.0.0.1" and logged[0]["user"]
    assert not [e for e in putlog_file.read_text().splitlines() if "PVS:LOCKED" in e]


PVA_OFF = textwrap.dedent('''
    from softioc import builder, pva, softioc
    try:
        pva.PV("X", 1.0)
    except RuntimeError as e:
        print("REFUSED", e)
''')

PVA_OFF_AT_INIT = textwrap.dedent('''
    from softioc import builder, pva, softioc
    pva.PV("EARLY", 1.0)
    builder.LoadDatabase()
    try:
        softioc.iocInit(enable_pva=False)
    except RuntimeError as e:
        print("REFUSED", e)
''')


SAME_NAME = textwrap.dedent('''
    from softioc import builder, pva
    rec = builder.aIn("REC", 1.0)
    pva.PV("SAME", 1.0)
    try:
        pva.Group("SAME", {"r": rec})
    except ValueError as e:
        print("REFUSED", e)
''')


@pytest.mark.parametrize("script, env, refusal", [
    (PVA_OFF, {"PYTHONIOC_PVA": "NO"}, "PV Access is off in this IOC (PYTHONIOC_PVA=NO"),
    (PVA_OFF_AT_INIT, {}, "iocInit(): PV Access is off, but PVA-only PVs were made: EARLY"),
    (SAME_NAME, {}, "'SAME' is already a PV Access PV of this IOC"),
])
def test_refused_where_pva_is_off(tmp_path: Path, script: str, env: dict[str, str],
                                  refusal: str) -> None:
    path = tmp_path / "off.py"
    path.write_text(script)
    out = subprocess.run([sys.executable, str(path)], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=60)
    assert f"REFUSED {refusal}" in out.stdout, out.stdout + out.stderr


DISPATCH_IOC = textwrap.dedent('''
    import sys
    from softioc import builder, pva, softioc
    def on_put(value):
        print("ON_PUT", value, flush=True)
        return value < 100
    pv = pva.PV("DISP:X", 1, on_put=on_put)
    builder.longOut("DISP:READY", 0)
    builder.LoadDatabase()
    softioc.iocInit()        # the dispatcher PYTHONIOC_DISPATCHER names
    softioc.interactive_ioc(globals())
''')


@pytest.mark.parametrize("dispatcher", ["thread", "asyncio", "cothread"])
def test_on_put_in_every_dispatcher(tmp_path: Path, dispatcher: str) -> None:
    if dispatcher == "cothread":
        pytest.importorskip("cothread", reason="pip install cothread (in the test extra)")
    script = tmp_path / "dispatch_ioc.py"
    script.write_text(DISPATCH_IOC)
    with IOCProcess([str(script)], wait_for="DISP:READY",
                    env={"PYTHONIOC_DISPATCHER": dispatcher}) as ioc:
        context = pva_context(ioc)
        try:
            context.put("DISP:X", 42, wait=True, timeout=5)
            assert context.get("DISP:X", timeout=5) == 42
            with pytest.raises(RemoteError, match="refused by on_put"):
                context.put("DISP:X", 500, wait=True, timeout=5)
            assert context.get("DISP:X", timeout=5) == 42
        finally:
            context.close()
        # printed before each put completed; the reader thread may not have it yet
        wait_until(lambda: "ON_PUT 42" in ioc.output() and "ON_PUT 500" in ioc.output(),
                   timeout=5, what="both ON_PUT lines")


def test_posts_from_many_threads(ioc: IOCProcess, pva_nt: Any) -> None:
    """Four threads post 2,000 values each at once, with a monitor attached:
    the IOC keeps serving, and serves the last value posted."""
    code = ("import threading\n"
            "def _poster(k):\n"
            "    for i in range(2000):\n"
            "        num.post(k * 10000 + i)\n"
            "_threads = [threading.Thread(target=_poster, args=(k,)) for k in range(4)]\n"
            "[t.start() for t in _threads]; [t.join() for t in _threads]\n"
            "num.post(-1.0)")
    with monitor(ioc, "PVS:NUM", tool="pvmonitor", settle=1):
        assert shell(ioc, code) == "OK"
    assert pva_nt.get("PVS:NUM", timeout=5) == -1.0
    assert ioc.proc.poll() is None


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_stays_flat_over_create_close_cycles(ioc: IOCProcess, pva_nt: Any) -> None:
    """10,000 PVs made, served and closed one after another (after 1,000 to
    warm up): the IOC's resident memory grows by less than 4 MB."""
    cycle = ("for _i in range({n}):\n"
             "    _p = pva.PV('CYCLE', float(_i), writeable=True)\n"
             "    _p.post(_i + 0.5)\n"
             "    _p.close()")
    assert shell(ioc, cycle.format(n=1000)) == "OK"
    before = rss_kb(ioc.proc.pid)
    assert shell(ioc, cycle.format(n=10000)) == "OK"
    grown = rss_kb(ioc.proc.pid) - before
    print(f"RSS grew {grown} kB over 10,000 create/close cycles")
    assert grown < 4096, f"RSS grew {grown} kB"
    with pytest.raises(TimeoutError):
        pva_nt.get("PVS:CYCLE", timeout=1)                         # the last one is gone too
