"""Records made after iocInit (from spares) and aliases."""

from softioc import builder, softioc

builder.SetDeviceName("RT")
builder.ReserveRecords(builder.aIn, 3)
builder.ReserveRecords(builder.aOut, 2)
builder.ReserveRecords(builder.WaveformIn, 1, length=100, datatype=float)
builder.ReserveRecords(builder.mbbOut, 1)
fixed = builder.aIn("FIXED", 1.0, alias=["RT:OTHER", "RT:THIRD"])
builder.UnsetDevice()
softioc.dbLoadDatabase("extra.db", __import__("os").path.dirname(__file__), "P=DB:,OFFSET=1")
builder.LoadDatabase()
softioc.iocInit()
builder.Alias("DB:SUM", "DB:TOTAL")
softioc.interactive_ioc(globals())
