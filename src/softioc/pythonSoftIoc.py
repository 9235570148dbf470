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

__all__ = ["RecordWrapper", "PythonDevice"]

RecordWrapper = Record


class PythonDevice:
    """Record makers named by EPICS record type (keyword fields only)."""

    ai = staticmethod(builder.aIn)
    ao = staticmethod(builder.aOut)
    bi = staticmethod(builder.boolIn)
    bo = staticmethod(builder.boolOut)
    longin = staticmethod(builder.longIn)
    longout = staticmethod(builder.longOut)
    int64in = staticmethod(builder.int64In)
    int64out = staticmethod(builder.int64Out)
    mbbi = staticmethod(builder.mbbIn)
    mbbo = staticmethod(builder.mbbOut)
    stringin = staticmethod(builder.stringIn)
    stringout = staticmethod(builder.stringOut)
    waveform = staticmethod(builder.WaveformIn)
    waveform_out = staticmethod(builder.WaveformOut)
    long_stringin = staticmethod(builder.longStringIn)
    long_stringout = staticmethod(builder.longStringOut)
