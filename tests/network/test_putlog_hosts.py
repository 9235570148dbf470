"""The put log with clients on two other hosts: who wrote, from where, over what."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from .netns import Network

PUTLOG_IOC = Path(__file__).parents[1] / "iocs" / "putlog_ioc.py"


@pytest.mark.usefixtures("as_nobody")
def test_put_log_names_hosts_and_users(net: Network) -> None:
    path = net.logdir / "puts.jsonl"
    ioc = net.hosts["ioc1"].popen([sys.executable, str(PUTLOG_IOC), str(path)])
    ioc.wait_for_output("IOC ready", 30)
    opi, rogue = net.hosts["opi"], net.hosts["rogue"]
    assert opi.tool("caput", "-c", "-w", "3", "PL:SETPOINT", "5").returncode == 0
    assert rogue.tool("pvput", "-w", "3", "PL:SETPOINT", "500", user="nobody").returncode != 0
    assert rogue.tool("caput", "-c", "-w", "3", "PL:MODE", "On", user="nobody",
                      hostname="opi").returncode == 0
    deadline = time.monotonic() + 10
    while len(path.read_text().splitlines() if path.exists() else []) < 3:
        assert time.monotonic() < deadline, ioc.output()
        time.sleep(0.1)
    got = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["protocol"], e["host"], e["user"], e["record"], e["old"], e["new"], e["refused"])
            for e in got] == [
        ("ca", "198.51.100.20", "root", "PL:SETPOINT", "1.5", "5", False),
        ("pva", "198.51.100.30", "nobody", "PL:SETPOINT", "5", "5", True),
        # Over both protocols, the host is the address the client connected
        # from, not the name a CA client declares: rogue's claim to be opi is not logged.
        ("ca", "198.51.100.30", "nobody", "PL:MODE", "Off", "On", False),
    ]
