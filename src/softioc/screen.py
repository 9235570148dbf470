"""Phoebus operator screens (``.bob``) for builder records, made by ``pvi``.

``write_screen(path)`` writes a screen with a widget for every record made
with ``softioc.builder`` so far: output records get a write widget beside
their read-back (a combo box for ``bo``/``mbbo``), input records a read
widget (an LED for ``bi``). Records are grouped by the part of their name
before the last ``:``.

``pythonioc screen SCRIPT -o NAME.bob`` runs an IOC script in *describe*
mode: the script builds its records as usual, and when it calls
``softioc.iocInit()`` the screen is written and the script ends, without
serving anything. Needs ``pvi`` (``pip install pvi``). Without ``-o`` the
screen goes into ``default_directory()``: ``$PYTHONIOC_OPI_DIR``, else
``/epics/opi`` where it exists (epics-containers mounts the IOC's screens
volume there), else the current directory.

pvi's formatters are in its private ``pvi._format``: its only public route,
saving the device as ``.pvi.device.yaml`` for ``pvi format``, does not give
the same screen (the YAML round trip gives every write-only signal a read-back
widget too), so ``write_groups`` calls the DLS formatter directly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import _core
from ._core import DescribeDone, Record, ioc

__all__ = ["write_screen", "write_groups", "widget_name", "DescribeDone", "describe_at_init",
           "default_directory", "OPI_DIRECTORY"]

#: Where epics-containers' ioc-instance chart mounts an IOC's screens volume.
OPI_DIRECTORY = "/epics/opi"


def default_directory() -> str | None:
    """Where ``pythonioc screen`` writes without ``-o``: ``$PYTHONIOC_OPI_DIR``
    (made if missing), else ``/epics/opi`` if it is a directory, else None
    (the current directory)."""
    given = os.environ.get("PYTHONIOC_OPI_DIR", "").strip()
    if given:
        os.makedirs(given, exist_ok=True)
        return given
    return OPI_DIRECTORY if os.path.isdir(OPI_DIRECTORY) else None


def widget_name(text: str) -> str:
    """``text`` as a pvi component name: PascalCase, starting with a letter."""
    name = "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", text) if w)
    return name if name[:1].isalpha() else f"R{name}"


def write_groups(path: str | Path, title: str, groups: dict[str, list[Any]]) -> None:
    """Write a Phoebus .bob titled ``title`` with a grid per group: ``groups``
    maps each group's label to its pvi components (``SignalR``, ``SignalRW``...).

    For screens of your own design; ``write_screen`` makes one for you.
    """
    try:
        from pvi._format.dls import DLSFormatter  # private: see the module's description
        from pvi.device import Device, Grid, Group
    except ImportError:
        raise RuntimeError("writing a screen needs pvi: pip install pvi") from None
    device = Device(label=title, children=[
        Group(name=widget_name(label), label=label, layout=Grid(), children=children)
        for label, children in groups.items()])
    DLSFormatter().format(device, Path(path))


def write_screen(path: str | Path, records: Iterable[Record] | None = None,
                 title: str = "pythonIOC") -> int:
    """Write a Phoebus .bob for ``records`` (default: every builder record);
    returns how many records it shows."""
    try:
        from pvi.device import LED, ComboBox, SignalR, SignalRW, TextRead, TextWrite
    except ImportError:
        raise RuntimeError("writing a screen needs pvi: pip install pvi") from None
    if records is None:
        records = ioc.database.records()
    groups: dict[str, list[Any]] = {}
    used: dict[str, set[str]] = {}
    count = 0
    for record in records:
        pv = record.name
        group, _, leaf = pv.rpartition(":")
        group = group or "Records"
        taken = used.setdefault(group, set())
        name = base = widget_name(leaf or pv)
        n = 1
        while name in taken:
            n += 1
            name = f"{base}{n}"
        taken.add(name)
        signal: Any
        if record.is_output:
            widget: Any = ComboBox() if record.record_type in ("bo", "mbbo") else TextWrite()
            signal = SignalRW(name=name, label=leaf or pv, write_pv=pv, write_widget=widget,
                              read_pv=pv, read_widget=TextRead())
        else:
            signal = SignalR(name=name, label=leaf or pv, read_pv=pv,
                             read_widget=LED() if record.record_type == "bi" else TextRead())
        groups.setdefault(group, []).append(signal)
        count += 1
    write_groups(path, title, groups)
    return count


def describe_at_init(path: str | Path, title: str) -> Callable[[], int | None]:
    """Describe mode (``pythonioc screen``): the next ``softioc.iocInit()``
    writes the screen of every builder record to ``path`` and raises
    `DescribeDone` instead of starting the IOC.  Returns a function that
    gives how many records the screen shows (None while not written)."""
    written: list[int] = []
    _core.describe_only(lambda: written.append(write_screen(path, title=title)))
    return lambda: written[0] if written else None
