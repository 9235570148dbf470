"""pythonSoftIOC's ``softioc.device_core``: the directory of builder records.

``LookupRecord(name)`` returns the record a builder function made under that
full name (``KeyError`` if none); ``LookupRecordList()`` gives ``(name,
record)`` pairs of all of them.  ``RecordLookup._RecordDirectory`` is that
directory, a live view of the builder's records: its ``clear()`` forgets
records not yet loaded (as ``builder.ClearRecords()``) and drops loaded ones
from the directory (they stay in the IOC).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from . import builder
from ._record import Record

__all__ = ["LookupRecord", "LookupRecordList", "RecordLookup"]


class _Directory(MutableMapping[str, Record]):
    """Every builder record, loaded or not, by full name."""

    def __getitem__(self, name: str) -> Record:
        if name in builder._pending:
            return builder._pending[name]
        return builder._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from list(builder._pending)
        yield from list(builder._loaded)

    def __len__(self) -> int:
        return len(builder._pending) + len(builder._loaded)

    def __setitem__(self, name: str, record: Record) -> None:
        raise TypeError("records enter the directory by being made with softioc.builder")

    def __delitem__(self, name: str) -> None:
        if name in builder._pending:
            raise TypeError(f"{name} is not loaded yet: builder.ClearRecords() drops "
                            "unloaded records")
        del builder._loaded[name]

    def clear(self) -> None:
        builder.ClearRecords()
        builder._loaded.clear()


class RecordLookup:
    """Holds the record directory (``_RecordDirectory``) and ``LookupRecord``."""

    _RecordDirectory = _Directory()

    @classmethod
    def LookupRecord(cls, name: str) -> Record:
        """The builder record of this full name; ``KeyError`` if there is none."""
        return cls._RecordDirectory[name]


LookupRecord = RecordLookup.LookupRecord
LookupRecordList = RecordLookup._RecordDirectory.items

# pythonSoftIOC's base classes of device support: here every builder record
# is a softioc._record.Record.
DeviceCommon = DeviceSupportCore = Record
