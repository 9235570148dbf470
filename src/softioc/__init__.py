"""pythonIOC: a real EPICS 7 IOC inside a Python process.

Build records with :mod:`softioc.builder`, start with
:func:`softioc.softioc.iocInit`, update them with ``record.set(value)``.
"""

import ctypes as _ctypes
import os as _os

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


def _serve_http() -> None:
    from . import http

    http.serve_from_environment()


# PYTHONIOC_HTTP=HOST:PORT: the HTTP endpoints (softioc.http) start when this
# process starts defining its IOC (first record, .db file or LoadDatabase),
# so they answer, "not ready", while records are built, autosave restores and
# iocInit runs; not at import, so a process that only imports softioc (a
# test runner, ``pythonioc probe`` beside the IOC) does not take the port.
if _os.environ.get("PYTHONIOC_HTTP", "").strip():
    from ._ioc import ioc as _ioc  # noqa: E402

    _ioc.hooks.at_define.append(_serve_http)
