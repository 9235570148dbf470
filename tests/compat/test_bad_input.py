"""Mistakes pythonSoftIOC code can make here get a clear error, never a crash
or a silent change."""

from __future__ import annotations

from softioc.testing import IOCProcess

HEAD = """
from softioc import builder, softioc
builder.SetDeviceName("BAD")
"""


def test_records_never_loaded_are_refused_by_iocinit(run_script):
    status, out = run_script(HEAD + """
builder.aIn("FORGOTTEN", 1.0)
softioc.iocInit()
print("IOC STARTED")
""")
    assert status == 1, out                          # a Python exception, not a signal
    assert "RuntimeError: iocInit(): 1 builder record(s) were made but never loaded: " \
           "BAD:FORGOTTEN" in out
    assert "Call builder.LoadDatabase()" in out
    assert "IOC STARTED" not in out


def test_soft_records_never_loaded_are_refused(run_script):
    status, out = run_script(HEAD + """
builder.records.calc("SOFT", CALC="1")
softioc.iocInit()
""")
    assert status == 1, out
    assert "never loaded: 1 made with builder.records." in out


def test_records_made_after_load_database_are_refused(run_script):
    status, out = run_script(HEAD + """
builder.aIn("LOADED", 1.0)
builder.LoadDatabase()
builder.longOut("LATE", 2)
softioc.iocInit()
""")
    assert status == 1, out
    assert "never loaded: BAD:LATE." in out
    assert "BAD:LOADED" not in out.split("never loaded")[1]


def test_dropped_record_set_raises_instead_of_crashing(run_script):
    """A handle ClearRecords() dropped is bound to nothing: every call that
    would touch its EPICS record raises; the IOC keeps serving."""
    status, out = run_script(HEAD + """
dropped = builder.aIn("DROPPED", 1.0)
builder.ClearRecords()
kept = builder.aIn("KEPT", 2.0)
builder.LoadDatabase()
softioc.iocInit()
for call in (lambda: dropped.set(3.0), lambda: dropped.set_alarm(1, 1), dropped.get):
    try:
        call()
    except RuntimeError as e:
        print("REFUSED:", e)
kept.set(4.0)
print("KEPT IS", kept.get())
""")
    assert status == 0, out
    assert out.count("REFUSED: record BAD:DROPPED is not in the running IOC") == 3, out
    assert "KEPT IS 4.0" in out


def test_interactive_ioc_before_iocinit_is_refused(run_script):
    status, out = run_script(HEAD + """
builder.aIn("X", 1.0)
builder.LoadDatabase()
softioc.interactive_ioc(globals())
""")
    assert status == 1, out
    assert "RuntimeError: interactive_ioc() needs a running IOC: call softioc.iocInit()" in out


def test_non_interactive_ioc_before_iocinit_is_refused(run_script):
    status, out = run_script(HEAD + "softioc.non_interactive_ioc()\n")
    assert status == 1, out
    assert "RuntimeError: non_interactive_ioc() needs a running IOC" in out


TRAPS = [
    # (call written for pythonSoftIOC, what the error must point at)
    ('builder.aIn("A", 0, 10)', "aIn('A', LOPR=0, HOPR=10)"),
    ('builder.aOut("B", -5, 5)', "aOut('B', DRVL=-5, DRVH=5)"),
    ('builder.longOut("C", 0, 100, "counts")', "longOut('C', DRVL=0, DRVH=100, EGU='counts')"),
    ('builder.int64In("D", 0, 9)', "int64In('D', LOPR=0, HOPR=9)"),
    ('builder.boolIn("E", "Off", "On")', "boolIn('E', ZNAM='Off', ONAM='On')"),
    ('builder.aIn("F", "V")', "in pythonSoftIOC it was LOPR: write LOPR=..."),
    ('builder.boolOut("G", "Zero")', "in pythonSoftIOC it was ZNAM: write ZNAM=..."),
    ('builder.longOut("H", "x")', "in pythonSoftIOC it was DRVL: write DRVL=..."),
    ('builder.aOut("I", status=3)', "status= and severity= apply to input records"),
]


def test_pythonsoftioc_positional_limits_fail_loudly(run_script):
    lines = [f"try:\n    {call}\n    print('ACCEPTED', {call!r})\n"
             f"except TypeError as e:\n    print('REFUSED', e)\n" for call, _ in TRAPS]
    status, out = run_script(HEAD + "".join(lines))
    assert status == 0, out
    assert "ACCEPTED" not in out, out
    for call, hint in TRAPS:
        assert hint in out, (call, out)


def test_one_positional_value_is_the_initial_value():
    """The seed's choice, kept: aIn("X", 5) means an initial value of 5."""
    with IOCProcess(["-c", HEAD + """
builder.aIn("FIVE", 5)
builder.aOut("SIX", 6)
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
"""], wait_for="BAD:SIX") as ioc:
        assert ioc.caget("BAD:FIVE") == "5"
        assert ioc.caget("BAD:FIVE.LOPR") == "0"
        assert ioc.caget("BAD:SIX") == "6"
        assert ioc.caget("BAD:SIX.DRVL") == "0"


def test_directory_clear_lets_tests_rebuild_records(run_script):
    """pythonSoftIOC users' test idiom: ResetRecords() and
    RecordLookup._RecordDirectory.clear() between builds in one process."""
    status, out = run_script(HEAD + """
from epicsdbbuilder import ResetRecords
from softioc.device_core import LookupRecord, RecordLookup
first = builder.aIn("SAME", 1.0)
ResetRecords()
RecordLookup._RecordDirectory.clear()
second = builder.longIn("SAME", 2)
print("LOOKUP", LookupRecord("BAD:SAME") is second, len(RecordLookup._RecordDirectory))
builder.LoadDatabase()
softioc.iocInit()
softioc.dbgf("BAD:SAME")
softioc.dbgf("BAD:SAME.RTYP")
""")
    assert status == 0, out
    assert "LOOKUP True 1" in out
    assert 'DBF_LONG:           2' in out and '"longin"' in out, out
