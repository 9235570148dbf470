"""An IOC for tests/test_probe.py: records under $IOC_PREFIX (PRB if unset),
softioc.health's among them (made here, as ``stats``, unless PROBE_HEALTH=no:
then ``pythonioc run`` makes them from IOC_PREFIX).

* ``PREFIX:BLOCK`` (ao): its on_update sleeps PROBE_BLOCK seconds (default
  0.1), in the dispatcher: a put wedges it for that long.
* ``PREFIX:SP`` (ao, autosaved where ``pythonioc run`` saves).
* PROBE_STARTUP=S: one of iocInit's start-up hooks takes S seconds (after
  health's thread has started): the IOC serves but is not ready meanwhile.
"""

import os
import time

from softioc import _lifecycle, builder, health, softioc

prefix = os.environ.get("IOC_PREFIX", "PRB")
builder.SetDeviceName(prefix)


def block(value):
    time.sleep(float(os.environ.get("PROBE_BLOCK", "0.1")))


blocker = builder.aOut("BLOCK", 0.0, on_update=block)
setpoint = builder.aOut("SP", 1.0, autosave=True)
if os.environ.get("PROBE_HEALTH", "yes") != "no":
    stats = health.create(prefix, period=0.5)
startup = float(os.environ.get("PROBE_STARTUP", "0"))
if startup:
    _lifecycle.after_init(lambda: time.sleep(startup))

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
