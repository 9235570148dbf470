from softioc import builder, softioc

# Every record name below starts with "FIRST:".
builder.SetDeviceName("FIRST")

# An input record: Python sets its value, clients read it.
temperature = builder.aIn("TEMPERATURE", 20.5, EGU="degC", PREC=1)


# An output record: clients write it, and Python is told.
def heat(power):
    temperature.set(20.5 + power / 10)


heater = builder.aOut("HEATER", 0.0, EGU="W", DRVL=0, DRVH=100, on_update=heat)

# Load the records into the IOC's database and start serving them.
builder.LoadDatabase()
softioc.iocInit()

# A Python shell with the IOC's commands; the IOC stops when it ends.
softioc.interactive_ioc(globals())
