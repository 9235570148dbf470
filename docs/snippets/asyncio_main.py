import asyncio
import signal

from softioc import builder, softioc
from softioc.asyncio_dispatcher import AsyncioDispatcher


async def main():
    builder.SetDeviceName("MAIN")
    uptime = builder.longIn("UPTIME", 0, EGU="s")
    builder.aOut("GAIN", 1.0, on_update=lambda value: print("gain", value))
    builder.LoadDatabase()
    # Share the loop that asyncio.run() made: callbacks run on it.
    softioc.iocInit(AsyncioDispatcher(asyncio.get_running_loop()))

    # Serve until SIGINT or SIGTERM (there is no interactive shell here).
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=1)
        except asyncio.TimeoutError:
            uptime.set(uptime.get() + 1)


asyncio.run(main())
