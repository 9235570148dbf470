from softioc import autosave, builder, softioc

# Save into ./state/oven.softsav every 5 s (when something changed) and at exit.
# (Run by oven-ioc.service or oven-ioc.procserv: ./ is its directory.)
autosave.configure("state", name="oven", save_period=5)

builder.SetDeviceName("OVEN")
# autosave=True saves VAL; a list names the fields to save.
setpoint = builder.aOut("SETPOINT", 20.0, EGU="degC", autosave=True)
limit = builder.aOut("LIMIT", 80.0, DRVH=300, autosave=["VAL", "DRVH"])
# Every record made inside the block saves VAL.
with autosave.Autosave():
    mode = builder.mbbOut("MODE", "Off", "Heat", "Cool")
    note = builder.stringOut("NOTE", "")
status = builder.stringIn("STATUS", "ok")       # not saved

# Saved values are restored here, before any client can see the defaults.
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
