"""Records for the strict-puts corpus (tests/test_strict.py).

``strict_ioc.py SPEC.json`` makes one record per ``[name, kind]`` pair of
SPEC; ``KINDS`` says what each kind is, and ``db_text`` writes the same
records as Soft Channel records for the C ``softIocPVA`` the corpus is
compared with.  Strict puts are switched by the environment
(``PYTHONIOC_STRICT_PUTS``), or by ``--off`` through the Python API.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# kind: (record type, initial value, fields).  Kinds starting "soft_" are
# plain Soft Channel records in the pythonIOC too (not driven by Python).
KINDS: dict[str, tuple[str, Any, dict[str, Any]]] = {
    "ao": ("ao", 2.5, {"DRVL": -100, "DRVH": 100, "PREC": 3, "EGU": "V", "HOPR": 50}),
    "ao_free": ("ao", 2.5, {}),
    "bo": ("bo", 0, {"ZNAM": "Off", "ONAM": "On"}),
    "bo_znam": ("bo", 0, {"ZNAM": "Off"}),
    "bo_unnamed": ("bo", 0, {}),
    "mbbo_unnamed": ("mbbo", 1, {}),
    "longout": ("longout", 8, {}),
    "int64out": ("int64out", 5, {}),
    "stringout": ("stringout", "abc", {}),
    "mbbo": ("mbbo", 1, {"states": ["Zero", "One", "Two"]}),
    "lso": ("lso", "hello", {"SIZV": 20}),
    "wf_long": ("waveform", [1, 2], {"FTVL": "LONG", "NELM": 8}),
    "wf_short": ("waveform", [1, 2], {"FTVL": "SHORT", "NELM": 8}),
    "wf_uchar": ("waveform", [1, 2], {"FTVL": "UCHAR", "NELM": 8}),
    "wf_float": ("waveform", [1, 2], {"FTVL": "FLOAT", "NELM": 8}),
    "wf_double": ("waveform", [1, 2], {"FTVL": "DOUBLE", "NELM": 8}),
    "soft_longout": ("longout", 8, {}),
    "soft_bo": ("bo", 0, {"ZNAM": "Off", "ONAM": "On"}),
    "soft_mbbo": ("mbbo", 1, {"states": ["Zero", "One", "Two"]}),
}

_MBB = ["ZR", "ON", "TW", "TH", "FR", "FV", "SX", "SV", "EI", "NI", "TE", "EL", "TV",
        "TT", "FT", "FF"]


def _db_fields(rtype: str, initial: Any, fields: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in fields.items() if k != "states"}
    for prefix, state in zip(_MBB, fields.get("states", [])):
        out[prefix + "ST"] = state
        out[prefix + "VL"] = _MBB.index(prefix)
    if rtype == "lso":                  # VAL is allocated by init_record
        out["DOL"] = initial
    elif rtype != "waveform":           # waveforms: the client writes them first
        out["VAL"] = initial
    return out


def db_text(spec: list[tuple[str, str]]) -> str:
    """The records of spec as a .db file of Soft Channel records."""
    lines = []
    for name, kind in spec:
        rtype, initial, fields = KINDS[kind]
        lines.append(f'record({rtype}, "{name}") {{')
        for k, v in _db_fields(rtype, initial, fields).items():
            lines.append(f'    field({k}, "{v}")')
        lines.append("}")
    return "\n".join(lines) + "\n"


def make(builder: Any, name: str, kind: str) -> None:
    rtype, initial, fields = KINDS[kind]
    fields = dict(fields)
    if kind.startswith("soft_") or rtype == "lso":
        # The builder's long strings are CHAR waveforms (test_long_strings.py):
        # lso is a Soft Channel record here.
        getattr(builder.records, rtype)(name, **_db_fields(rtype, initial, fields))
    elif rtype == "ao":
        builder.aOut(name, initial, **fields)
    elif rtype == "bo":
        builder.boolOut(name, initial, **fields)
    elif rtype == "longout":
        builder.longOut(name, initial, **fields)
    elif rtype == "int64out":
        builder.int64Out(name, initial, **fields)
    elif rtype == "stringout":
        builder.stringOut(name, initial, **fields)
    elif rtype == "mbbo":
        builder.mbbOut(name, *fields.pop("states", []), initial_value=initial, **fields)
    elif rtype == "waveform":
        builder.WaveformOut(name, initial, length=fields.pop("NELM"), **fields)
    else:
        raise ValueError(kind)


def main() -> None:
    from softioc import builder, softioc

    with open(sys.argv[1]) as f:
        spec = json.load(f)
    if "--off" in sys.argv:
        from softioc import strict

        strict.strict_puts(False)
    for name, kind in spec:
        make(builder, name, kind)
    builder.records.longout("READY", VAL=1)
    builder.LoadDatabase()
    softioc.iocInit()
    softioc.interactive_ioc(globals())


if __name__ == "__main__":
    main()
