"""A corpus of bad and edge-case puts over CA (the caput tool) and PVA (pvput),
to every kind of builder record, input records included: for each, the client
gets an error or the value is stored as sent or by a documented rule (DRVL/DRVH
clamping, truncation toward zero, strings and arrays cut to size, an enum by
name or index); the IOC stays up, and no other record changes, ever.

``python tests/reliability/test_bad_puts.py`` prints the outcome table
(docs/reliability.rst has it)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from softioc.testing import IOCProcess, epics_tool

SCRIPT = Path(__file__).parent / "iocs" / "corpus_ioc.py"
NUMERIC = {"AI": "ai", "LI": "longin", "AO": "ao", "LO": "longout", "I64": "int64out"}
ENUM = {"BI": ["Off", "On"], "BO": ["Off", "On"], "MBBI": ["A", "B", "C"],
        "MBBO": ["A", "B", "C"]}
STRING = {"SI": 39, "SO": 39, "LSO": 19}
ARRAY = {"WI": 3, "WO": 4}
LIMITS = {"AO": (-10.0, 10.0), "LO": (-100.0, 100.0)}
NUMBERS = ["abc", "", "1e999", "-1e999", "nan", "inf", "-inf", "12abc", "1e3", "3.7",
           "-3.7", " 5 ", "99999999999999999999", "-1", "0x10", "1,5"]
ENUMS = ["0", "1", "2", "3", "16", "-1", "65536", "Maybe", "On", "B", "", "1.5"]
STRINGS: list[str | bytes] = ["x" * 100, "", b"\xff\xfe\x80ab", "\u00e4" * 30, "ok"]
ARRAYS = [["0"], ["5", "1", "2", "3", "4", "5"], ["2", "1", "x"], ["2", "1e999", "1"]]


@dataclass
class Case:
    proto: str
    pv: str
    value: str | bytes | list[str]
    cls: str


def corpus() -> list[Case]:
    cases = []
    for proto in ("CA", "PVA"):
        for name in NUMERIC:
            cases += [Case(proto, f"BAD:{name}", v, "number") for v in NUMBERS + STRINGS[:3]]
        for name in ENUM:
            cases += [Case(proto, f"BAD:{name}", v, "enum") for v in ENUMS]
        for name in STRING:
            cases += [Case(proto, f"BAD:{name}", v, "string") for v in STRINGS + ["12abc"]]
        if proto == "CA":
            for name in ARRAY:
                cases += [Case(proto, f"BAD:{name}", v, "array") for v in ARRAYS]
    return cases


ALL_PVS = [f"BAD:{n}" for n in [*NUMERIC, *ENUM, *STRING, *ARRAY, "BYSTANDER"]]


def snapshot(env: dict[str, str]) -> dict[str, str]:
    """Every record's value as caget prints it (-S: the long string, a CHAR
    waveform, as text); an array as ``NORD e1 e2...`` (caget pads an array to
    NELM elements, so NORD is read beside it)."""
    nords = [f"BAD:{n}.NORD" for n in ARRAY]
    out = subprocess.run([epics_tool("caget"), "-t", "-S", "-w", "5", *ALL_PVS, *nords], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    lines = out.stdout.decode(errors="replace").splitlines()
    assert len(lines) == len(ALL_PVS) + len(nords), lines
    values = dict(zip(ALL_PVS, lines))
    for name, nord in zip(ARRAY, lines[len(ALL_PVS):]):
        elements = values[f"BAD:{name}"].split()[1:]
        values[f"BAD:{name}"] = " ".join([nord, *elements[:int(nord)]])
    return values


def put(case: Case, env: dict[str, str]) -> bool:
    """Send the put; whether the client was told it succeeded."""
    if case.proto == "CA":
        args: list[str | bytes] = [epics_tool("caput"), "-c", "-w", "5"]
        if case.pv == "BAD:LSO":
            args.append("-S")       # text into a long string (a CHAR waveform)
        args += ["-a", case.pv, *case.value] if isinstance(case.value, list) \
            else [case.pv, case.value]
    else:
        args = [epics_tool("pvput"), "-w", "5", case.pv, case.value]  # type: ignore[list-item]
    out = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=30)
    text = out.stdout.decode(errors="replace")
    return out.returncode == 0 and "rror" not in text


def _num(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        try:
            return float(int(text.strip(), 0))
        except ValueError:
            return None


def plausible(case: Case, before: str, after: str) -> bool:
    """Whether after is what the put asked for, by a documented rule."""
    name = case.pv.split(":")[1]
    sent = case.value
    if name in NUMERIC:
        x, y = _num(sent if isinstance(sent, str) else ""), _num(after)
        if x is None or y is None:
            return False
        if math.isnan(x):
            return math.isnan(y)
        if name in LIMITS:
            lo, hi = LIMITS[name]
            x = min(max(x, lo), hi)
        if name in ("LI", "LO", "I64"):
            x = float(math.trunc(x)) if math.isfinite(x) else x
        return x == y or (math.isfinite(x) and abs(x - y) <= 1e-6 * max(1.0, abs(x)))
    if name in ENUM:
        states = ENUM[name]
        if sent in states:
            return after == sent
        index = _num(sent) if isinstance(sent, str) else None
        return index is not None and 0 <= index < len(states) and \
            after == states[int(index)]
    if name in STRING:
        # caget prints bytes beyond ASCII as \\xNN escapes: compare the bytes,
        # cut to the field's size (EPICS may cut inside a UTF-8 character).
        raw = after.encode("latin-1", "backslashreplace").decode("unicode_escape")
        got = raw.encode("latin-1", "replace")
        want = sent if isinstance(sent, bytes) else sent.encode()
        return got == want[:STRING[name]]
    if name in ARRAY:
        nord, *elements = after.split()
        values = [_num(v) for v in case.value[1:]]     # type: ignore[index]
        got = [float(v) for v in elements]
        return int(nord) == min(len(values), ARRAY[name]) and values[:len(got)] == got
    return False


KNOWN_SILENT = {
    # QSRV2 casts an enum index to 16 bits before EPICS sees it: 65536 arrives
    # as 0.  (Input records refuse every client put: DISP=1, as in pythonSoftIOC.)
    *{("PVA", f"BAD:{n}", "65536") for n in ENUM if n.endswith("O")},
}

# Puts the client is told succeeded although nothing is stored, each with its
# reason.  None today: any such put fails the test until it is listed here.
KNOWN_UNCHANGED: dict[tuple[str, str, str], str] = {}


def run_corpus(env: dict[str, str]) -> list[tuple[Case, str]]:
    results = []
    state = snapshot(env)
    for case in corpus():
        told_ok = put(case, env)
        now = snapshot(env)
        others = {pv: v for pv, v in now.items() if pv != case.pv}
        assert others == {pv: v for pv, v in state.items() if pv != case.pv}, \
            f"{case}: another record changed"
        before, after = state[case.pv], now[case.pv]
        if not told_ok:
            outcome = "refused" if after == before else "SILENT (told failure, changed)"
        elif after == before and not plausible(case, before, after):
            outcome = "accepted, unchanged"
        elif plausible(case, before, after):
            outcome = "stored as sent or by rule"
        else:
            outcome = f"SILENT ({before!r} -> {after!r})"
        results.append((case, outcome))
        state = now
    return results


@pytest.mark.timeout(300)
def test_bad_put_corpus() -> None:
    with IOCProcess([str(SCRIPT)], wait_for="BAD:BYSTANDER",
                    env={"EPICS_CA_MAX_ARRAY_BYTES": "100000"}) as ioc:
        results = run_corpus(ioc.env)
        assert ioc.proc.poll() is None, ioc.output()
        assert snapshot(ioc.env)["BAD:BYSTANDER"] == "42"
        assert ioc.stop() == 0
    assert len(results) >= 200
    silent = {(c.proto, c.pv, str(c.value)) for c, o in results if o.startswith("SILENT")}
    # Exactly the known ones, each explained in docs/reliability.rst: a fix, or
    # a new silent change, fails this test.
    assert silent == KNOWN_SILENT, "\n".join(
        f"{c.proto} {c.pv} {c.value!r}: {o}" for c, o in results if o.startswith("SILENT"))
    # A client told "done" when nothing was stored is as bad: only listed ones.
    unchanged = {(c.proto, c.pv, str(c.value)) for c, o in results
                 if o == "accepted, unchanged"}
    assert unchanged == set(KNOWN_UNCHANGED), sorted(unchanged)
    outcomes = Counter(o for _, o in results)
    assert outcomes["refused"] > 50 and outcomes["stored as sent or by rule"] > 50, outcomes


if __name__ == "__main__":
    with IOCProcess([str(SCRIPT)], wait_for="BAD:BYSTANDER") as ioc:
        table = Counter((c.proto, c.cls, o) for c, o in run_corpus(ioc.env))
    for (proto, cls, outcome), n in sorted(table.items()):
        print(f"| {proto} | {cls} | {outcome} | {n} |")
    sys.exit(0 if os.environ.get("CI") is None else 0)
