"""pythonSoftIOC's ``softioc.imports``: low-level EPICS calls.

``db_put_field(name, dbr_type, address, count)`` puts from a raw buffer as a
client put would (``dbPutField``); ``db_put_field_process(..., process)``
puts and processes the record (or only puts); ``db_get_field`` reads into a
raw buffer.  ``dbr_type`` is a ``fields.DBF_*`` code of a plain value type
(``DBF_STRING`` ... ``DBF_ENUM``); the buffer (e.g. ``array.ctypes.data``)
must hold ``count`` values of that type.  The rest are the EPICS functions of
the same name, for code that calls them directly.
"""

from __future__ import annotations

import ctypes
from typing import Any

from . import _core, fields
from ._core import epics_lib

__all__ = [
    "db_put_field", "db_put_field_process", "db_get_field", "get_DBF_values",
    "install_pv_logging", "dbLoadDatabase", "callbackSetQueueSize", "recGblResetAlarms",
    "registryDeviceSupportAdd", "IOSCANPVT", "scanIoInit", "scanIoRequest",
    "epicsExit", "epicsExitCallAtExits", "auto_encode",
]

dbCore = ctypes.CDLL(epics_lib("dbCore"))
Com = ctypes.CDLL(epics_lib("Com"))


def db_put_field(name: str, dbr_type: int, pbuffer: int, length: int) -> None:
    """Put ``length`` values at address ``pbuffer`` into ``name`` (``dbPutField``)."""
    _core.put_raw(name, dbr_type, pbuffer, length, -1)


def db_put_field_process(name: str, dbr_type: int, pbuffer: int, length: int,
                         process: bool) -> None:
    """Put into ``name``, then process the record if ``process``."""
    _core.put_raw(name, dbr_type, pbuffer, length, 1 if process else 0)


def db_get_field(name: str, dbr_type: int, pbuffer: int, length: int) -> None:
    """Read ``length`` values of ``name`` into the buffer at address ``pbuffer``."""
    _core.get_raw(name, dbr_type, pbuffer, length)


def get_DBF_values() -> dict[str, int]:
    """``{"DBF_STRING": 0, ...}``."""
    return fields.get_DBF_values()


def install_pv_logging(acf_file: str | None = None) -> None:
    """Print every client put (``softioc.pvlog``); ``acf_file`` (pythonSoftIOC
    loads its own) is used as the access security rules if given."""
    if acf_file is not None:
        from . import access

        access.load_acf(acf_file)
    from . import pvlog  # noqa: F401  (importing it starts the printing)


def dbLoadDatabase(database: str, path: str | None = None,
                   substitutions: str | None = None) -> None:
    """EPICS's dbLoadDatabase: a .dbd or .db file, before iocInit (EPICS's own
    record types and device support are loaded first, as pythonSoftIOC does
    on import, so a ``device()`` or a record of them can be the first thing)."""
    _core.ensure_dbd()
    _core.load_database(database, path, substitutions)


class auto_encode(ctypes.c_char_p):
    """A ctypes argument type that takes str (encoded) or None."""

    @classmethod
    def from_param(cls, value: Any) -> Any:
        return value if value is None else value.encode()


def _expect_success(status: Any, function: Any, args: Any) -> Any:
    if status != 0:
        raise RuntimeError(f"{function.__name__} failed with status {status}")
    return status


def _expect_true(status: Any, function: Any, args: Any) -> Any:
    if not status:
        raise RuntimeError(f"{function.__name__} failed")
    return status


IOSCANPVT = ctypes.c_void_p

callbackSetQueueSize = dbCore.callbackSetQueueSize
callbackSetQueueSize.argtypes = (ctypes.c_int,)
callbackSetQueueSize.errcheck = _expect_success

recGblResetAlarms = dbCore.recGblResetAlarms
recGblResetAlarms.argtypes = (ctypes.c_void_p,)
recGblResetAlarms.restype = ctypes.c_short

registryDeviceSupportAdd = dbCore.registryDeviceSupportAdd
registryDeviceSupportAdd.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
registryDeviceSupportAdd.errcheck = _expect_true

scanIoInit = dbCore.scanIoInit
scanIoInit.argtypes = (ctypes.c_void_p,)
scanIoInit.restype = None

scanIoRequest = dbCore.scanIoRequest
scanIoRequest.argtypes = (IOSCANPVT,)
scanIoRequest.restype = None

epicsExitCallAtExits = Com.epicsExitCallAtExits
epicsExitCallAtExits.argtypes = ()
epicsExitCallAtExits.restype = None


def epicsExit(code: int = 0) -> None:
    """Stop the IOC (EPICS exit handlers) and leave the process with ``code``."""
    from . import softioc

    softioc.exit(code)
