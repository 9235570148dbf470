"""Test set-up: every EPICS server and client stays on loopback.

Each test IOC runs in its own subprocess on its own free CA/PVA ports
(softioc.testing.IOCProcess), so tests never see each other's PVs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import softioc
from softioc.testing import LOOPBACK_ENV, IOCProcess

# Keep anything started by the tests themselves (clients in this process too)
# on 127.0.0.1: EPICS_CA_AUTO_ADDR_LIST=NO, EPICS_CA_ADDR_LIST=127.0.0.1, ...
os.environ.update(LOOPBACK_ENV)

IOCS = Path(__file__).parent / "iocs"
ROOT = Path(__file__).parents[1]


def pytest_report_header() -> str:
    return f"softioc {softioc.__version__} from {Path(softioc.__file__).parent}"


def pytest_sessionstart(session: pytest.Session) -> None:
    # CI sets this where it tests the built wheel: the tests must then see the installed
    # package, never a source tree's src/ put on sys.path by accident.
    if os.environ.get("PYTHONIOC_TEST_INSTALLED") == "1":
        where = Path(softioc.__file__).resolve()
        if "site-packages" not in where.parts or (ROOT / "src").resolve() in where.parents:
            raise pytest.UsageError(f"PYTHONIOC_TEST_INSTALLED=1, but softioc comes from {where}")


def module_ioc(script: str, wait_for: str, *args: str, text: str | None = None) -> Any:
    """A module-scoped ``ioc`` fixture: tests/iocs/SCRIPT on its own ports (or
    the script ``text``, written as SCRIPT in a temporary directory), started
    once the PV ``wait_for`` answers, stopped after the module."""
    @pytest.fixture(scope="module")
    def ioc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IOCProcess]:
        path = IOCS / script
        if text is not None:
            path = tmp_path_factory.mktemp("ioc") / script
            path.write_text(text)
        with IOCProcess([str(path), *args], wait_for=wait_for) as started:
            yield started
    return ioc


@pytest.fixture
def pva(ioc: IOCProcess) -> Iterator[Any]:
    """A p4p client Context on the module's ``ioc`` (plain values: nt=False)."""
    from .clients import pva_context
    ctx = pva_context(ioc)
    yield ctx
    ctx.close()


@pytest.fixture
def pva_nt(ioc: IOCProcess) -> Iterator[Any]:
    """A p4p client Context on the module's ``ioc``, with p4p's NT wrappers
    (values with .severity, .timestamp, .raw; images as arrays of their shape)."""
    from softioc.testing import pva_context
    ctx = pva_context(ioc)
    yield ctx
    ctx.close()
