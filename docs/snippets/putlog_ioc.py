import logging
import sys

from softioc import builder, putlog, softioc

# Put lines go to Python's logging: here to stdout; a FileHandler, a
# SysLogHandler or the journal's handler send them elsewhere.
logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format="%(levelname)s %(message)s")

builder.SetDeviceName("OVEN")
# Also append each put to puts.jsonl, and serve the latest at OVEN:PUTLOG.
putlog.enable(file="puts.jsonl", pv="PUTLOG")

builder.aOut("SETPOINT", 20.0, EGU="degC",
             validate=lambda record, value: 0 <= value <= 250)
builder.mbbOut("MODE", "Off", "Heat", "Cool")

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
