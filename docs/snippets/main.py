# An IOC instance's main.py: in its config/ folder, beside values.yaml.  The image
# of the Containerfile runs it with `pythonioc run` (the chart mounts config/ at
# /epics/ioc/config); `pythonioc run` also saves autosave=True fields in /autosave
# and serves the health records under $IOC_PREFIX that `pythonioc probe` reads.
import os
import time

from softioc import builder, softioc

# The chart sets IOC_PREFIX (the instance's prefix, else its name).
builder.SetDeviceName(os.environ.get("IOC_PREFIX", "BL01-EA-OVEN-01"))

setpoint = builder.aOut("SETPOINT", 20.0, EGU="degC", DRVL=0, DRVH=300, autosave=True)
temperature = builder.aIn("TEMPERATURE", 20.0, EGU="degC", PREC=1)


def heat(value):
    time.sleep(0.2)             # a slow device: `caput -c` waits for it
    temperature.set(value)


# blocking=True: a client's put completes once heat() has returned.
target = builder.aOut("TARGET", 20.0, EGU="degC", DRVL=0, DRVH=300, on_update=heat,
                      blocking=True, autosave=True)

builder.LoadDatabase()
softioc.iocInit()
# A shell on the pod's terminal (`kubectl attach -it`); no terminal: none.
softioc.interactive_ioc(globals())
