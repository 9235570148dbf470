from softioc import builder, softioc

builder.SetDeviceName("THERMO")
temperature = builder.aIn("TEMPERATURE", 20.0, EGU="degC", PREC=1)
target = builder.aOut("TARGET", 20.0, EGU="degC", DRVL=5, DRVH=30,
                      on_update=lambda value: temperature.set(value))

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
