from softioc import builder, health, softioc

builder.SetDeviceName("BL01-IOC-01")
builder.aOut("SETPOINT", 1.0)

# IOC health records under a prefix of your choice, updated every second.
health.create("BL01-IOC-01:HEALTH", period=1.0, cpu_high=80.0, cpu_hihi=95.0)

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
