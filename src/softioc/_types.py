"""The record types Python drives: the one table the rest is made from.

At build time setup.py renders from it the device support definitions
(``softioc.dbd``) and the C layer's tables (``pyioc_rtypes.h``: the type
table, the dsets, the record headers); at import the builder takes its makers'
metadata from it and ``pythonSoftIoc.PythonDevice`` its makers by type name.
Adding a record type is an entry in `RECORD_TYPES` and `DEVICE_SUPPORT` (and a
`MAKERS` entry with its builder function), plus its tests.

This module imports only the standard library: setup.py runs it before the
package is built.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RecordType", "DeviceSupport", "Maker", "RECORD_TYPES", "DEVICE_SUPPORT",
           "MAKERS", "FTVL_DTYPES", "render_dbd", "render_c"]


class RecordType(NamedTuple):
    """An EPICS record type and how C finds its value."""

    name: str
    kind: str               # double, long, enum, int64, string, lstring (lsi/lso), array
    output: bool            # clients write its VAL (a waveform: as its device support says)
    max_enum: int = 0       # enum: the highest state
    init_noconvert: bool = False    # init_record returns 2: "no conversion" (ai, ao, bo, mbbo)
    read_noconvert: bool = False    # read returns 2: "no conversion" (ai, bi, mbbi)
    dev_allocates: bool = False     # device support gives the array buffer (aai, aao)


class DeviceSupport(NamedTuple):
    """A dset of devsup.c and the DTYP names softioc.dbd gives it."""

    dset: str
    rtype: str
    output: bool
    dtyps: tuple[str, ...]


class Maker(NamedTuple):
    """A builder function: what it makes, and pythonSoftIOC's names for it."""

    rtype: str
    dtyp: str = "Python"
    # what pythonSoftIOC took positionally after the name (aOut(name, DRVL,
    # DRVH, EGU, PREC)), for errors that point old code at the keywords
    old_positional: tuple[str, ...] = ()
    python_device: str | None = None    # its name in pythonSoftIoc.PythonDevice


RECORD_TYPES = (
    RecordType("ai", "double", False, init_noconvert=True, read_noconvert=True),
    RecordType("ao", "double", True, init_noconvert=True),
    RecordType("bi", "enum", False, max_enum=1, read_noconvert=True),
    RecordType("bo", "enum", True, max_enum=1, init_noconvert=True),
    RecordType("longin", "long", False),
    RecordType("longout", "long", True),
    RecordType("int64in", "int64", False),
    RecordType("int64out", "int64", True),
    RecordType("stringin", "string", False),
    RecordType("stringout", "string", True),
    RecordType("mbbi", "enum", False, max_enum=15, read_noconvert=True),
    RecordType("mbbo", "enum", True, max_enum=15, init_noconvert=True),
    RecordType("lsi", "lstring", False),
    RecordType("lso", "lstring", True),
    RecordType("waveform", "array", False),
    RecordType("aai", "array", False, dev_allocates=True),
    RecordType("aao", "array", True, dev_allocates=True),
)

DEVICE_SUPPORT = (
    DeviceSupport("devPyAi", "ai", False, ("Python",)),
    DeviceSupport("devPyAo", "ao", True, ("Python",)),
    DeviceSupport("devPyBi", "bi", False, ("Python",)),
    DeviceSupport("devPyBo", "bo", True, ("Python",)),
    DeviceSupport("devPyLongin", "longin", False, ("Python",)),
    DeviceSupport("devPyLongout", "longout", True, ("Python",)),
    DeviceSupport("devPyInt64in", "int64in", False, ("Python",)),
    DeviceSupport("devPyInt64out", "int64out", True, ("Python",)),
    DeviceSupport("devPyStringin", "stringin", False, ("Python",)),
    DeviceSupport("devPyStringout", "stringout", True, ("Python",)),
    DeviceSupport("devPyMbbi", "mbbi", False, ("Python",)),
    DeviceSupport("devPyMbbo", "mbbo", True, ("Python",)),
    DeviceSupport("devPyLsi", "lsi", False, ("Python",)),
    DeviceSupport("devPyLso", "lso", True, ("Python",)),
    # A waveform is either; long strings are CHAR waveforms (pythonSoftIOC's DTYPs).
    DeviceSupport("devPyWaveform", "waveform", False, ("Python", "PythonLongStringIn")),
    DeviceSupport("devPyWaveformOut", "waveform", True,
                  ("Python out", "PythonWfOut", "PythonLongStringOut")),
    DeviceSupport("devPyAai", "aai", False, ("Python",)),
    DeviceSupport("devPyAao", "aao", True, ("Python",)),
)

