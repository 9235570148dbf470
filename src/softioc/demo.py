"""The demo IOC that ``pythonioc demo`` runs: a few records to caget/caput.

Records (prefix ``DEMO`` unless ``--prefix`` or ``$IOC_PREFIX`` says
otherwise):

- ``DEMO:SETPOINT`` (ao, writable, 0..100 mA) and ``DEMO:READBACK`` (ai),
  which follows the setpoint with a little noise every 0.1 s;
- ``DEMO:MESSAGE`` (stringout, writable),
  ``DEMO:MODE`` (mbbo: Off/On/Fault, Fault is a MAJOR alarm),
  ``DEMO:WAVE`` (waveform of 100 doubles, a moving sine);
- softioc.health's records under the same prefix: ``DEMO:UPTIME``
  (seconds), ``DEMO:CPU``, ``DEMO:LIVE``, ``DEMO:READY``... (what
  ``pythonioc probe`` reads).

SETPOINT, MESSAGE and MODE are autosaved where ``pythonioc run`` would save
them (``softioc.autosave.default_directory()``: ``$PYTHONIOC_AUTOSAVE_DIR``,
or ``/autosave`` in a container), if there is such a directory.
"""

from __future__ import annotations

import math
import random
import threading
import time

from softioc import autosave, builder, health, softioc


def build(prefix: str = "DEMO") -> dict[str, object]:
    """Create the demo records (before LoadDatabase)."""
    builder.SetDeviceName(prefix)
    setpoint = builder.aOut("SETPOINT", 1.0, EGU="mA", PREC=3, DRVL=0, DRVH=100,
                            LOPR=0, HOPR=100, DESC="Demo setpoint", autosave=True)
    readback = builder.aIn("READBACK", 1.0, EGU="mA", PREC=3, LOPR=0, HOPR=100,
                           HIGH=90, HSV="MINOR", HIHI=95, HHSV="MAJOR")
    message = builder.stringOut("MESSAGE", "hello", autosave=True)
    mode = builder.mbbOut("MODE", "Off", "On", ("Fault", "MAJOR"), initial_value=1,
                          autosave=True)
    wave = builder.WaveformIn("WAVE", [0.0] * 100)
    builder.UnsetDevice()
    health.create(prefix)           # UPTIME, CPU..., LIVE and READY for the probes
    return {"setpoint": setpoint, "readback": readback, "message": message,
            "mode": mode, "wave": wave}


def run_updates(records: dict[str, object], stop: threading.Event) -> None:
    """Update the input records every 0.1 s until stop is set."""
    start = time.time()
    readback, setpoint = records["readback"], records["setpoint"]
    wave = records["wave"]
    x = [i / 10 for i in range(100)]
    while not stop.wait(0.1):
        t = time.time() - start
        readback.set(setpoint.get() + random.gauss(0, 0.01))  # type: ignore[attr-defined]
        wave.set([math.sin(v + t) for v in x])  # type: ignore[attr-defined]


def main(prefix: str = "DEMO", interactive: bool = True) -> None:
    """Build, start and serve the demo IOC."""
    autosave.use_default_directory()
    records = build(prefix)
    builder.LoadDatabase()
    softioc.iocInit()
    stop = threading.Event()
    threading.Thread(target=run_updates, args=(records, stop), daemon=True).start()
    print(f"Demo IOC running: try  caget {prefix}:READBACK  or  caput {prefix}:SETPOINT 42",
          flush=True)
    if interactive:
        softioc.interactive_ioc(records)
    else:
        softioc.non_interactive_ioc()
