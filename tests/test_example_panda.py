"""examples/panda end to end: the simulated PandA, the IOC made from it, real clients.

The simulator runs on a free port of 127.0.0.1; the test talks to it over its
own protocol (``PULSE1.DELAY?``) to check what the device has, and to change
things behind the IOC's back.
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from softioc.testing import IOCProcess, free_port, wait_until

pytest.importorskip("pandablocks", reason="examples/panda needs pandablocks: "
                    "pip install 'epics-pythonioc[examples]'")
pytest.importorskip("pvi", reason="examples/panda needs pvi: "
                    "pip install 'epics-pythonioc[examples]'")


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "panda"
LABELS = ["REPEATS", "TRIGGER", "POSITION", "TIME1"]


class Sim:
    """sim_server.py in a subprocess, and a client of its control port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "sim_server.py"), str(self.port),
             "--exit-after", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ""
        if f"127.0.0.1:{self.port}" not in line:
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")

    def ask(self, *lines: str) -> list[str]:
        """Send request lines; the response lines (``OK =x``, ``ERR y``, or
        a ``!``... ``.`` list)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s, \
                s.makefile("rw", newline="\n") as stream:
            stream.write("".join(line + "\n" for line in lines))
            stream.flush()
            response = [stream.readline().rstrip("\n")]
            if response[0].startswith("!"):
                while response[-1] != ".":
                    response.append(stream.readline().rstrip("\n"))
            return response

    def get(self, field: str) -> str:
        (answer,) = self.ask(f"{field}?")
        assert answer.startswith("OK ="), answer
        return answer[4:]

    def put(self, field: str, value: str) -> None:
        assert self.ask(f"{field}={value}") == ["OK"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def sim():
    s = Sim()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def screen(tmp_path_factory):
    return tmp_path_factory.mktemp("panda") / "panda.bob"


@pytest.fixture(scope="module")
def ioc(sim, screen):
    args = [str(EXAMPLE / "panda_ioc.py"), "--port", str(sim.port), "--prefix", "PANDA",
            "--screen", str(screen)]
    with IOCProcess(args, wait_for="PANDA:CONNECTED") as ioc:
        yield ioc


def test_numbers_and_enums_read_as_the_device_describes_them(ioc):
    assert float(ioc.caget("PANDA:PULSE1:WIDTH")) == 0.001
    assert ioc.caget("PANDA:PULSE1:WIDTH.EGU") == "s"
    assert ioc.caget("PANDA:PULSE1:TRIG_EDGE") == "Rising"
    assert ioc.caget("PANDA:PULSE1:TRIG_EDGE.TWST") == "Either"
    assert ioc.caget("PANDA:PULSE1:PULSES.HOPR") == "65535"
    assert ioc.caget("PANDA:COUNTER1:MAX") == "1000"
    assert ioc.caget("PANDA:SEQ1:STATE") == "WAIT_ENABLE"       # a read-only enum
    assert ioc.caget("PANDA:CONNECTED") == "Connected"


def test_put_reaches_the_device(ioc, sim):
    out = ioc.caput("PANDA:PULSE1:DELAY", "0.25")
    assert "rror" not in out.stdout, out.stdout
    assert sim.get("PULSE1.DELAY") == "0.25"
    assert sim.get("PULSE1.DELAY.RAW") == str(125_000_000 // 4)
    out = ioc.caput("PANDA:PULSE1:TRIG_EDGE", "Falling")
    assert "rror" not in out.stdout, out.stdout
    assert sim.get("PULSE1.TRIG_EDGE") == "Falling"
    ioc.caput("PANDA:PULSE1:ENABLE", "0")
    assert sim.get("PULSE1.ENABLE") == "0"


def test_device_refusal_fails_the_put(ioc, sim):
    before = ioc.caget("PANDA:PULSE1:DELAY")
    out = ioc.caput("PANDA:PULSE1:DELAY", "-1")          # the PandA: ERR Number out of range
    assert "Channel write request failed" in out.stdout, out.stdout
    assert ioc.caget("PANDA:PULSE1:DELAY") == before
    assert sim.get("PULSE1.DELAY") == before
    out = ioc.caput("PANDA:PULSE1:PULSES", "70000")      # over the uint's MAX
    assert "Channel write request failed" in out.stdout, out.stdout
    assert ioc.caget("PANDA:PULSE1:PULSES") == sim.get("PULSE1.PULSES") == "1"


def test_device_changes_reach_the_pvs(ioc, sim):
    sim.put("COUNTER1.MAX", "500")
    wait_until(lambda: ioc.caget("PANDA:COUNTER1:MAX") == "500")
    # a value that moves by itself on the device
    first = ioc.caget("PANDA:COUNTER1:OUT")
    wait_until(lambda: ioc.caget("PANDA:COUNTER1:OUT") != first)
    # units: the EGU follows, and the value now reads in ms
    sim.put("PULSE1.WIDTH.UNITS", "ms")
    try:
        wait_until(lambda: ioc.caget("PANDA:PULSE1:WIDTH.EGU") == "ms")
        assert float(ioc.caget("PANDA:PULSE1:WIDTH")) == 1.0
    finally:
        sim.put("PULSE1.WIDTH.UNITS", "s")
    wait_until(lambda: ioc.caget("PANDA:PULSE1:WIDTH.EGU") == "s")


def table_words(rows: list[tuple[int, int, int, int]]) -> list[str]:
    """(REPEATS, TRIGGER index, POSITION, TIME1) rows as SEQ1.TABLE words."""
    return [str(w) for r, t, p, t1 in rows for w in (r | t << 16, p & 0xFFFFFFFF, t1)]


def test_table_over_pva(ioc, sim, pva):
    v = pva.get("PANDA:SEQ1:TABLE", timeout=5)
    assert v.getID() == "epics:nt/NTTable:1.0"
    assert list(v["labels"]) == LABELS
    np.testing.assert_array_equal(v["value.REPEATS"], [1, 2])
    assert list(v["value.TRIGGER"]) == ["Immediate", "BITA=1"]
    np.testing.assert_array_equal(v["value.POSITION"], [0, -50])
    np.testing.assert_array_equal(v["value.TIME1"], [100, 200])

    pva.put("PANDA:SEQ1:TABLE", {
        "value.REPEATS": [5, 6, 7],
        "value.TRIGGER": ["BITB=1", "Immediate", "POSC<=POSITION"],
        "value.POSITION": [10, -20, 30],
        "value.TIME1": [1, 2, 3],
    }, wait=True, timeout=10)
    expected = table_words([(5, 4, 10, 1), (6, 0, -20, 2), (7, 12, 30, 3)])
    wait_until(lambda: sim.ask("SEQ1.TABLE?") == [f"!{w}" for w in expected] + ["."])

    # A label the table cannot hold is refused; the device keeps its table.
    with pytest.raises(Exception):     # noqa: B017 (p4p's RemoteError)
        pva.put("PANDA:SEQ1:TABLE", {"value.TRIGGER": ["Sometimes", "Immediate", "BITA=0"]},
                wait=True, timeout=10)
    time.sleep(0.3)
    assert sim.ask("SEQ1.TABLE?") == [f"!{w}" for w in expected] + ["."]
    assert list(pva.get("PANDA:SEQ1:TABLE", timeout=5)["value.TRIGGER"]) == [
        "BITB=1", "Immediate", "POSC<=POSITION"]


def test_table_written_on_the_device_shows(ioc, sim, pva):
    words = table_words([(9, 1, -1, 1000)])
    assert sim.ask("SEQ1.TABLE<", *words, "") == ["OK"]

    def shown():
        v = pva.get("PANDA:SEQ1:TABLE", timeout=5)
        return list(v["value.REPEATS"]) == [9] and list(v["value.TRIGGER"]) == ["BITA=0"] \
            and list(v["value.POSITION"]) == [-1] and list(v["value.TIME1"]) == [1000]

    wait_until(shown)


def test_screen_is_generated(ioc, screen):
    root = ET.parse(screen).getroot()
    assert root.tag == "display"
    pvs = {e.text for e in root.iter("pv_name")}
    assert {"PANDA:PULSE1:DELAY", "PANDA:PULSE1:TRIG_EDGE", "PANDA:PULSE1:ENABLE",
            "PANDA:COUNTER1:OUT", "pva://PANDA:SEQ1:TABLE"} <= pvs, pvs
    groups = {w.findtext("name") for w in root.iter("widget") if w.get("type") == "group"}
    assert {"PULSE1", "COUNTER1", "SEQ1"} <= groups
    types = {w.findtext("pv_name"): w.get("type") for w in root.iter("widget")}
    assert types["PANDA:PULSE1:TRIG_EDGE"] == "combo"
    assert types["pva://PANDA:SEQ1:TABLE"] == "table"


def test_device_lost_and_found(ioc, sim):
    """Last: stops the simulator and starts a new one on the same port."""
    sim.stop()
    wait_until(lambda: ioc.caget("PANDA:CONNECTED") == "Disconnected")
    for pv in ("PANDA:PULSE1:DELAY", "PANDA:SEQ1:TABLE:REPEATS"):
        assert "INVALID" in ioc.run_tool("caget", "-d", "DBR_STS_DOUBLE", pv).stdout
    out = ioc.caput("PANDA:PULSE1:DELAY", "0.5")
    assert "Channel write request failed" in out.stdout, out.stdout
    again = Sim(sim.port)
    try:
        wait_until(lambda: ioc.caget("PANDA:CONNECTED") == "Connected", timeout=10)
        # a fresh device: its values again, alarms gone
        wait_until(lambda: ioc.caget("PANDA:PULSE1:DELAY") == "0")
        for pv in ("PANDA:PULSE1:DELAY", "PANDA:SEQ1:TABLE:REPEATS"):
            wait_until(lambda pv=pv: "INVALID" not in ioc.run_tool(
                "caget", "-d", "DBR_STS_DOUBLE", pv).stdout)
        assert ioc.caput("PANDA:PULSE1:DELAY", "0.5").stdout.count("rror") == 0
        assert again.get("PULSE1.DELAY") == "0.5"
    finally:
        again.stop()


def test_run_demo_starts_both_and_stops_both():
    with IOCProcess([str(EXAMPLE / "run_demo.py")], wait_for="PANDA:CONNECTED") as demo:
        assert demo.caget("PANDA:PULSE1:TRIG_EDGE") == "Rising"
    assert demo.proc.returncode == 0
    out = demo.output()
    if demo.proc.stdout:
        demo.proc.stdout.close()
    assert "simulated PandA on 127.0.0.1:" in out, out
