"""pythonSoftIOC's observable behaviour, item by item, from its documentation
and its users' code: values and types before iocInit, the refusals and
exception classes its users' tests rely on, and what clients see after.

The in-process tests build records only (nothing is loaded or started);
the rest run ``iocs/observable_ioc.py`` and read it with real clients, the
CA tools and p4p.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import numpy as np
import pytest

from softioc import alarm, asyncio_dispatcher, builder, errors
from softioc.testing import IOCProcess, monitor

from .conftest import IOCS

# ---- before iocInit, in the test process ----------------------------------


@pytest.fixture
def clean():
    builder.ClearRecords()
    yield
    builder.ClearRecords()


@pytest.mark.parametrize("make, expected", [
    (builder.aIn, 0.0), (builder.aOut, 0.0), (builder.longIn, 0), (builder.longOut, 0),
    (builder.int64In, 0), (builder.int64Out, 0), (builder.boolIn, 0), (builder.boolOut, 0),
    (builder.stringIn, ""), (builder.stringOut, ""), (builder.Action, 0),
    (lambda name: builder.mbbIn(name, "a", "b"), 0),
    (lambda name: builder.mbbOut(name, "a", "b"), 0),
])
def test_get_without_initial_value_is_zero_of_the_type(clean, make, expected):
    value = make("OBS:NOVALUE").get()
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("make, given, expected", [
    (builder.aIn, 3, 3.0), (builder.aOut, True, 1.0), (builder.longIn, 3.0, 3),
    (builder.int64Out, np.int16(7), 7), (builder.boolIn, True, 1), (builder.boolOut, False, 0),
    (builder.stringIn, b"text", "text"), (builder.stringOut, "text", "text"),
])
def test_get_before_iocinit_has_the_type_of_get_after(clean, make, given, expected):
    value = make("OBS:TYPED", initial_value=given).get()
    assert value == expected and type(value) is type(expected)


def test_action_and_mbb_values_are_ints(clean):
    assert type(builder.Action("OBS:ACT", initial_value=True).get()) is int
    assert type(builder.mbbIn("OBS:MBB", "a", "b", initial_value=True).get()) is int


def test_string_waveform_is_a_list_of_str_before_iocinit(clean):
    assert builder.WaveformIn("OBS:WS", ["a", "b"]).get() == ["a", "b"]
    assert builder.WaveformOut("OBS:WMIX", ["a", 1, 2.5, None]).get() == ["a", "1", "2.5", "None"]


@pytest.mark.parametrize("make", [
    builder.aIn, builder.aOut, builder.longOut, builder.boolIn, builder.stringIn,
    builder.stringOut, builder.longStringIn, builder.Action,
    lambda name, **kw: builder.mbbOut(name, "a", "b", **kw),
    lambda name, **kw: builder.WaveformIn(name, length=3, **kw),
])
def test_initial_value_none_is_a_type_error(clean, make):
    with pytest.raises(TypeError, match="initial_value"):
        make("OBS:NONE", initial_value=None)


def test_positional_none_is_still_no_value(clean):
    """``aIn(name, None)``: pythonSoftIOC's LOPR=None, i.e. nothing given."""
    assert builder.aIn("OBS:POSNONE", None).get() == 0.0


def test_old_positional_hint_only_for_a_positional_value(clean):
    with pytest.raises(ValueError, match="in pythonSoftIOC it was LOPR"):
        builder.longIn("OBS:HINT1", 3.5)
    with pytest.raises(ValueError, match="cannot be the initial value") as info:
        builder.longIn("OBS:HINT2", initial_value=3.5)
    assert "pythonSoftIOC" not in str(info.value)


