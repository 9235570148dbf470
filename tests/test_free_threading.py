"""set() from several Python threads at once while Channel Access clients put
and monitor, on every interpreter; on a free-threaded one (3.14t) with the GIL
off, where nothing but the C layer's own locks keeps what it shares whole
(docs/explanations/threading.rst).

The IOC's threads set records of their own and records they share (a number,
an array, a string), read them back, switch strict puts on and off, start the
live view's watcher and read its rows while another thread renames a record
(the name a row shows), while ``caput`` writes an output whose ``on_update``
counts and ``camonitor`` watches every record.  Then: no crash, every record
ends at its last value (each thread's own at its last count, a shared one at
the last value of one of the threads), and ``camonitor``'s last update of
each record is that value.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from softioc.testing import IOCProcess, start_tool, wait_until

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
THREADS = 4
SECONDS = 3.0

IOC = r'''
import sys
import threading
import time

import numpy

from softioc import _ext, builder, softioc, strict

THREADS, SECONDS = int(sys.argv[1]), float(sys.argv[2])
shared = builder.longIn("FT:SHARED", 0)
own = [builder.longIn(f"FT:OWN{t}", 0) for t in range(THREADS)]
wave = builder.WaveformIn("FT:WAVE", numpy.zeros(64, numpy.int32))
text = builder.stringIn("FT:TEXT", "")
updates = []
out = builder.longOut("FT:OUT", 0, on_update=updates.append)
named = builder.longIn("FT:NAMED", 0)
done = builder.longIn("FT:DONE", 0)
builder.LoadDatabase()
softioc.iocInit()
print("GIL", getattr(sys, "_is_gil_enabled", lambda: True)(), flush=True)


def stress():
    go = threading.Barrier(THREADS + 4)
    counts = [0] * THREADS
    errors = []

    def guarded(work):
        def run(*args):
            try:
                go.wait()
                work(*args)
            except BaseException as e:      # reported, and the test fails
                errors.append(repr(e))
        return run

    def setter(t):
        end = time.monotonic() + SECONDS
        i = 0
        while time.monotonic() < end:
            i += 1
            own[t].set(i)                               # a record of its own
            value = t * 1_000_000 + i
            shared.set(value)                           # records every thread sets
            wave.set(numpy.full(64, value, numpy.int32))
            text.set(f"{t}:{i}")
            if own[t].get() != i:
                raise AssertionError(f"FT:OWN{t} is {own[t].get()}, not {i}")
            if shared.get() // 1_000_000 not in range(THREADS):
                raise AssertionError(f"FT:SHARED is {shared.get()}")
            if len(set(wave.get())) != 1:
                raise AssertionError("FT:WAVE holds parts of two values")
        counts[t] = i

    def switcher(phase):                                # strict puts, off and on
        end = time.monotonic() + SECONDS
        i = phase
        while time.monotonic() < end:
            i += 1
            strict.strict_puts(i % 2 == 1)

    def watcher():                                      # the live view's rows
        n = _ext.watch_start()
        rows = [i for i in range(n) if _ext.watch_row(i)[1] == "longin"]
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            for i in rows:
                _ext.watch_row(i)

    def renamer():                                      # the name watch_row shows
        end = time.monotonic() + SECONDS
        i = 0
        while time.monotonic() < end:
            i += 1
            named.name = f"FT:NAMED:{i}"
        named.name = "FT:NAMED"

    threads = [threading.Thread(target=guarded(setter), args=(t,)) for t in range(THREADS)]
    threads += [threading.Thread(target=guarded(switcher), args=(phase,)) for phase in (0, 1)]
    threads += [threading.Thread(target=guarded(w)) for w in (watcher, renamer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    strict.strict_puts(True)
    finals = {t * 1_000_000 + counts[t] for t in range(THREADS)}
    checks = [own[t].get() == counts[t] for t in range(THREADS)]
    checks += [shared.get() in finals, int(wave.get()[0]) in finals]
    print("STRESS", "ok" if all(checks) and not errors else f"failed {checks} {errors}",
          flush=True)
    done.set(done.get() + 1)


softioc.interactive_ioc(globals())
'''

# camonitor -t... lines: NAME DATE TIME VALUE... (an array: its count, then elements)
LINE = re.compile(r"^(FT:\S+)\s+\S+\s+\S+\s+(.*?)\s*$")


def last_values(path: Path) -> dict[str, str]:
    """The last value camonitor printed for each PV so far (read through a file
    of its own: moving a shared offset would move camonitor's writes)."""
    last = {}
    for line in path.read_text().splitlines():
        m = LINE.match(line)
        if m:
            last[m.group(1)] = m.group(2)
    return last


def test_sets_from_threads_with_clients(tmp_path: Path) -> None:
    script = tmp_path / "free_threading_ioc.py"
    script.write_text(IOC)
    env = {"PYTHON_GIL": "0"} if FREE_THREADED else {}
    pvs = ["FT:SHARED", "FT:WAVE", "FT:TEXT", "FT:OUT", "FT:NAMED", "FT:DONE",
           *[f"FT:OWN{t}" for t in range(THREADS)]]
    output = tmp_path / "camonitor.txt"     # a file: a full pipe would stall camonitor
    with IOCProcess([str(script), str(THREADS), str(SECONDS)], wait_for="FT:DONE",
                    env=env) as ioc:
        gil = "GIL False" if FREE_THREADED else "GIL True"
        wait_until(lambda: gil in ioc.output(), what=f"{gil!r} printed by the IOC")
        with start_tool("camonitor", "-w", "10", *pvs, env=ioc.env, output=output):
            wait_until(lambda: len(last_values(output)) == len(pvs), timeout=30,
                       what="camonitor's first values")
            ioc.send("stress()")
            puts = 0
            deadline = time.monotonic() + SECONDS + 30
            while "STRESS" not in ioc.output() and time.monotonic() < deadline:
                puts += 1
                put = ioc.caput("FT:OUT", str(puts))
                assert put.returncode == 0, f"{put.stdout}\nIOC:\n{ioc.output()[-3000:]}"
            assert puts > 1, "the clients' puts did not overlap the sets"
            ioc.wait_value("FT:DONE", "1", 30)
            assert ioc.caput("FT:OUT", "424242").returncode == 0
            ioc.send("print('LAST', updates[-1], flush=True)")
            wait_until(lambda: "LAST" in ioc.output(), what="on_update's last value")
            finals = {pv: ioc.caget(pv) for pv in pvs}
            wait_until(lambda: all(last_values(output).get(pv) == v
                                   for pv, v in finals.items()),
                       timeout=30, what="camonitor's last updates")
        printed = ioc.output()
        assert ioc.proc.poll() is None, f"the IOC died:\n{printed[-3000:]}"
    assert "STRESS ok" in printed, printed[-3000:]
    assert "LAST 424242" in printed, printed[-3000:]
    assert finals["FT:OUT"] == "424242"
    for t in range(THREADS):
        assert 0 < int(finals[f"FT:OWN{t}"]) < 1_000_000
    assert int(finals["FT:SHARED"]) // 1_000_000 in range(THREADS)
    count, *elements = finals["FT:WAVE"].split()        # one value, whole
    assert int(count) == 64 and len(set(elements)) == 1, finals["FT:WAVE"]
    assert int(elements[0]) // 1_000_000 in range(THREADS)


@pytest.mark.skipif(not FREE_THREADED, reason="a free-threaded interpreter (3.14t) only")
def test_importing_softioc_leaves_the_gil_off() -> None:
    """Importing softioc and its C layer does not switch the GIL back on: the
    extension declares it runs without it (Py_mod_gil), its shared structures
    guarded.  (softioc._pvaserver declares so too, but imports p4p's own
    extension, which, in p4p 4.3, does not: PVA-only PVs switch the GIL on.)"""
    code = ("import sys, warnings; warnings.simplefilter('error'); "
            "import softioc, softioc._ext, softioc.builder, softioc.softioc; "
            "print(sys._is_gil_enabled())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", result.stderr


STATIC = r'''
import sys
import threading

from softioc import _ext, _lifecycle

THREADS, N = int(sys.argv[1]), int(sys.argv[2])
_lifecycle.ensure_dbd()
go = threading.Barrier(2 * THREADS + 1)
stop = threading.Event()
errors, started = [], []


class Text:
    """A field value that is not str, int or float: made text by text_of."""
    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


def text_of(value):
    # Python, run with the static database locked (create_record): the lock
    # is recursive for this thread, and the others wait for it without the GIL.
    _ext.record_exists("FTS:T0:0")
    return str(value)


def guarded(work):
    def run(*args):
        try:
            go.wait()
            work(*args)
        except BaseException as e:          # reported, and the test fails
            errors.append(repr(e))
    return run


def build(t):
    for i in range(N):
        name = f"FTS:T{t}:{i}"
        _ext.create_record("ai", name, "Soft Channel", {"DESC": Text(f"t{t} i{i}"), "PREC": 3},
                           (("EGU", "mm"),), text_of)
        if i % 4 == 0:
            _ext.delete_record(name)
            continue
        _ext.create_alias(name, name + ":A")
        _ext.put_static(name, "HOPR", str(i), False)


def read():
    while not stop.is_set():
        _ext.record_count()
        _ext.records_by_type()
        _ext.record_exists("FTS:T1:1:A")


def setup(t):                               # the set-up lock, against the static one
    try:
        _ext.putlog_start(16)
        started.append(t)
    except RuntimeError:
        pass
    for i in range(20):
        _ext.strict_puts(i % 2 == 0)


threads = [threading.Thread(target=guarded(build), args=(t,)) for t in range(THREADS)]
threads += [threading.Thread(target=guarded(read)) for _ in range(THREADS - 1)]
threads += [threading.Thread(target=guarded(setup), args=(0,))]
for thread in threads:
    thread.start()
go.wait()
for thread in threads[:THREADS]:
    thread.join()
stop.set()
for thread in threads:
    thread.join()
_ext.strict_puts(True)
mine = sum(n for rtype, n in _ext.records_by_type() if rtype == "ai")
expected = THREADS * (N - (N + 3) // 4)
missing = [f"FTS:T{t}:{i}{a}" for t in range(THREADS) for i in range(N) for a in ("", ":A")
           if _ext.record_exists(f"FTS:T{t}:{i}{a}") != (i % 4 != 0)]
print("STATIC", "ok" if not errors and not missing and mine == expected and started == [0]
      else f"failed {errors[:3]} {missing[:5]} {mine} != {expected} {started}", flush=True)
'''


def test_static_database_from_threads(tmp_path: Path) -> None:
    """Records made, aliased, changed and deleted in EPICS's static database
    from several threads before iocInit, while others count and look them up
    and one starts the put log and switches strict puts: the static database's
    lock (held while create_record calls text_of, which looks a record up
    again) and the set-up lock, each waited for without the GIL.  No crash, no
    deadlock (the timeout), every record where it should be."""
    script = tmp_path / "static_ioc.py"
    script.write_text(STATIC)
    env = dict(os.environ, **({"PYTHON_GIL": "0"} if FREE_THREADED else {}))
    result = subprocess.run([sys.executable, str(script), str(THREADS), "300"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "STATIC ok" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
