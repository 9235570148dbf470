"""on_update callbacks that fail, under the asyncio dispatcher.

ERR:SLOW is blocking: its on_update takes 1 s, then fails for a negative value.
"""

import asyncio

from softioc import builder, softioc
from softioc.asyncio_dispatcher import AsyncioDispatcher


def boom(value):
    raise RuntimeError(f"sync boom {value}")


async def aboom(value):
    raise ValueError(f"async boom {value}")


async def slow_boom(value):
    await asyncio.sleep(2.0)
    if value < 0:
        raise ValueError(f"slow boom {value}")


sync = builder.aOut("ERR:SYNC", 0.0, on_update=boom)
asyn = builder.aOut("ERR:ASYNC", 0.0, on_update=aboom)
block = builder.aOut("ERR:BLOCK", 0.0, on_update=boom, blocking=True)
slow = builder.aOut("ERR:SLOW", 0.0, on_update=slow_boom, blocking=True)
fine = builder.aIn("ERR:FINE", 1.0)
builder.LoadDatabase()
softioc.iocInit(AsyncioDispatcher())
softioc.interactive_ioc(globals())
