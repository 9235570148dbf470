import numpy as np

from softioc import builder, pva, softioc

builder.SetDeviceName("LAB")

# A record, as always: Channel Access and PV Access.
exposure = builder.aOut("EXPOSURE", 0.5, EGU="s", PREC=2)

# PVs that are no record, on the same PV Access server:
# a number with units, an enum, an image, and (below) a table with a string column.
temperature = pva.PV("TEMPERATURE", 21.5, units="C", precision=1)
mode = pva.PV("MODE", "Idle", choices=["Idle", "Scan", "Fault"],
              on_put=lambda value: print("mode ->", value, flush=True))
image = pva.Image("IMAGE", dtype="uint8", shape=(4, 8))
# PVs made while the IOC runs: one per sample, kept in step with the table
# (a client writing the table runs update_positions before it is served).
positions = {}


def update_positions(table):
    for name in set(positions) - set(table["name"]):
        positions.pop(name).close()                 # clients see it go
    for name, x in zip(table["name"], table["x"]):
        if name not in positions:
            positions[name] = pva.PV(f"SAMPLE:{name}:X", float(x))
        positions[name].post(float(x))


samples = pva.Table("SAMPLES", {"name": str, "x": float, "done": bool},
                    labels=["Sample", "X (mm)", "Done"], on_put=update_positions)

builder.LoadDatabase()
softioc.iocInit()

image.post(np.arange(32, dtype=np.uint8).reshape(4, 8), attributes={"Exposure": 0.5})
samples.post({"name": ["A1", "B2"], "x": [1.5, 12.0], "done": [True, False]})
update_positions(samples.get())
softioc.interactive_ioc(globals())
