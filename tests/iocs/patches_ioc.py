"""An IOC that says which EPICS patches it applied (softioc._ext.patches())
and whether strict puts can be switched on while it runs; and records whose
validate() shows when a client's put is checked."""

import time

from softioc import _ext, builder, softioc, strict  # noqa: F401  (strict: for the shell)

builder.aOut("PT:VALIDATED", 1.0, validate=lambda record, value: value < 10)
builder.aOut("PT:NEVER", 1.0, validate=lambda record, value: False)
builder.aOut("PT:ALWAYS", 1.0, validate=lambda record, value: False, always_update=True)
builder.aOut("PT:ALARMED", 1.0, HIHI=100, HHSV="MAJOR",
             validate=lambda record, value: value < 1000)
builder.aOut("PT:BUSY", 1.0, blocking=True, on_update=lambda value: time.sleep(2),
             validate=lambda record, value: value < 10)
builder.longStringOut("PT:TEXT", "abc", length=8)
builder.longOut("READY", 1)
builder.LoadDatabase()
softioc.iocInit()
print("PATCHES", ",".join(name for name, applied in _ext.patches() if applied) or "none",
      flush=True)
softioc.interactive_ioc(globals())
