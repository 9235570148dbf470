"""Errors of EPICS calls: each carries the EPICS status and its text.

Each class also derives from the builtin exception raised before there was a
hierarchy, so ``except RuntimeError`` or ``except ValueError`` still catches
it. The C layer raises them (``_ext.pyi``); this module imports nothing.

Where pythonSoftIOC raised another builtin class for the same mistake
(``AssertionError`` for a duplicate name or a value too long, ``ValueError``
for text given to a numeric waveform), the class raised here derives from
both, so code and tests written against either keep catching it.
"""

from __future__ import annotations

__all__ = ["EpicsError", "EpicsRuntimeError", "EpicsValueError", "RecordNotFoundError",
           "RecordExistsError", "BuilderArgumentError", "ValueTooLongError",
           "ValueKindError", "NotRunningError"]


class EpicsError(Exception):
    """An EPICS call failed: ``status`` is its status code, ``text`` EPICS's
    message for it (``errSymLookup``)."""

    def __init__(self, message: str, status: int = 0, text: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.text = text

    def __reduce__(self) -> tuple[type[EpicsError], tuple[str, int, str]]:
        return type(self), (str(self.args[0]) if self.args else "", self.status, self.text)


class EpicsRuntimeError(EpicsError, RuntimeError):
    """An IOC call failed (iocInit, a field read or write, loading a .dbd)."""


class RecordNotFoundError(EpicsRuntimeError):
    """No record, or no such field of it, in the running IOC."""


class EpicsValueError(EpicsError, ValueError):
    """EPICS refused a definition: a record or alias that exists already, a
    field value of the static database, a .db file it could not load."""


class RecordExistsError(EpicsValueError, AssertionError):
    """A record (or alias, or PVA PV) of that name exists already
    (pythonSoftIOC: ``AssertionError``)."""


class BuilderArgumentError(TypeError, AssertionError):
    """A builder call that cannot be made as given: a waveform with neither
    value nor length, ``severity=`` with ``SEVR=`` (pythonSoftIOC:
    ``AssertionError``)."""


class ValueTooLongError(ValueError, AssertionError):
    """More elements than the record holds, or text longer than it holds
    (pythonSoftIOC: ``AssertionError``)."""


class ValueKindError(TypeError, ValueError):
    """A value of the wrong kind for the record, e.g. text for a numeric
    waveform (pythonSoftIOC: ``ValueError``)."""


class NotRunningError(RuntimeError, AssertionError):
    """A call that needs a running IOC, made before ``iocInit()``
    (pythonSoftIOC: ``AssertionError``)."""
