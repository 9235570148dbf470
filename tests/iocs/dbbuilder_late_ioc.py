"""epicsdbbuilder imported late (in a helper, after SetDeviceName) and used
at once, and through builder.GetRecordNames(), as with pythonSoftIOC; then
the access rules read again at run time (asInit) are still the IOC's."""
import os

from softioc import builder, softioc

builder.SetDeviceName("LATE")
builder.aOut("AO", initial_value=1.0)


def helper():
    import epicsdbbuilder

    source = epicsdbbuilder.ImportRecord("LATE:AO")
    epicsdbbuilder.records.calc("CALC", CALC="A+1", INPA=epicsdbbuilder.CP(source))


helper()
builder.GetRecordNames().PushPrefix("SUB")
from epicsdbbuilder import records  # noqa: E402  (a late import, on purpose)

records.ai("IN")
builder.GetRecordNames().PopPrefix()
builder.LoadDatabase()
softioc.iocInit()
# the next file opened takes the lowest free descriptor: a run-time asInit
# must read the IOC's rules again, not whatever has that number now
from softioc import _core  # noqa: E402

taken = os.open(os.devnull, os.O_RDONLY)
print("ASINIT", _core.iocsh("asInit"), flush=True)
print("READY", flush=True)
softioc.interactive_ioc(globals())
