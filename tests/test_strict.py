"""Strict puts (docs/strict-puts.md): a corpus of puts that EPICS's conversions
would change, sent over Channel Access (libca typed puts, and the C caput
tool for text) and PV Access (p4p, with and without waiting), one record per
put so all of them go in one batch.

Strict mode on: every bad put is refused (the client is told, the value is
unchanged) and every legal put is converted as documented.  Strict mode off:
the outcome of every put is the same as in the C softIocPVA with the same
records as Soft Channel records.

``python tests/test_strict.py --table`` prints the outcome table of the docs.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from softioc.testing import IOCProcess, epics_tool, pva_context, start_tool, wait_until

IOCS = Path(__file__).parent / "iocs"
REJECT = "reject"
OUTSIDE = "converted by the client before sending"

sys.path.insert(0, str(IOCS))
import strict_ioc  # noqa: E402

sys.path.remove(str(IOCS))


@dataclass
class Case:
    cls: str                # input class: a row of the outcome table
    kind: str               # record kind (strict_ioc.KINDS)
    field: str              # field written
    proto: str              # "ca" (libca, typed), "caput" (C tool), "pva", "pva-wait"
    dbr: str | None         # CA request type ("ca" only)
    value: Any
    legal: Any = REJECT     # strict mode: refused, or the value it stores
    outside: bool = False   # converted by the client before the IOC sees it
    name: str = ""


# ---- the corpus --------------------------------------------------------------

NUMERIC_TARGETS = [             # (kind, field): numeric fields
    ("ao", "VAL"), ("ao_free", "VAL"), ("longout", "VAL"), ("int64out", "VAL"),
    ("wf_long", "VAL"), ("wf_double", "VAL"), ("ao", "DRVH"), ("ao", "HOPR"),
    ("ao", "PREC"), ("mbbo", "ZRVL"), ("mbbo", "SHFT"), ("bo", "HIGH"),
    ("longout", "DRVH"), ("soft_longout", "VAL"),
]
INTEGER_TARGETS = [("longout", "VAL"), ("int64out", "VAL"), ("wf_long", "VAL"),
                   ("ao", "PREC"), ("mbbo", "ZRVL"), ("mbbo", "SHFT"), ("longout", "DRVH"),
                   ("soft_longout", "VAL")]


def corpus() -> list[Case]:
    cases: list[Case] = []

    def add(cls: str, kind: str, field: str, value: Any, legal: Any = REJECT,
            protos: tuple[str, ...] = ("ca", "caput"), dbr: str | None = "STRING",
            outside: bool = False) -> None:
        for proto in protos:
            cases.append(Case(cls, kind, field, proto, dbr if proto == "ca" else None,
                              value, legal, outside))

    # Text, over CA (libca DBR_STRING and the caput tool).
    for kind, field in NUMERIC_TARGETS:
        for text in ["12abc", "1,5", "5 6", "3.5.1", "7-", "1e", "12 34", "2.5V"]:
            add("text: number followed by junk", kind, field, text)
        add("text: empty", kind, field, "")
        add("text: not a number", kind, field, "abc")
    for kind, field in INTEGER_TARGETS:
        for text in ["08", "0x1g", "1_000"]:
            add("text: number followed by junk", kind, field, text)
        add("text: out of range for the field", kind, field, "1e19")
        add("text: out of range for the field", kind, field, "99999999999999999999")
        add("text: out of range for the field", kind, field, "nan")
    add("text: out of range for the field", "mbbo", "ZRVL", "-1")
    add("text: out of range for the field", "mbbo", "SHFT", "-1")
    add("text: out of range for the field", "ao", "PREC", "40000")
    add("text: out of range for the field", "int64out", "VAL", "9223372036854775808")
    add("text: out of range for the field", "wf_float", "VAL", "4e38")
    add("text: out of range for the field", "ao_free", "VAL", "1e999")
    for kind in ["bo", "soft_bo", "mbbo", "soft_mbbo"]:
        for text in ["3" if kind.endswith("mbbo") else "2", "", "On ", "Three", "-1", "16"]:
            add("text: no such state", kind, "VAL", text)
        add("text: no such state", kind, "VAL", "1abc", protos=("ca",))
        # The caput tool reads text that names no state as a number itself
        # (epicsStrtod, up to the junk) and sends the index.
        add(OUTSIDE, kind, "VAL", "1abc", protos=("caput",), outside=True)
    for text in ["10", "bogus", "-1"]:
        add("text: no such menu choice", "ao", "SCAN", text)
    add("text: no such menu choice", "ao", "SCAN", "1 sec", protos=("ca",))
    add(OUTSIDE, "ao", "SCAN", "1 sec", protos=("caput",), outside=True)
    # ... legal text
    legal_text = [("longout", "VAL", "1e3", 1000), ("longout", "VAL", "0x10", 16),
                  ("mbbo", "ZRVL", "0x10", 16), ("longout", "VAL", "010", 8),
                  ("longout", "VAL", "1.5", 1),
                  ("longout", "VAL", " -7 ", -7), ("longout", "VAL", "2.7e1", 27),
                  ("int64out", "VAL", "9007199254740993", 9007199254740993),
                  ("ao", "PREC", "4.0", 4), ("mbbo", "ZRVL", "4294967295", 4294967295),
                  ("ao", "VAL", "1e300", 100.0), ("ao_free", "VAL", "-inf", -math.inf),
                  ("ao", "DRVH", "75", 75.0), ("wf_double", "VAL", "0x10", [16.0]),
                  ("bo", "VAL", "On", 1), ("mbbo", "VAL", "Two", 2), ("mbbo", "VAL", "0", 0),
                  ("soft_mbbo", "VAL", "Two", 2), ("ao", "SCAN", "Event", 1),
                  ("ao", "SCAN", "1 second", 6),
                  ("lso", "VAL", "x" * 30, "x" * 19), ("ao", "EGU", "y" * 30, "y" * 15),
                  ("stringout", "VAL", "z" * 39, "z" * 39)]
    for kind, field, text, legal in legal_text:
        add("legal text", kind, field, text, legal)

    # Typed numbers over CA (libca puts converted by the IOC).
    def typed(cls: str, kind: str, field: str, dbr: str, values: list[Any],
              legal: Any = REJECT) -> None:
        for v in values:
            add(cls, kind, field, v, legal, protos=("ca",), dbr=dbr)

    nonfinite = [math.nan, math.inf, -math.inf]
    typed("double into an integer field: out of range", "longout", "VAL", "DOUBLE",
          [1e13, 2147483648.0, -2147483649.0, 1e19, *nonfinite])
    typed("double into an integer field: out of range", "soft_longout", "VAL", "DOUBLE",
          [1e13, math.nan])
    typed("double into an integer field: out of range", "int64out", "VAL", "DOUBLE",
          [1e19, -1e19, 9.3e18, 2.0**63, *nonfinite])
    typed("double into an integer field: out of range", "longout", "DRVH", "DOUBLE",
          [1e13, math.nan])
    typed("double into an integer field: out of range", "ao", "PREC", "DOUBLE",
          [40000.0, -1e10, math.nan])
    typed("double into an integer field: out of range", "mbbo", "ZRVL", "DOUBLE",
          [-1.0, 5e9, math.nan])
    typed("double into an integer field: out of range", "mbbo", "SHFT", "DOUBLE",
          [70000.0, -1.0])
    typed("double into an integer field: out of range", "longout", "VAL", "FLOAT",
          [3e9, math.nan, -math.inf])
    typed("integer into a narrower field", "ao", "PREC", "LONG", [40000, -40000])
    typed("integer into a narrower field", "mbbo", "SHFT", "LONG", [70000, -1])
    typed("integer into a narrower field", "mbbo", "SHFT", "SHORT", [-1])
    typed("integer into a narrower field", "mbbo", "ZRVL", "LONG", [-1])
    typed("integer into a narrower field", "mbbo", "ZRVL", "SHORT", [-5])
    typed("integer into a narrower field", "ao", "TPRO", "LONG", [300, -1])
    typed("integer into a narrower field", "ao", "DISV", "LONG", [70000])
    for kind in ["bo", "soft_bo"]:
        typed("index with no state", kind, "VAL", "ENUM", [2, 65535])
        typed("index with no state", kind, "VAL", "SHORT", [-1, 2])
        typed("index with no state", kind, "VAL", "LONG", [2, 70000, -1, 65537])
        typed("index with no state", kind, "VAL", "DOUBLE", [2.0, -1.0, math.nan])
        typed("index with no state", kind, "VAL", "CHAR", [255])
    for kind in ["bo_znam", "bo_unnamed"]:      # a bo has 2 states, named or not
        typed("index with no state", kind, "VAL", "ENUM", [2])
        typed("legal number", kind, "VAL", "ENUM", [1], 1)
    # An mbbo without state names is a plain 16-bit number (EPICS says so).
    typed("integer into a narrower field", "mbbo_unnamed", "VAL", "LONG", [70000, -1])
    typed("legal number", "mbbo_unnamed", "VAL", "LONG", [16], 16)
    for kind in ["mbbo", "soft_mbbo"]:
        typed("index with no state", kind, "VAL", "ENUM", [3, 15, 16, 65535])
        typed("index with no state", kind, "VAL", "LONG", [70000, 16, -1, 65539])
        typed("index with no state", kind, "VAL", "SHORT", [-1])
        typed("index with no state", kind, "VAL", "DOUBLE", [3.0, 1e10])
    typed("menu index with no choice", "ao", "SCAN", "ENUM", [10, 65535])
    typed("menu index with no choice", "ao", "SCAN", "SHORT", [-1])
    typed("menu index with no choice", "ao", "SCAN", "LONG", [70000, 10])
    typed("menu index with no choice", "ao", "SCAN", "DOUBLE", [10.0])
    typed("menu index with no choice", "bo", "OMSL", "ENUM", [2])
    typed("menu index with no choice", "ao", "IVOA", "ENUM", [3])
    typed("menu index with no choice", "mbbo", "ZRSV", "ENUM", [4])
    typed("menu index with no choice", "longout", "PRIO", "LONG", [3])
    typed("double into a float field: overflow", "wf_float", "VAL", "DOUBLE",
          [1e300, [1.0, 1e39], [-3.5e38]])
    typed("array with a bad element", "wf_long", "VAL", "DOUBLE",
          [[1, 2, 1e13], [5, math.nan], [2147483648.0, 3]])
    typed("array with a bad element", "wf_short", "VAL", "LONG", [[1, 70000], [-32769, 4]])
    typed("array with a bad element", "wf_uchar", "VAL", "LONG", [[255, 256], [-1, 3]])
    typed("array with a bad element", "wf_uchar", "VAL", "DOUBLE", [[3, -1.0]])
    typed("array with a bad element", "wf_long", "VAL", "STRING",
          [["1", "2x"], ["1", ""], ["3", "7q"]])
    typed("array with a bad element", "wf_double", "VAL", "STRING", [["1.5", "1,5"]])
    # ... legal numbers
    legal_typed = [
        ("longout", "VAL", "DOUBLE", 1.5, 1), ("longout", "VAL", "DOUBLE", -2.7, -2),
        ("longout", "VAL", "DOUBLE", 2147483647.0, 2147483647),
        ("int64out", "VAL", "DOUBLE", -2.0**63, -2**63),
        ("int64out", "VAL", "DOUBLE", 2.0**53, 2**53),
        ("bo", "VAL", "DOUBLE", 1.0, 1), ("bo", "VAL", "DOUBLE", 0.9, 0),
        ("bo", "VAL", "ENUM", 1, 1), ("mbbo", "VAL", "LONG", 2, 2),
        ("soft_mbbo", "VAL", "SHORT", 2, 2), ("ao", "SCAN", "ENUM", 1, 1),
        ("ao_free", "VAL", "DOUBLE", math.nan, math.nan), ("ao", "VAL", "DOUBLE", 1e300, 100.0),
        ("ao", "VAL", "DOUBLE", -math.inf, -100.0), ("ao", "PREC", "DOUBLE", 4.9, 4),
        ("mbbo", "ZRVL", "DOUBLE", 4294967295.0, 4294967295),
        ("mbbo", "SHFT", "LONG", 15, 15),
        ("wf_long", "VAL", "DOUBLE", [1.5, -2.5], [1, -2]),
        ("wf_uchar", "VAL", "DOUBLE", [255.9], [255]),
        ("wf_float", "VAL", "DOUBLE", [3e38], [float(np.float32(3e38))]),
        ("wf_long", "VAL", "STRING", ["1", "1e3", " 4 "], [1, 1000, 4]),
    ]
    for kind, field, dbr, v, legal in legal_typed:
        typed("legal number", kind, field, dbr, [v], legal)

    # PV Access (p4p): values travel in the field's own type, so what reaches
    # EPICS's conversions is an enum or menu index.  It travels as an int32
    # that QSRV2 casts to 16 bits: 65538 would be state 2, 65536 state 0.
    both = ("pva", "pva-wait")
    for kind in ["bo", "soft_bo"]:
        for v in [2, 70000, -1, 16, 65536, 65537]:
            add("index with no state", kind, "VAL", v, protos=both)
    for kind in ["mbbo", "soft_mbbo"]:
        for v in [3, 16, 70000, -1, 65538, 131072]:
            add("index with no state", kind, "VAL", v, protos=both)
    for v in [10, -1, 70000, 65537]:
        add("menu index with no choice", "ao", "SCAN", v, protos=both)
    add("menu index with no choice", "bo", "OMSL", 2, protos=both)
    add("menu index with no choice", "mbbo", "ZRSV", 4, protos=both)
    for kind, field, v in [("longout", "VAL", "12abc"), ("longout", "VAL", "1,5"),
                           ("ao", "VAL", "5 6"), ("bo", "VAL", "Maybe")]:
        add("text: refused by the PVA client", kind, field, v, protos=both)
    for kind, field, v, legal in [("bo", "VAL", 1, 1), ("mbbo", "VAL", 2, 2),
                                  ("mbbo", "VAL", "Two", 2), ("ao", "SCAN", 1, 1),
                                  ("longout", "VAL", 7, 7),
                                  ("stringout", "VAL", "s" * 60, "s" * 39)]:
        add("legal", kind, field, v, legal, protos=both)
    # Converted by the client (p4p casts to the field's PVA type) before the
    # IOC sees the put: out of reach.
    for kind, field, v in [("longout", "VAL", 1e13), ("longout", "VAL", 2147483648.0),
                           ("longout", "VAL", math.nan), ("ao", "PREC", 40000),
                           ("mbbo", "ZRVL", -1)]:
        add(OUTSIDE, kind, field, v, protos=both, outside=True)

    for i, case in enumerate(cases):
        case.name = f"ST:{i}"
    return cases


def pv(case: Case) -> str:
    return case.name if case.field == "VAL" else f"{case.name}.{case.field}"


# ---- running it --------------------------------------------------------------

CA_TYPES = {"STRING": 0, "SHORT": 1, "FLOAT": 2, "ENUM": 3, "CHAR": 4, "LONG": 5, "DOUBLE": 6}
CA_CTYPES: dict[str, Any] = {
    "SHORT": ctypes.c_int16, "FLOAT": ctypes.c_float, "ENUM": ctypes.c_uint16,
    "CHAR": ctypes.c_uint8, "LONG": ctypes.c_int32, "DOUBLE": ctypes.c_double,
}


class _EventArgs(ctypes.Structure):
    _fields_ = [("usr", ctypes.c_void_p), ("chid", ctypes.c_void_p), ("type", ctypes.c_long),
                ("count", ctypes.c_long), ("dbr", ctypes.c_void_p), ("status", ctypes.c_int)]


def ca_client(ops: list[dict[str, Any]]) -> dict[str, str]:
    """Put each op with ca_array_put_callback (in this process: env set by
    the caller); returns pv -> "ok" or CA's message for the callback status."""
    import epicscorelibs.path

    ca = ctypes.CDLL(epicscorelibs.path.get_lib("ca"))
    ca.ca_message.restype = ctypes.c_char_p
    ca.ca_pend_io.argtypes = [ctypes.c_double]
    ca.ca_pend_event.argtypes = [ctypes.c_double]
    ca.ca_create_channel.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
    callback_t = ctypes.CFUNCTYPE(None, _EventArgs)
    ca.ca_array_put_callback.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_void_p,
                                         ctypes.c_void_p, callback_t, ctypes.c_void_p]
    assert ca.ca_context_create(0) == 1
    chids = {}
    for op in ops:
        chid = ctypes.c_void_p()
        ca.ca_create_channel(op["pv"].encode(), None, None, 0, ctypes.byref(chid))
        chids[op["pv"]] = chid
    ca.ca_pend_io(10.0)
    results: dict[str, str] = {}

    @callback_t
    def done(args: _EventArgs) -> None:
        key = ops[args.usr or 0]["pv"]
        results[key] = "ok" if args.status == 1 else ca.ca_message(args.status).decode()

    keep = []
    for i, op in enumerate(ops):
        values = op["values"]
        if op["dbr"] == "STRING":
            buf: Any = (ctypes.c_char * (40 * len(values)))()
            for j, v in enumerate(values):
                ctypes.memmove(ctypes.byref(buf, 40 * j), v.encode()[:39], len(v.encode()[:39]))
        else:
            buf = (CA_CTYPES[op["dbr"]] * len(values))(*values)
        keep.append(buf)
        status = ca.ca_array_put_callback(CA_TYPES[op["dbr"]], len(values), chids[op["pv"]],
                                          buf, done, i)
        if status != 1:
            results[op["pv"]] = ca.ca_message(status).decode()
    ca.ca_flush_io()
    deadline = time.monotonic() + 20
    while len(results) < len(ops) and time.monotonic() < deadline:
        ca.ca_pend_event(0.02)
    return results


