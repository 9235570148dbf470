"""``builder.WriteRecords``: the records built and not yet loaded, as a
``.db`` file."""

from __future__ import annotations

import os

from ._database import field_text as _field_text
from ._ioc import ioc as _ioc

__all__ = ["WriteRecords"]


def WriteRecords(filename: str | os.PathLike[str], header: str | None = None,
                 alphabetical: bool = True) -> None:
    """Write the records built so far and not yet loaded as a ``.db`` file:
    ``builder.records`` ones as epicsdbbuilder writes them (after ``header``),
    then the builder's records with the fields they were given."""
    import epicsdbbuilder

    epicsdbbuilder.WriteRecords(filename, header, alphabetical)
    pending = _ioc.database.pending
    names = sorted(pending) if alphabetical else list(pending)
    with open(filename, "a") as out:
        for full in names:
            record = pending[full]
            fields = record._builder_fields()      # noqa: SLF001
            given = {k: v for k, v in fields.items() if v is not None}
            out.write(f'\nrecord({record.record_type}, "{full}")\n{{\n')
            out.write(f'    field(DTYP, "{record._dtyp}")\n')     # noqa: SLF001
            for field, value in given.items():
                if isinstance(field, tuple):
                    out.write(f'    info({field[1]}, "{_db_escape(value)}")\n')
                else:
                    out.write(f'    field({field}, "{_db_escape(_field_text(value))}")\n')
            out.write("}\n")


def _db_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
