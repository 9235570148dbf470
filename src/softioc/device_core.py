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
from ._ioc import ioc
from ._record import Record

__all__ = ["LookupRecord", "LookupRecordList", "RecordLookup"]


class _Directory(MutableMapping[str, Record]):
    """Every builder record, loaded or not, by full name."""

    def __getitem__(self, name: str) -> Record:
        db = ioc.database
        if name in db.pending:
            return db.pending[name]
        return db.loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from list(ioc.database.pending)
        yield from list(ioc.database.loaded)

    def __len__(self) -> int:
        return len(ioc.database.pending) + len(ioc.database.loaded)

    def __setitem__(self, name: str, record: Record) -> None:
        raise TypeError("records enter the directory by being made with softioc.builder")

    def __delitem__(self, name: str) -> None:
        if name in ioc.database.pending:
            raise TypeError(f"{name} is not loaded yet: builder.ClearRecords() drops "
                            "unloaded records")
        del ioc.database.loaded[name]

    def clear(self) -> None:
        builder.ClearRecords()
        ioc.database.loaded.clear()


# A view of the IOC's records (softioc._ioc), under pythonSoftIOC's name below.
_directory = _Directory()


class RecordLookup:
    """Holds the record directory (``_RecordDirectory``) and ``LookupRecord``."""

    _RecordDirectory = _directory

    @classmethod
    def LookupRecord(cls, name: str) -> Record:
        """The builder record of this full name; ``KeyError`` if there is none."""
        return cls._RecordDirectory[name]


LookupRecord = RecordLookup.LookupRecord
LookupRecordList = _directory.items

# pythonSoftIOC's base classes of device support: here every builder record
# is a softioc._record.Record.
DeviceCommon = DeviceSupportCore = Record
