"""S6: the seed's use case 1, an IOC averaging 100 upstream currents.

The same script runs with pythonIOC (ours) and pythonSoftIOC, both with their
default cothread dispatcher, as the seed's code is written::

    python seed_average.py COUNT

Upstream DEVICE{i}:CURRENT (i < COUNT) come from another IOC (EPICS_CA_ADDR_LIST
names its host:port); every monitor update sets AVERAGE:CURRENT to the mean
of the latest values.  One addition for the measurement: the average carries
the upstream update's timestamp (``timestamp=``, TSE=-2), so a client can
tell how long after the upstream change it saw the new average.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
from typing import Any

import cothread
import numpy as np
from cothread.catools import FORMAT_TIME, camonitor

from softioc import builder, softioc

count = int(sys.argv[1])

builder.SetDeviceName("AVERAGE")
avg = builder.aIn("CURRENT", initial_value=0.0, PREC=3, TSE=-2)
builder.LoadDatabase()
if "enable_pva" in inspect.signature(softioc.iocInit).parameters:
    softioc.iocInit(enable_pva=False)       # pythonSoftIOC; CA only, like ours here
else:
    softioc.iocInit()

values: dict[int, float] = {}


def update(value: Any, index: int) -> None:
    values[index] = value
    avg.set(np.mean(list(values.values())), timestamp=value.timestamp)


camonitor([f"DEVICE{i}:CURRENT" for i in range(count)], update, format=FORMAT_TIME)

stdin_closed = threading.Event()


def watch_stdin() -> None:
    for _ in sys.stdin:
        pass
    stdin_closed.set()


threading.Thread(target=watch_stdin, daemon=True).start()
print("READY", flush=True)
while not stdin_closed.is_set():
    cothread.Sleep(0.1)
sys.stdout.flush()
os._exit(0)
