"""The envelope IOC: RECORDS ai records (argv[1]), of which the first 100
are set at 10 Hz each with a value counting up by one, so a monitor can
tell a lost update from the gaps.  The HTTP endpoints are on when
PYTHONIOC_HTTP is set (the benchmark sets it).  Prints READY once serving,
and stops at SIGTERM.
"""

import sys
import threading
import time

from softioc import builder, softioc

records = int(sys.argv[1])
builder.SetDeviceName("ENV")
made = [builder.aIn(f"R{i}", initial_value=0.0, EGU="mm", PREC=1) for i in range(records)]
builder.LoadDatabase()
softioc.iocInit()


def update() -> None:
    count = 0
    next_time = time.monotonic()
    while True:
        count += 1
        for record in made[:100]:
            record.set(float(count))
        next_time += 0.1
        time.sleep(max(0.0, next_time - time.monotonic()))


threading.Thread(target=update, daemon=True).start()
print("READY", flush=True)
softioc.non_interactive_ioc()
