"""docs/snippets/Containerfile and values.yaml, the image and the
epics-containers ``ioc-instance`` chart values of docs/how-to/kubernetes,
without a container engine or a cluster: what the image copies exists, it
runs the IOC as a user of its own who owns /autosave and /epics/opi; the
values name keys the chart has, and probes that are pythonIOC's.  The
container's command, as the chart runs it (``pythonioc run`` with no script:
``$MAIN_PYTHON``, here the image's main.py), runs as an unprivileged user
with the chart's environment (IOC_NAME, IOC_PREFIX...), temporary
directories standing for /autosave and /epics/opi (PYTHONIOC_AUTOSAVE_DIR,
PYTHONIOC_OPI_DIR): it serves CA and PVA, the values' probes pass, and
SIGTERM with clients connected and writes in flight stops it with status 0
within the chart's 3 s, autosave and the put log written.  With a container
engine at hand (``docker info`` answers), the image is also built and run.

``PYTHONIOC_STOP_RUNS=10 pytest tests/test_container.py -k sigterm -s``
prints the median and longest time from SIGTERM to exit over 10 runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from softioc import testing
from softioc.testing import IOCProcess, client_env, free_port, wait_until

SNIPPETS = Path(__file__).parents[1] / "docs" / "snippets"
PREFIX = "BL01-EA-OVEN-01"
GRACE = 3.0         # s: the chart's terminationGracePeriodSeconds


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (SNIPPETS / "Containerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def values() -> dict:
    """The ioc-instance values of docs/snippets/values.yaml."""
    return yaml.safe_load((SNIPPETS / "values.yaml").read_text())["ioc-instance"]


def test_what_it_copies_exists() -> None:
    copies = [args.split() for op, args in instructions() if op == "COPY"]
    for *sources, _ in copies:
        for source in sources:
            assert (SNIPPETS / source).is_file(), source
    # the chart mounts the instance's config folder here; the image's copy is the default
    assert ["main.py", "/epics/ioc/config/main.py"] in copies


def test_ports_and_signal() -> None:
    steps = dict(instructions())
    ports = set(steps["EXPOSE"].split())
    assert {"5064/tcp", "5064/udp", "5065/udp", "5075/tcp", "5075/udp", "5076/udp"} <= ports
    assert steps["STOPSIGNAL"] == "SIGTERM"
    assert steps["WORKDIR"] == steps["VOLUME"] == "/autosave"


def test_not_root() -> None:
    steps = instructions()
    user = dict(steps)["USER"]
    assert user not in ("root", "0")
    made = [args for op, args in steps if op == "RUN" and "useradd" in args]
    assert made and f"chown {user}:{user} /autosave /epics/opi" in made[0], made


def test_entry_point_is_pythonioc_run_without_a_script() -> None:
    entry = json.loads(dict(instructions())["ENTRYPOINT"])
    assert entry == ["/venv/bin/pythonioc", "run"]
    assert "ENV PATH=/venv/bin:$PATH" in (SNIPPETS / "Containerfile").read_text()


# What the ioc-instance chart (epics-containers/ec-helm-charts, Charts/ioc-instance/
# values.yaml) takes under ioc-instance; the values must use no other key.
CHART_KEYS = {
    "image", "imagePullPolicy", "location", "domain", "runtimeClassName",
    "serviceAccountName", "hostNetwork", "iocFolder", "iocConfig", "rebootEveryCommit",
    "command", "args", "lifecycle", "preStopExecutable", "startupProbe", "startupExecutable",
    "readinessProbe", "readinessExecutable", "livenessProbe", "livenessExecutable", "env",
    "securityContext", "podAnnotations", "podLabels", "podSecurityContext", "dataVolume",
    "opisClaim", "runtimeClaim", "autosaveClaim", "volumes", "volumeMounts", "nodeName",
    "nodeSelector", "affinity", "tolerations", "resources", "usbDevices", "clusterIP",
    "baseIp", "caServerPort", "pvaServerPort", "initContainers", "extraContainers", "labels",
}


def test_values_file() -> None:
    v = values()
    assert set(v) <= CHART_KEYS, set(v) - CHART_KEYS
    assert v["image"]
    # the container's process is the IOC: pythonioc run, the image's entry point
    assert v["command"] == ["pythonioc", "run"] and v["args"] == []
    # none of ibek's scripts: the chart's defaults for them are switched off
    assert v["livenessExecutable"] == "" and v["preStopExecutable"] == ""
    live, ready = v["livenessProbe"], v["readinessProbe"]
    assert live["exec"]["command"] == ["pythonioc", "probe", "live"]
    assert ready["exec"]["command"] == ["pythonioc", "probe", "ready"]
    assert live["initialDelaySeconds"] == 120 and live["periodSeconds"] == 30
    assert ready["periodSeconds"] <= live["periodSeconds"]
    for p in (live, ready):
        # the probe's own limit (3 s) and Python's start, under the chart's 500m CPU
        assert p["timeoutSeconds"] >= 6, p
    assert {"name": "PYTHONUNBUFFERED", "value": "1"} in v["env"]


NOBODY = 65534


def unprivileged(script: str) -> list[str]:
    """A prefix that runs a command as a user other than root: none when the
    tests run as one; as root, setpriv to nobody, who must be able to import
    softioc and read ``script`` as the image's user can (its venv in /venv,
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
                    "users, as the image's /venv is (chmod o+rx on every directory down "
                    "to them), or run the tests as a user other than root")
    return prefix


