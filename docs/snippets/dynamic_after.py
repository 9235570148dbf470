from softioc import builder, softioc

builder.SetDeviceName("LAB")
# Before iocInit: spare records for what may be made later.
builder.ReserveRecords(builder.aIn, 10)
builder.ReserveRecords(builder.WaveformIn, 2, length=1000, datatype=float)

count = builder.longIn("COUNT", 0)


def add_channel(name):
    # After iocInit the same builder call takes a spare record and names it.
    builder.aIn(name, 0.0, EGU="V", PREC=3)
    count.set(count.get() + 1)


# A client writes a name into LAB:ADD to make LAB:<name>.
builder.stringOut("ADD", "", on_update=add_channel)

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
