"""Autosave: SP (VAL), LIM (VAL and DRVH), and two records inside ``with Autosave``."""

import sys

from softioc import autosave, builder, softioc

autosave.configure(sys.argv[1], name="test", save_period=0.2)
sp = builder.aOut("AS:SP", 1.0, autosave=True)
lim = builder.aOut("AS:LIM", 2.0, DRVH=100, autosave=["VAL", "DRVH"])
with autosave.Autosave(["VAL"]):
    text = builder.stringOut("AS:TEXT", "default")
    wave = builder.WaveformOut("AS:WAVE", [0.0, 0.0, 0.0])
plain = builder.aOut("AS:PLAIN", 5.0)
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
