"""docs/snippets/Containerfile, the container recipe of
docs/how-to/run-as-a-service, without a container engine: what it copies
exists, it runs the IOC as a user of its own, and its entry point, run as
the image would (as a user other than root, in the working directory it
declares as a volume), serves the ports it exposes, saves into that volume
and stops with status 0 on SIGTERM.  With a container engine at hand
(``docker info`` answers), the image is also built and run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from softioc.testing import IOCProcess, client_env, epics_tool, free_port, wait_until

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


def test_not_root() -> None:
    steps = instructions()
    user = dict(steps)["USER"]
    assert user not in ("root", "0")
    volume = dict(steps)["VOLUME"]
    made = [args for op, args in steps if op == "RUN" and "useradd" in args]
    assert made and f"chown {user}:{user} {volume}" in made[0], made


NOBODY = 65534


def unprivileged(script: str) -> list[str]:
    """A prefix that runs a command as a user other than root: none when the
    tests run as one; as root, setpriv to nobody, who must be able to import
    softioc and read ``script`` as the image's user can (its venv in /opt,
    readable by all).  Skips, naming what would run the test, where it cannot:
    running it as root would test nothing the image claims."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("as root, the IOC is run as nobody by setpriv: apt-get install "
                    "util-linux, or run the tests as a user other than root")
    prefix = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import softioc, sys; open(sys.argv[1]).close()",
         script], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        error = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"user nobody cannot import softioc with {sys.executable} or read "
                    f"{script} ({error}): make the virtualenv and the tree readable by all "
                    "users, as the image's /opt/oven/.venv is (chmod o+rx on every "
                    "directory down to them), or run the tests as a user other than root")
    return prefix


def uid_of(pid: int) -> int:
    """The real user id of a running process."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_entry_point_serves_saves_and_stops() -> None:
    steps = dict(instructions())
    entry = json.loads(steps["ENTRYPOINT"])
    copies = {dst: src for src, dst in (args.split() for op, args in instructions()
                                        if op == "COPY")}
    assert entry[0] == "/opt/oven/.venv/bin/pythonioc"
    args = [str(SNIPPETS / copies[arg]) if arg in copies else arg for arg in entry[1:]]
    pythonioc = str(Path(sys.executable).parent / "pythonioc")
    as_user = unprivileged(args[-1])
    user = NOBODY if as_user else os.geteuid()        # never root (unprivileged skips)
    assert user != 0
    with tempfile.TemporaryDirectory() as directory:  # the image's WORKDIR and VOLUME
        volume = Path(directory)
        if as_user:
            os.chown(volume, NOBODY, NOBODY)          # its owner, the IOC's user
        with IOCProcess(as_user + [pythonioc, *args], python=False, cwd=directory,
                        wait_for="OVEN:SETPOINT", stdin=None) as ioc:
            assert uid_of(ioc.proc.pid) == user, "the IOC runs as another user"
            assert "New : OVEN:SETPOINT" in ioc.caput("OVEN:SETPOINT", "42").stdout
            assert ioc.pvget("OVEN:SETPOINT")          # PVA as well as CA
            ioc.proc.send_signal(signal.SIGTERM)       # docker stop
            assert ioc.proc.wait(timeout=15) == 0, ioc.output()
        saved = volume / "state" / "oven.softsav"
        assert "OVEN:SETPOINT: 42.0" in saved.read_text()
        assert saved.stat().st_uid == user


def engine() -> bool:
    """Whether a container engine answers (``docker info``)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True,
                              timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.skipif(not engine(), reason="no container engine: install docker (or "
                    "podman-docker) and start it, so that `docker info` answers")
def test_image_builds_and_serves(tmp_path: Path) -> None:
    """Build the image as the how-to says, run it with host networking on
    loopback and its own ports, a named volume for its state: it serves,
    a client's write is in the volume after docker stop, which exits 0."""
    docker = shutil.which("docker") or "docker"
    for name in ["Containerfile", "autosave_ioc.py"]:
        shutil.copy(SNIPPETS / name, tmp_path / name)
    tag = f"pythonioc-test-oven-{uuid.uuid4().hex[:12]}"
    env = client_env(free_port(), free_port(), free_port())
    caget = [epics_tool("caget"), "-t", "-w", "1", "OVEN:SETPOINT"]

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([docker, *args], capture_output=True, text=True,
                              timeout=timeout)

    def serving() -> bool:
        result = subprocess.run(caget, env=dict(os.environ, **env), capture_output=True,
                                text=True, timeout=10)
        return result.returncode == 0 and result.stdout.strip() == "20"

    try:
        built = run("build", "-f", "Containerfile", "-t", tag, str(tmp_path), timeout=600)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert run("volume", "create", tag).returncode == 0
        started = run("run", "-d", "--name", tag, "--network", "host",
                      "-v", f"{tag}:/var/lib/oven-ioc",
                      *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
                      tag)
        assert started.returncode == 0, started.stderr
        assert wait_until(serving, timeout=30), run("logs", tag).stdout
        put = subprocess.run([epics_tool("caput"), "-c", "-w", "5", "OVEN:SETPOINT", "42"],
                             env=dict(os.environ, **env), capture_output=True, text=True,
                             timeout=20)
        assert put.returncode == 0, put.stdout + put.stderr
        assert run("stop", "-t", "15", tag, timeout=30).returncode == 0
        assert run("inspect", "-f", "{{.State.ExitCode}}", tag).stdout.strip() == "0"
        saved = run("run", "--rm", "-v", f"{tag}:/state", "--entrypoint", "cat", tag,
                    "/state/state/oven.softsav")
        assert "OVEN:SETPOINT: 42.0" in saved.stdout, saved.stdout + saved.stderr
    finally:
        run("rm", "-f", tag)
        run("volume", "rm", "-f", tag)
        run("rmi", "-f", tag)
