"""An IOC with softioc.health records under HLTH (updated every 0.2 s), a few
records of its own (APP:A, APP:B, APP:C, APP:AFTER, DB:IN) and one from a .db
file (DB:SUM), for tests/test_health.py.

``start_burn()`` and ``stop_burn()`` (typed into its shell) keep one core busy
(for at most 20 s).
"""

import threading
import time
from pathlib import Path

from softioc import builder, health, softioc

builder.SetDeviceName("APP")
builder.aIn("A", 1.0)
builder.longIn("B", 2)
builder.stringIn("C", "three")
stats = health.create("HLTH", period=0.2, cpu_high=20, cpu_hihi=40)
after = builder.aIn("AFTER", 4.0)       # the device name is still APP
builder.SetDeviceName("DB")
builder.aIn("IN", 5.0)
softioc.dbLoadDatabase(str(Path(__file__).with_name("extra.db")), substitutions="P=DB:,OFFSET=1")
builder.LoadDatabase()
softioc.iocInit()


burning = threading.Event()


def burn():
    end = time.monotonic() + 20
    while burning.is_set() and time.monotonic() < end:
        pass


def start_burn():
    burning.set()
    threading.Thread(target=burn, daemon=True).start()


def stop_burn():
    burning.clear()


softioc.interactive_ioc(globals())
