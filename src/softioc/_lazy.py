"""numpy, imported on first use.

An IOC of scalar records never needs numpy: importing it costs some 80 ms
and 16 MB of every such process (many small IOCs on a host feel both).  The
modules that use it for arrays (``_record``, ``builder``) take ``np`` from
here; the first attribute read imports numpy and each name is then kept.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["numpy"]


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)      # later reads find it without __getattr__
        return value

    def __repr__(self) -> str:
        return f"<{self._name}, imported on first use>"


numpy: Any = _LazyModule("numpy")
