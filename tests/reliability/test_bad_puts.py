"""A corpus of bad and edge-case puts over CA (the C caput tool) and PVA (the C
pvput tool), to every kind of builder record, input records included.  Each
put is judged by the client's exit status and words, by the value read back
and by the IOC's put log (which puts reached a record), and is one of:

- refused by the client: the tool or its library refused before sending
  (pvput cannot parse the text, caput's enum check, libca's element count);
  the put log has no such put;
- refused by the IOC: the server answered with an error (its reason is
  kept); the value is unchanged;
- stored: told success, and the value read back is what was sent or its
  documented conversion (DRVL/DRVH clamping, truncation toward zero,
  strings and arrays cut to size, an enum by name or index);
- silently changed: told success, and the value read back is something else.

Anything else (no answer, a timeout, words not known here, a refusal that
changed the value, a refusal by the client that reached the IOC...) fails
the test: it is never counted as a refusal.  The IOC stays up, and no other
record changes, ever.

``python tests/reliability/test_bad_puts.py`` prints the tables of
docs/reliability.rst (the test checks the page has them) and exits 1 if
anything failed."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from softioc.testing import IOCProcess

SCRIPT = Path(__file__).parent / "iocs" / "corpus_ioc.py"
DOCS = Path(__file__).parents[2] / "docs" / "reliability.rst"
ENV = {"EPICS_CA_MAX_ARRAY_BYTES": "100000"}
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
# caput -a and pvput both take the element count first (pvput ignores it).
ARRAYS = [["0"], ["5", "1", "2", "3", "4", "5"], ["2", "1", "x"], ["2", "1e999", "1"]]

CLIENT, IOC, STORED, SILENT = "refused by the client", "refused by the IOC", "stored", \
    "silently changed"
OUTCOMES = (CLIENT, IOC, STORED, SILENT)
FAILED = "FAILED"
# A refusal in each client's own words (its one line on stderr, caput's
# colours removed): who refused, and the reason as published.  Nothing else
# is a refusal.  QSRV2 answers "Unable to put value: ..." (DISP=1) before
# the put log sees the put.
REFUSALS = {
    "CA": [(CLIENT, r"Enum string value '.*' invalid\.", "caput: Enum string value '...' invalid"),
           (CLIENT, r"Error from put operation: (.+)", r"libca: \1"),
           (IOC, r"Error occured writing data: (Channel write request failed)", r"\1")],
    "PVA": [(CLIENT, r"Error: (?:failed to parse element at index \d+: )?(parseToPOD: .+)",
             r"pvput: \1"),
            (IOC, r"Error: (Unable to put value: .+|.+ \(strict puts\))", r"\1")],
}
UNLOGGED = "Unable to put value: "
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_ANSWER = re.compile(r"time[d ]*out|not found|disconnect", re.I)


@dataclass
class Case:
    proto: str
    pv: str
    value: str | bytes | list[str]
    cls: str


@dataclass
class Result:
    case: Case
    outcome: str
    why: str            # who refused and why; what went wrong; how it changed
    before: str
    after: str


def corpus() -> list[Case]:
    cases = []
    for proto in ("CA", "PVA"):
        for name in NUMERIC:
            cases += [Case(proto, f"BAD:{name}", v, "number") for v in NUMBERS + STRINGS[:3]]
        for name in ENUM:
            cases += [Case(proto, f"BAD:{name}", v, "enum") for v in ENUMS]
        for name in STRING:
            cases += [Case(proto, f"BAD:{name}", v, "string") for v in STRINGS + ["12abc"]]
        for name in ARRAY:
            cases += [Case(proto, f"BAD:{name}", v, "array") for v in ARRAYS]
    return cases


ALL_PVS = [f"BAD:{n}" for n in [*NUMERIC, *ENUM, *STRING, *ARRAY, "BYSTANDER"]]


def snapshot(ioc: IOCProcess) -> dict[str, str]:
    """Every record's value as caget prints it (-S: the long string, a CHAR
    waveform, as text); an array as ``NORD e1 e2...`` (caget pads an array to
    NELM elements, so NORD is read beside it)."""
    nords = [f"BAD:{n}.NORD" for n in ARRAY]
    lines = ioc.run_tool("caget", "-t", "-S", *ALL_PVS, *nords, timeout=30).stdout.splitlines()
    assert len(lines) == len(ALL_PVS) + len(nords), lines
    values = dict(zip(ALL_PVS, lines))
    for name, nord in zip(ARRAY, lines[len(ALL_PVS):]):
        elements = values[f"BAD:{name}"].split()[1:]
        values[f"BAD:{name}"] = " ".join([nord, *elements[:int(nord)]])
    return values


def put(case: Case, ioc: IOCProcess) -> tuple[str, str]:
    """Send the put with the real C tool: what the client said, as (CLIENT,
    IOC or FAILED, why), or ("ok", "")."""
    many = isinstance(case.value, list)
    tool = "caput" if case.proto == "CA" else "pvput"
    args: list[str | bytes] = ["-c", "-w", "5"] if case.proto == "CA" else ["-w", "5"]
    if case.pv == "BAD:LSO" and case.proto == "CA":
        args.append("-S")       # text into a long string (a CHAR waveform)
    if many and case.proto == "CA":
        args.append("-a")
    args += [case.pv, *case.value] if many else [case.pv, case.value]  # type: ignore[list-item]
    try:
        out = ioc.run_tool(tool, *args, check=False, timeout=30, merge_stderr=False)
    except subprocess.TimeoutExpired:
        return FAILED, "no answer: the client still waited after 30 s"
    text = ANSI.sub("", out.stderr)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("Warning")]
    if out.returncode == 0 and not lines:
        return "ok", ""
    if out.returncode == 1 and len(lines) == 1:
        for who, words, why in REFUSALS[case.proto]:
            if m := re.fullmatch(words, lines[0], re.I):
                return who, m.expand(why)
    kind = "no answer" if NO_ANSWER.search(text) else "not classified"
    return FAILED, f"{kind}: exit status {out.returncode}, {text.strip()!r}"


def _num(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        try:
            return float(int(text.strip(), 0))
        except ValueError:
            return None


def plausible(case: Case, after: str) -> bool:
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
    if name in STRING and not isinstance(sent, list):
        # caget prints bytes beyond ASCII as \\xNN escapes: compare the bytes,
        # cut to the field's size (EPICS may cut inside a UTF-8 character).
        raw = after.encode("latin-1", "backslashreplace").decode("unicode_escape")
        want = sent if isinstance(sent, bytes) else sent.encode()
        return raw.encode("latin-1", "replace") == want[:STRING[name]]
    if name in ARRAY and isinstance(sent, list):
        nord, *elements = after.split()
        numbers = [_num(v) for v in sent[1:]]
        read = [float(v) for v in elements]
        return int(nord) == min(len(numbers), ARRAY[name]) and numbers[:len(read)] == read
    return False


def judge(case: Case, said: str, why: str, before: str, after: str,
          logged: list[dict[str, Any]]) -> Result:
    """The outcome of one put: the client's words, the value read back, and
    the put log's entries made while the client ran."""
    def result(outcome: str, text: str = why) -> Result:
        return Result(case, outcome, text, before, after)

    reached = len(logged) == 1 and logged[0]["record"] == case.pv
    if said == FAILED:
        return result(FAILED)
    if logged and not reached:
        return result(FAILED, f"the put log has {logged} for this put")
    if said in (CLIENT, IOC):
        if after != before:
            return result(FAILED, f"{said} ({why}), yet {before!r} -> {after!r}")
        if said == CLIENT and reached:
            return result(FAILED, f"{said} ({why}), yet the put reached the record")
        if said == IOC and not reached and not why.startswith(UNLOGGED):
            return result(FAILED, f"{said} ({why}), yet the put log has no such put")
        return result(said)
    if not reached:
        return result(FAILED, "told success, yet the put log has no such put")
    if plausible(case, after):
        return result(STORED, "")
    return result(SILENT, f"{before!r} -> {after!r}")


