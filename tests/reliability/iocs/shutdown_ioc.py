"""An IOC with autosave that saves only at shutdown (period an hour): argv[1] is its directory."""

import sys

from softioc import autosave, builder, softioc

autosave.configure(sys.argv[1], name="shutdown", save_period=3600)
sp = builder.aOut("SHUT:SP", 1.0, autosave=True)
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