# (a call, the classes pythonSoftIOC users catch)
MISUSE = {
    "duplicate name": (lambda: (builder.aIn("OBS:DUP"), builder.aOut("OBS:DUP")),
                       (AssertionError, ValueError, errors.RecordExistsError)),
    "waveform without value or length": (lambda: builder.WaveformIn("OBS:W0"),
                                         (AssertionError, TypeError)),
    "empty waveform value": (lambda: builder.WaveformIn("OBS:WE", []),
                             (AssertionError, TypeError)),
    "too many elements": (lambda: builder.WaveformIn("OBS:WL", [1, 2, 3], length=2),
                          (AssertionError, ValueError, errors.ValueTooLongError)),
    "long string overflow": (lambda: builder.longStringIn("OBS:LS", "x" * 300, length=100),
                             (AssertionError, ValueError, errors.ValueTooLongError)),
    "text into a numeric waveform": (
        lambda: builder.WaveformIn("OBS:WN", length=3, datatype=float).set(["a"]),
        (ValueError, TypeError, errors.ValueKindError)),
    "get_field before iocInit": (lambda: builder.aIn("OBS:GF").get_field("VAL"),
                                 (AssertionError, RuntimeError, errors.NotRunningError)),
    "set_field before iocInit": (lambda: builder.aIn("OBS:SF").set_field("DESC", "x"),
                                 (AssertionError, RuntimeError, errors.NotRunningError)),
    "severity= with SEVR=": (lambda: builder.aIn("OBS:SV", severity=1, SEVR="MINOR"),
                             (AssertionError, TypeError)),
    "status= with STAT=": (lambda: builder.aIn("OBS:ST", status=1, STAT="HIGH"),
                           (AssertionError, TypeError)),
}


@pytest.mark.parametrize("what", MISUSE)
def test_misuse_is_refused_with_both_classes(clean, what):
    call, classes = MISUSE[what]
    for cls in classes:
        builder.ClearRecords()
        with pytest.raises(cls):
            call()


def test_set_field_before_iocinit_changes_nothing(clean):
    record = builder.aIn("OBS:SFKEEP", DESC="kept")
    with pytest.raises(errors.NotRunningError, match="assign the field"):
        record.set_field("DESC", "changed")
    assert record.DESC.Value() == "kept"


def test_asyncio_dispatcher_refuses_a_loop_that_is_not_running():
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="not running"):
            asyncio_dispatcher.AsyncioDispatcher(loop)
    finally:
        loop.close()


def test_asyncio_dispatcher_takes_the_running_loop():
    async def make():
        return asyncio_dispatcher.AsyncioDispatcher(asyncio.get_running_loop())
    assert asyncio.run(make()).loop is not None


def test_str_is_the_name_repr_is_rich(clean):
    record = builder.aIn("OBS:NAME")
    assert str(record) == f"{record}" == "OBS:NAME"
    assert f"{record}.DESC" == "OBS:NAME.DESC"
    assert repr(record) == "<InRecord OBS:NAME (ai)>"


# ---- after iocInit, with real clients --------------------------------------


@pytest.fixture(scope="module")
def ioc():
    with IOCProcess([str(IOCS / "observable_ioc.py")], wait_for="OBS:PRE") as ioc:
        yield ioc


@pytest.fixture(scope="module")
def pva(ioc):
    from softioc.testing import pva_context
    ctx = pva_context(ioc, nt=False)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def pre(pva):
    return json.loads(pva.get("OBS:PRE", timeout=5)["value"])


SCALARS = ["AI", "AO", "LI", "LO", "I64O", "BI", "BO", "MBBO", "ACT", "AI3", "LI3",
           "BOT", "ACTT", "TAKEN"]


@pytest.mark.parametrize("name", SCALARS)
def test_clients_read_what_get_gave_before_iocinit(ioc, pva, pre, name):
    kind, value = pre[name]
    assert kind == ("float" if name in ("AI", "AO", "AI3", "TAKEN") else "int")
    ca = ioc.caget(f"OBS:{name}", "-n", "-g17")
    assert float(ca) == value
    got = pva.get(f"OBS:{name}", timeout=5)["value"]
    got = got["index"] if hasattr(got, "keys") else got
    assert got == value


@pytest.mark.parametrize("name, text", [("SI", ""), ("SO", ""), ("SIB", "bytes")])
def test_clients_read_the_strings_get_gave(ioc, pva, pre, name, text):
    assert pre[name] == ["str", text]
    assert ioc.caget(f"OBS:{name}") == text
    assert pva.get(f"OBS:{name}", timeout=5)["value"] == text


@pytest.mark.parametrize("name, items", [("WS", ["a", "b"]), ("WMIX", ["a", "1", "2.5"])])
def test_string_waveforms_are_lists_of_str_both_sides(ioc, pva, pre, name, items):
    assert pre[name] == ["list", items]
    assert ioc.caget(f"OBS:{name}").split() == [str(len(items)), *items]
    assert list(pva.get(f"OBS:{name}", timeout=5)["value"]) == items


