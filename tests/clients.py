"""One client interface over Channel Access (the C tools) and PV Access (p4p),
so a test body runs unchanged against both protocols."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import numpy as np
from p4p.client.thread import Context, RemoteError

from softioc import testing
from softioc.testing import IOCProcess


def pva_context(ioc: IOCProcess) -> Context:
    """A p4p context that searches only this IOC's PVA ports (plain values: nt=False)."""
    return testing.pva_context(ioc, nt=False)


class CAClient:
    protocol = "ca"

    def __init__(self, ioc: IOCProcess):
        self.ioc = ioc

    def get(self, pv, like=None):
        """The value, as the type of ``like`` (enums by index; long strings as text)."""
        if isinstance(like, str) and len(like) >= 40:
            return self.ioc.caget(pv, "-S")
        text = self.ioc.caget(pv, "-n", "-f0" if isinstance(like, int) else "-g17")
        if isinstance(like, (list, np.ndarray)):
            count, *items = text.split()
            return np.array([float(x) for x in items[: self.nord(pv)]])
        if isinstance(like, bool) or isinstance(like, int):
            return int(float(text))
        if isinstance(like, float):
            return float(text)
        return text

    def nord(self, pv):
        return int(self.ioc.caget(pv + ".NORD"))

    # How caput shows the server refusing a put (with -c, or as a warning without).
    REFUSALS = ("Channel write request failed", "Write access denied")

    def put(self, pv, value, wait=True, timeout=10.0):
        """True if the server accepted the put, False if it refused it; any
        other outcome (no such PV, no answer) raises RuntimeError."""
        options = ["-w", str(timeout)]
        if isinstance(value, str) and len(value) >= 40:
            result = self.ioc.caput(pv, value, callback=wait, options=["-S", *options])
        elif isinstance(value, (list, np.ndarray)):
            result = self.ioc.caput(pv, str(len(value)), *map(str, value), callback=wait,
                                    options=["-a", *options])
        else:
            result = self.ioc.caput(pv, str(value), callback=wait, options=options)
        if any(text in result.stdout for text in self.REFUSALS):
            return False
        if result.returncode == 0 and "New :" in result.stdout:
            return True
        raise RuntimeError(f"caput {pv} (exit {result.returncode}): {result.stdout}")

    def close(self):
        pass


class PVAClient:
    protocol = "pva"

    def __init__(self, ioc: IOCProcess):
        self.ioc = ioc
        self.ctx = pva_context(ioc)

    def get(self, pv, like=None):
        value = self.ctx.get(pv, timeout=5)["value"]
        if hasattr(value, "keys") and "index" in value.keys():
            return value["index"]
        if isinstance(like, (list, np.ndarray)):
            return np.asarray(value, dtype=float)
        return value

    def put(self, pv, value, wait=True, timeout=10.0):
        """True if the server accepted the put, False if it refused it (a
        RemoteError); any other failure (no such PV: TimeoutError) raises."""
        try:
            self.ctx.put(pv, value, wait=wait, timeout=timeout)
        except RemoteError:
            return False
        return True

    def close(self):
        self.ctx.close()


CLIENTS = {"ca": CAClient, "pva": PVAClient}


def caget_many(ioc: IOCProcess, *pvs: str, options: Sequence[str] = ()) -> dict[str, str]:
    """Each PV's value as ``caget -t`` (with ``options``) prints it, all read by
    one caget: ``assert caget_many(ioc, *expected) == expected`` checks many
    fields at once, and shows every one that differs."""
    lines = ioc.run_tool("caget", "-t", *options, *pvs, timeout=30).stdout.splitlines()
    assert len(lines) == len(pvs), lines
    return dict(zip(pvs, lines))


def python_client(ioc: IOCProcess, code: str, timeout: float = 30.0) -> str:
    """Run ``code`` in a fresh Python with the IOC's client environment (pyepics,
    aioca and cothread read it when they start); what it printed.  It must exit 0."""
    result = subprocess.run([sys.executable, "-c", code], env=ioc.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout
    return result.stdout
