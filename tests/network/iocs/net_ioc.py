"""A small IOC for the network tests: PREFIX:VALUE (ao, writable), PREFIX:COUNT
(longin, +1 a second) and PREFIX:HOST (stringin, this host's name).

Usage: net_ioc.py PREFIX [INITIAL]; serves until SIGTERM."""

import socket
import sys

from softioc import builder, softioc

prefix = sys.argv[1]
initial = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
builder.SetDeviceName(prefix)
builder.aOut("VALUE", initial)
builder.stringIn("HOST", socket.gethostname()[:39])
builder.LoadDatabase()
softioc.iocInit()
print("IOC ready", flush=True)
softioc.non_interactive_ioc()