def uid_of(pid: int) -> int:
    """The real user id of a running process."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def tool(name: str) -> str:
    """A command of the values file: pythonioc is this environment's."""
    return str(Path(sys.executable).parent / name) if name == "pythonioc" else name


class Chart:
    """The directories the chart gives the container (autosave, screens, a
    writable config copy), made for the unprivileged user."""

    def __init__(self, root: Path, as_user: list[str]) -> None:
        self.autosave = root / "autosave"           # stands for /autosave
        self.opi = root / "opi"                     # stands for /epics/opi
        self.config = root / "config"               # stands for /epics/ioc/config
        for d in (self.autosave, self.opi, self.config):
            d.mkdir()
            if as_user:
                os.chown(d, NOBODY, NOBODY)         # the image's user owns them
        root.chmod(0o755)
        shutil.copy(SNIPPETS / "main.py", self.config / "main.py")   # the image's COPY
        self.as_user = as_user
        self.user = NOBODY if as_user else os.geteuid()
        self.env = {"IOC_NAME": PREFIX.lower(), "IOC_PREFIX": PREFIX,
                    "IOC_LOCATION": "bl01", "IOC_DOMAIN": "bl01", "HOME": "/tmp",
                    "MAIN_PYTHON": str(self.config / "main.py"),
                    "PYTHONIOC_AUTOSAVE_DIR": str(self.autosave),
                    "PYTHONIOC_OPI_DIR": str(self.opi),
                    **{e["name"]: e["value"] for e in values()["env"]}}

    @contextmanager
    def ioc(self, **env: str) -> Iterator[IOCProcess]:
        """The container's command (values' command and args) running."""
        v = values()
        command = [tool(v["command"][0]), *v["command"][1:], *v["args"]]
        with IOCProcess(self.as_user + command, python=False, cwd=str(self.autosave),
                        env={**self.env, **env}, wait_for=f"{PREFIX}:SETPOINT",
                        stdin=subprocess.DEVNULL) as ioc:
            yield ioc

    def probe(self, ioc: IOCProcess, kind: str) -> subprocess.CompletedProcess[str]:
        """The values' probe command, in the container (its user and environment)."""
        command = values()[f"{kind}Probe"]["exec"]["command"]
        return subprocess.run(self.as_user + [tool(command[0]), *command[1:]], env=ioc.env,
                              capture_output=True, text=True, timeout=30)


@pytest.fixture
def chart() -> Iterator[Chart]:
    as_user = unprivileged(str(SNIPPETS / "main.py"))
    with tempfile.TemporaryDirectory() as root:     # not under pytest's 0700 tree
        yield Chart(Path(root), as_user)


def test_chart_runs_main_py_serves_probes_pass_and_saves(chart: Chart) -> None:
    with chart.ioc() as ioc:
        assert uid_of(ioc.proc.pid) == chart.user != 0, "the IOC runs as another user"
        for kind in ("readiness", "liveness"):
            result = wait_until(lambda k=kind: (r := chart.probe(ioc, k)).returncode == 0 and r,
                                timeout=10, what=f"{kind} probe")
            assert result.stdout.strip() == f"{PREFIX}: {'ready' if kind[0] == 'r' else 'live'}"
        assert "New : BL01-EA-OVEN-01:SETPOINT" in ioc.caput(f"{PREFIX}:SETPOINT", "42").stdout
        assert ioc.pvget(f"{PREFIX}:SETPOINT")          # PVA as well as CA
        assert ioc.caget(f"{PREFIX}:UPTIME").isdigit()  # health's, as devIocStats' C IOCs
        ioc.proc.send_signal(signal.SIGTERM)            # the kubelet stopping the pod
        assert ioc.proc.wait(timeout=15) == 0, ioc.output()
    saved = chart.autosave / "autosave.softsav"
    assert f"{PREFIX}:SETPOINT: 42.0" in saved.read_text()
    assert saved.stat().st_uid == chart.user
    with chart.ioc() as ioc:                            # the pod started again
        assert ioc.caget(f"{PREFIX}:SETPOINT") == "42"


