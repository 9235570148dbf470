"""One plain aOut for EPICS's acctst (no limits: acctst writes the float and double extremes)."""

from softioc import builder, softioc

builder.aOut("ACCTST:AO", 0.0)
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
