from my_device_lib import Device
import cothread
from softioc import builder, softioc

# Connect to the device
device = Device("hostname")
device.connect()

# Make a record for each parameter it has
records = {}
for param in device.get_params():
    records[param] = builder.aIn(param.name, param.value)

# Start the IOC
builder.LoadDatabase()
softioc.iocInit()

# Poll the device for changes and update the records
def update_params():
    while True:
        for param in device.poll_changed_params():
            records[param].set(param.value)

cothread.Spawn(update_params)

# Leave the IOC running with an interactive shell.
softioc.interactive_ioc(globals())
