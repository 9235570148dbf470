"""One table of record types: the C layer's (``_ext.record_types()``, from
devsup.c), which softioc.dbd's device support and every builder maker must
agree with.  Runs in the test process (nothing is loaded or started)."""

import re
from pathlib import Path

import pytest

import softioc
from softioc import _ext, builder
from softioc._record import OutRecord

TABLE = {rtype: (out, kind) for rtype, out, kind in _ext.record_types()}
DBD = Path(softioc.__file__).with_name("softioc.dbd").read_text()
DEVICES = re.findall(r'^device\((\w+),\s*INST_IO,\s*(\w+),\s*"([^"]+)"\)', DBD, re.M)

MAKERS = {
    "aIn": (), "aOut": (), "boolIn": (), "boolOut": (), "Action": None,
    "longIn": (), "longOut": (), "int64In": (), "int64Out": (),
    "stringIn": (), "stringOut": (), "longStringIn": (), "longStringOut": (),
    "mbbIn": ("A", "B"), "mbbOut": ("A", "B"),
    "Waveform": ([1, 2],), "WaveformIn": ([1, 2],), "WaveformOut": ([1, 2],),
    "aaIn": ([1, 2],), "aaOut": ([1, 2],),
}


@pytest.fixture(autouse=True)
def clean():
    builder.ClearRecords()
    yield
    builder.ClearRecords()


def test_the_dbd_and_the_c_table_name_the_same_types():
    assert len(DEVICES) >= len(TABLE)
    assert {rtype for rtype, _, _ in DEVICES} == set(TABLE)


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_every_builder_maker_makes_a_type_of_the_table(maker):
    args = MAKERS[maker]
    record = getattr(builder, maker)(f"TT:{maker}", *(args or ()))
    rtype = record.record_type
    assert rtype in TABLE, f"builder.{maker} makes {rtype}, which C cannot drive"
    dsets = {(r, d): dset for r, dset, d in DEVICES}
    assert (rtype, record._dtyp) in dsets, (rtype, record._dtyp)
    # A waveform is either: its device support (named ...Out or not) says which.
    is_out = TABLE[rtype][0] or dsets[rtype, record._dtyp].endswith("Out")
    assert isinstance(record, OutRecord) == is_out, dsets[rtype, record._dtyp]


def test_every_record_maker_is_listed_here():
    """A new maker in builder must be added above (and so checked)."""
    makers = {name for name in builder.__all__
              if name[:1].isalpha() and callable(getattr(builder, name))
              and getattr(getattr(builder, name), "__annotations__", {}).get("return")
              in ("InRecord", "OutRecord", "ArrayInRecord", "ArrayOutRecord", "Record",
                  "LongStringIn", "LongStringOut")}
    assert makers <= set(MAKERS), makers - set(MAKERS)
