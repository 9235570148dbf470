"""pythonSoftIOC's applications import epicsdbbuilder themselves and make
records with it beside the builder's (its builder readies epicsdbbuilder at
import; ours when the application has imported it)."""
from softioc import builder, softioc

from epicsdbbuilder import CP, MS, ImportRecord, records  # isort: skip

builder.SetDeviceName("DBB")
src = builder.aOut("SRC", initial_value=2.0)
records.calc("DOUBLE", CALC="A*2", INPA=MS(CP(ImportRecord("DBB:SRC"))))
twice = records.calc("TWICE", CALC="A*2", INPA=CP(src.VAL))
builder.LoadDatabase()
softioc.iocInit()
print("READY", flush=True)
softioc.interactive_ioc(globals())
