"""An on_update that hangs (argv[1]: dispatcher), beside records that must keep serving."""

import sys
import threading
import time

from softioc import builder, softioc

builder.SetDeviceName("HANG")
release = threading.Event()


def slow(value):
    print("slow on_update started", flush=True)
    release.wait(60)                    # hangs until told (or 60 s)
    print("slow on_update ended", flush=True)


def fast(value):
    print(f"fast on_update {value}", flush=True)


builder.aOut("SLOW", 0.0, on_update=slow)
builder.aOut("FAST", 0.0, on_update=fast)
tick = builder.longIn("TICK", 0)


def ticking():
    n = 0
    while True:
        n += 1
        tick.set(n)
        time.sleep(0.05)


builder.LoadDatabase()
disp = None
if sys.argv[1:] == ["asyncio"]:
    from softioc import asyncio_dispatcher
    disp = asyncio_dispatcher.AsyncioDispatcher()
softioc.iocInit(disp)
threading.Thread(target=ticking, daemon=True).start()
softioc.interactive_ioc(globals())
