import json
import os

from softioc import builder, softioc

# What to serve, known only when the IOC starts: here a JSON file, but it
# could as well come from a device that describes itself.
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "channels.json")) as f:
    channels = json.load(f)

builder.SetDeviceName("PLANT")
records = {}
for channel in channels:
    records[channel["name"]] = builder.aIn(
        channel["name"], channel["value"], EGU=channel["units"], PREC=1)

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
