"""The HTTP endpoints (softioc.http, PYTHONIOC_HTTP set by the test): records
of known types (tests compare /metrics' records by type with RECORD_TYPES),
puts to count (HTTP:LIMITED refuses 100 and more), autosave into
$HTTP_TEST_DIR, a record whose text is not UTF-8 (a .db file written here), a
PVA-only PV if p4p is there, ``churn(n)`` to change records fast for the event
streams and ``report()`` to print the threads and memory.

Environment: HTTP_TEST_DIR (a directory for this IOC), HTTP_TEST_HEARTBEAT and
HTTP_TEST_STALL (seconds, to make softioc.http's heartbeat and stall timeout
short), HTTP_TEST_QUEUE_BYTES (an event stream's queue), HTTP_TEST_IDLE
(seconds for a request), HTTP_TEST_GATE (a
file: iocInit waits for it to exist)."""

import importlib.util
import os
import threading
import time
from pathlib import Path

import psutil

import softioc.http as web

web.HEARTBEAT = float(os.environ.get("HTTP_TEST_HEARTBEAT", web.HEARTBEAT))
web.STALL_TIMEOUT = float(os.environ.get("HTTP_TEST_STALL", web.STALL_TIMEOUT))
web.QUEUE_BYTES = int(os.environ.get("HTTP_TEST_QUEUE_BYTES", web.QUEUE_BYTES))
web.IDLE_TIMEOUT = float(os.environ.get("HTTP_TEST_IDLE", web.IDLE_TIMEOUT))

from softioc import autosave, builder, softioc  # noqa: E402

HERE = Path(os.environ["HTTP_TEST_DIR"])
autosave.configure(HERE, name="http", save_period=0.3)

builder.SetDeviceName("HTTP")
builder.aIn("AI1", 1.0)
builder.aIn("AI2", 2.0, EGU="degC")
builder.aOut("AO", 0.0, autosave=True, on_update=lambda value: None)
builder.longOut("LIMITED", 0, validate=lambda record, value: value < 100)
builder.longIn("COUNT", 0)
builder.boolOut("SWITCH", ZNAM="Off", ONAM="On")
text = builder.stringIn("TEXT", "hello")
builder.records.calc("CALC", CALC="A+1")
many = [builder.stringIn(f"MANY{i:03d}", "") for i in range(200)]

# A stringin whose value and units are Latin-1 bytes (not UTF-8), as a .db file
# from elsewhere may have them.
(HERE / "raw.db").write_bytes(b'record(stringin, "HTTP:RAW") {\n'
                              b'    field(VAL, "caf\xe9 \xff\xfe")\n'
                              b'    field(PINI, "YES")\n}\n')
softioc.dbLoadDatabase("raw.db", str(HERE))

RECORD_TYPES = {"ai": 2, "ao": 1, "longout": 1, "longin": 1, "bo": 1, "stringin": 202,
                "calc": 1}

if importlib.util.find_spec("p4p") is not None:
    from softioc import pva

    pva_pv = pva.PV("PVA", 1.5)             # HTTP:PVA

builder.LoadDatabase()

gate = os.environ.get("HTTP_TEST_GATE")
if gate:
    print("waiting for", gate, flush=True)
    while not os.path.exists(gate):
        time.sleep(0.05)

softioc.iocInit()
print("IOC started", flush=True)


def churn(seconds: float, period: float = 0.1) -> None:
    """Change all the MANY records every ``period`` s for ``seconds`` s, from a thread."""
    def run() -> None:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
            for i, record in enumerate(many):
                record.set(f"{n:010d} {i:03d} " + "x" * 20)
            time.sleep(period)
    threading.Thread(target=run, daemon=True).start()


def report() -> None:
    """Print the Python threads alive, the process's threads and its RSS."""
    proc = psutil.Process()
    print(f"REPORT {threading.active_count()} {proc.num_threads()} {proc.memory_info().rss}",
          flush=True)


softioc.interactive_ioc(globals())
