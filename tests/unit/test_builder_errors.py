"""Bad input to builder calls fails at build time with a clear error.

These run in the test process: building records touches no IOC (nothing is
loaded or started here).
"""

import numpy as np
import pytest

from softioc import builder

pytestmark = pytest.mark.usefixtures("no_records")


def test_duplicate_name():
    builder.aIn("DUP:A")
    with pytest.raises(ValueError, match="already exists"):
        builder.aOut("DUP:A")


def test_unknown_field():
    with pytest.raises(TypeError, match="NOTAFIELD"):
        builder.aIn("BAD:FIELD", NOTAFIELD=1)


def test_bad_field_value():
    with pytest.raises(ValueError, match="SCAN"):
        builder.aIn("BAD:SCAN", SCAN="every now and then")


@pytest.mark.parametrize("make, fields, reason", [
    (builder.aIn, {"PREC": "99999999"}, "too large"),
    (builder.aIn, {"DISV": -40000}, "too large"),
    (builder.longOut, {"DRVH": 3000000000}, "too large"),
    (builder.aIn, {"PINI": "1"}, "menu choice"),       # a menu's index, not its choice
    (builder.aIn, {"PREC": ""}, "integer"),
])
def test_field_value_epics_would_change_silently(make, fields, reason):
    """EPICS's dbPutString alone would store these cut down or as an index;
    the builder checks every value it is given with dbVerify."""
    with pytest.raises(ValueError, match=reason):
        make("BAD:SILENT", **fields)


def test_unknown_keyword():
    with pytest.raises(TypeError, match="colour"):
        builder.aIn("BAD:KW", colour="red")


def test_out_options_on_input():
    with pytest.raises(TypeError, match="on_update"):
        builder.aIn("BAD:IN", on_update=print)


def test_name_too_long():
    with pytest.raises(ValueError, match="60"):
        builder.aIn("X" * 61)


@pytest.mark.parametrize("name", ["has space", "quo\"te", "dot.ted", "", "a$b"])
def test_bad_characters(name):
    with pytest.raises(ValueError):
        builder.aIn(name)


@pytest.mark.parametrize(
    "make, value, error",
    [
        (builder.aIn, "text", TypeError),
        (builder.longIn, 2**31, ValueError),
        (builder.longIn, 1.5, ValueError),
        (builder.longIn, "7", TypeError),
        (builder.int64In, 2**63, ValueError),
        (builder.boolIn, 2, ValueError),
        (builder.stringIn, "x" * 40, ValueError),
        (builder.stringIn, 5, TypeError),
    ],
)
def test_wrong_initial_value(make, value, error):
    with pytest.raises(error):
        make("BAD:VALUE", value)


def test_mbb_index_beyond_states_and_big_enum_limits():
    with pytest.raises(TypeError, match="severities"):
        builder.mbbIn("BAD:MBB", *[(f"S{i}", "MAJOR") for i in range(17)])
    with pytest.raises(ValueError, match="initial state"):
        builder.mbbOut("BAD:MBB3", *[f"S{i}" for i in range(17)], initial_value=17)
    with pytest.raises(ValueError):
        builder.mbbIn("BAD:MBB2", "a", "b", initial_value=16)


def test_waveform_too_long_and_bad_dtype():
    with pytest.raises(ValueError, match="NELM"):
        builder.WaveformIn("BAD:WF", [1, 2, 3], length=2)
    with pytest.raises(ValueError):
        builder.WaveformIn("BAD:WF2", [1.5, 2.5], datatype=np.int32)
    with pytest.raises(TypeError):
        builder.WaveformIn("BAD:WF3", [1 + 2j])


def test_failed_record_leaves_no_trace():
    with pytest.raises(ValueError):
        builder.longIn("RETRY:A", 2**40)
    builder.longIn("RETRY:A", 5)     # the name is free again


def test_initial_value_twice():
    with pytest.raises(TypeError, match="twice|multiple values"):
        builder.aIn("BAD:TWICE", 1.0, initial_value=2.0)


def test_good_records_have_types_and_names():
    builder.SetDeviceName("DEV")
    a = builder.aOut("OUT", 1.5)
    builder.UnsetDevice()
    b = builder.aIn("PLAIN")
    assert a.name == "DEV:OUT" and a.record_type == "ao" and a.is_output
    assert b.name == "PLAIN" and b.record_type == "ai" and not b.is_output
    assert a.get() == 1.5


def test_set_blocking_default():
    assert builder.SetBlocking(True) is False
    try:
        blocking = builder.aOut("BLK:A", on_update=print)
        explicit = builder.aOut("BLK:B", on_update=print, blocking=False)
    finally:
        assert builder.SetBlocking(False) is True
    plain = builder.aOut("BLK:C", on_update=print)
    assert (blocking._blocking, explicit._blocking, plain._blocking) == (True, False, False)


def test_nul_in_a_field_value_is_refused():
    """EPICS would keep only the text before the NUL."""
    with pytest.raises(ValueError, match="null character"):
        builder.aIn("BAD:NUL", EGU="m\0m")


def test_field_link_sees_fields_set_after_it():
    rec = builder.aIn("LINK:LATER")             # made with no fields
    link = rec.EGU
    rec.EGU = "mA"
    assert link.Value() == "mA"
    assert rec.SCAN.Value() == "I/O Intr"        # a builder default
    with pytest.raises(KeyError):
        rec.HOPR.Value()


def test_record_handle_takes_keywords_and_is_initialised_once():
    from softioc._record import InRecord

    rec = InRecord("ai", name="HANDLE:KW")
    assert rec.name == rec._spare_name == "HANDLE:KW"
    with pytest.raises(RuntimeError, match="once"):
        rec.__init__("bo", "HANDLE:OTHER")
    assert rec.record_type == "ai" and rec.name == "HANDLE:KW"

