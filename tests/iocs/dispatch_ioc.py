"""Callbacks under each dispatcher: DISP:OUT's on_update copies to DISP:IN;
DISP:ASYNC awaits (asyncio only) then copies; DISP:BLOCK is blocking.
Also loads extra.db (a calc record) with macros beside the builder records."""

import os
import sys
import time

from softioc import builder, softioc

kind = sys.argv[1]
if kind == "cothread":
    import cothread  # noqa: F401  (imported: iocInit picks the cothread dispatcher)

    dispatcher = None
    sleep = cothread.Sleep
elif kind == "asyncio":
    from softioc.asyncio_dispatcher import AsyncioDispatcher

    dispatcher = AsyncioDispatcher()
    sleep = time.sleep
else:
    dispatcher = None
    sleep = time.sleep

builder.SetDeviceName("DISP")
inp = builder.aIn("IN", 0.0)
out = builder.aOut("OUT", 0.0, on_update=lambda v: inp.set(v * 2))


def slow(value):
    sleep(0.5)
    inp.set(value + 1000)


block = builder.aOut("BLOCK", 0.0, on_update=slow, blocking=True)
builder.UnsetDevice()
softioc.dbLoadDatabase("extra.db", os.path.dirname(__file__), "P=DISP:,OFFSET=100")
builder.LoadDatabase()
softioc.iocInit(dispatcher)
print("dispatcher", type(__import__("softioc._lifecycle").
                          _lifecycle.dispatcher()).__name__, flush=True)
softioc.interactive_ioc(globals())