def run_ca(ioc: Any, ops: list[dict[str, Any]]) -> dict[str, str]:
    if not ops:
        return {}
    result = subprocess.run(
        [sys.executable, __file__, "--ca-client"], input=json.dumps(ops), env=ioc.env,
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def run_caput(ioc: Any, case: Case) -> str:
    result = ioc.run_tool("caput", "-c", "-w", "10", "--", pv(case), case.value, check=False)
    out = result.stdout
    ok = result.returncode == 0 and "New :" in out and "rror" not in out
    return "ok" if ok else out.strip()


# How each client says "refused", in its own words: the server's answer
# (ECA_PUTFAIL over CA, a RemoteError over PVA), or the client's own refusal
# to convert before sending (caput's enum check, p4p's ValueError).  Anything
# else (no callback, a timeout, a lost connection) is not a refusal but a
# failed test.
IOC_REFUSALS = {
    "ca": ("Channel write request failed",),
    "caput": ("occured writing data: Channel write request failed",),
    "pva": ("RemoteError: ",),
    "pva-wait": ("RemoteError: ",),
}
CLIENT_REFUSALS = {
    "ca": (), "caput": ("Enum string value",),
    "pva": ("ValueError: ",), "pva-wait": ("ValueError: ",),
}


def refused_by(proto: str, status: str) -> str | None:
    """"the IOC" or "the client" if a put's status is a refusal in that
    client's own words, else None."""
    for who, refusals in (("the IOC", IOC_REFUSALS), ("the client", CLIENT_REFUSALS)):
        words = refusals[proto]
        if (status.startswith(words) if proto.startswith("pva")
                else any(text in status for text in words)):
            return who
    return None


def refused(proto: str, status: str) -> bool:
    """Whether a put's status is a refusal in that client's own words."""
    return refused_by(proto, status) is not None


def plain(value: Any) -> Any:
    """A value read over PVA as plain Python (enum -> index, arrays -> lists)."""
    if hasattr(value, "raw"):
        value = value.raw["value"]
        if hasattr(value, "keys") and "index" in value.keys():
            return int(value["index"])
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return str(value)


def read_all(ctx: Any, cases: list[Case]) -> list[Any]:
    values = ctx.get([pv(c) for c in cases], timeout=10, throw=False)
    return [plain(v) if not isinstance(v, Exception) else f"error: {v}" for v in values]


def run_corpus(ioc: Any, cases: list[Case]) -> list[dict[str, Any]]:
    """Put every case; returns per case: ok (client told success), before, after."""
    from p4p.client.thread import RemoteError

    # Waveforms and long strings start the same in every IOC (a .db cannot
    # give them a value): written first.
    run_ca(ioc, [{"pv": c.name, "dbr": "DOUBLE", "values": [1.0, 2.0]} for c in cases
                 if c.kind.startswith("wf_")] +
           [{"pv": c.name, "dbr": "STRING", "values": ["hello"]} for c in cases
            if c.kind == "lso"])
    ctx = pva_context(ioc)
    try:
        before = read_all(ctx, cases)
        status: dict[int, str] = {}
        ca_cases = [c for c in cases if c.proto == "ca"]
        results = run_ca(ioc, [{"pv": pv(c), "dbr": c.dbr,
                                "values": c.value if isinstance(c.value, list) else [c.value]}
                               for c in ca_cases])
        for i, c in enumerate(cases):
            if c.proto == "ca":
                status[i] = results.get(pv(c), "no callback")
        with ThreadPoolExecutor(16) as pool:
            caput = {i: pool.submit(run_caput, ioc, c) for i, c in enumerate(cases)
                     if c.proto == "caput"}
            for i, c in enumerate(cases):
                if c.proto.startswith("pva"):
                    try:
                        ctx.put(pv(c), c.value, wait=c.proto == "pva-wait", timeout=5)
                        status[i] = "ok"
                    except (RemoteError, ValueError) as e:  # the server's or p4p's refusal
                        status[i] = f"{type(e).__name__}: {e}"
            status.update({i: f.result() for i, f in caput.items()})
        after = read_all(ctx, cases)
    finally:
        ctx.close()
    assert ioc.proc.poll() is None, f"the IOC died:\n{ioc.output()}"
    unexplained = [(pv(c), c.proto, status[i]) for i, c in enumerate(cases)
                   if status[i] != "ok" and not refused(c.proto, status[i])]
    assert not unexplained, "puts that failed without a refusal:\n" + "\n".join(
        map(repr, unexplained))
    return [{"ok": status[i] == "ok", "status": status[i], "before": before[i],
             "after": after[i]} for i in range(len(cases))]


def same(a: Any, b: Any) -> bool:
    """Equal values (NaN equals NaN; a list only equals a list)."""
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b)))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def outcome(case: Case, result: dict[str, Any]) -> str:
    """refused by the IOC or by the client (told, unchanged), converted
    (accepted as documented), silent (told success but not stored as sent),
    or broken (told failure, changed)."""
    unchanged = same(result["after"], result["before"])
    if not result["ok"]:
        return f"refused by {refused_by(case.proto, result['status'])}" if unchanged else "broken"
    if case.legal is not REJECT and same(result["after"], case.legal):
        return "converted"
    return "silent"


