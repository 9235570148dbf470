"""set(value, process=False) on output records: clients see the value, nothing
runs (pandablocks-ioc mirrors the PandA's values this way)."""

from softioc import builder, softioc

updates = []
count = builder.longOut("NP:FLNKED", 0)
out = builder.mbbOut("NP:MODE", initial_value=1, ZRST="A", ONST="B", TWST="C",
                     on_update=updates.append,
                     FLNK=builder.records.calc("NP:CALC", CALC="A+1", INPA="NP:CALC"))
wave = builder.WaveformOut("NP:WAVE", [1, 2, 3])
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
