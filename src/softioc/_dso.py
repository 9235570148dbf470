"""Find the EPICS libraries and definitions of the wheels, cheaply.

Each shared library a wheel built with ``setuptools_dso`` holds comes with a
small generated module, ``<package>.<name>_dsoinfo``, saying where its file is
(``sofilename``) and which of the others it needs (``depends``).  Reading
those is all ``setuptools_dso.runtime.find_dso`` does on Linux; but importing
``epicscorelibs.path`` or ``pvxslibs.path`` brings in setuptools itself (300
modules, 20 MB resident), and every call of the runtime without ``package=``
reads the source of each frame on the stack (``inspect.stack()``), which cost
a third of ``import softioc``.  So the IOC reads the info modules here and
imports neither.  ``epicscorelibs.path`` still works, and costs what it costs,
for code that imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import types

__all__ = ["find_dso", "epics_lib", "package_dir"]


def _info(dso: str) -> types.ModuleType:
    package, _, name = dso.rpartition(".")
    return importlib.import_module(f"{package}.{name}_dsoinfo")


def find_dso(dso: str) -> str:
    """Path of the shared library a dotted name such as
    ``"pvxslibs.lib.pvxsIoc"`` names, ready to load with ctypes."""
    info = _info(dso)
    if hasattr(os, "add_dll_directory"):        # Windows: its dependencies' folders
        todo, seen = [dso], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            dep = _info(name)
            os.add_dll_directory(os.path.dirname(os.path.abspath(dep.__file__ or "")))
            todo.extend(getattr(dep, "depends", ()))
    return str(info.sofilename)


def epics_lib(name: str) -> str:
    """Path of one of epicscorelibs's libraries, e.g. ``"Com"``."""
    return find_dso(f"epicscorelibs.lib.{name}")


def package_dir(package: str) -> str:
    """The folder of an installed package (``epicscorelibs``, ``pvxslibs``),
    found without running it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{package} is not installed")
    return os.path.abspath(list(spec.submodule_search_locations)[0])
