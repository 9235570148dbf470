"""Test set-up: every EPICS server and client stays on loopback.

Each test IOC runs in its own subprocess on its own free CA/PVA ports
(softioc.testing.IOCProcess), so tests never see each other's PVs.
"""

import os
from pathlib import Path

import pytest

from softioc.testing import LOOPBACK_ENV, IOCProcess

# Keep anything started by the tests themselves (clients in this process too)
# on 127.0.0.1: EPICS_CA_AUTO_ADDR_LIST=NO, EPICS_CA_ADDR_LIST=127.0.0.1, ...
os.environ.update(LOOPBACK_ENV)

IOCS = Path(__file__).parent / "iocs"


@pytest.fixture
def ioc_factory():
    """Start IOC scripts from tests/iocs; all are stopped after the test."""
    started = []

    def start(script, *args, wait_for=None, **kw):
        ioc = IOCProcess([str(IOCS / script), *args], wait_for=wait_for, **kw)
        started.append(ioc)
        return ioc

    yield start
    for ioc in started:
        ioc.stop()