MAKERS = {
    "aIn": Maker("ai", old_positional=("LOPR", "HOPR", "EGU", "PREC"), python_device="ai"),
    "aOut": Maker("ao", old_positional=("DRVL", "DRVH", "EGU", "PREC"), python_device="ao"),
    "boolIn": Maker("bi", old_positional=("ZNAM", "ONAM"), python_device="bi"),
    "boolOut": Maker("bo", old_positional=("ZNAM", "ONAM"), python_device="bo"),
    "Action": Maker("bo"),
    "longIn": Maker("longin", old_positional=("LOPR", "HOPR", "EGU"), python_device="longin"),
    "longOut": Maker("longout", old_positional=("DRVL", "DRVH", "EGU"),
                     python_device="longout"),
    "int64In": Maker("int64in", old_positional=("LOPR", "HOPR", "EGU"),
                     python_device="int64in"),
    "int64Out": Maker("int64out", old_positional=("DRVL", "DRVH", "EGU"),
                      python_device="int64out"),
    "stringIn": Maker("stringin", python_device="stringin"),
    "stringOut": Maker("stringout", python_device="stringout"),
    "longStringIn": Maker("waveform", "PythonLongStringIn", python_device="long_stringin"),
    "longStringOut": Maker("waveform", "PythonLongStringOut", python_device="long_stringout"),
    "mbbIn": Maker("mbbi", python_device="mbbi"),
    "mbbOut": Maker("mbbo", python_device="mbbo"),
    "WaveformIn": Maker("waveform", python_device="waveform"),
    "Waveform": Maker("waveform"),
    "WaveformOut": Maker("waveform", "PythonWfOut", python_device="waveform_out"),
    "aaIn": Maker("aai"),
    "aaOut": Maker("aao"),
}

# numpy dtypes of the FTVL menu (menuFtype) that array records hold
FTVL_DTYPES = {
    "CHAR": "int8", "UCHAR": "uint8", "SHORT": "int16", "USHORT": "uint16",
    "LONG": "int32", "ULONG": "uint32", "INT64": "int64", "UINT64": "uint64",
    "FLOAT": "float32", "DOUBLE": "float64",
    "STRING": "S40",                    # EPICS strings: 40 bytes with the NUL
}

_GENERATED = "generated by setup.py from softioc/_types.py: edit that, not this"


def render_dbd() -> str:
    """softioc.dbd: the device support of every record type in the table."""
    lines = [f"# Device support of pythonIOC ({_GENERATED})."]
    lines += [f'device({d.rtype}, INST_IO, {d.dset}, "{dtyp}")'
              for d in DEVICE_SUPPORT for dtyp in d.dtyps]
    return "\n".join(lines) + "\n"


def render_c() -> str:
    """pyioc_rtypes.h: the record headers and X-macros of the types and dsets."""
    names = {t.name for t in RECORD_TYPES}
    assert {d.rtype for d in DEVICE_SUPPORT} == names
    assert {m.rtype for m in MAKERS.values()} <= names
    lines = [f"/* The record types Python drives ({_GENERATED}). */",
             "#ifndef PYIOC_RTYPES_H", "#define PYIOC_RTYPES_H"]
    lines += [f"#include <{t.name}Record.h>" for t in RECORD_TYPES]
    lines.append("/* X(rtype, kind, is_output, max_enum) */")
    lines.append("#define PYIOC_RECORD_TYPES(X) \\")
    lines += [f"    X({t.name}, {t.kind}, {int(t.output)}, {t.max_enum}) \\"
              for t in RECORD_TYPES]
    lines.append("")
    lines.append("/* X(dset, rtype, is_output, init_record, read or write routine) */")
    lines.append("#define PYIOC_DSETS(X) \\")
    types = {t.name: t for t in RECORD_TYPES}
    for d in DEVICE_SUPPORT:
        t = types[d.rtype]
        init = ("init_array" if t.dev_allocates else
                "init_noconvert" if t.init_noconvert else "init_common")
        rw = "write_common" if d.output else "read_noconvert" if t.read_noconvert else "read_keep"
        lines.append(f"    X({d.dset}, {d.rtype}, {int(d.output)}, {init}, {rw}) \\")
    lines.append("")
    lines.append("/* X(rtype): the types clients write through our device support */")
    lines.append("#define PYIOC_OUTPUT_TYPES(X) \\")
    outputs = [t.name for t in RECORD_TYPES
               if any(d.rtype == t.name and d.output for d in DEVICE_SUPPORT)]
    lines += [f"    X({name}) \\" for name in outputs]
    lines += ["", "#endif", ""]
    return "\n".join(lines)