def _when(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def run_corpus() -> list[Result]:
    """Start the corpus IOC, send every put, stop the IOC: each put's outcome."""
    sent = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "puts.jsonl"
        with IOCProcess([str(SCRIPT), str(log)], wait_for="BAD:BYSTANDER", env=ENV) as ioc:
            state = snapshot(ioc)
            for case in corpus():
                start = time.time()
                said, why = put(case, ioc)
                end = time.time()
                now = snapshot(ioc)
                others = {pv: v for pv, v in now.items() if pv != case.pv}
                assert others == {pv: v for pv, v in state.items() if pv != case.pv}, \
                    f"{case}: another record changed"
                sent.append((case, said, why, state[case.pv], now[case.pv], start, end))
                state = now
            assert ioc.proc.poll() is None, ioc.output()
            assert state["BAD:BYSTANDER"] == "42"
            assert ioc.stop() == 0, ioc.output()        # the put log is complete
        entries = [json.loads(line) for line in log.read_text().splitlines()]
    # The log's times are cut to the millisecond, and the clients ran one by one.
    spans = [[e for e in entries if start - 0.002 <= _when(e) <= end + 0.002]
             for *_, start, end in sent]
    assert sum(map(len, spans)) == len(entries), "a logged put made while no client ran"
    return [judge(*s[:5], logged) for s, logged in zip(sent, spans)]


# Puts told success whose value read back is not what was sent, each with its
# reason.  None today (PV Access enum indexes beyond 16 bits, which QSRV2
# casts, are refused by strict puts): a new one fails the test until listed.
KNOWN_SILENT: set[tuple[str, str, str]] = set()


def problems(results: list[Result]) -> list[str]:
    """What is wrong: a put not classified, or a silent change not known."""
    failed = [f"{r.case.proto} {r.case.pv} {r.case.value!r}: {r.why}"
              for r in results if r.outcome == FAILED]
    silent = {(r.case.proto, r.case.pv, str(r.case.value)) for r in results
              if r.outcome == SILENT}
    if silent != KNOWN_SILENT:
        failed.append(f"silent changes {sorted(silent)}, known {sorted(KNOWN_SILENT)}")
    return failed


def rst_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(map(len, column)) for column in zip(head, *rows)]
    rule = "  ".join("=" * w for w in widths)
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *rows]]
    return "\n".join([rule, lines[0], rule, *lines[1:], rule])


