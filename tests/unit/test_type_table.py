"""One table of record types (softioc._types) is the source: the C layer's
table and dsets, softioc.dbd, the builder's makers and PythonDevice agree with
it.  Runs in the test process (nothing is loaded or started)."""

import re
from pathlib import Path

import numpy as np
import pytest

import softioc
from softioc import _ext, _types, builder
from softioc._record import OutRecord, ftvl_dtypes
from softioc.pythonSoftIoc import PythonDevice

DBD = Path(softioc.__file__).with_name("softioc.dbd").read_text()
DEVICES = re.findall(r'^device\((\w+),\s*INST_IO,\s*(\w+),\s*"([^"]+)"\)', DBD, re.M)
TYPES = {t.name: t for t in _types.RECORD_TYPES}

# what each maker needs to make a record, beyond its name
ARGS = {"mbbIn": ("A", "B"), "mbbOut": ("A", "B")}
ARRAYS = {"Waveform", "WaveformIn", "WaveformOut", "aaIn", "aaOut"}


@pytest.fixture(autouse=True)
def clean():
    builder.ClearRecords()
    yield
    builder.ClearRecords()


def test_the_built_dbd_is_the_tables():
    """setup.py made softioc.dbd from the table (rebuild if this fails)."""
    assert DBD == _types.render_dbd()
    assert {(d.rtype, d.dset, dtyp) for d in _types.DEVICE_SUPPORT for dtyp in d.dtyps} == \
        set(DEVICES)


def test_the_c_layer_was_built_from_the_table():
    kinds = {t.name: (t.output, t.kind) for t in _types.RECORD_TYPES}
    assert {rtype: (out, kind) for rtype, out, kind in _ext.record_types()} == kinds


@pytest.mark.parametrize("maker", sorted(_types.MAKERS))
def test_every_maker_makes_what_the_table_says(maker):
    entry = _types.MAKERS[maker]
    args = ([1, 2],) if maker in ARRAYS else ARGS.get(maker, ())
    record = getattr(builder, maker)(f"TT:{maker}", *args)
    assert (record.record_type, record._dtyp) == (entry.rtype, entry.dtyp)
    support = {(d.rtype, dtyp): d for d in _types.DEVICE_SUPPORT for dtyp in d.dtyps}
    assert isinstance(record, OutRecord) == support[entry.rtype, entry.dtyp].output


def test_every_record_maker_is_in_the_table():
    """A new maker in builder must be a row of softioc._types.MAKERS."""
    makers = {name for name in builder.__all__
              if name[:1].isalpha() and callable(getattr(builder, name))
              and getattr(getattr(builder, name), "__annotations__", {}).get("return")
              in ("InRecord", "OutRecord", "ArrayInRecord", "ArrayOutRecord", "Record",
                  "LongStringIn", "LongStringOut")}
    assert makers <= set(_types.MAKERS), makers - set(_types.MAKERS)


def test_python_device_has_the_tables_names():
    for maker, entry in _types.MAKERS.items():
        if entry.python_device:
            assert getattr(PythonDevice, entry.python_device) is getattr(builder, maker)


def test_array_element_types_come_from_the_table():
    assert {name: str(dtype) for name, dtype in ftvl_dtypes().items()} == \
        {name: str(np.dtype(d)) for name, d in _types.FTVL_DTYPES.items()}


def test_output_types_are_outputs_and_enums_have_states():
    for t in _types.RECORD_TYPES:
        assert (t.kind == "enum") == (t.max_enum > 0), t
        if t.name != "waveform":        # a waveform is either, by device support
            assert any(d.rtype == t.name and d.output == t.output
                       for d in _types.DEVICE_SUPPORT), t
