import cothread

from softioc import builder, softioc

builder.SetDeviceName("COTHREAD")
uptime = builder.longIn("UPTIME", 0, EGU="s")
position = builder.aIn("POSITION", 0.0, PREC=2)


def move(target):
    # Runs as a cothread: cothread.Sleep (or a cothread.catools call)
    # lets the other cothreads run meanwhile.
    cothread.Sleep(0.5)
    position.set(target)


demand = builder.aOut("DEMAND", 0.0, PREC=2, on_update=move, blocking=True)

builder.LoadDatabase()
# cothread is imported, so callbacks run as cothreads in the main thread.
softioc.iocInit()


def count_seconds():
    while True:
        cothread.Sleep(1)
        uptime.set(uptime.get() + 1)


cothread.Spawn(count_seconds)
# The shell waits for input without stopping the cothreads.
softioc.interactive_ioc(globals())
