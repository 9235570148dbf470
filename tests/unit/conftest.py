"""Unit tests: nothing here starts an IOC (no iocInit, here or in a subprocess)
or runs an EPICS client, so ``pytest tests/unit`` takes seconds.  A test that
needs either belongs in tests/ beside this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def no_records() -> Iterator[None]:
    """No builder records before the test, and none left after it."""
    from softioc import builder

    builder.ClearRecords()
    yield
    builder.ClearRecords()
