"""Fuzz targets, run by test_fuzz.py in a subprocess of their own (a crash of
the EPICS core would take the process with it): hypothesis feeds the parsers
that take user input, and each must either accept the input or raise a clear
Python exception, never crash or raise anything else.

Run one: ``python tests/reliability/fuzz_targets.py names 300``.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softioc import _ioc, autosave, builder, softioc

CLEAR = (ValueError, TypeError, OverflowError)   # the errors a caller may get
EXAMPLES = int(sys.argv[2]) if len(sys.argv) > 2 else 200
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
counter = itertools.count()
runs = 0                     # examples actually run (hypothesis may stop early)


def counted(target: Callable[..., None]) -> Callable[..., None]:
    """Count each call of a target's body."""
    @functools.wraps(target)
    def run(*args: Any, **kwargs: Any) -> None:
        global runs
        runs += 1
        target(*args, **kwargs)
    return run
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.sampled_from(
    ["", " ", "A:B", "$(P)", "a" * 60, "A B", "A\nB", "A\x00B", "ä:ß", "A.VAL", "A{B}", '"'])


def unique(prefix: str) -> str:
    return f"{prefix}{next(counter)}"


@SETTINGS
@given(TEXT)
@counted
def names(name: str) -> None:
    """Record names: made (and then findable under that name) or ValueError."""
    try:
        record = builder.aIn(name)
    except CLEAR:
        return
    assert record.name == name, (record.name, name)
    assert name in _ioc.ioc.database.pending


VALUE = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
         | TEXT | st.binary(max_size=20) | st.lists(st.floats(), max_size=5))


@SETTINGS
@given(st.sampled_from(["aOut", "longOut", "boolOut", "mbbOut", "stringOut", "WaveformOut",
                        "int64Out", "longStringOut"]),
       VALUE, st.sampled_from(["EGU", "DRVH", "PREC", "DESC", "ZNAM", "SCAN", "HIHI", "NELM"]),
       VALUE)
@counted
def fields(kind: str, initial: object, field: str, value: object) -> None:
    """Builder values and field keywords: a record, or a clear error."""
    make = getattr(builder, kind)
    kwargs = {field: value}
    if kind == "WaveformOut" and field != "NELM":
        kwargs["length"] = 4
    try:
        make(unique("FZ:F"), initial, **kwargs)
    except CLEAR:
        pass


DB = """record(ao, "$(P)A$(N=0)") {
    field(DESC, "$(D=)")
    field(VAL, "$(V=1)")
}
"""


@SETTINGS
@given(st.lists(st.tuples(TEXT, TEXT), max_size=4), st.booleans())
@counted
def macros(pairs: list[tuple[str, str]], raw: bool) -> None:
    """.db macro substitution: loaded, or a clear error (RuntimeError from EPICS)."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "fz.db").write_text(DB)
        subs = ",".join(f"{k}={v}" for k, v in pairs)
        if not raw:
            subs = f"P={unique('FZ:M')}:," + subs
        try:
            softioc.dbLoadDatabase("fz.db", tmp, subs)
        except (*CLEAR, RuntimeError):
            pass


@SETTINGS
@given(st.text(max_size=300))
@counted
def dbtext(text: str) -> None:
    """Whole .db files of arbitrary text: loaded, or RuntimeError."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "fz.db").write_text(text)
        try:
            softioc.dbLoadDatabase("fz.db", tmp, None)
        except (*CLEAR, RuntimeError):
            pass


JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3), max_leaves=12)


def _autosave_file(content: bytes) -> None:
    path = Path(autosave._path())
    path.write_bytes(content)
    autosave.restore(_ioc.ioc.database.pending)        # must warn, never raise
    # Whatever the file held, each ao record still holds a number (before
    # iocInit, get() gives the Python value it was given: 3 or True too).
    for name in ("FZ:AS", "FZ:ASL"):
        value = _ioc.ioc.database.pending[name].get()
        assert isinstance(value, (int, float)), (name, value)


@SETTINGS
@given(st.binary(max_size=200) | st.sampled_from([b"[" * 5000, b"{" * 100000, b"\xff\xfe",
                                                  b'{"FZ:AS": {"VAL": 1e999}}', b"null"]))
@counted
def autosave_bytes(content: bytes) -> None:
    _autosave_file(content)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["FZ:AS", "FZ:ASL", "OTHER"]),
                       st.dictionaries(st.sampled_from(["VAL", "DRVH", "EGU", "NOPE"]), JSONS,
                                       max_size=4) | JSONS, max_size=3))
@counted
def autosave_json(data: object) -> None:
    _autosave_file(json.dumps(data, allow_nan=True).encode())


TARGETS = {"names": names, "fields": fields, "macros": macros, "dbtext": dbtext,
           "autosave_bytes": autosave_bytes, "autosave_json": autosave_json}

if __name__ == "__main__":
    logging.disable(logging.WARNING)         # autosave warns on every bad file: expected
    target = sys.argv[1]
    if target.startswith("autosave"):
        autosave.configure(tempfile.mkdtemp(), name="fz", save_period=3600)
        builder.aOut("FZ:AS", 1.0, autosave=True)
        builder.aOut("FZ:ASL", 2.0, DRVH=10, EGU="mm", autosave=["VAL", "DRVH", "EGU"])
    os.environ.setdefault("PYTHONIOC_PVA", "NO")
    TARGETS[target]()
    print(f"{target}: {runs} examples run ({EXAMPLES} asked), no crash")
