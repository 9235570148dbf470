"""The live web page (softioc._web/page.html, served by softioc.http when
PYTHONIOC_HTTP is set): a few records with units and alarm limits, a PVA
image; PG:SET gives MINOR above 5 and MAJOR above 10."""

from softioc import builder, pva, softioc

builder.SetDeviceName("PG")
builder.aIn("TEMP", 21.37, EGU="degC", PREC=2)
builder.aOut("SET", 1.0, EGU="V", PREC=3, HIGH=5, HSV="MINOR", HIHI=10, HHSV="MAJOR")
current = builder.aIn("CURRENT", 4.82, EGU="A", PREC=2, HIGH=4.5, HSV="MINOR")
flow = builder.aIn("FLOW", 0.4, EGU="l/min", PREC=1, LOLO=0.5, LLSV="MAJOR")
builder.mbbOut("MODE", "Idle", "Scanning", initial_value=1)
builder.stringIn("STATUS", "Scan 42 running")
builder.WaveformIn("SPECTRUM", [float(i) for i in range(64)])
pva.Image("CAMERA", dtype="uint8", shape=(480, 640))
builder.LoadDatabase()
softioc.iocInit()
current.set(4.82)       # processed: alarms against the limits
flow.set(0.4)
print("IOC ready", flush=True)
softioc.interactive_ioc(globals())
