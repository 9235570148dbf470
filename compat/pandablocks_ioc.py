"""Run pandablocks-ioc's own test suite on pythonSoftIOC and on this repository, side by side.

    python -m compat.pandablocks_ioc                 # both, then the comparison table
    python -m compat.pandablocks_ioc --only ours     # one side (the other's last result is reused)
    python -m compat.pandablocks_ioc --ours ../other-checkout -- -k test_ioc

The tests are not in pandablocks-ioc's wheel; they are in its sdist on PyPI, which is
fetched with ``pip download --no-binary :all:`` (or pass ``--source DIR``, an unpacked
checkout of the same version). Each side gets its own virtualenv under
``compat/.cache/venvs`` (git-ignored): ``pythonsoftioc`` with ``softioc==4.7.2``, ``ours``
with this repository (installed non-editable, reinstalled every run) and without
pythonSoftIOC: pandablocks-ioc is installed there with ``--no-deps`` and its other
requirements are installed by name. Both get pandablocks-ioc's test dependencies.

pytest runs in the unpacked sdist with the project's own configuration, one side after the
other, every process on 127.0.0.1 with private CA/PVA ports (the IOCs are started by
``multiprocessing`` from the test process and inherit its environment), a timeout per test
(pytest-timeout) and one for the whole run. Results are read from pytest's JUnit XML.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import venv
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

VERSION = "0.11.6"
PYTHONSOFTIOC = "softioc==4.7.2"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"
# pandablocks-ioc's [dependency-groups] dev entries that its tests import or configure, pytest
# at the version of its uv.lock (pytest-asyncio 0.21 fails to collect on pytest 9.2), and
# pytest-timeout for our per-test timeout.
TEST_DEPS = ["pytest==9.0.3", "pytest-asyncio~=0.21.2", "aioca", "mock", "p4p", "pytest-timeout"]
SIDES = ("pythonsoftioc", "ours")
OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass
class Result:
    """One side's run: the outcome of every test, and what it ran on."""

    side: str
    versions: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)    # test id -> outcome
    messages: dict[str, str] = field(default_factory=dict)    # test id -> first failure line
    seconds: float = 0.0
    note: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)


def log(text: str) -> None:
    print(f"[compat] {text}", flush=True)


def run(cmd: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False, **kw)
    return result


def checked(cmd: list[str], timeout: float = 1200) -> str:
    result = run(cmd, timeout)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{(result.stderr or result.stdout)[-3000:]}")
    return result.stdout


def fetch_source(source: Path | None) -> Path:
    """The unpacked pandablocks-ioc sdist (it has tests/; the wheel has not)."""
    if source is None:
        source = CACHE / "src" / f"pandablocks_ioc-{VERSION}"
        if not (source / "tests").is_dir():
            dl = CACHE / "dl"
            dl.mkdir(parents=True, exist_ok=True)
            log(f"downloading the pandablocks-ioc {VERSION} sdist from the package index")
            checked([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:",
                     "--no-deps", f"pandablocks-ioc=={VERSION}", "-d", str(dl)])
            tars = sorted(dl.glob(f"pandablocks_ioc-{VERSION}.tar.gz"))
            if not tars:
                sys.exit(f"no sdist of pandablocks-ioc {VERSION} was downloaded to {dl}")
            with tarfile.open(tars[0]) as tar:
                tar.extractall(source.parent, filter="data")
    if not (source / "tests" / "conftest.py").is_file():
        sys.exit(f"{source} has no tests/conftest.py: pass --source with a checkout of tag "
                 f"{VERSION} of https://github.com/PandABlocks/PandABlocks-ioc")
    return source


def requirements(source: Path) -> list[str]:
    """pandablocks-ioc's own requirements (from its sdist's PKG-INFO), pythonSoftIOC excluded."""
    reqs = []
    for line in (source / "PKG-INFO").read_text().splitlines():
        if line.startswith("Requires-Dist:"):
            req = line.split(":", 1)[1].strip()
            name = re.split(r"[ ;<>=~!\[]", req, maxsplit=1)[0].lower()
            if name != "softioc" and "python_version < \"3.8\"" not in req:
                reqs.append(req)
    return reqs


