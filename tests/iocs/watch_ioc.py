"""The live view's watcher (softioc._watch) seen from inside the IOC: builder
records of several types, records of watch.db, PVA-only PVs and two spare
records; each delivery to a subscriber is printed as ``DELIVERY <json rows>``,
and ``snapshot()`` (typed into the shell) prints ``SNAPSHOT <json rows>``."""

import json
import time
from pathlib import Path

from softioc import _watch, builder, pva, softioc

builder.SetDeviceName("W")
builder.aIn("TEMP", 21.5, EGU="degC", PREC=2)
builder.aOut("SET", 1.0, EGU="V", PREC=3, HIGH=5, HSV="MINOR", HIHI=10, HHSV="MAJOR")
builder.mbbOut("MODE", "Off", "On", initial_value=1)
builder.stringOut("TEXT", "hello")
builder.WaveformOut("WAVE", [float(i) for i in range(20)])
builder.longStringOut("LONG", "x" * 60, length=100)
builder.Action("GO")
fast = builder.aIn("FAST", 0.0)
builder.ReserveRecords(builder.aIn, 2)
softioc.dbLoadDatabase("watch.db", str(Path(__file__).parent), "P=W:DB:")
pv = pva.PV("PVA", 1.5, units="A", precision=2, writeable=True)
image = pva.Image("IMG", dtype="uint8", shape=(48, 64))
table = pva.Table("TBL", {"x": float, "n": int}, initial={"x": [1.0, 2.0], "n": [1, 2]})
builder.LoadDatabase()
softioc.iocInit()

watcher = _watch.watch()
watcher.subscribe(lambda rows: print("DELIVERY", json.dumps(rows), flush=True))


def snapshot() -> None:
    print("SNAPSHOT", json.dumps(watcher.snapshot()), flush=True)


def burst() -> None:
    """FAST changed 100 times in 0.1 s (longer on a busy machine: it prints how long)."""
    start = time.monotonic()
    for i in range(100):
        fast.set(float(i))
        time.sleep(0.001)
    print(f"BURST {time.monotonic() - start:.3f}", flush=True)


print("IOC ready", flush=True)
softioc.interactive_ioc(globals())
