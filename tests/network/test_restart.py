"""An IOC restarted under live monitors from another host.

What a user can rely on, over both protocols: the monitor says at once that
the IOC went away, and once the IOC is back it reconnects by itself and
delivers the value the new IOC serves, then later changes.  PVA reconnects
within about a second.  CA does too, but its client library searches again
for lost channels only on a 10 s tick (and a client younger than about 10 s
has not yet registered with the caRepeater, so hears no beacons), so a CA
monitor may take up to about 10 s after the IOC is back: the bound below
allows 25 s for CA (measured: 7 to 10 s) and 10 s for PVA (measured: 0.2 s).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from softioc.testing import epics_tool

from .netns import Network, Proc

CA_RECONNECT = 25.0
PVA_RECONNECT = 10.0


def value(text: str) -> re.Pattern[str]:
    """A monitor's line with this value (both camonitor and pvmonitor end lines with it)."""
    return re.compile(rf"N3:VALUE .* {re.escape(text)}\s*\n")


def test_monitors_follow_an_ioc_restart(net: Network, ioc_on: Callable[..., Proc]) -> None:
    opi = net.hosts["opi"]
    ioc = ioc_on("ioc1", "net_ioc.py", "N3", "3")
    camonitor = opi.popen([epics_tool("camonitor"), "N3:VALUE"])
    pvmonitor = opi.popen([epics_tool("pvmonitor"), "N3:VALUE"])
    for monitor in (camonitor, pvmonitor):
        monitor.wait_for_output(value("3"), 10)

    before = {m: len(m.output()) for m in (camonitor, pvmonitor)}
    assert ioc.stop() == 0
    camonitor.wait_for_output("*** disconnected", 5, before[camonitor])
    pvmonitor.wait_for_output("<Disconnect>", 5, before[pvmonitor])

    before = {m: len(m.output()) for m in (camonitor, pvmonitor)}
    ioc_on("ioc1", "net_ioc.py", "N3", "4")
    back = time.monotonic()
    pvmonitor.wait_for_output(value("4"), PVA_RECONNECT, before[pvmonitor])
    pva_seconds = time.monotonic() - back
    camonitor.wait_for_output(value("4"), CA_RECONNECT, before[camonitor])
    ca_seconds = time.monotonic() - back
    print(f"reconnected after the IOC was back: PVA {pva_seconds:.1f} s, CA {ca_seconds:.1f} s")

    # Reconnected for good: later changes arrive too, whoever writes them.
    assert opi.tool("caput", "-c", "-w", "3", "N3:VALUE", "5").returncode == 0
    for monitor in (camonitor, pvmonitor):
        monitor.wait_for_output(value("5"), 5, before[monitor])
