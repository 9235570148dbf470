"""``record.FIELD`` before iocInit: a link to the field for other records'
fields, as epicsdbbuilder makes them.  Its own module, so that epicsdbbuilder
is imported only by IOCs that link records this way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import epicsdbbuilder

if TYPE_CHECKING:
    from ._record import Record

__all__ = ["FieldLink"]


class FieldLink(epicsdbbuilder.recordbase._Link):  # type: ignore[misc]
    """``record.FIELD``: a link to the field, and ``Value()``, the value the
    builder was given for it (KeyError if none), as pythonSoftIOC's are."""

    def __init__(self, record: Record, field: str) -> None:
        super().__init__(record._link(), field)
        self._owner = record

    def Value(self) -> Any:
        owner = self._owner          # read now: fields set after this link count
        if owner._given is None:
            raise KeyError(f"{self.record.name}.{self.field}: the builder's field values "
                           "are kept only until LoadDatabase; use get_field()")
        value = owner._builder_fields().get(self.field)
        if value is None:
            raise KeyError(self.field)
        return value
