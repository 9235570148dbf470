"""Access security by host and by user, from other hosts, over CA and PVA.

Host ``opi`` (198.51.100.20) may write the BYHOST records; host ``rogue``
(198.51.100.30) pretends to be ``opi`` by the host name its CA client
declares.  The IOC on host ioc1 (records IP:...) calls
``access.check_client_ip()``; the one on ioc2 (records NAME:...) does not.
A refused put is reported to the client, and neither the record nor Python
sees anything.
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import start_ioc
from .netns import Host, Network, Proc, wait_until

OPI = "198.51.100.20"
ME = pwd.getpwuid(os.geteuid()).pw_name     # the IOC's operators: the user running the tests


@pytest.fixture(scope="module")
def iocs(facility: Network) -> Iterator[dict[str, Proc]]:
    mark = len(facility.procs)
    try:
        yield {
            "IP": start_ioc(facility.hosts["ioc1"], "acl_ioc.py", "IP", "ip", ME),
            "NAME": start_ioc(facility.hosts["ioc2"], "acl_ioc.py", "NAME", "name", ME),
        }
    finally:
        facility.stop_since(mark)


def put(host: Host, protocol: str, pv: str, value: str,
        hostname: str | None = None, user: str | None = None) -> tuple[bool, str]:
    """caput -c or pvput on ``host``, as ``hostname``/``user``: (accepted, output)."""
    if protocol == "ca":
        result = host.tool("caput", "-c", "-w", "3", pv, value, hostname=hostname, user=user)
    else:
        result = host.tool("pvput", "-w", "3", pv, value, hostname=hostname, user=user)
    return result.returncode == 0, result.stdout


def read(net: Network, pv: str) -> str:
    """``caget -t`` on opi: the value, or AssertionError if caget failed (the real
    binary's exit status: a failed read must not compare equal to another)."""
    result = net.hosts["opi"].tool("caget", "-t", "-w", "3", pv)
    assert result.returncode == 0, f"caget {pv} failed ({result.returncode}):\n{result.stdout}"
    return result.stdout.strip()


def written(ioc: Proc, pv: str) -> list[str]:
    """The values Python was given for ``pv`` so far."""
    prefix = f"written {pv} = "
    return [line[len(prefix):] for line in ioc.output().splitlines() if line.startswith(prefix)]


def assert_allowed(net: Network, ioc: Proc, host: str, protocol: str, pv: str, value: str,
                   **who: str) -> None:
    ok, out = put(net.hosts[host], protocol, pv, value, **who)
    assert ok, out
    assert read(net, pv) == value
    assert written(ioc, pv)[-1] == f"{float(value)}"


def assert_refused(net: Network, ioc: Proc, host: str, protocol: str, pv: str,
                   **who: str) -> None:
    """The put fails, the client is told so, and nothing changes."""
    before, seen = read(net, pv), written(ioc, pv)
    ok, out = put(net.hosts[host], protocol, pv, "99", **who)
    assert not ok, f"{protocol} put to {pv} from {host} {who} was accepted:\n{out}"
    told = "write access denied" if protocol == "ca" else "not permitted"
    assert told in out.lower(), out
    assert read(net, pv) == before != "99"
    assert written(ioc, pv) == seen


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_check_client_ip_refuses_a_client_posing_as_another_host(
        facility: Network, iocs: dict[str, Proc], protocol: str) -> None:
    ioc = iocs["IP"]
    value = "1" if protocol == "ca" else "2"
    assert_allowed(facility, ioc, "opi", protocol, "IP:BYHOST", value)
    for claimed in ("opi", OPI):
        assert_refused(facility, ioc, "rogue", protocol, "IP:BYHOST", hostname=claimed)
    # A host name in a HAG is looked up at iocInit: 'opi' is in no DNS here, so matches nobody.
    assert_refused(facility, ioc, "opi", protocol, "IP:BYNAME")
    assert "ACF: Unable to resolve host 'opi'" in ioc.output()


def test_without_check_client_ip_ca_trusts_the_declared_host_name(
        facility: Network, iocs: dict[str, Proc]) -> None:
    """Why check_client_ip() is recommended: without it, CA believes what the client says."""
    ioc = iocs["NAME"]
    assert_allowed(facility, ioc, "rogue", "ca", "NAME:BYHOST", "3", hostname=OPI)
    assert_allowed(facility, ioc, "rogue", "ca", "NAME:BYNAME", "4", hostname="opi")
    # PVA knows clients by IP address whatever the switch: the lie does not work there,
    # and a HAG of host names matches no PVA client.
    assert_refused(facility, ioc, "rogue", "pva", "NAME:BYHOST", hostname=OPI)
    assert_allowed(facility, ioc, "opi", "pva", "NAME:BYHOST", "5")
    assert_refused(facility, ioc, "opi", "pva", "NAME:BYNAME")


@pytest.mark.parametrize("protocol", ["ca", "pva"])
@pytest.mark.usefixtures("as_nobody")
def test_user_rule(facility: Network, iocs: dict[str, Proc], protocol: str) -> None:
    """Over both protocols, the user name the client declares (its login name) counts."""
    ioc = iocs["IP"]
    assert_allowed(facility, ioc, "rogue", protocol, "IP:BYUSER", "6" if protocol == "ca" else "7")
    assert_refused(facility, ioc, "opi", protocol, "IP:BYUSER", user="nobody")
    # Everyone may still read, and write where the rules allow it.
    ok, out = put(facility.hosts["opi"], protocol, "IP:OPEN", "8", user="nobody")
    assert ok, out


def test_the_how_to_example(net: Network) -> None:
    """docs/how-to/access-security.rst's IOC, from the console it names and from another host."""
    snippet = Path(__file__).parents[2] / "docs" / "snippets" / "access_hosts_ioc.py"
    ioc = net.hosts["gw"].popen([sys.executable, str(snippet)])      # gw is 198.51.100.1
    opi = net.hosts["opi"]
    wait_until(lambda: opi.tool("caget", "-w", "1", "RF:PHASE").returncode == 0, 30,
               f"the example IOC\n{ioc.output()}")
    ok, out = put(opi, "ca", "RF:PHASE", "10")
    assert ok, out
    ok, out = put(opi, "pva", "RF:PHASE", "11")
    assert ok, out
    assert written(ioc, "RF:PHASE") == []          # the example prints its own message
    assert "phase set to 10.0" in ioc.output() and "phase set to 11.0" in ioc.output()
    for protocol in ("ca", "pva"):
        assert_refused(net, ioc, "rogue", protocol, "RF:PHASE", hostname="opi")
        # RF:VOLTAGE needs an operator too, and the test's user is not alice or bob.
        assert_refused(net, ioc, "opi", protocol, "RF:VOLTAGE")
    assert ioc.output().count("phase set to") == 2


def test_check_client_ip_takes_a_bool() -> None:
    from softioc import access

    with pytest.raises(TypeError, match="True or False"):
        access.check_client_ip("yes")       # type: ignore[arg-type]
