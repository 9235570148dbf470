"""An IOC serving devIocStats' records under STATS (softioc.devIocStats,
called after LoadDatabase, as pythonSoftIOC allows), health records under
STATS:HEALTH (also made after LoadDatabase) and one record of its own,
APP:A, for tests/test_iocstats.py.  ``restart`` as an argument:
devIocStats(..., allow_restart=True).
"""

import sys

from softioc import builder, health, softioc

builder.SetDeviceName("APP")
builder.aIn("A", 1.0)
builder.LoadDatabase()
stats = softioc.devIocStats("STATS", allow_restart="restart" in sys.argv[1:])
health.create("STATS:HEALTH", period=0.5)
softioc.iocInit()
softioc.interactive_ioc(globals())
