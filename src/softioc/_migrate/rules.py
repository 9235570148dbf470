"""What ``pythonioc migrate-check`` knows: the differences it reports
(`RULES`), the names pythonSoftIOC has and pythonIOC lacks (`MISSING`), and
which values each library's makers take."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .._types import MAKERS

__all__ = ["Rule", "RULES", "RULE_NAMES", "MISSING", "OLD_POSITIONAL", "INPUT_MAKERS",
           "LONG_STRINGS", "STAR", "field_takes", "initial_takes"]


@dataclass(frozen=True)
class Rule:
    """A difference the check knows: what it looks for, what pythonSoftIOC
    4.7.2 did, what pythonIOC does, and what to write instead."""

    name: str
    looks_for: str
    pythonsoftioc: str
    here: str
    write: str


RULES: tuple[Rule, ...] = (
    Rule("positional-value",
         "one value after the record name of aIn, aOut, longIn, longOut, int64In, int64Out, "
         "boolIn or boolOut",
         "the first field: LOPR (aIn, longIn, int64In), DRVL (aOut, longOut, int64Out) or "
         "ZNAM (boolIn, boolOut)",
         "the initial value (an error if it cannot be one)",
         'the field as a keyword, aIn("X", LOPR=5), or initial_value= if the value is meant'),
    Rule("positional-values",
         "two or more values after the record name of those makers (or one, then *args)",
         "fields, in the order of its signatures: aIn(name, LOPR, HOPR, EGU, PREC), "
         "aOut(name, DRVL, DRVH, EGU, PREC), longIn and int64In(name, LOPR, HOPR, EGU), "
         "longOut and int64Out(name, DRVL, DRVH, EGU), boolIn and boolOut(name, ZNAM, ONAM)",
         "TypeError: only the initial value may follow the name",
         'the fields as keywords: aIn("X", LOPR=0, HOPR=10)'),
    Rule("input-alarm",
         "status= or severity= on an input record maker without PINI=",
         "writes the STAT and SEVR fields, which the record's first processing (PINI) "
         "clears: the record starts without an alarm",
         "the record starts in that alarm",
         "nothing if the alarm is meant; drop status= and severity= to start without it"),
    Rule("set-no-process",
         "set(..., process=False) (also a literal False second argument, or process in a "
         "**dict), in a file that imports softioc",
         "4.7.2 changes the value without sending it to monitors (4.7.0 sent it)",
         "monitors get the new value; the record is still not processed (no on_update)",
         "nothing, unless clients must not see values set this way"),
    Rule("long-string-length",
         "longStringIn or longStringOut given initial_value= or NELM= but no length=",
         "NELM is the initial text's length in bytes + 1 (256 without one), and NELM= is "
         "ignored: a longer text never fits",
         "NELM= is used; else at least 256 bytes (more for a longer initial text)",
         "length=N, which both read the same way"),
    Rule("write-records",
         "builder.WriteRecords(...) and epicsdbbuilder.WriteRecords(...)",
         "builder records are epicsdbbuilder records: either call writes all of them, also "
         "after LoadDatabase()",
         "builder.WriteRecords writes the records not yet loaded (none after LoadDatabase()), "
         "fields in another order; epicsdbbuilder.WriteRecords only builder.records ones",
         "builder.WriteRecords(...) before builder.LoadDatabase()"),
    Rule("pvlog",
         "importing softioc.pvlog",
         "installs its own access security file (any client may write) and logs each put "
         "with the CA client's host name",
         "your access rules stay; puts are logged where they say TRAPWRITE (pythonIOC's "
         "default rules do), with the client's IP address (strict puts on)",
         "TRAPWRITE in the WRITE rules of your own access security file, if you load one"),
    Rule("missing-name",
         "a name of pythonSoftIOC's modules that pythonIOC does not have (MISSING)",
         "offers it",
         "AttributeError or ImportError",
         "what the table says for that name"),
)

_DBB = "re-exported from epicsdbbuilder"
_CTYPES = "internals of its ctypes device support"
_IN_C = "drop it: pythonIOC's device support is in C"
_STARTUP = "its start-up internals"
_NOT_NEEDED = "drop it: pythonIOC starts and stops EPICS itself"
_MAKERS = ("make records with the builder (softioc.device.ProcessDeviceSupportIn and "
           "ProcessDeviceSupportOut are their classes)")

# Module -> name -> (what it was in pythonSoftIOC, what to do here).
MISSING: dict[str, dict[str, tuple[str, str]]] = {
    "softioc": {
        "dbLoadDatabase": ("imported from softioc.imports", "write softioc.softioc.dbLoadDatabase"),
        **dict.fromkeys(("registerRecordDeviceDriver", "iocshRegisterCommon", "pdbbase",
                         "base_dbd_path", "iocStats"), (_STARTUP, _NOT_NEEDED)),
    },
    "softioc.builder": {
        **{name: (_DBB, f"write epicsdbbuilder.{name}") for name in (
            "CA", "CPP", "MSI", "MSS", "NMS", "ConstArray", "const_array", "CountRecords",
            "Disclaimer", "ImportRecord", "Parameter", "parameter", "PopPrefix", "PushPrefix",
            "RecordName", "SetRecordNames", "SetSeparator", "SetSimpleRecordNames",
            "SetTemplateRecordNames", "SimpleRecordNames", "TemplateRecordNames",
            "create_fanout", "create_dfanout", "fanout")},
        "ResetRecords": (_DBB, "write builder.ClearRecords()"),
        "InitialiseDbd": (_DBB, "drop it: pythonIOC loads the record definitions"),
        "LoadDbdFile": (_DBB, "drop it: pythonIOC loads the record definitions"),
        "LookupRecord": (_DBB, "write epicsdbbuilder.LookupRecord, or softioc.device_core."
                               "LookupRecord for builder records"),
        "RecordLookup": ("imported from softioc.device_core",
                         "write softioc.device_core.RecordLookup"),
        "dbLoadDatabase": ("imported from softioc.softioc",
                           "write softioc.softioc.dbLoadDatabase"),
        "load_autosave": ("imported from softioc.autosave",
                          "drop it: builder.LoadDatabase() restores autosaved values"),
        "qform_string": ("its long-string helper", 'write record.add_info("Q:form", "String")'),
        "NumpyDtypeToDbf": ("its waveform type table", "give datatype= or FTVL= to the makers"),
        "DbfStringToNumpy": ("its waveform type table", "give datatype= or FTVL= to the makers"),
    },
    "softioc.softioc": {
        "auto_encode": ("imported from softioc.imports", "write softioc.imports.auto_encode"),
        "Exiter": ("the class of its exit command", "write softioc.softioc.exit"),
        "ExportTest": ("its IOC shell command wrapper", "drop it: no replacement"),
        "epicsAtPyExit": ("its exit hook", _NOT_NEEDED),
    },
    "softioc.autosave": {
        "AutosaveConfig": ("its settings", "write softioc.autosave.configure(...)"),
        "DEFAULT_SAVE_PERIOD": ("its default period", "write configure(save_period=...)"),
        "SAV_SUFFIX": ("its file name suffix", "drop it: the file is NAME.softsav"),
        "SAVB_SUFFIX": ("its backup file suffix", "drop it: no replacement"),
        "add_pv_to_autosave": ("its internal registration",
                               "write softioc.autosave.add(record, fields)"),
        "load_autosave": ("its internal restore",
                          "drop it: builder.LoadDatabase() restores autosaved values"),
        "start_autosave_thread": ("its internal start", "drop it: autosave starts at iocInit()"),
    },
    "softioc.device": {
        **dict.fromkeys(("ai", "ao", "bi", "bo", "longin", "longout", "int64in", "int64out",
                         "stringin", "stringout", "mbbi", "mbbo", "long_stringin",
                         "long_stringout"), (_CTYPES, _MAKERS)),
        **dict.fromkeys(("EpicsString", "LongStringBase", "create_callback_capsule",
                         "signal_processing_complete", "dset_process_linconv"),
                        (_CTYPES, _IN_C)),
        "DeviceSupportCore": ("imported from softioc.device_core",
                              "write softioc.device_core.DeviceSupportCore"),
    },
    "softioc.device_core": dict.fromkeys(("DSET_BASE", "RecordFactory"), (_CTYPES, _IN_C)),
    "softioc.fields": dict.fromkeys(("RecordFactory", "get_field_offsets"), (_CTYPES, _IN_C)),
    "softioc.imports": {
        **dict.fromkeys(("get_field_offsets", "create_callback_capsule",
                         "signal_processing_complete", "expect_success", "expect_true"),
                        (_CTYPES, _IN_C)),
        "iocInit": ("EPICS's iocInit", "write softioc.softioc.iocInit()"),
        "registerRecordDeviceDriver": (_STARTUP, _NOT_NEEDED),
    },
}

# pythonSoftIOC's fields after the name, by maker (its signatures, per its docs).
OLD_POSITIONAL: dict[str, tuple[str, ...]] = {
    maker: entry.old_positional for maker, entry in MAKERS.items() if entry.old_positional}
_VALUE_KIND = {"aIn": "float", "aOut": "float", "longIn": "int32", "longOut": "int32",
               "int64In": "int64", "int64Out": "int64", "boolIn": "bool", "boolOut": "bool"}
INPUT_MAKERS = frozenset(("aIn", "boolIn", "longIn", "int64In", "stringIn", "mbbIn",
                           "WaveformIn", "Waveform", "longStringIn"))
LONG_STRINGS = frozenset(("longStringIn", "longStringOut"))
# What `from softioc.builder import *` brings that the rules look at.
STAR = {"softioc.builder": frozenset(OLD_POSITIONAL) | INPUT_MAKERS | LONG_STRINGS}
RULE_NAMES = frozenset(r.name for r in RULES)



# What the makers take as values: pythonSoftIOC writes ``str(value)`` into
# a field, pythonIOC takes the initial value as its record's type.
_INT_TEXT = re.compile(r"\s*[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)\s*")
_INT_BITS = {"int32": 31, "int64": 63}


def field_takes(maker: str, field: str, value: Any) -> bool:
    """Whether pythonSoftIOC's builder accepts ``value`` for ``field`` (it
    writes ``str(value)``, which EPICS parses for the field's type)."""
    text = str(value)
    if field in ("EGU", "ZNAM", "ONAM"):
        return len(text.encode()) < (16 if field == "EGU" else 26)
    kind = "int32" if field == "PREC" else _VALUE_KIND[maker]
    if kind == "float":
        try:
            float(text)
        except ValueError:
            return False
        return True
    if not _INT_TEXT.fullmatch(text):
        return False
    number = int(text, 0) if "x" in text.lower() else int(text)
    return -(1 << _INT_BITS[kind]) <= number < 1 << _INT_BITS[kind]


def initial_takes(maker: str, value: Any) -> bool:
    """Whether pythonIOC's maker takes ``value`` as the initial value."""
    if not isinstance(value, (bool, int, float)):
        return False
    kind = _VALUE_KIND[maker]
    if kind == "float":
        return True
    if kind == "bool":
        return bool(value in (0, 1))
    if isinstance(value, float) and not value.is_integer():
        return False
    return -(1 << _INT_BITS[kind]) <= int(value) < 1 << _INT_BITS[kind]
