"""Fields set as record attributes before iocInit, as pythonSoftIOC code does
(pandablocks-ioc: ``rec.DRVH = max_val``), and builder.WriteRecords."""

import sys

from softioc import builder, softioc

out = builder.longOut("BF:OUT", 5)
out.DRVL = 0
out.DRVH = 10
out.HOPR = 10
inp = builder.aIn("BF:IN", 1.5, PREC=1)
inp.EGU = "mm"
inp.PREC = 3
values = {f: getattr(r, f).Value() for r, f in [(out, "DRVH"), (inp, "PREC"), (inp, "EGU")]}
builder.WriteRecords(sys.argv[1])
builder.LoadDatabase()
softioc.iocInit()
try:
    out.DRVH = 20
except AttributeError as e:
    print("after iocInit:", e)
print("VALUES", values, flush=True)
softioc.interactive_ioc(globals())
