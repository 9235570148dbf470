"""A small facility network for the tests in this directory (Linux network namespaces).

Two subnets joined by no router::

    subnet a, 198.51.100.0/24 (the machines)   subnet b, 203.0.113.0/24 (the offices)
      ioc1   198.51.100.10                       far  203.0.113.20
      ioc2   198.51.100.11
      opi    198.51.100.20  (an operator console)
      rogue  198.51.100.30  (a client that lies about its name)
      gw     198.51.100.1  and  203.0.113.1  (a host on both, for gateways)

Programs run on these hosts with EPICS's default settings (broadcast searches
on the default ports), which is safe here: no namespace has a link to a real
interface.  The network is built once per session and removed at its end,
processes and all; each test's own processes are stopped when it ends.
Skipped (with the reason) where namespaces cannot be made: not root, or no
``ip``/``unshare``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .netns import Host, Network, Proc, network_unavailable

HERE = Path(__file__).parent
IOCS = HERE / "iocs"
P4P_CLIENT = HERE / "p4p_client.py"

LAYOUT: dict[str, dict[str, str]] = {
    "ioc1": {"a": "198.51.100.10"},
    "ioc2": {"a": "198.51.100.11"},
    "opi": {"a": "198.51.100.20"},
    "rogue": {"a": "198.51.100.30"},
    "gw": {"a": "198.51.100.1", "b": "203.0.113.1"},
    "far": {"b": "203.0.113.20"},
}


@pytest.fixture(scope="session")
def facility() -> Iterator[Network]:
    """The whole network (see the module's docstring), removed after the session."""
    reason = network_unavailable()
    if reason:
        pytest.skip(f"network tests: {reason}")
    with Network() as net:
        net.subnet("a", "198.51.100.0/24")
        net.subnet("b", "203.0.113.0/24")
        for name, addresses in LAYOUT.items():
            net.host(name, **addresses)
        yield net


@pytest.fixture
def net(facility: Network) -> Iterator[Network]:
    """The facility; the processes a test starts are stopped when it ends.

    Their output is printed then, so a failing test shows it.
    """
    mark = len(facility.procs)
    try:
        yield facility
    finally:
        facility.stop_since(mark)
        print(facility.logs(mark))


def start_ioc(host: Host, script: str, *args: str, timeout: float = 30.0) -> Proc:
    """Start tests/network/iocs/SCRIPT on ``host``; return once it prints ``IOC ready``."""
    proc = host.popen([sys.executable, str(IOCS / script), *args])
    proc.wait_for_output("IOC ready", timeout)
    return proc


@pytest.fixture
def ioc_on(net: Network) -> Callable[..., Proc]:
    """``ioc_on("ioc1", "net_ioc.py", "N1")`` starts that IOC on that host."""
    def start(host: str, script: str, *args: str) -> Proc:
        return start_ioc(net.hosts[host], script, *args)
    return start


def p4p(host: Host, *args: str, env: dict[str, str] | None = None,
        user: str | None = None) -> tuple[bool, str]:
    """Run tests/network/p4p_client.py ARGS on ``host``: (succeeded, what it printed)."""
    result = host.run([sys.executable, str(P4P_CLIENT), *args], env=env, user=user)
    return result.returncode == 0, result.stdout.strip()


def _others_can_reach(path: Path) -> bool:
    """Whether every directory down to ``path`` lets other users through (o+x)."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents] if p.is_dir())


@pytest.fixture
def as_nobody() -> None:
    """Skip a test that runs a client as user nobody where nobody cannot reach
    this venv's tools (a venv in a private, mode-700 directory)."""
    if not _others_can_reach(Path(sys.prefix)):
        pytest.skip(f"runs a client as user nobody, who cannot reach {sys.prefix} "
                    "(a directory on the way is not open to other users): chmod o+x every "
                    "directory down to it, or make the venv where others can reach it")