def test_builder_takes_over_a_record_of_a_db_file(ioc, pva):
    """The .db file's fields stay, the builder's value and device support win."""
    assert ioc.caget("OBS:TAKEN.DTYP") == "Python"
    assert ioc.caget("OBS:TAKEN.DESC") == "from observable.db"
    assert ioc.caget("OBS:TAKEN.EGU") == "mm"
    assert ioc.caget("OBS:TAKEN.PREC") == "2"
    assert pva.get("OBS:TAKEN", timeout=5)["value"] == 4.5
    ioc.send("records['TAKEN'].set(6.25)")
    ioc.wait_value("OBS:TAKEN", "6.25")
    assert pva.get("OBS:TAKEN", timeout=5)["value"] == 6.25


def test_str_of_a_record_in_a_running_ioc(ioc):
    assert "STR OBS:AI FMT   OBS:AI REPR <InRecord OBS:AI (ai)>" in ioc.output()


@pytest.mark.parametrize("name", ["AO", "BO", "LO", "I64O", "SO", "MBBO", "ACT"])
def test_set_alarm_shows_on_outputs_never_written(ioc, pva, name):
    """An output made without a value: set_alarm's alarm is what clients see
    (not UDF's INVALID), over CA and PVA."""
    ioc.send(f"records[{name!r}].set_alarm(alarm.MINOR_ALARM, alarm.HIGH_ALARM)")
    ioc.wait_value(f"OBS:{name}.SEVR", "MINOR")
    assert ioc.caget(f"OBS:{name}.STAT") == "HIGH"
    assert ioc.caget(f"OBS:{name}.UDF") == "0"
    got = pva.get(f"OBS:{name}", timeout=5)["alarm"]
    assert (got["severity"], got["status"]) == (alarm.MINOR_ALARM, 1)   # status: DEVICE


def _stamp(line: str) -> float:
    """The time (s, local) camonitor printed on ``line``."""
    found = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d+)", line)
    assert found, line
    return time.mktime(time.strptime(found[1], "%Y-%m-%d %H:%M:%S")) + float(found[2])


@pytest.mark.parametrize("name", ["TS_OUT", "TS_IN"])
def test_set_without_processing_posts_a_new_timestamp(ioc, pva, name):
    """set(value, process=False): monitors (CA and PVA) get the value with
    its own time, not the time of the value before."""
    pv = f"OBS:{name}"
    value = float(len(ioc.output()) % 1000 + 10)
    with monitor(ioc, pv) as mon:
        first = mon.stdout.readline()
        time.sleep(1.1)         # a second later: a stale time stamp cannot pass
        sent = time.time()
        ioc.send(f"{name.lower()}.set({value}, process=False)")
        update = mon.stdout.readline()
    assert f" {value:g}" in update, (first, update)
    assert _stamp(update) - _stamp(first) > 1.0, (first, update)
    after = pva.get(pv, timeout=5)
    assert after["value"] == value
    stamp = after["timeStamp"]["secondsPastEpoch"] + after["timeStamp"]["nanoseconds"] * 1e-9
    assert sent - 1.0 < stamp < sent + 5.0      # the time of the set(), not of before


def test_alarm_set_during_a_blocking_put_comes_in_its_one_event(ioc):
    """set(get(), process=False, severity=...) in a blocking on_update (as
    FastCS does): each put gives monitors one event, with the new alarm, as
    in pythonSoftIOC (not the old alarm first, then the new one)."""
    with monitor(ioc, "OBS:BUSY") as mon:
        mon.stdout.readline()                       # the value on connecting
        for expected in ("MAJOR", ""):
            assert "New :" in ioc.caput("OBS:BUSY", "1").stdout
            line = mon.stdout.readline()
            assert ("MAJOR" in line) == bool(expected), line
    assert mon.stdout.read().strip() == ""          # nothing more: one event per put


def test_dbl_with_a_record_type_lists_that_type(ioc):
    ioc.send("print('DBL-START'); softioc.dbl('ai'); print('DBL-END')")
    deadline = time.monotonic() + 5
    while "DBL-END" not in ioc.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    out = ioc.output()
    listed = out[out.rindex("DBL-START"):out.rindex("DBL-END")].split()[1:]
    assert sorted(listed) == ["OBS:AI", "OBS:AI3", "OBS:TAKEN", "OBS:TS_IN"]