def spec(cases: list[Case]) -> list[tuple[str, str]]:
    return [(c.name, c.kind) for c in cases]


@contextlib.contextmanager
def running(ioc: IOCProcess) -> Iterator[IOCProcess]:
    """The IOC, stopped afterwards with its output pipe closed."""
    try:
        yield ioc
    finally:
        ioc.stop()                  # also closes the output pipe


def start_pythonioc(tmp: Path, cases: list[Case], strict: bool, api: bool = False) -> IOCProcess:
    path = tmp / "strict.json"
    path.write_text(json.dumps(spec(cases)))
    env = {"PYTHONIOC_STRICT_PUTS": "YES" if strict or api else "NO"}
    args = [str(IOCS / "strict_ioc.py"), str(path)] + (["--off"] if api else [])
    return IOCProcess(args, wait_for="READY", env=env, timeout=60)


def start_softiocpva(tmp: Path, cases: list[Case]) -> IOCProcess:
    db = tmp / "strict.db"
    db.write_text(strict_ioc.db_text(spec(cases)) + 'record(longout, "READY") {}\n')
    return IOCProcess([epics_tool("softIocPVA"), "-d", str(db)], python=False,
                      wait_for="READY", timeout=60)


# ---- the tests -----------------------------------------------------------------

CASES = corpus()


