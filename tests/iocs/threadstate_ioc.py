"""Counts the interpreter's thread states (TS:STATES, refreshed every 0.1 s)
while clients write TS:OUT (on_update) and TS:CHECKED (validate): each CA
client is served by a thread of its own that calls Python."""

import ctypes
import threading
import time

from softioc import builder, softioc

api = ctypes.pythonapi
api.PyInterpreterState_Get.restype = ctypes.c_void_p
api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
api.PyThreadState_Next.restype = ctypes.c_void_p
api.PyThreadState_Next.argtypes = [ctypes.c_void_p]


def thread_states() -> int:
    count, ts = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while ts:
        count += 1
        ts = api.PyThreadState_Next(ts)
    return count


states = builder.longIn("TS:STATES", 0)
writes = builder.longIn("TS:WRITES", 0)
builder.aOut("TS:OUT", 0.0, on_update=lambda v: writes.set(writes.get() + 1))
builder.aOut("TS:CHECKED", 0.0, validate=lambda rec, v: v >= 0)
builder.LoadDatabase()
softioc.iocInit()


def count() -> None:
    while True:
        states.set(thread_states())
        time.sleep(0.1)


threading.Thread(target=count, daemon=True).start()
softioc.interactive_ioc(globals())
