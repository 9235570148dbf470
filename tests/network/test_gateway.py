"""p4p's PVA gateway (``pvagw``) on a host on both subnets: clients on the
other subnet read, write and monitor an IOC they cannot reach themselves."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable

from softioc.testing import epics_tool

from .conftest import p4p
from .netns import Network, Proc, wait_until


def gateway_config(net: Network) -> str:
    """pvagw's configuration: search subnet a, serve on subnet b only."""
    config = {
        "version": 2,
        "clients": [{"name": "machines", "provider": "pva",
                     "addrlist": "198.51.100.255", "autoaddrlist": False}],
        "servers": [{"name": "offices", "clients": ["machines"],
                     "interface": ["203.0.113.1"], "addrlist": "203.0.113.255",
                     "autoaddrlist": False, "statusprefix": "GW:"}],
    }
    path = net.logdir / "pvagw.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_gateway_between_subnets(net: Network, ioc_on: Callable[..., Proc]) -> None:
    ioc_on("ioc1", "net_ioc.py", "N4", "1")
    far, opi = net.hosts["far"], net.hosts["opi"]
    # Without the gateway, the other subnet cannot find the IOC at all (a search that
    # times out: any other failure is not what this claims).
    alone = far.tool("pvget", "-w", "1", "N4:VALUE")
    assert alone.returncode != 0 and "Timeout" in alone.stdout, alone.stdout

    gateway = net.hosts["gw"].popen([sys.executable, "-m", "p4p.gw", gateway_config(net)])
    wait_until(lambda: far.tool("pvget", "-w", "1", "N4:VALUE").returncode == 0, 20,
               f"N4:VALUE through pvagw\n{gateway.output()}")
    assert far.tool("pvget", "-w", "3", "N4:VALUE").stdout.split()[-1] == "1"

    monitor = far.popen([epics_tool("pvmonitor"), "N4:VALUE"])
    monitor.wait_for_output(re.compile(r" 1\s*\n"), 10)
    # A write from the office subnet reaches the IOC (seen over CA on subnet a)...
    assert far.tool("pvput", "-w", "3", "N4:VALUE", "7").returncode == 0
    assert opi.tool("caget", "-w", "3", "-t", "N4:VALUE").stdout.strip() == "7"
    # ... and a write on subnet a reaches the monitor on subnet b through the gateway.
    assert opi.tool("caput", "-c", "-w", "3", "N4:VALUE", "8").returncode == 0
    monitor.wait_for_output(re.compile(r" 8\s*\n"), 10)
    # A PVXS client on subnet b that may not broadcast uses the gateway as its name server.
    named = {"EPICS_PVA_AUTO_ADDR_LIST": "NO", "EPICS_PVA_ADDR_LIST": "",
             "EPICS_PVA_NAME_SERVERS": "203.0.113.1"}
    assert p4p(far, "get", "N4:VALUE", env=named) == (True, "8.0")


def test_behind_the_gateway_the_ioc_sees_the_gateway(
        net: Network, ioc_on: Callable[..., Proc]) -> None:
    """Access rules by host see pvagw's address, not its clients' (as the how-to says)."""
    # G:BYHOST may be written from the gateway's address only (not from far's, 203.0.113.20).
    ioc = ioc_on("ioc2", "acl_ioc.py", "G", "ip", "nobody", "198.51.100.1")
    far, opi = net.hosts["far"], net.hosts["opi"]
    gateway = net.hosts["gw"].popen([sys.executable, "-m", "p4p.gw", gateway_config(net)])
    wait_until(lambda: far.tool("pvget", "-w", "1", "G:BYHOST").returncode == 0, 20,
               f"G:BYHOST through pvagw\n{gateway.output()}")
    # From opi, directly: refused by the IOC's access rules (PVXS's "not permitted"),
    # not failed some other way.
    refused = opi.tool("pvput", "-w", "3", "G:BYHOST", "1")
    assert refused.returncode != 0, refused.stdout
    assert "not permitted" in refused.stdout.lower(), refused.stdout
    result = far.tool("pvput", "-w", "3", "G:BYHOST", "2")
    assert result.returncode == 0, result.stdout
    assert "written G:BYHOST = 2.0" in ioc.output()
    assert "written G:BYHOST = 1.0" not in ioc.output()