@pytest.fixture(scope="module")
def strict_on(tmp_path_factory: Any) -> Any:
    tmp = tmp_path_factory.mktemp("on")
    with running(start_pythonioc(tmp, CASES, strict=True)) as ioc:
        results = run_corpus(ioc, CASES)
        yield ioc, results


@pytest.fixture(scope="module")
def strict_off(tmp_path_factory: Any) -> Any:
    tmp = tmp_path_factory.mktemp("off")
    with running(start_pythonioc(tmp, CASES, strict=False, api=True)) as ioc:
        yield run_corpus(ioc, CASES)


@pytest.fixture(scope="module")
def softiocpva(tmp_path_factory: Any) -> Any:
    tmp = tmp_path_factory.mktemp("c")
    with running(start_softiocpva(tmp, CASES)) as ioc:
        yield run_corpus(ioc, CASES)


def test_corpus_is_large_and_systematic() -> None:
    bad = [c for c in CASES if c.legal is REJECT and not c.outside]
    assert len(bad) >= 300
    kinds = {c.kind for c in CASES}
    assert {"ao", "bo", "longout", "int64out", "stringout", "mbbo", "lso", "wf_long"} <= kinds
    assert {"ca", "caput", "pva", "pva-wait"} == {c.proto for c in CASES}
    assert {"PREC", "SCAN", "DRVH", "HOPR", "EGU"} <= {c.field for c in CASES}


