"""Finding IOCs on other hosts: by broadcast (CA and PVA), and through name
servers for a client that may not broadcast."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from .conftest import p4p, start_ioc
from .netns import Network

# A client that sends no search by UDP: no automatic broadcast addresses, none listed.
NO_BROADCAST = {
    "EPICS_CA_AUTO_ADDR_LIST": "NO", "EPICS_CA_ADDR_LIST": "",
    "EPICS_PVA_AUTO_ADDR_LIST": "NO", "EPICS_PVA_ADDR_LIST": "",
}


@pytest.fixture(scope="module")
def two_iocs(facility: Network) -> Iterator[Network]:
    """N1 on host ioc1 and N2 on host ioc2, both with EPICS's default network settings."""
    mark = len(facility.procs)
    try:
        start_ioc(facility.hosts["ioc1"], "net_ioc.py", "N1", "1.5")
        start_ioc(facility.hosts["ioc2"], "net_ioc.py", "N2", "2.5")
        yield facility
    finally:
        facility.stop_since(mark)


def test_network_is_closed(facility: Network) -> None:
    """No host has a default route or an address outside the documentation ranges."""
    for host in facility.hosts.values():
        routes = subprocess.run(["ip", "-n", host.ns, "route"], capture_output=True,
                                text=True, timeout=10).stdout
        assert "default" not in routes, routes
        addrs = subprocess.run(["ip", "-n", host.ns, "-4", "-o", "addr"], capture_output=True,
                               text=True, timeout=10).stdout
        for line in addrs.splitlines():
            address = line.split()[3]
            assert address.startswith(("127.", "198.51.100.", "203.0.113.")), line


def test_ca_broadcast_finds_iocs_on_two_hosts(two_iocs: Network) -> None:
    opi = two_iocs.hosts["opi"]
    result = opi.tool("caget", "-w", "3", "-t", "N1:VALUE", "N2:VALUE", "N1:HOST", "N2:HOST")
    assert result.returncode == 0, result.stdout
    assert result.stdout.split() == ["1.5", "2.5", "ioc1", "ioc2"]


def test_pva_broadcast_finds_iocs_on_two_hosts(two_iocs: Network) -> None:
    opi = two_iocs.hosts["opi"]
    for pv, value in (("N1:VALUE", "1.5"), ("N2:VALUE", "2.5")):
        result = opi.tool("pvget", "-w", "3", pv)
        assert result.returncode == 0, result.stdout
        assert result.stdout.split()[-1] == value
        assert p4p(opi, "get", pv) == (True, value)


def test_other_subnet_does_not_see_them(two_iocs: Network) -> None:
    """Broadcasts stay on their subnet: a host on the other one finds nothing
    (what makes the gateway test below mean something)."""
    far = two_iocs.hosts["far"]
    assert far.tool("caget", "-w", "1", "N1:VALUE").returncode != 0
    assert far.tool("pvget", "-w", "1", "N1:VALUE").returncode != 0


def test_pva_name_server(two_iocs: Network) -> None:
    """EPICS_PVA_NAME_SERVERS: a client that may not broadcast asks the IOC by TCP."""
    opi = two_iocs.hosts["opi"]
    ok, out = p4p(opi, "get", "N1:VALUE", env=NO_BROADCAST)
    assert not ok, out          # no way to find it without the name server
    named = dict(NO_BROADCAST, EPICS_PVA_NAME_SERVERS="198.51.100.10 198.51.100.11")
    assert p4p(opi, "get", "N1:VALUE", env=named) == (True, "1.5")
    assert p4p(opi, "get", "N2:VALUE", env=named) == (True, "2.5")


def test_ca_name_server(two_iocs: Network) -> None:
    """EPICS_CA_NAME_SERVERS: the IOC's CA server (rsrv) answers searches over TCP."""
    opi = two_iocs.hosts["opi"]
    result = opi.tool("caget", "-w", "2", "-t", "N1:VALUE", env=NO_BROADCAST)
    assert result.returncode != 0, result.stdout
    named = dict(NO_BROADCAST, EPICS_CA_NAME_SERVERS="198.51.100.10 198.51.100.11")
    result = opi.tool("caget", "-w", "3", "-t", "N1:VALUE", "N2:VALUE", env=named)
    assert result.returncode == 0, result.stdout
    assert result.stdout.split() == ["1.5", "2.5"]
