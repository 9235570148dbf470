"""Reliability suite: EPICS's own client test, load, shutdown and fuzzing.

Everything here runs real clients against IOC subprocesses on private
loopback ports (``softioc.testing.IOCProcess``), as the rest of the tests do.

The CI form is bounded (about four minutes in all, most of it EPICS's
``acctst`` waiting out its own beacon and watchdog periods).  The long form
(``pytest tests/reliability --long``, or ``PYTHONIOC_LONG=1``) soaks the
load test for ``PYTHONIOC_SOAK_SECONDS`` (default 60) with every client
monitoring every record.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from softioc.testing import IOCProcess

SCRIPTS = Path(__file__).parent / "iocs"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="pythonIOC reliability: the long load soak")


def long_wanted(config: pytest.Config) -> bool:
    env = os.environ.get("PYTHONIOC_LONG", "").upper() not in ("", "0", "NO", "FALSE")
    return bool(config.getoption("--long", default=False)) or env


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True for the long (soak) form of the suite."""
    return long_wanted(request.config)


def rss_kb(pid: int) -> int:
    """Resident set size of a process (VmRSS), in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def established(pid: int, port: int) -> int:
    """TCP connections accepted on 127.0.0.1:port (seen from pid's network namespace)."""
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def same_ports(ioc: IOCProcess) -> dict[str, str]:
    """Environment that starts another IOC on exactly ioc's ports."""
    return {k: v for k, v in ioc.env.items() if k.startswith("EPICS_")}


def start_on(ioc: IOCProcess, args: list[str], **kwargs: object) -> IOCProcess:
    """A new IOC on the ports of ioc (which should have stopped)."""
    new = IOCProcess(args, env=same_ports(ioc), **kwargs)  # type: ignore[arg-type]
    new.ca_port, new.pva_port, new.pva_udp = ioc.ca_port, ioc.pva_port, ioc.pva_udp
    return new
