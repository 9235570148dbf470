import os

from softioc import builder, softioc

builder.SetDeviceName("BL01")
# alias= takes one name or a list; aliases are full PV names (no device prefix).
temp = builder.aIn("TEMP", 21.5, EGU="degC", alias=["BL01:T", "OLD-BL01:TEMPERATURE"])
setpoint = builder.aOut("SETPOINT", 20.0)
builder.Alias(setpoint, "BL01:SP")          # the same, after the record is made

# Records loaded from a .db file get aliases by name.
here = os.path.dirname(os.path.abspath(__file__))
softioc.dbLoadDatabase("pump.db", here, "P=BL01:PUMP:")
builder.Alias("BL01:PUMP:SPEED", "OLD-BL01:PUMP-RPM")

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