def test_strict_refuses_every_bad_put(strict_on: Any) -> None:
    ioc, results = strict_on
    wrong = []
    for case, result in zip(CASES, results):
        if case.outside:
            continue
        want = "refused" if case.legal is REJECT else "converted"
        got = outcome(case, result).replace(" by the IOC", "").replace(" by the client", "")
        if got != want:
            wrong.append((pv(case), case.proto, case.dbr, case.value, case.legal, got, result))
    assert not wrong, "\n".join(map(repr, wrong))
    assert ioc.proc.poll() is None, ioc.output()


def test_strict_ioc_still_answers_after_the_corpus(strict_on: Any) -> None:
    ioc, _ = strict_on
    bo = next(c for c in CASES if c.kind == "bo" and c.proto == "pva-wait")
    ctx = pva_context(ioc)
    try:
        for value in (1, 0):
            ctx.put(bo.name, value, wait=True, timeout=5)
            assert plain(ctx.get(bo.name, timeout=5)) == value
    finally:
        ctx.close()
    assert ioc.caget(bo.name) == "Off"


def test_outside_conversions_are_the_clients(strict_on: Any, strict_off: Any) -> None:
    """What p4p changes before sending is the same with strict on or off."""
    _, on = strict_on
    for case, a, b in zip(CASES, on, strict_off):
        if case.outside:
            assert a["ok"] and b["ok"] and same(a["after"], b["after"]), (pv(case), a, b)


def base_version_differs(case: Case) -> bool:
    """The C softIocPVA is EPICS 7.0.8.1, pythonIOC's core 7.0.10: 7.0.10
    reads text for integer fields as C literals (0x10 is 16, 010 is 8; 7.0.8:
    base 10, so 0 and 10), and its DBF_ULONG keeps the integer part when the
    exponent form overflows ("1e19" is 1; 7.0.8: 0)."""
    if case.proto not in ("ca", "caput") or not isinstance(case.value, str):
        return False
    integer = (case.kind, case.field) in INTEGER_TARGETS
    return (integer and case.value.lstrip(" -").startswith("0") and len(case.value) > 1) or (
        case.field == "ZRVL" and case.value == "1e19")


def test_strict_off_matches_softiocpva(strict_off: Any, softiocpva: Any) -> None:
    different = []
    for case, ours, theirs in zip(CASES, strict_off, softiocpva):
        if base_version_differs(case):
            continue
        if ours["ok"] != theirs["ok"] or not same(ours["after"], theirs["after"]):
            different.append((pv(case), case.proto, case.dbr, case.value, ours, theirs))
    assert not different, "\n".join(map(repr, different))