def test_demo_in_the_container(chart: Chart) -> None:
    """`pythonioc demo` serves under $IOC_PREFIX, with the health records the
    probes read, and autosaves into the autosave volume."""
    demo = [tool("pythonioc"), "demo", "--non-interactive"]
    with IOCProcess(chart.as_user + demo, python=False, cwd=str(chart.autosave),
                    env=chart.env, wait_for=f"{PREFIX}:SETPOINT") as ioc:
        wait_until(lambda: chart.probe(ioc, "readiness").returncode == 0, timeout=10,
                   what="the demo ready")
        assert "New : " in ioc.caput(f"{PREFIX}:SETPOINT", "7").stdout
        ioc.proc.send_signal(signal.SIGTERM)
        assert ioc.proc.wait(timeout=15) == 0, ioc.output()
    assert f"{PREFIX}:SETPOINT: 7.0" in (chart.autosave / "autosave.softsav").read_text()


def test_run_without_a_script_says_what_it_looked_for() -> None:
    if os.path.exists("/epics/ioc/config/main.py"):
        pytest.skip("this machine has /epics/ioc/config/main.py")
    env = {k: v for k, v in os.environ.items() if k != "MAIN_PYTHON"}
    result = subprocess.run([sys.executable, "-m", "softioc", "run"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "MAIN_PYTHON is not set and there is no /epics/ioc/config/main.py" in result.stderr
    result = subprocess.run([sys.executable, "-m", "softioc", "run"], capture_output=True,
                            env=dict(env, MAIN_PYTHON="/nonexistent/main.py"), text=True,
                            timeout=30)
    assert "MAIN_PYTHON=/nonexistent/main.py: no such file" in result.stderr


def test_screen_goes_to_the_opi_volume(chart: Chart) -> None:
    pytest.importorskip("pvi", reason="pythonioc screen needs pvi (the screen extra)")
    result = subprocess.run(
        chart.as_user + [tool("pythonioc"), "screen", chart.env["MAIN_PYTHON"]],
        env={**os.environ, **chart.env}, cwd=str(chart.autosave), capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    screen = chart.opi / "main.bob"
    assert f"wrote {screen}" in result.stdout
    assert f"{PREFIX}:TARGET" in screen.read_text()


PUTLOG_MAIN = """\
import os, runpy
from softioc import putlog
putlog.enable(file=os.path.join(os.environ["PYTHONIOC_AUTOSAVE_DIR"], "puts.jsonl"))
runpy.run_path(os.environ["OVEN_MAIN"], run_name="__main__")
"""


def stop_under_load(chart: Chart) -> float:
    """One run: camonitor and pvmonitor connected, caput -c to the blocking
    TARGET in a loop (each takes heat()'s 0.2 s), SIGTERM; the seconds from
    the signal to the exit, after checking what was saved and logged."""
    wrapper = chart.config / "putlog_main.py"
    wrapper.write_text(PUTLOG_MAIN)
    for name in ("autosave.softsav", "puts.jsonl"):
        (chart.autosave / name).unlink(missing_ok=True)
    done: list[tuple[int, float]] = []      # (value, when) of each caput -c completed
    stop = threading.Event()
    with chart.ioc(MAIN_PYTHON=str(wrapper), OVEN_MAIN=chart.env["MAIN_PYTHON"]) as ioc:
        assert "New : " in ioc.caput(f"{PREFIX}:SETPOINT", "42").stdout

        def write() -> None:
            n = 100
            while not stop.is_set():
                n += 1
                result = ioc.run_tool("caput", "-c", "-w", "2", f"{PREFIX}:TARGET", str(n),
                                      check=False)
                if result.returncode == 0 and "New : " in result.stdout:
                    done.append((n, time.monotonic()))

        with testing.monitor(ioc, f"{PREFIX}:TARGET", f"{PREFIX}:TEMPERATURE", settle=0), \
                testing.monitor(ioc, f"{PREFIX}:TEMPERATURE", tool="pvmonitor", settle=0):
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            wait_until(lambda: len(done) >= 3, timeout=20, what="writes completing")
            time.sleep(0.1)         # into the next write's heat()
            sent = time.monotonic()
            ioc.proc.send_signal(signal.SIGTERM)
            status = ioc.proc.wait(timeout=15)
            took = time.monotonic() - sent
            stop.set()
            writer.join(30)
        assert status == 0, ioc.output()
    # Every write acknowledged before the signal is saved and logged.  (The
    # servers keep going until the process ends, milliseconds after the last
    # save: a write acknowledged then, after the signal, may be in neither.)
    before = [n for n, when in done if when < sent]
    saved = yaml.safe_load((chart.autosave / "autosave.softsav").read_text())
    assert saved[f"{PREFIX}:SETPOINT"] == 42.0
    assert saved[f"{PREFIX}:TARGET"] >= before[-1], (saved, done[-3:], sent)
    puts = [json.loads(line) for line in (chart.autosave / "puts.jsonl").read_text().splitlines()]
    logged = {int(float(p["new"])) for p in puts if p["record"] == f"{PREFIX}:TARGET"}
    assert set(before) <= logged, sorted(set(before) - logged)
    return took


def test_sigterm_with_clients_and_writes_in_flight(chart: Chart) -> None:
    runs = int(os.environ.get("PYTHONIOC_STOP_RUNS", "2"))
    times = [stop_under_load(chart) for _ in range(runs)]
    print(f"\nSIGTERM to exit with camonitor, pvmonitor and caput -c in flight: median "
          f"{statistics.median(times):.2f} s, longest {max(times):.2f} s over {runs} runs")
    assert max(times) < GRACE, times


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
    """Build the image as the how-to says, run it as the chart would (host
    networking, on loopback and its own ports, IOC_PREFIX, a named volume at
    /autosave): it serves, its probes pass inside it, a client's write is in
    the volume after docker stop, which exits 0 within the chart's grace."""
    docker = shutil.which("docker") or "docker"
    for name in ["Containerfile", "main.py"]:
        shutil.copy(SNIPPETS / name, tmp_path / name)
    tag = f"pythonioc-test-oven-{uuid.uuid4().hex[:12]}"
    env = {**client_env(free_port(), free_port(), free_port()), "IOC_PREFIX": PREFIX}

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([docker, *args], capture_output=True, text=True,
                              timeout=timeout)

    def serving() -> bool:
        result = testing.run_tool("caget", "-t", "-w", "1", f"{PREFIX}:SETPOINT", env=env,
                                  check=False, timeout=10)
        return result.returncode == 0 and result.stdout.strip() == "20"

    try:
        built = run("build", "-f", "Containerfile", "-t", tag, str(tmp_path), timeout=600)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert run("volume", "create", tag).returncode == 0
        started = run("run", "-d", "--name", tag, "--network", "host", "-v", f"{tag}:/autosave",
                      *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
                      tag)
        assert started.returncode == 0, started.stderr
        assert wait_until(serving, timeout=30), run("logs", tag).stdout
        for command in (values()["readinessProbe"], values()["livenessProbe"]):
            probe = wait_until(lambda c=command: (r := run("exec", tag, *c["exec"]["command"]))
                               .returncode == 0 and r, timeout=10, what="the probe in the image")
            assert probe.stdout.startswith(PREFIX)
        put = testing.run_tool("caput", "-c", "-w", "5", f"{PREFIX}:SETPOINT", "42", env=env,
                               check=False)
        assert put.returncode == 0, put.stdout
        sent = time.monotonic()
        assert run("stop", "-t", str(int(GRACE)), tag, timeout=30).returncode == 0
        assert time.monotonic() - sent < GRACE + 1
        assert run("inspect", "-f", "{{.State.ExitCode}}", tag).stdout.strip() == "0"
        saved = run("run", "--rm", "-v", f"{tag}:/state", "--entrypoint", "cat", tag,
                    "/state/autosave.softsav")
        assert f"{PREFIX}:SETPOINT: 42.0" in saved.stdout, saved.stdout + saved.stderr
    finally:
        run("rm", "-f", tag)
        run("volume", "rm", "-f", tag)
        run("rmi", "-f", tag)

