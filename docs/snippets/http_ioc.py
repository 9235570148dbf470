# Start with the HTTP endpoints on, e.g.
#     PYTHONIOC_HTTP=127.0.0.1:8080 python http_ioc.py
# (needs the web extra: pip install 'epics-pythonioc[web]')
from softioc import builder, softioc

builder.SetDeviceName("OVEN")
temperature = builder.aIn("TEMPERATURE", 21.5, EGU="degC", PREC=1,
                          HIGH=200, HSV="MINOR", HIHI=250, HHSV="MAJOR")
builder.aOut("SETPOINT", 20.0, EGU="degC", DRVL=0, DRVH=300,
             on_update=lambda value: temperature.set(value))
builder.mbbOut("MODE", "Off", "Heat", "Cool")

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
