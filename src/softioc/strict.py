"""Strict puts: refuse a client's put that converting would change.

EPICS converts every put to the field's type before any record sees it, and
some of its conversions change the value while the client is told the put
succeeded: ``caput LO 12abc`` stores 12, a double 1e13 into a ``longout``
stores -2147483648, index 70000 into an ``mbbo`` stores 4464, ``bo`` 2 is
stored although there is no state 2.  With strict puts (the default) such a
put is refused: the client gets an error and the field keeps its value.
Legal conversions work as in EPICS: a fraction into an integer field is
truncated (1.5 -> 1), text that is one number is read as that number
("1e3" -> 1000), strings are cut to the field's size, outputs clamp to
DRVL/DRVH.  This covers every record of the IOC (not only builder records),
puts over Channel Access and PV Access, ``dbpf`` and database links.

Switch it off for plain EPICS behaviour, before ``iocInit``::

    PYTHONIOC_STRICT_PUTS=NO python my_ioc.py

or from Python::

    from softioc import strict
    strict.strict_puts(False)

The same switch governs every change pythonIOC makes to EPICS itself
(``softioc/_ext/patches.c``): with strict puts off at ``iocInit`` none is
applied, and EPICS is used through its public interfaces only.

See docs/strict-puts.md for each conversion and what strict mode does.
"""

from __future__ import annotations

from . import _core

__all__ = ["strict_puts"]


def strict_puts(enable: bool | None = None) -> bool:
    """Switch strict puts on or off (``None``: leave as is); returns whether
    they are on.  The default comes from ``PYTHONIOC_STRICT_PUTS`` (on unless
    ``NO``, ``0``, ``FALSE`` or ``OFF``).  Meant for before ``iocInit``; a
    switch while the IOC runs applies to the puts that follow, except that an
    IOC started without them cannot switch them on (RuntimeError: EPICS was
    not patched for them at iocInit)."""
    return bool(_core.strict_puts(enable))
