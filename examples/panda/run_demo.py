"""Start the simulated PandA and the IOC for it together, on this machine only.

    python examples/panda/run_demo.py [--screen panda.bob] [other panda_ioc.py options]

The simulator listens on a free port of 127.0.0.1, and the IOC serves Channel
Access and PV Access on 127.0.0.1 only; talk to it with clients that look
there (the IOC prints the settings).  Leave the IOC's shell with Ctrl-D or
``exit()``; the simulator stops with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from softioc.testing import LOOPBACK_ENV

HERE = Path(__file__).resolve().parent


def main() -> int:
    # Its own session: Ctrl-C in the IOC's shell must not stop the device.
    sim = subprocess.Popen([sys.executable, str(HERE / "sim_server.py"), "0"],
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()            # "listening on 127.0.0.1:PORT"
        if "127.0.0.1:" not in line:
            print(f"the simulator did not start: {line!r}", file=sys.stderr)
            return 1
        port = line.rsplit(":", 1)[1].strip()
        print(f"simulated PandA on 127.0.0.1:{port}; for clients in another shell:")
        print("    export " + " ".join(f"{k}={v}" for k, v in LOOPBACK_ENV.items()
                                       if not k.startswith(("EPICS_CAS", "EPICS_PVAS"))))
        sys.stdout.flush()
        env = dict(os.environ, **LOOPBACK_ENV)
        ioc = subprocess.Popen([sys.executable, str(HERE / "panda_ioc.py"), "--port", port,
                                *sys.argv[1:]], env=env)
        while True:
            try:
                return ioc.wait()
            except KeyboardInterrupt:
                continue                        # the IOC had it too: it decides
    finally:
        sim.terminate()
        sim.wait(5)
        if sim.stdout:
            sim.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
