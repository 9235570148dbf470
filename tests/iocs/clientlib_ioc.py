"""A few records for the client-library tests (pyepics, aioca): a put to CL:SP
makes Python set CL:RBV to twice the value."""

from softioc import builder, softioc

builder.SetDeviceName("CL")
readback = builder.aIn("RBV", 0.0)
setpoint = builder.aOut("SP", 0.0, on_update=lambda value: readback.set(2 * value))
wave = builder.WaveformOut("WAVE", [0.0, 0.0], length=8)
name = builder.stringOut("NAME", "start")
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
