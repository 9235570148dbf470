"""Access security: who may write which records, from an EPICS ACF.

By default every client may read and write (as in an IOC with no ACF), with
``TRAPWRITE`` on, so that ``on_field_change`` callbacks see client writes.
Load your own rules before iocInit and put records in groups with the
``ASG`` field::

    from softioc import access, builder
    access.load_acf('''
        UAG(operators) {alice, bob}
        ASG(DEFAULT) { RULE(1, READ) RULE(1, WRITE, TRAPWRITE) }
        ASG(PROTECTED) { RULE(1, READ) RULE(1, WRITE, TRAPWRITE) { UAG(operators) } }
    ''')
    builder.aOut("SETPOINT", 0.0, ASG="PROTECTED")

A refused put reaches the client as an error (CA: no write access; PVA:
"Put not permitted") and the record keeps its value; reads still work.
Keep ``TRAPWRITE`` in your WRITE rules if you use ``on_field_change``.

Rules by host (``HAG``) should go with ``check_client_ip()``: without it a
Channel Access client is known by the host name it declares, which any
client can choose; with it, by its IP address, as PV Access always does.

The rules are settings of the IOC (``softioc._ioc``), which iocInit installs
whether or not this module was imported.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _core
from ._core import DEFAULT_ACF, ioc

__all__ = ["DEFAULT_ACF", "check_client_ip", "load_acf"]


def load_acf(acf: str | os.PathLike[str]) -> None:
    """Use these access security rules (ACF text, or a path to an .acf file)."""
    if _core.is_running():
        raise RuntimeError("load_acf() must come before iocInit()")
    text = str(acf)
    if "ASG" not in text and Path(text).exists():
        text = Path(text).read_text()
    if "ASG(" not in text.replace(" ", ""):
        raise ValueError("an ACF needs at least one ASG(...) { ... } group")
    ioc.settings.acf = text


def check_client_ip(enable: bool = True) -> None:
    """Know Channel Access clients by their IP address (EPICS's ``asCheckClientIP=1``).

    Recommended wherever an ACF has ``HAG`` rules.  Off by default, as in
    EPICS: a CA client is then known by the host name it declares, and
    any client can declare any name.  On, the CA server ignores the
    declared name and uses the client's IP address, as the PVA server
    always does, so one ``HAG`` of IP addresses serves both protocols.
    Host names in a ``HAG`` are then looked up (DNS, /etc/hosts) when
    iocInit loads the ACF, and a name that does not resolve matches no
    client.  Call before iocInit; it may come before or after
    ``load_acf()`` and ``LoadDatabase()``.
    """
    if not isinstance(enable, bool):
        raise TypeError(f"check_client_ip(enable) takes True or False, not {enable!r}")
    if _core.is_running():
        raise RuntimeError("check_client_ip() must come before iocInit()")
    ioc.settings.check_client_ip = enable
