"""Every builder record type, in and out, for the bad-put corpus (test_bad_puts.py).

The one argument is the put log's file: which client puts reached a record."""

import sys

from softioc import builder, putlog, softioc

putlog.enable(file=sys.argv[1])
builder.SetDeviceName("BAD")
builder.aIn("AI", 1.5)
builder.boolIn("BI", 0, ZNAM="Off", ONAM="On")
builder.longIn("LI", 7)
builder.stringIn("SI", "in")
builder.mbbIn("MBBI", "A", "B", "C")
builder.WaveformIn("WI", [1.0, 2.0, 3.0])
builder.aOut("AO", 0.5, DRVL=-10, DRVH=10)
builder.boolOut("BO", 0, ZNAM="Off", ONAM="On")
builder.longOut("LO", 3, DRVL=-100, DRVH=100)
builder.int64Out("I64", 5)
builder.stringOut("SO", "out")
builder.mbbOut("MBBO", "A", "B", "C")
builder.WaveformOut("WO", [0.0, 0.0, 0.0, 0.0], length=4)
builder.longStringOut("LSO", "long", length=20)
builder.aOut("BYSTANDER", 42.0)          # never written: must never change
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
