"""Records LOAD:0..N-1 that a Python thread sets at a bounded rate.

``start(hz)`` sets every record ``hz`` times a second (round r sets r);
``finish()`` stops that, then sets LOAD:i to ``900000 + i`` and LOAD:DONE to
1.  LOAD:ROUNDS counts finished rounds.
"""

import sys
import threading
import time

from softioc import builder, softioc

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
FINAL = 900000
records = [builder.longIn(f"LOAD:{i}", 0) for i in range(N)]
rounds = builder.longIn("LOAD:ROUNDS", 0)
done = builder.longIn("LOAD:DONE", 0)
builder.LoadDatabase()
softioc.iocInit()

_stop = threading.Event()
_thread = None


def _run(hz):
    r = 0
    next_round = time.monotonic()
    while not _stop.is_set():
        r += 1
        for record in records:
            record.set(r)
        rounds.set(r)
        next_round += 1.0 / hz
        _stop.wait(max(0.0, next_round - time.monotonic()))


def start(hz=2.0):
    global _thread
    _thread = threading.Thread(target=_run, args=(hz,), name="load", daemon=True)
    _thread.start()


def finish():
    _stop.set()
    if _thread is not None:
        _thread.join()
    for i, record in enumerate(records):
        record.set(FINAL + i)
    done.set(1)


softioc.interactive_ioc(globals())
