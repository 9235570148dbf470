"""EPICS statuses reach Python as softioc.errors classes, which are also the
builtin exceptions raised before (RuntimeError, ValueError), with the status
and its text."""

import pickle
import subprocess
import sys
import textwrap

import pytest

import softioc
from softioc import errors

SCRIPT = textwrap.dedent("""
    from softioc import _ext, builder, errors, softioc
    builder.aOut("ERR:AO", initial_value=1.0)
    builder.LoadDatabase()
    softioc.iocInit()
    calls = {
        "unknown record": lambda: _ext.get_field("ERR:NOPE"),
        "unknown field": lambda: _ext.put_field("ERR:AO.NOPE", "1"),
        "alias exists": lambda: _ext.create_alias("ERR:AO", "ERR:AO"),
        "alias of nothing": lambda: _ext.create_alias("ERR:NOPE", "ERR:AL"),
        "bad number": lambda: _ext.put_field("ERR:AO", "abc"),
    }
    for what, call in calls.items():
        try:
            call()
        except errors.EpicsError as e:
            print(f"{what}|{type(e).__name__}|{e.status}|{e.text}|{e}")
    softioc.exit()
""")


@pytest.fixture(scope="module")
def raised(tmp_path_factory):
    script = tmp_path_factory.mktemp("errors") / "errors_ioc.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60).stdout
    return {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines()
            if line.count("|") == 4}


@pytest.mark.parametrize("what, cls, text", [
    ("unknown record", "RecordNotFoundError", "Record Not Found"),
    ("unknown field", "RecordNotFoundError", "Field Not Found"),
    ("alias exists", "RecordExistsError", "Record Already exists"),
    ("alias of nothing", "RecordNotFoundError", "Record Not Found"),
])
def test_status_becomes_its_class(raised, what, cls, text):
    name, status, got_text, message = raised[what]
    assert name == cls
    assert got_text == text
    assert int(status) != 0
    assert message.endswith("already exists") or f"{text} (EPICS status {status})" in message


def test_strict_put_refusal_keeps_its_text(raised):
    name, status, text, message = raised["bad number"]
    assert name == "EpicsRuntimeError"
    assert text and text in message and status in message


def test_classes_are_the_old_builtins():
    assert issubclass(errors.EpicsRuntimeError, RuntimeError)
    assert issubclass(errors.RecordNotFoundError, errors.EpicsRuntimeError)
    assert issubclass(errors.EpicsValueError, ValueError)
    assert not issubclass(errors.EpicsValueError, RuntimeError)
    assert softioc.EpicsError is errors.EpicsError


def test_pickle_keeps_status_and_text():
    e = errors.RecordNotFoundError("X: Record Not Found", 33554437, "Record Not Found")
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), str(back), back.status, back.text) == (
        errors.RecordNotFoundError, str(e), e.status, e.text)