def test_pva_blocking_bad_put_keeps_the_record(strict_on: Any) -> None:
    """QSRV2 must not see dbPut fail inside its blocking put (it crashes):
    the put is refused before QSRV2 takes it, with the reason, and the
    record keeps working."""
    ioc, _ = strict_on
    ctx = pva_context(ioc)
    names = {c.kind: c.name for c in CASES if c.proto == "pva-wait"}
    try:
        for kind, bad, good in [("bo", 2, 1), ("mbbo", 70000, 2), ("soft_bo", 5, 1)]:
            name = names[kind]
            before = plain(ctx.get(name, timeout=5))
            with pytest.raises(Exception, match="no such state or choice"):
                ctx.put(name, bad, wait=True, timeout=5)
            assert plain(ctx.get(name, timeout=5)) == before
            ctx.put(name, good, wait=True, timeout=5)
            assert plain(ctx.get(name, timeout=5)) == good
            with pytest.raises(Exception, match="strict puts"):
                ctx.put(name, bad, wait=False, timeout=5)
        scan = next(c for c in CASES if c.field == "SCAN" and c.proto == "pva-wait")
        with pytest.raises(Exception, match="no such state or choice"):
            ctx.put(f"{scan.name}.SCAN", 10, wait=True, timeout=5)
        assert ioc.caget(f"{scan.name}.SCAN") == "Passive"
    finally:
        ctx.close()


ENUM_IOC = '''
from softioc import builder, pva, softioc
mbb = builder.mbbOut("EN:MBB", "A", "B", "C", initial_value=1)
builder.boolOut("EN:BO", ZNAM="Off", ONAM="On", initial_value=1)
pva.Group("EN:GRP", {"m": pva.Field(mbb, putorder=0)})
# QSRV2 skips a field without putorder, and refuses one of a disabled record.
skipped = builder.mbbOut("EN:SKIP", "A", "B", "C", initial_value=1)
pva.Group("EN:MIX", {"m": pva.Field(skipped), "l": pva.Field(builder.longOut("EN:LO", 0),
                                                               putorder=1)})
disabled = builder.mbbOut("EN:DIS", "A", "B", "C", initial_value=1, DISP=1)
pva.Group("EN:DGRP", {"m": pva.Field(disabled, putorder=0)})
builder.longOut("EN:READY", 0)
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
'''


@pytest.mark.parametrize("strict", [True, False])
def test_pva_enum_index_beyond_16_bits(tmp_path: Path, strict: bool) -> None:
    """An NTEnum index travels as an int32 and QSRV2 casts it to 16 bits
    (65538 is state 2, 131072 and 65536 state 0).  Strict puts refuse an
    index with no state as sent, blocking or not, to a record or through a
    group PV, as over CA; plain EPICS stores the cast value and reports
    success."""
    from p4p.client.thread import RemoteError

    script = tmp_path / "enum_ioc.py"
    script.write_text(ENUM_IOC)
    env = {"PYTHONIOC_STRICT_PUTS": "YES" if strict else "NO"}
    with running(IOCProcess([str(script)], wait_for="EN:READY", env=env)) as ioc:
        ctx = pva_context(ioc)
        try:
            for name, index, cast in [("EN:MBB", 65538, 2), ("EN:MBB", 131072, 0),
                                      ("EN:BO", 65536, 0)]:
                for wait in (True, False):
                    ctx.put(name, {"value.index": 1}, wait=True, timeout=5)
                    if strict:
                        with pytest.raises(RemoteError, match="no such state or choice"):
                            ctx.put(name, {"value.index": index}, wait=wait, timeout=5)
                    else:
                        ctx.put(name, {"value.index": index}, wait=wait, timeout=5)
                    got = ctx.get(name, timeout=5).raw["value"]["index"]
                    assert got == (1 if strict else cast), (name, index, wait)
            for wait in (True, False):
                ctx.put("EN:GRP", {"m.value.index": 1}, wait=True, timeout=5)
                if strict:
                    with pytest.raises(RemoteError, match="no such state or choice"):
                        ctx.put("EN:GRP", {"m.value.index": 65538}, wait=wait, timeout=5)
                else:
                    ctx.put("EN:GRP", {"m.value.index": 65538}, wait=wait, timeout=5)
                assert ioc.caget("EN:MBB") == ("B" if strict else "C"), wait
            ctx.put("EN:GRP", {"m.value.index": 2}, wait=True, timeout=5)   # a state: stored
            assert ioc.caget("EN:MBB") == "C"
            # QSRV2's own rules come first: a field it skips is not refused...
            ctx.put("EN:MIX", {"m.value.index": 65538, "l.value": 42}, wait=True, timeout=5)
            assert (ioc.caget("EN:SKIP"), ioc.caget("EN:LO")) == ("B", "42")
            # ... and a client it would not let write gets its answer.
            with pytest.raises(RemoteError, match="Disabled"):
                ctx.put("EN:DGRP", {"m.value.index": 65538}, wait=True, timeout=5)
            assert ioc.caget("EN:DIS") == "B"
        finally:
            ctx.close()
        assert ioc.proc.poll() is None, ioc.output()


def test_caput_tool_reports_the_failure(strict_on: Any) -> None:
    ioc, _ = strict_on
    case = next(c for c in CASES if c.kind == "longout" and c.proto == "caput")
    result = ioc.run_tool("caput", "-c", "-w", "5", case.name, "12abc", check=False)
    assert "ERROR" in result.stdout and "write" in result.stdout
    assert "12" != ioc.caget(case.name)


