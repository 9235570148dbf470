"""pythonIOC switches EPICS's free lists to malloc()/free() (freeListBypass)
when its C layer loads, unless $EPICS_FREELIST_BYPASS says otherwise: the
lists' priority-inheriting lock made the thread setting records and CAS-event
spin in the kernel on each other with many monitors (bench S10)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import ctypes, os
import softioc._ext
from epicscorelibs import path
for name in sorted(os.listdir(path.lib_path)):
    if name.startswith("libCom.so."):
        lib = ctypes.CDLL(os.path.join(path.lib_path, name), mode=os.RTLD_NOLOAD)
        break
print(ctypes.c_int.in_dll(lib, "freeListBypass").value)
"""


def bypass(env_value: str | None) -> int:
    env = dict(os.environ)
    env.pop("EPICS_FREELIST_BYPASS", None)
    if env_value is not None:
        env["EPICS_FREELIST_BYPASS"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libCom.so.* (Linux)")
def test_bypassed_by_default() -> None:
    assert bypass(None) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libCom.so.* (Linux)")
@pytest.mark.parametrize("value", ["NO", "YES"])
def test_environment_decides_when_set(value: str) -> None:
    # left to EPICS, which reads the variable when it makes its first list
    assert bypass(value) == 2
