"""The seed's two examples (examples/average_ioc.py, examples/device_ioc.py),
run verbatim, end to end with real clients: the C caget/caput/camonitor tools
and cothread.catools.  Everything is on loopback, each IOC on its own ports.
"""

import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from softioc.testing import IOCProcess, epics_tool, free_port, monitor, wait_until

pytest.importorskip("cothread", reason="the examples need cothread: pip install cothread")

EXAMPLES = Path(__file__).parent.parent / "examples"
UPSTREAM_DB = EXAMPLES / "upstream_devices.db"


def stop_cleanly(ioc):
    """Close stdin (ends interactive_ioc): the IOC must exit 0, within a few seconds."""
    start = time.monotonic()
    code = ioc.stop()
    elapsed = time.monotonic() - start
    output = ioc.output()
    assert code == 0, output
    # stop() would send SIGTERM only after 5 s: closing stdin alone ended it.
    assert elapsed < 4.5, f"took {elapsed:.1f} s to exit:\n{output}"
    assert "Traceback" not in output, output


class Lines:
    """Collect a subprocess's stdout lines in a thread, to wait for one."""

    def __init__(self, proc):
        self.lines = []
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        with stream:                    # closed at EOF, when the monitor has ended
            for line in stream:
                self.lines.append(line.rstrip("\n"))

    def wait(self, check, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if check(line)]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no matching line within {timeout} s: {self.lines}")


