"""pythonSoftIOC's ``softioc.device``: the record classes and ``SetBlocking``.

Builder functions return :class:`ProcessDeviceSupportIn` (input) and
:class:`ProcessDeviceSupportOut` (output) records; here these are the
classes of :mod:`softioc._record`.  ``device.dispatcher`` is the dispatcher
iocInit runs callbacks on; ``device.blocking`` the default of ``blocking=``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._ioc import ioc
from ._record import ArrayInRecord, ArrayMixin, ArrayOutRecord, InRecord, OutRecord, Record
from .builder import SetBlocking
from .device_core import RecordLookup

__all__ = [
    "SetBlocking", "ProcessDeviceSupportCore", "ProcessDeviceSupportIn",
    "ProcessDeviceSupportOut", "WaveformBase", "waveform", "waveform_out",
    "to_epics_str_array", "RecordLookup", "EPICS_OK", "EPICS_ERROR", "NO_CONVERT",
]

ProcessDeviceSupportCore = Record
ProcessDeviceSupportIn = InRecord
ProcessDeviceSupportOut = OutRecord
WaveformBase = ArrayMixin
waveform = ArrayInRecord
waveform_out = ArrayOutRecord

# Return codes of EPICS device support routines.
EPICS_OK, EPICS_ERROR, NO_CONVERT = 0, 1, 2


def to_epics_str_array(value: Any) -> npt.NDArray[Any]:
    """Strings (str or bytes, each under 40 bytes) as an array of EPICS strings."""
    items = [v.encode() if isinstance(v, str) else bytes(v) for v in value]
    for item in items:
        if len(item) >= 40:
            raise ValueError(f"{item!r} is longer than an EPICS string (39 bytes)")
    return np.array(items, dtype="S40")


def __getattr__(name: str) -> Any:
    if name == "dispatcher":
        return ioc.dispatcher
    if name == "blocking":
        return ioc.database.blocking_default
    raise AttributeError(f"module 'softioc.device' has no attribute {name!r}")
