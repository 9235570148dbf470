"""Every builder record type, read and written by the C caget/caput tools."""

import time

import pytest

from .conftest import module_ioc

ioc = module_ioc("records_ioc.py", wait_for="REC:AI")


def log_has(ioc, text, count=1):
    """Wait for on_update to have logged text into REC:LOG (count times)."""
    return ioc.wait_value("REC:LOG", lambda log: log.count(text) >= count, options=["-S"])


@pytest.mark.parametrize(
    "pv, expected",
    [
        ("REC:AI", "1.5"),
        ("REC:AO", "2.5"),
        ("REC:BI", "On"),
        ("REC:BO", "Off"),
        ("REC:LI", "7"),
        ("REC:LO", "8"),

        ("REC:SI", "hello"),
        ("REC:SO", "world"),
        ("REC:MI", "One"),
        ("REC:MO", "Two"),
        ("REC:WI.NORD", "5"),
        ("REC:WO.NORD", "2"),
    ],
)
def test_initial_values(ioc, pv, expected):
    assert ioc.caget(pv) == expected


def test_int64_full_range(ioc):
    # CA has no 64-bit integer type (values travel as doubles): check exactly.
    assert ioc.caget("REC:QI", "-f0") == str(2**40)
    assert ioc.caget("REC:QO", "-f0") == str(2**41)


def test_waveform_initial(ioc):
    assert ioc.caget("REC:WI").split()[:6] == ["10", "0", "1", "2", "3", "4"]
    assert ioc.caget("REC:WO").split()[:3] == ["8", "1.5", "2.5"]


def test_long_strings_initial(ioc):
    assert ioc.caget("REC:LSI", "-S") == "x" * 100
    assert ioc.caget("REC:LSO", "-S") == "y" * 50


@pytest.mark.parametrize(
    "pv, put, shown, logged",
    [
        ("REC:AO", ["3.25"], "3.25", "AO=3.25"),
        ("REC:BO", ["On"], "On", "BO=1"),
        ("REC:LO", ["-123"], "-123", "LO=-123"),
        ("REC:SO", ["new text"], "new text", "SO=new text"),
        ("REC:MO", ["One"], "One", "MO=1"),
    ],
)
def test_put_reaches_on_update(ioc, pv, put, shown, logged):
    result = ioc.caput(pv, *put)
    assert "rror" not in result.stdout, result.stdout
    assert ioc.caget(pv) == shown
    log_has(ioc, logged)


def test_int64_put(ioc):
    result = ioc.caput("REC:QO", str(2**50 + 1))
    assert "rror" not in result.stdout
    log_has(ioc, f"QO={2**50 + 1}")


def test_long_string_put(ioc):
    text = "z" * 150
    result = ioc.caput("REC:LSO", text, options=["-S"])
    assert "rror" not in result.stdout
    assert ioc.caget("REC:LSO", "-S") == text
    log_has(ioc, f"LSO={text}")


def test_waveform_put(ioc):
    result = ioc.caput("REC:WO", "3", "1", "2", "3", options=["-a"])
    assert "rror" not in result.stdout, result.stdout
    assert ioc.caget("REC:WO.NORD") == "3"
    assert ioc.caget("REC:WO").split()[:4] == ["8", "1", "2", "3"]
    log_has(ioc, "WO=[1. 2. 3.]")


def test_drvh_clamps_and_on_update_sees_clamped(ioc):
    ioc.caput("REC:AO", "500")
    assert ioc.caget("REC:AO") == "50"
    log_has(ioc, "AO=50.0")


def test_on_update_name(ioc):
    ioc.caput("REC:NAMED", "4")
    log_has(ioc, "NAMED=4.0@REC:NAMED")


def test_always_update_and_action(ioc):
    ioc.caput("REC:ALWAYS", "0")
    ioc.caput("REC:ALWAYS", "0")
    log = log_has(ioc, "ALWAYS=0", 2)
    assert log.count("ALWAYS=0") == 2
    ioc.caput("REC:ACT", "1")
    ioc.caput("REC:ACT", "1")
    log = log_has(ioc, "ACT=1", 2)
    assert log.count("ACT=1") == 2


def test_unchanged_value_does_not_call_on_update(ioc):
    ioc.caput("REC:LO", "77")
    ioc.caput("REC:LO", "77")
    ioc.caput("REC:LO", "78")
    log = log_has(ioc, "LO=78")
    assert log.count("LO=77") == 1


