"""pythonIOC: a real EPICS 7 IOC inside a Python process.

Build records with :mod:`softioc.builder`, start with
:func:`softioc.softioc.iocInit`, update them with ``record.set(value)``.
"""

import ctypes as _ctypes

from ._dso import epics_lib as _epics_lib  # the wheels' paths, without importing setuptools

# Load the EPICS libraries of the wheels process-wide before our C layer
# links to them, so it works wherever it is installed (wheel or editable).
for _lib in ("Com", "dbCore"):
    _ctypes.CDLL(_epics_lib(_lib), mode=_ctypes.RTLD_GLOBAL)

from ._version import __version__  # noqa: E402
from .errors import (  # noqa: E402
    EpicsError,
    EpicsRuntimeError,
    EpicsValueError,
    RecordNotFoundError,
)

__all__ = ["__version__", "EpicsError", "EpicsRuntimeError", "EpicsValueError",
           "RecordNotFoundError"]
