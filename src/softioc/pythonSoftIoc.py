"""pythonSoftIOC's ``softioc.pythonSoftIoc``: ``RecordWrapper`` and ``PythonDevice``.

There, builder functions return a ``RecordWrapper``; here they return the
record itself, so ``RecordWrapper`` is the base class of every builder record
(for annotations and ``isinstance``).  ``PythonDevice`` makes records by EPICS
record type, through the builder (``PythonDevice.ai(name, **fields)`` is
``builder.aIn(name, **fields)``, with the builder's defaults).
"""

from __future__ import annotations

from . import builder
from ._record import Record
from ._types import MAKERS

__all__ = ["RecordWrapper", "PythonDevice"]

RecordWrapper = Record


class PythonDevice:
    """Record makers named by EPICS record type (keyword fields only), as the
    record-type table names them (``softioc._types.MAKERS``: ``ai`` is
    ``builder.aIn``, ``waveform_out`` is ``builder.WaveformOut``...)."""


for _maker, _entry in MAKERS.items():
    if _entry.python_device:
        setattr(PythonDevice, _entry.python_device, staticmethod(getattr(builder, _maker)))
