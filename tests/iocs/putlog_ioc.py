"""The put log: PL:SETPOINT (ao, validate refuses values over 100), PL:MODE
(mbbo), PL:WAVE (waveform), PL:TEXT (lso), PL:LOCKED (nobody may write),
PL:GO (builder.Action: a bo without state names, printing each write);
the log goes to stdout (logging), to the JSON-lines file argv[1], and to
PL:LOG.  argv[2] (optional) is the pool's capacity; argv[3], seconds the
log handler sleeps per put (a slow log, to show that puts never wait)."""

import logging
import sys
import time

from softioc import access, builder, putlog, softioc

capacity = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
slow = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0


class Slow(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        time.sleep(slow)


logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(levelname)s %(message)s")
if slow:
    logging.getLogger("softioc.putlog").addHandler(Slow())
access.load_acf(access.DEFAULT_ACF + "ASG(LOCKED) { RULE(1, READ) }\n")
builder.SetDeviceName("PL")
putlog.enable(file=sys.argv[1], pv="LOG", pv_entries=5, capacity=capacity)
builder.aOut("SETPOINT", 1.5, DRVH=1000, validate=lambda record, value: value <= 100)
builder.mbbOut("MODE", "Off", "On", initial_value=0)
builder.WaveformOut("WAVE", [1.0, 2.0, 3.0])
builder.longStringOut("TEXT", "short", length=200)
builder.aOut("LOCKED", 7.0, ASG="LOCKED")
# one write per line: the put log's lines, from another thread, never split it
builder.Action("GO", on_update=lambda value: (sys.stdout.write(f"GO {value}\n"),
                                              sys.stdout.flush()))
builder.LoadDatabase()
softioc.iocInit()
print("IOC ready", flush=True)
softioc.interactive_ioc(globals())