def test_switch_at_run_time(strict_on: Any) -> None:
    """softioc.strict.strict_puts() switches; dbpf and put_field follow it."""
    ioc, _ = strict_on
    case = next(c for c in CASES if c.kind == "soft_longout" and c.proto == "caput")
    def shell(command: str, marker: str) -> None:
        """Run a command in the IOC's shell, then wait until it has."""
        ioc.send(command)
        ioc.send(f"_ext.put_field('{case.name}', '{marker}')")
        ioc.wait_value(case.name, marker, timeout=10)

    ioc.send("from softioc import strict, _ext")
    shell("strict.strict_puts(False)", "3")
    assert "ERROR" not in ioc.caput(case.name, "44abc").stdout
    assert ioc.caget(case.name) == "44"
    shell("strict.strict_puts(True)", "5")
    assert "ERROR" in ioc.caput(case.name, "55abc").stdout
    assert ioc.caget(case.name) == "5"


def test_put_field_from_python_raises(tmp_path: Path) -> None:
    cases = [Case("x", "longout", "VAL", "ca", "STRING", "1", name="PF:1")]
    with running(start_pythonioc(tmp_path, cases, strict=True)) as ioc:
        ioc.send("from softioc import _ext")
        ioc.send("try:\n    _ext.put_field('PF:1', '12abc')\nexcept RuntimeError as e:\n"
                 "    print('REFUSED', e)\n")
        ioc.send("print('DONE')")
        ioc.stop()
        out = ioc.output()
    assert "REFUSED PF:1: text is not a number (strict puts)" in out, out


def test_database_links_are_strict_too(tmp_path: Path) -> None:
    """A DB link put goes through the same conversions: refused puts raise
    LINK alarm on the writing record, the target keeps its value."""
    db = tmp_path / "links.db"
    db.write_text(
        'record(ao, "L:SRC") { field(OUT, "L:DST PP") field(VAL, "1") }\n'
        'record(longout, "L:DST") { field(VAL, "8") }\n'
        'record(longout, "READY") {}\n')
    script = tmp_path / "links_ioc.py"
    script.write_text(
        "from softioc import softioc\n"
        f"softioc.dbLoadDatabase({str(db)!r})\n"
        "softioc.iocInit()\nsoftioc.interactive_ioc(globals())\n")
    with running(IOCProcess([str(script)], wait_for="READY")) as ioc:
        assert "rror" not in ioc.caput("L:SRC", "1e13").stdout
        assert ioc.caget("L:DST") == "8"
        assert ioc.caget("L:SRC.STAT") == "LINK"
        ioc.caput("L:SRC", "42")
        assert ioc.caget("L:DST") == "42"


def test_outcome_table(strict_on: Any, strict_off: Any) -> None:
    """The table of the docs, as this run measures it: with strict puts every
    bad put is refused (by the IOC, or by its client before sending), every
    legal one converted, and only what the client changes before sending is
    silent."""
    bad = sum(1 for c in CASES if c.legal is REJECT and not c.outside)
    legal = sum(1 for c in CASES if c.legal is not REJECT)
    outside = sum(1 for c in CASES if c.outside)
    text = table(strict_on[1], strict_off)
    total = text.splitlines()[-1].split("|")[3]
    ioc, client, converted, silent = (int(n) for n in total.split("/"))
    assert (ioc + client, converted, silent) == (bad, legal, outside)
    docs = (Path(__file__).parents[1] / "docs" / "strict-puts.md").read_text()
    assert text in docs, f"docs/strict-puts.md's table is not this run's:\n{text}"


# ---- the outcome table of docs/strict-puts.md ---------------------------------

COLUMNS = ("refused by the IOC", "refused by the client", "converted", "silent")


def table(on: list[dict[str, Any]], off: list[dict[str, Any]]) -> str:
    rows: dict[str, Counter[str]] = {}
    for case, a, b in sorted(zip(CASES, on, off),
                             key=lambda x: (x[0].proto.startswith("pva"), x[0].outside)):
        over = "PVA" if case.proto.startswith("pva") else "CA"
        row = rows.setdefault(f"{case.cls} ({over})", Counter())
        row["puts"] += 1
        row["on " + outcome(case, a)] += 1
        row["off " + outcome(case, b)] += 1
    head = " / ".join(c.replace("refused by the ", "") + " refused" if c.startswith("refused")
                      else c for c in COLUMNS)
    lines = [f"| input class | puts | strict on: {head} | strict off: {head} |",
             "|---|---:|---|---|"]
    total: Counter[str] = Counter()

    def cells(row: Counter[str], mode: str) -> str:
        return " / ".join(str(row[f"{mode} {c}"]) for c in COLUMNS)

    for cls, row in rows.items():
        total.update(row)
        lines.append(f"| {cls} | {row['puts']} | {cells(row, 'on')} | {cells(row, 'off')} |")
    for mode in ("on", "off"):
        assert not total[f"{mode} broken"], f"strict {mode}: refused puts that changed the value"
    lines.append(f"| **all** | {total['puts']} | {cells(total, 'on')} | {cells(total, 'off')} |")
    return "\n".join(lines)


def main() -> None:
    if "--ca-client" in sys.argv:
        print(json.dumps(ca_client(json.load(sys.stdin))))
        return
    if "--table" in sys.argv:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            with running(start_pythonioc(Path(d), CASES, strict=True)) as ioc:
                on = run_corpus(ioc, CASES)
            with running(start_pythonioc(Path(d), CASES, strict=False)) as ioc:
                off = run_corpus(ioc, CASES)
        print(table(on, off))
        print(f"\n{len(CASES)} puts, "
              f"{sum(1 for c in CASES if c.legal is REJECT and not c.outside)} bad ones")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()


LONG_IOC = '''
import asyncio
from softioc import asyncio_dispatcher, builder, softioc
builder.SetDeviceName("LS")
builder.longStringOut("BIG", "start", length=256)
async def slow(value):
    await asyncio.sleep(2.5)
builder.mbbOut("BUSY", "A", "B", "C", on_update=slow, blocking=True)
builder.longOut("READY", 0)
builder.LoadDatabase()
softioc.iocInit(asyncio_dispatcher.AsyncioDispatcher())
softioc.interactive_ioc(globals())
'''


