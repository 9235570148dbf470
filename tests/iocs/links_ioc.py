"""Records linked to each other through builder handles (record("CP"), record.FIELD),
including a run-time record named from a spare: the links are made by name when
asked for, not kept per record."""

from softioc import builder, softioc
from softioc.asyncio_dispatcher import AsyncioDispatcher

builder.SetDeviceName("LNK")
src = builder.aOut("SRC", 1.0)
hi = builder.aIn("HI", 10.0)
builder.records.calc("SUM", INPA=src("CP"), INPB=hi.VAL, CALC="A+B")
builder.records.calc("TWICE", INPA=src.VAL, CALC="A*2")
src2 = builder.aOut("FWD", 0.0, FLNK=builder.records.calc("CNT", CALC="A+1", INPA="LNK:CNT"))
builder.ReserveRecords(builder.aIn, 1)
builder.LoadDatabase()
softioc.iocInit(AsyncioDispatcher())
late = builder.aIn("LATE", 3.0)
print("READY", repr(late), late("CP"), late.VAL, flush=True)
softioc.interactive_ioc(globals())