def make_venv(side: str, source: Path, ours: Path, rebuild: bool, reinstall: bool) -> Path:
    """The side's virtualenv, created once; ours is reinstalled from ``ours`` every time."""
    root = CACHE / "venvs" / side
    python = root / "bin" / "python"
    stamp = root / "compat-stamp.json"
    pip = [str(python), "-m", "pip", "install", "-q"]
    wanted = {"version": VERSION, "test_deps": TEST_DEPS, "pythonsoftioc": PYTHONSOFTIOC}
    if rebuild or not (python.exists() and stamp.exists()
                       and json.loads(stamp.read_text()) == wanted):
        log(f"creating {root}")
        venv.EnvBuilder(clear=True, with_pip=True).create(root)
        softioc = PYTHONSOFTIOC if side == "pythonsoftioc" else str(ours)
        checked([*pip, softioc, *requirements(source), *TEST_DEPS])
        # Editable from the unpacked sdist, as its own CI does: its src doctests need it.
        checked([*pip, "--no-deps", "-e", str(source)])
        stamp.write_text(json.dumps(wanted))
    elif side == "ours" and reinstall:
        log(f"reinstalling {ours} into {root}")
        checked([*pip, str(ours)])     # a local directory is always rebuilt; new deps come too
    check = ("import importlib.metadata as m, softioc\n"
             "dists = m.packages_distributions().get('softioc')\n"
             "print(dists, softioc.__file__)")
    dists = checked([str(python), "-c", check], 120)
    expected = "['softioc']" if side == "pythonsoftioc" else "['epics-pythonioc']"
    if not dists.startswith(expected):
        sys.exit(f"{side}: `softioc` comes from {dists.strip()}, expected {expected}")
    return python


