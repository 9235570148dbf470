"""A Python thread that never waits holds the GIL (50 ms switch interval)
while clients write BUSY:OUT, whose on_update counts into BUSY:COUNT."""

import sys
import threading

from softioc import builder, softioc

kind = sys.argv[1]
dispatcher = None
if kind == "cothread":
    import cothread  # noqa: F401  (imported: iocInit picks the cothread dispatcher)
elif kind == "asyncio":
    from softioc.asyncio_dispatcher import AsyncioDispatcher

    dispatcher = AsyncioDispatcher()
elif kind == "custom":
    from softioc._dispatch import run_callback

    def dispatcher(func, args=(), completion=None, completion_args=()):
        run_callback(func, args, completion, completion_args)

count = builder.longIn("BUSY:COUNT", 0)
builder.aOut("BUSY:OUT", 0.0, on_update=lambda v: count.set(count.get() + 1))
builder.LoadDatabase()
softioc.iocInit(dispatcher)
sys.setswitchinterval(0.05)


def spin():
    n = 0
    while True:
        n += 1


threading.Thread(target=spin, daemon=True).start()
softioc.interactive_ioc(globals())
