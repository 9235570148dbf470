"""Group PVs: XY (two ai records, atomic) and TBL (an NTTable of two waveforms);
DEV:PAIR and DEV:TABLE the same under builder.SetDeviceName("DEV")."""

from softioc import builder, pva, softioc

x = builder.aIn("GRP:X", 1.0, EGU="mm")
y = builder.aIn("GRP:Y", 2.0, EGU="mm")
pva.Group("GRP:XY", {"x": x, "y": pva.Field(y, trigger="*")})

a = builder.WaveformOut("TBL:A", [1.0, 2.0, 3.0], length=16,
                        on_update=lambda v: print("A got", v.tolist(), flush=True))
b = builder.WaveformOut("TBL:B", [10, 20, 30], length=16, datatype="int32",
                        on_update=lambda v: print("B got", v.tolist(), flush=True))
pva.NTTable("TBL", {"A": a, "B": b}, labels=["Position", "Count"])

builder.SetDeviceName("DEV")
p = builder.aIn("P", 3.0)
q = builder.aIn("Q", 4.0)
pva.Group("PAIR", {"p": p, "q": pva.Field(q, trigger="*")})
c = builder.WaveformOut("TABLE:C", [5.0, 6.0], length=8)
pva.NTTable("TABLE", {"C": c}, labels=["Column C"])
builder.UnsetDevice()

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