def versions(python: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys\n"
            "names = ['softioc', 'epics-pythonioc', 'pandablocks-ioc', 'pandablocks', 'pvi',"
            " 'epicscorelibs', 'pvxslibs', 'p4p', 'aioca', 'numpy', 'pytest']\n"
            "out = {'python': sys.version.split()[0]}\n"
            "for n in names:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    return dict(json.loads(checked([str(python), "-c", code], 120)))


def epics_env() -> dict[str, str]:
    """Loopback only, private ports: the IOCs the tests start inherit this."""
    from softioc.testing import client_env, free_port

    return client_env(free_port(), free_port(), free_port())


def run_suite(side: str, python: Path, source: Path, args: argparse.Namespace) -> Result:
    out = args.json.parent
    out.mkdir(parents=True, exist_ok=True)
    xml, text = out / f"{side}.xml", out / f"{side}.log"
    xml.unlink(missing_ok=True)
    # Its testpaths are "docs src tests"; docs/ has no doctests, only a Sphinx conf.py
    # that needs the docs build's packages to import.
    cmd = [str(python), "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={xml}",
           f"--timeout={args.test_timeout}", *args.pytest_args, *args.paths.split()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPICS_", "PYTHONIOC_"))}
    env.update(epics_env())
    env.pop("PYTHONPATH", None)
    result = Result(side, versions(python))
    log(f"{side}: {' '.join(cmd[1:])} (in {source}, at most {args.timeout} s)")
    start = time.monotonic()
    with text.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=source, env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(args.timeout)
        except subprocess.TimeoutExpired:
            result.note = f"stopped after {args.timeout} s"
        finally:
            # The IOCs (multiprocessing children) and caRepeater share the session.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(2)
            proc.wait()
    result.seconds = time.monotonic() - start
    if xml.exists():
        read_junit(xml, result)
    else:
        read_log(text, result)
    if not result.outcomes:
        tail = text.read_text(errors="replace").strip().splitlines()[-5:]
        result.note = (result.note + " " if result.note else "") + "no results: " + " | ".join(tail)
    return result


def read_junit(path: Path, result: Result) -> None:
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
                first = (child.get("message") or "").strip().splitlines()[:1]
                message = first[0][:300] if first else ""
                break
        # pytest reports a teardown error as a second entry for the same test
        if result.outcomes.get(name) in ("failed", "error"):
            continue
        result.outcomes[name] = outcome
        if message:
            result.messages[name] = message


def read_log(path: Path, result: Result) -> None:
    """Fallback when the run was stopped before pytest wrote its XML: the -vv lines."""
    pattern = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED)")
    for line in path.read_text(errors="replace").splitlines():
        m = pattern.match(line)
        if m:
            path, _, rest = m.group(1).partition("::")
            test_id = path.removesuffix(".py").replace("/", ".") + "::" + rest
            result.outcomes.setdefault(test_id, m.group(2).lower())


def report(results: dict[str, Result]) -> str:
    """The side-by-side table, the tests whose outcome differs, and the versions."""
    sides = [s for s in SIDES if s in results]
    date = datetime.date.today().isoformat()
    lines = [f"pandablocks-ioc {VERSION} test suite, {date}", ""]
    width = max(len(s) for s in sides) + 2
    lines.append("".ljust(10) + "".join(s.rjust(width) for s in sides))
    for outcome in (*OUTCOMES, "total"):
        cells = [str(len(results[s].outcomes) if outcome == "total" else results[s].count(outcome))
                 for s in sides]
        lines.append(outcome.ljust(10) + "".join(c.rjust(width) for c in cells))
    lines.append("seconds".ljust(10) + "".join(f"{results[s].seconds:.0f}".rjust(width)
                                               for s in sides))
    for s in sides:
        r = results[s]
        shown = ", ".join(f"{k} {v}" for k, v in r.versions.items())
        lines.append(f"{s}: {shown}" + (f" ({r.note})" if r.note else ""))
    if len(sides) == 2:
        a, b = (results[s] for s in sides)
        for one, other in ((b, a), (a, b)):
            diff = sorted(t for t, o in one.outcomes.items()
                          if o == "passed" and other.outcomes.get(t, "missing") != "passed")
            lines.append("")
            lines.append(f"pass on {one.side}, not on {other.side}: {len(diff)}")
            for t in diff:
                why = other.messages.get(t, "")
                lines.append(f"  {t}: {other.outcomes.get(t, 'missing')}"
                             + (f" -- {why}" if why else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--only", choices=SIDES, help="run one side; reuse the other's last run")
    parser.add_argument("--ours", type=Path, default=REPO,
                        help="the checkout of this project to install (default: this one)")
    parser.add_argument("--source", type=Path, help="an unpacked pandablocks-ioc sdist/checkout")
    parser.add_argument("--test-timeout", type=int, default=60, help="seconds per test")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per side")
    parser.add_argument("--rebuild", action="store_true", help="recreate the venvs")
    parser.add_argument("--no-reinstall", action="store_true",
                        help="run ours as installed in its venv (default: reinstall --ours)")
    parser.add_argument("--json", type=Path, default=CACHE / "results" / "results.json",
                        help="results of both sides; the logs go beside it")
    parser.add_argument("--paths", default="src tests",
                        help="what pytest collects, in the sdist (default: %(default)s)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    args.json = args.json.resolve()     # pytest runs in the sdist's directory

    source = fetch_source(args.source)
    results: dict[str, Result] = {}
    if args.json.exists():
        for side, data in json.loads(args.json.read_text()).items():
            results[side] = Result(**data)
    for side in SIDES:
        if args.only in (None, side):
            python = make_venv(side, source, args.ours.resolve(), args.rebuild,
                              not args.no_reinstall)
            results[side] = run_suite(side, python, source, args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({s: vars(r) for s, r in results.items()}, indent=1))
    text = report(results)
    (args.json.parent / "results.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        log("no C compiler found: installing this repository will fail")
    sys.exit(main())