def test_pva_text_longer_than_a_256_byte_long_string(tmp_path: Path) -> None:
    """256 or 300 characters do not fit a 256-byte long string with its NUL:
    refused with the reason, blocking or not; 255 fit."""
    script = tmp_path / "long_ioc.py"
    script.write_text(LONG_IOC)
    with running(IOCProcess([str(script)], wait_for="LS:READY")) as ioc:
        ctx = pva_context(ioc)
        try:
            for n in (256, 300):
                for wait in (True, False):
                    with pytest.raises(Exception, match="text too long for record"):
                        ctx.put("LS:BIG", "x" * n, wait=wait, timeout=5)
                    assert ioc.caget("LS:BIG", "-S") == "start"
            ctx.put("LS:BIG", "y" * 255, wait=True, timeout=5)
            assert ioc.caget("LS:BIG", "-S") == "y" * 255
        finally:
            ctx.close()


@pytest.mark.parametrize("client", ["ca", "pva"])
def test_put_callback_restarted_on_a_busy_record_is_refused(tmp_path: Path, client: str) -> None:
    """A bad put-callback to a busy record (PACT) is refused and the IOC keeps
    running.  Over CA the put-callback waits and is restarted by dbNotify from
    a callback thread: its refusal fails it through processNotify.status.  Over
    PVA QSRV2's blocking put is checked before QSRV2 waits, so it never
    reaches dbNotify's restart: it is refused at once, with the reason.  The
    first put-callback still completes and stores its value."""
    from p4p.client.thread import RemoteError

    script = tmp_path / "busy_ioc.py"
    script.write_text(LONG_IOC)
    with running(IOCProcess([str(script)], wait_for="LS:READY")) as ioc:
        ctx = pva_context(ioc)
        try:
            ctx.get("LS:BUSY", timeout=10)                   # connected before it is busy
            with start_tool("caput", "-c", "-w", "10", "LS:BUSY", "1", env=ioc.env) as first:
                wait_until(lambda: ioc.caget("LS:BUSY.PACT") == "1", timeout=10, interval=0.02,
                           what="LS:BUSY busy (PACT) for 2.5 s")
                if client == "ca":
                    bad = ioc.run_tool("caput", "-c", "-w", "10", "LS:BUSY", "7", check=False)
                    assert "Channel write request failed" in bad.stdout, bad.stdout
                else:
                    with pytest.raises(RemoteError, match="no such state or choice"):
                        ctx.put("LS:BUSY", {"value.index": 65538}, wait=True, timeout=10)
                out, _ = first.communicate(timeout=20)
        finally:
            ctx.close()
        assert first.returncode == 0 and "New : LS:BUSY" in out, out
        assert ioc.caget("LS:BUSY") == "B"
        ioc.caput("LS:BUSY", "2", options=["-c", "-w", "10"])
        assert ioc.caget("LS:BUSY") == "C"


def test_another_clients_bad_put_to_a_busy_record_fails_itself_only(tmp_path: Path) -> None:
    """While a put-callback waits on a busy record, a plain put of a bad value
    from another client is refused on its own: the waiting put still succeeds."""
    script = tmp_path / "busy_ioc.py"
    script.write_text(LONG_IOC)
    with running(IOCProcess([str(script)], wait_for="LS:READY")) as ioc:
        with start_tool("caput", "-c", "-w", "10", "LS:BUSY", "1", env=ioc.env) as first:
            wait_until(lambda: ioc.caget("LS:BUSY.PACT") == "1", timeout=10, interval=0.02,
                       what="LS:BUSY busy (PACT) for 2.5 s")
            ioc.run_tool("caput", "-w", "5", "LS:BUSY", "7", check=False)      # no callback
            out, _ = first.communicate(timeout=20)
        assert first.returncode == 0 and "failed" not in out.lower(), out
        assert ioc.caget("LS:BUSY") == "B"


CA_ONLY_IOC = '''
from softioc import builder, softioc
builder.longOut("CAO:LO", 1)
builder.mbbIn("CAO:IN", "A", "B", initial_value=0)
builder.LoadDatabase()
softioc.iocInit(enable_pva=False)
softioc.interactive_ioc(globals())
'''


def test_strict_puts_stay_on_when_pva_is_not_served(tmp_path: Path) -> None:
    """iocInit(enable_pva=False) after PVA's libraries were loaded: there is
    no QSRV2 to guard, and strict puts stay on for CA."""
    script = tmp_path / "ca_only_ioc.py"
    script.write_text(CA_ONLY_IOC)
    with running(IOCProcess([str(script)], wait_for="CAO:LO")) as ioc:
        assert "write request failed" in ioc.caput("CAO:LO", "12abc").stdout
        assert ioc.caget("CAO:LO") == "1"
        assert "switched off" not in ioc.output() and "No Instance" not in ioc.output()


def test_a_blocking_pva_put_qsrv2_refuses_gets_qsrv2s_answer(tmp_path: Path) -> None:
    """A bad blocking PVA put to a field the client may not write (an input,
    DISP=1) is refused as QSRV2 refuses any put there, not as a strict put."""
    script = tmp_path / "long_ioc.py"
    script.write_text(LONG_IOC.replace(
        "builder.LoadDatabase()\n", 'builder.mbbIn("IN", "A", "B")\nbuilder.LoadDatabase()\n'))
    with running(IOCProcess([str(script)], wait_for="LS:READY")) as ioc:
        put = ioc.run_tool("pvput", "-w", "5", "-r", "record[block=true]", "LS:IN", "7",
                           check=False)
        assert put.returncode != 0, put.stdout
        assert "strict puts" not in put.stdout, put.stdout
        assert ioc.caget("LS:IN") == "A"