def cothread_caget(ioc, pv):
    """Read pv with cothread.catools in a fresh process (it reads its env at import)."""
    script = (
        "from cothread.catools import caget\n"
        f"value = caget({pv!r}, timeout=5)\n"
        "print(type(value).__name__, float(value), value.name, value.ok)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=ioc.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert result.returncode == 0, result.stdout
    return result.stdout.split()


# ---------------------------------------------------------------------------
# Use case 1: "Calculating PVs from other values" (average_ioc.py)

def upstream_values():
    """The initial values of DEVICE0..99:CURRENT, read from upstream_devices.db."""
    text = UPSTREAM_DB.read_text()
    records = re.findall(
        r'record\(ao, "DEVICE(\d+):CURRENT"\)\s*\{\s*field\(VAL, "([^"]+)"\)', text)
    values = {int(i): float(v) for i, v in records}
    assert sorted(values) == list(range(100))
    return values


@pytest.fixture(scope="module")
def average():
    """The C softIoc serving the 100 DEVICEn:CURRENT, and average_ioc.py on its
    own port; both are searched for (the upstream's port, and the IOC's own)."""
    upstream = IOCProcess([epics_tool("softIoc"), "-d", str(UPSTREAM_DB)],
                          python=False, wait_for="DEVICE99:CURRENT")
    try:
        env = {"EPICS_CA_ADDR_LIST": f"127.0.0.1:{upstream.ca_port} 127.0.0.1"}
        ioc = IOCProcess([str(EXAMPLES / "average_ioc.py")], env=env,
                         wait_for="AVERAGE:CURRENT", cwd=str(EXAMPLES))
        try:
            assert ioc.ca_port != upstream.ca_port
            yield upstream, ioc
        finally:
            ioc.stop()
    finally:
        upstream.stop()


def test_average_starts_at_mean_of_upstream(average):
    upstream, ioc = average
    expected = sum(upstream_values().values()) / 100
    assert float(upstream.caget("DEVICE42:CURRENT")) == upstream_values()[42]
    assert float(ioc.caget("AVERAGE:CURRENT")) == pytest.approx(expected)
    # The average IOC serves only its own PV; DEVICEn:CURRENT are upstream's.
    result = ioc.run_tool("caget", "-w", "0.5", "DEVICE0:CURRENT", check=False,
                          env={"EPICS_CA_ADDR_LIST": "127.0.0.1"})     # its own port only
    assert result.returncode != 0, result.stdout


def test_average_read_by_cothread_catools(average):
    upstream, ioc = average
    kind, value, name, ok = cothread_caget(ioc, "AVERAGE:CURRENT")
    assert (kind, name, ok) == ("ca_float", "AVERAGE:CURRENT", "True")
    assert float(value) == pytest.approx(sum(upstream_values().values()) / 100)


def test_average_follows_upstream_puts(average):
    upstream, ioc = average
    values = upstream_values()
    original = values[7]
    with monitor(ioc, "AVERAGE:CURRENT", options=["-g", "10"]) as camon:
        lines = Lines(camon)
        lines.wait(lambda line: "AVERAGE:CURRENT" in line)       # connected
        try:
            for new in (1007.0, -250.5):
                result = upstream.caput("DEVICE7:CURRENT", str(new))
                assert "rror" not in result.stdout, result.stdout
                values[7] = new
                expected = sum(values.values()) / 100
                ioc.wait_value("AVERAGE:CURRENT",
                               lambda v, e=expected: float(v) == pytest.approx(e),
                               timeout=10, options=["-g", "10"])
                # camonitor was told of the new average, too.
                lines.wait(lambda line, e=expected: _close(line, e))
        finally:
            upstream.caput("DEVICE7:CURRENT", str(original))
    restored = sum(upstream_values().values()) / 100
    ioc.wait_value("AVERAGE:CURRENT", lambda v: float(v) == pytest.approx(restored),
                   timeout=10, options=["-g", "10"])


def _close(line, expected):
    """Whether a camonitor line ends in (about) the expected value."""
    try:
        return float(line.split()[-1]) == pytest.approx(expected)
    except (ValueError, IndexError):
        return False


def test_average_ioc_exits_cleanly(average):
    upstream, ioc = average
    stop_cleanly(ioc)
    assert upstream.stop() == 0


# ---------------------------------------------------------------------------
# Use case 2: "Dynamically created PVs" (device_ioc.py with my_device_lib.py)

# The parameters my_device_lib.Device has, with their initial values.
DEVICE_PARAMS = {"SIMDEV:COUNT": 0.0, "SIMDEV:WAVE": 0.0, "SIMDEV:GAIN": 2.5}


@pytest.fixture(scope="module")
def device():
    """device_ioc.py, whose simulated device takes commands on SIMDEV_PORT."""
    port = free_port()
    ioc = IOCProcess([str(EXAMPLES / "device_ioc.py")], wait_for="SIMDEV:GAIN",
                     cwd=str(EXAMPLES), env={"SIMDEV_PORT": str(port)})
    ioc.device_port = port
    try:
        yield ioc
    finally:
        ioc.stop()


def test_a_pv_for_each_parameter(device):
    for name in DEVICE_PARAMS:
        result = device.run_tool("caget", "-w", "5", "-d", "DBR_CTRL_DOUBLE", name)
        assert "Native data type: DBF_DOUBLE" in result.stdout, result.stdout
    assert float(device.caget("SIMDEV:GAIN")) == 2.5
    assert -1.0 <= float(device.caget("SIMDEV:WAVE")) <= 1.0


def test_device_changes_over_time(device):
    first = float(device.caget("SIMDEV:COUNT"))
    device.wait_value("SIMDEV:COUNT", lambda v: float(v) >= first + 5, timeout=10)  # ~10/s
    waves = {device.caget("SIMDEV:WAVE") for _ in range(5) if not time.sleep(0.2)}
    assert len(waves) > 1


def test_commanded_change_reaches_pv(device):
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with monitor(device, "SIMDEV:GAIN") as camon:
            lines = Lines(camon)
            lines.wait(lambda line: _close(line, 2.5))
            for new in (7.25, -3.5):
                def send_and_read(value=new):
                    # UDP: resend until seen (setting the same value twice is harmless).
                    sender.sendto(f"SIMDEV:GAIN {value}".encode(),
                                  ("127.0.0.1", device.device_port))
                    return float(device.caget("SIMDEV:GAIN"))

                wait_until(lambda n=new: send_and_read() == n, what=f"SIMDEV:GAIN {new}")
                lines.wait(lambda line, n=new: _close(line, n), timeout=5)
    finally:
        sender.close()


def test_device_ioc_exits_cleanly(device):
    stop_cleanly(device)
