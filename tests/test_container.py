"""docs/snippets/Containerfile, the container recipe of
docs/how-to/run-as-a-service, without a container engine: what it copies
exists, and its entry point, run as the image would (in the working
directory it declares as a volume, with its environment), serves the ports
it exposes, saves into that volume and stops with status 0 on SIGTERM."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from softioc.testing import IOCProcess

SNIPPETS = Path(__file__).parents[1] / "docs" / "snippets"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (SNIPPETS / "Containerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def test_what_it_copies_exists() -> None:
    for op, args in instructions():
        if op == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (SNIPPETS / source).is_file(), source


def test_ports_and_signal() -> None:
    steps = dict(instructions())
    ports = set(steps["EXPOSE"].split())
    assert {"5064/tcp", "5064/udp", "5065/udp", "5075/tcp", "5075/udp", "5076/udp"} <= ports
    assert steps["STOPSIGNAL"] == "SIGTERM"
    assert steps["WORKDIR"] == steps["VOLUME"]


def test_entry_point_serves_saves_and_stops(tmp_path: Path) -> None:
    steps = dict(instructions())
    entry = json.loads(steps["ENTRYPOINT"])
    copies = {dst: src for src, dst in (args.split() for op, args in instructions()
                                        if op == "COPY")}
    assert entry[0] == "/opt/oven/.venv/bin/pythonioc"
    command = [str(Path(sys.executable).parent / "pythonioc")] + [
        str(SNIPPETS / copies[arg]) if arg in copies else arg for arg in entry[1:]]
    volume = tmp_path / "volume"                 # the image's WORKDIR and VOLUME
    volume.mkdir()
    with IOCProcess(command, python=False, cwd=str(volume), wait_for="OVEN:SETPOINT",
                    stdin=None) as ioc:
        assert "New : OVEN:SETPOINT" in ioc.caput("OVEN:SETPOINT", "42").stdout
        assert ioc.pvget("OVEN:SETPOINT")              # PVA as well as CA
        ioc.proc.send_signal(signal.SIGTERM)           # docker stop
        assert ioc.proc.wait(timeout=15) == 0, ioc.output()
    assert "OVEN:SETPOINT: 42.0" in (volume / "state" / "oven.softsav").read_text()
