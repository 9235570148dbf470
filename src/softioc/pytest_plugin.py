"""pytest fixtures for testing your own IOC (registered as the ``pythonioc`` plugin).

::

    def test_my_ioc(pythonioc):
        ioc = pythonioc("my_ioc.py", wait_for="MY:PV")   # a subprocess, own ports
        assert ioc.caget("MY:PV") == "42"
        ioc.caput("MY:SETPOINT", "3")
        # ioc.env is the client environment (CA and PVA) for this IOC:
        # pass it to subprocess clients, or build a p4p Context from it.

Every IOC started through the fixture is stopped after the test, and all of
them serve on 127.0.0.1 only.  ``epics_loopback`` also puts the test process
itself on loopback (for in-process clients such as pyepics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .testing import LOOPBACK_ENV, IOCProcess

__all__ = ["pythonioc", "epics_loopback"]


@pytest.fixture
def epics_loopback(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Keep this test process's EPICS clients on 127.0.0.1."""
    for key, value in LOOPBACK_ENV.items():
        monkeypatch.setenv(key, value)
    return dict(LOOPBACK_ENV)


@pytest.fixture
def pythonioc() -> Iterator[Callable[..., IOCProcess]]:
    """Start IOC scripts as subprocesses on private loopback ports."""
    started: list[IOCProcess] = []

    def start(script: str | Path, *args: str, wait_for: str | None = None,
              **kwargs: Any) -> IOCProcess:
        ioc = IOCProcess([str(script), *args], wait_for=wait_for, **kwargs)
        started.append(ioc)
        return ioc

    yield start
    for ioc in started:
        ioc.stop()
