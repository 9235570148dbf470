import numpy as np
from cothread.catools import caget, camonitor
from softioc import builder, softioc

# The PVs we want to average and their initial values
PVs = [f"DEVICE{i}:CURRENT" for i in range(100)]
values = np.array(caget(PVs))

# The PV we want to serve
avg = builder.aOut("AVERAGE:CURRENT", np.mean(values))

# Start the IOC
builder.LoadDatabase()
softioc.iocInit()

# Make a monitor on the PVs to keep the value up to date
def update_avg(value: float, index: int):
    values[index] = value
    avg.set(np.mean(values))

camonitor(PVs, update_avg)

# Leave the IOC running with an interactive shell.
softioc.interactive_ioc(globals())
