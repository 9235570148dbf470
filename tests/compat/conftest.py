"""Compatibility suite: pythonSoftIOC 4.7.2's documented API, and the module
layout its users import, run against pythonIOC with real CA and PVA clients.

Every IOC here is written as a pythonSoftIOC application would be
(``iocs/psi_api_ioc.py``), or is a small script of the same API made by the
test.  Nothing here imports pythonSoftIOC: the contract comes from its
documentation and its users' code.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from softioc.testing import IOCProcess

IOCS = Path(__file__).parent / "iocs"


@pytest.fixture(scope="module")
def psi_ioc():
    """The pythonSoftIOC-API IOC, PVA on (``iocInit(dispatcher)``)."""
    with IOCProcess([str(IOCS / "psi_api_ioc.py")], wait_for="PSI:CHECKS") as ioc:
        yield ioc


@pytest.fixture
def run_script(tmp_path):
    """Run a small IOC script (its text dedented) to its end; returns
    (exit status, output)."""
    def run(text: str, *args: str, timeout: float = 60.0) -> tuple[int, str]:
        path = tmp_path / "script.py"
        path.write_text(textwrap.dedent(text))
        ioc = IOCProcess([str(path), *args], stdin=None)
        try:
            status = ioc.proc.wait(timeout)
        finally:
            ioc.stop()
        return status, ioc.output()
    return run


PYTHON = sys.executable