def tables(results: list[Result]) -> str:
    """The outcome table, and the refusals' reasons by the records they were
    sent to (a name ending in I is an input record's)."""
    rows: dict[tuple[str, str], Counter[str]] = {}
    for r in results:
        rows.setdefault((r.case.proto, r.case.cls), Counter())[r.outcome] += 1
    total: Counter[str] = sum(rows.values(), Counter())
    outcomes = [[*key, *(str(n[o]) for o in OUTCOMES)] for key, n in rows.items()]
    outcomes.append(["all", "", *(str(total[o]) for o in OUTCOMES)])
    words = Counter((r.case.proto, r.outcome.split()[-1], r.why, "any" if r.outcome == CLIENT
                     else "input" if r.case.pv.endswith("I") else "output")
                    for r in results if r.outcome in (CLIENT, IOC))
    reasons = [[*key, str(n)] for key, n in sorted(words.items())]
    return rst_table(["proto", "class", *OUTCOMES], outcomes) + "\n\n" + rst_table(
        ["proto", "refused by", "reason, as the client prints it", "records", "puts"], reasons)


@pytest.mark.timeout(300)
def test_bad_put_corpus() -> None:
    results = run_corpus()
    assert not problems(results), "\n".join(problems(results))
    # A put of zero elements: a WaveformIn (DISP=1) refuses it, a WaveformOut
    # stores an empty array (NORD 0), over CA and PVA.
    zero = {(r.case.proto, r.case.pv): (r.outcome, r.why, r.after) for r in results
            if r.case.value == ["0"]}
    assert zero == {
        ("CA", "BAD:WI"): (IOC, "Channel write request failed", "3 1 2 3"),
        ("PVA", "BAD:WI"): (IOC, "Unable to put value: Field Disabled: S_db_putDisabled",
                            "3 1 2 3"),
        ("CA", "BAD:WO"): (STORED, "", "0"), ("PVA", "BAD:WO"): (STORED, "", "0")}, zero
    # Every number of the page is this run's.
    assert tables(results) in DOCS.read_text(), tables(results)


if __name__ == "__main__":
    results = run_corpus()
    print(tables(results))
    wrong = problems(results)
    print("\n".join(wrong), file=sys.stderr)
    sys.exit(1 if wrong else 0)
