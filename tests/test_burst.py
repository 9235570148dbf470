"""Every final value of a burst of sets reaches monitoring clients."""

import re
import subprocess
import time

import pytest

from softioc.testing import IOCProcess, epics_tool

from .conftest import IOCS

N = 1000
LINE = re.compile(r"^(BURST:\d+)\s+\S+\s+\S+\s+(-?\d+)")


def final_values(ioc, command, rounds, done_count, tmp_path):
    pvs = [f"BURST:{i}" for i in range(N)]
    sink = open(tmp_path / "camonitor.txt", "w+")  # a file: a full pipe would stall camonitor
    monitor = subprocess.Popen(
        ["stdbuf", "-oL", epics_tool("camonitor"), "-w", "10", *pvs], env=ioc.env,
        stdout=sink, stderr=subprocess.STDOUT, text=True,
    )
    try:
        time.sleep(2.0)  # all 1000 channels connected and initial values in
        ioc.send(command)
        deadline = time.monotonic() + 30
        while ioc.caget("BURST:DONE") != str(done_count) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ioc.caget("BURST:DONE") == str(done_count)
        time.sleep(2.0)  # let the monitor drain
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
        sink.seek(0)
        out = sink.read()
        sink.close()
    last = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            last[m.group(1)] = int(m.group(2))
    return last


@pytest.mark.parametrize("threads", [1, 8])
def test_burst_no_stale(threads, tmp_path):
    with IOCProcess([str(IOCS / "burst_ioc.py")], wait_for="BURST:DONE") as ioc:
        rounds = 5
        last = final_values(ioc, f"burst({threads}, {rounds})", rounds, 1, tmp_path)
        stale = [i for i in range(N) if last.get(f"BURST:{i}") != rounds * 10000 + i]
        assert stale == [], f"{len(stale)} of {N} records stale, e.g. {stale[:5]}"
