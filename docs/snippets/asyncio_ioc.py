import asyncio

from softioc import builder, softioc
from softioc.asyncio_dispatcher import AsyncioDispatcher

# Start an asyncio event loop in a background thread: callbacks run on it.
dispatcher = AsyncioDispatcher()

builder.SetDeviceName("ASYNC")
uptime = builder.longIn("UPTIME", 0, EGU="s")
position = builder.aIn("POSITION", 0.0, PREC=2)


async def move(target):
    # Anything awaited here (a device, a socket) leaves the loop free.
    await asyncio.sleep(0.5)
    position.set(target)


# blocking=True: a client's put completes once move() has returned.
demand = builder.aOut("DEMAND", 0.0, PREC=2, on_update=move, blocking=True)

builder.LoadDatabase()
softioc.iocInit(dispatcher)


async def count_seconds():
    while True:
        await asyncio.sleep(1)
        uptime.set(uptime.get() + 1)


# Run your own coroutines on the same loop.
asyncio.run_coroutine_threadsafe(count_seconds(), dispatcher.loop)
softioc.interactive_ioc(globals())
