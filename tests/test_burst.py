"""Every final value of a burst of sets reaches monitoring clients."""

import re
import time

import pytest

from softioc.testing import IOCProcess, start_tool, wait_until

from .conftest import IOCS

N = 1000
LINE = re.compile(r"^(BURST:\d+)\s+\S+\s+\S+\s+(-?\d+)")


def final_values(ioc, command, expected, done_count, tmp_path):
    pvs = [f"BURST:{i}" for i in range(N)]
    path = tmp_path / "camonitor.txt"      # a file: a full pipe would stall camonitor
    with start_tool("camonitor", "-w", "10", *pvs, env=ioc.env, output=path):
        # all 1000 channels connected and their initial values in
        wait_until(lambda: len(last_values(path)) == N, timeout=30,
                   what=f"camonitor's first values of all {N} records")
        ioc.send(command)
        ioc.wait_value("BURST:DONE", str(done_count), 30)
        # let the monitor drain: until it shows every final value (or 30 s),
        # then until it has printed nothing more for a second (a stale value
        # posted after a final one would show up there)
        deadline = time.monotonic() + 30
        while last_values(path) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        size = -1
        while size != path.stat().st_size and time.monotonic() < deadline:
            size = path.stat().st_size
            time.sleep(1.0)
    return last_values(path)


def last_values(path):
    """The last value of each record in camonitor's output so far (read through
    a file of its own: moving the shared offset would move camonitor's writes)."""
    last = {}
    for line in path.read_text().splitlines():
        m = LINE.match(line)
        if m:
            last[m.group(1)] = int(m.group(2))
    return last


@pytest.mark.parametrize("threads", [1, 8])
def test_burst_no_stale(threads, tmp_path):
    with IOCProcess([str(IOCS / "burst_ioc.py")], wait_for="BURST:DONE") as ioc:
        rounds = 5
        expected = {f"BURST:{i}": rounds * 10000 + i for i in range(N)}
        last = final_values(ioc, f"burst({threads}, {rounds})", expected, 1, tmp_path)
        stale = [i for i in range(N) if last.get(f"BURST:{i}") != expected[f"BURST:{i}"]]
        assert stale == [], f"{len(stale)} of {N} records stale, e.g. {stale[:5]}"