def test_validate_rejection_reaches_client(ioc):
    ok = ioc.caput("REC:VALID", "50")
    assert "rror" not in ok.stdout
    log_has(ioc, "VALID=50")
    bad = ioc.caput("REC:VALID", "500")
    assert "Channel write request failed" in bad.stdout, bad.stdout
    assert ioc.caget("REC:VALID") == "50"
    assert "VALID=500" not in ioc.caget("REC:LOG", "-S")


def test_validate_without_callback_put(ioc):
    # A plain ca_put (no callback) is refused too; the value stays.  Its own
    # start value, set here, so it needs no other test to have run first.
    ok = ioc.caput("REC:VALID", "42")
    assert ok.returncode == 0 and "New : REC:VALID" in ok.stdout, ok.stdout
    assert ioc.caget("REC:VALID") == "42"
    bad = ioc.caput("REC:VALID", "-1", callback=False)
    # caput exits 0 here (the refusal comes back as a CA exception after the write).
    assert "Channel write request failed" in bad.stdout, bad.stdout
    assert ioc.caget("REC:VALID") == "42"
    assert "VALID=-1" not in ioc.caget("REC:LOG", "-S")


def test_validate_exception_refuses(ioc):
    bad = ioc.caput("REC:RAISING", "5")
    assert "Channel write request failed" in bad.stdout
    assert ioc.caget("REC:RAISING") == "1"


def test_validate_waveform(ioc):
    good = ioc.caput("REC:VALIDWF", "2", "1", "2", options=["-a"])
    assert "rror" not in good.stdout
    bad = ioc.caput("REC:VALIDWF", "3", "1", "-2", "3", options=["-a"])
    assert "Channel write request failed" in bad.stdout, bad.stdout
    assert ioc.caget("REC:VALIDWF.NORD") == "2"
    assert ioc.caget("REC:VALIDWF").split()[:3] == ["4", "1", "2"]


def test_blocking_put_waits_for_on_update(ioc):
    start = time.monotonic()
    result = ioc.caput("REC:BLOCK", "9")
    elapsed = time.monotonic() - start
    assert "rror" not in result.stdout
    assert elapsed >= 0.9, f"caput -c returned after {elapsed:.2f}s"
    # on_update finished before the put completed
    assert "SLOW=9.0" in ioc.caget("REC:LOG", "-S")


def test_alarm_limits(ioc):
    ioc.send("ai.set(15)")
    ioc.wait_value("REC:AI.SEVR", "MINOR")
    assert ioc.caget("REC:AI.STAT") == "HIGH"
    ioc.send("ai.set(1, severity=alarm.INVALID_ALARM, alarm=alarm.COMM_ALARM)")
    ioc.wait_value("REC:AI.SEVR", "INVALID")
    assert ioc.caget("REC:AI.STAT") == "COMM"
    ioc.send("ai.set(2)")
    ioc.wait_value("REC:AI.SEVR", "NO_ALARM")
    assert ioc.caget("REC:AI") == "2"


def test_initial_alarms_served_before_first_set(ioc):
    assert ioc.caget("REC:ALARMED.SEVR") == "MAJOR"
    assert ioc.caget("REC:ALARMED.STAT") == "HIGH"
    assert ioc.caget("REC:OUTALARM.SEVR") == "MINOR"
    assert ioc.caget("REC:OUTALARM.STAT") == "STATE"


def test_mbb_state_severity(ioc):
    ioc.send("mi.set(2)")
    ioc.wait_value("REC:MI", "Two")
    assert ioc.caget("REC:MI.SEVR") == "MAJOR"


def test_wait_value_fails_on_a_value_that_never_comes(ioc):
    ioc.send("mi.set(2)")
    ioc.wait_value("REC:MI", "Two")
    with pytest.raises(TimeoutError, match="REC:MI is 'Two', not 'Nine'"):
        ioc.wait_value("REC:MI", "Nine", timeout=0.3)


def test_timestamp(ioc):
    out = ioc.run_tool("caget", "-a", "REC:STAMPED").stdout
    assert "2001-09-09" in out, out


def test_calc_record_follows(ioc):
    ioc.send("ai.set(4)")
    ioc.wait_value("REC:CALC", "8")


def test_fields_and_metadata(ioc):
    assert ioc.caget("REC:AI.EGU") == "mA"
    assert ioc.caget("REC:AO.DRVH") == "50"
    ctrl = ioc.run_tool("caget", "-d", "DBR_CTRL_ENUM", "REC:MO").stdout
    assert "Zero" in ctrl and "Two" in ctrl


def test_pva_reads_same_values(ioc):
    # pvget prints "NAME  time  value": judge the value alone.
    assert ioc.pvget("REC:LI").split()[-1] == "7"
    assert ioc.pvget("REC:QI").split()[-1] == str(2**40)
