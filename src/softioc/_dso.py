"""Find the EPICS libraries of the wheels without importing setuptools.

``epicscorelibs.path`` and ``pvxslibs.path`` need only
``setuptools_dso.runtime`` (where each wheel's libraries are), but importing it
runs the ``setuptools_dso`` package first, which imports all of setuptools
(pkg_resources, vendored pyparsing...): some 300 modules and 20 MB of resident
memory in every IOC.  So the runtime module is imported under a stand-in parent
package that is removed again at once; a later ``import setuptools_dso`` (a
build script in the same process) gets the real package, which reuses the
runtime module already loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

__all__ = ["find_dso", "epics_lib"]


def _load() -> Any:
    if "setuptools_dso" in sys.modules:        # already imported: nothing to save
        return importlib.import_module("setuptools_dso.runtime")
    spec = importlib.util.find_spec("setuptools_dso")
    if spec is None or not spec.submodule_search_locations:
        return importlib.import_module("setuptools_dso.runtime")
    stand_in = types.ModuleType("setuptools_dso")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules["setuptools_dso"] = stand_in
    try:
        runtime = importlib.import_module("setuptools_dso.runtime")
        stand_in.find_dso = runtime.find_dso                      # type: ignore[attr-defined]
        stand_in.dylink_prepare_dso = runtime.dylink_prepare_dso  # type: ignore[attr-defined]
        import epicscorelibs.path  # noqa: F401
        import pvxslibs.path  # noqa: F401
    finally:
        if sys.modules.get("setuptools_dso") is stand_in:
            del sys.modules["setuptools_dso"]
    return runtime


_runtime = _load()
find_dso = _runtime.find_dso


def epics_lib(name: str) -> str:
    """Path of one of epicscorelibs's libraries, e.g. ``"Com"``."""
    import epicscorelibs.path
    return str(epicscorelibs.path.get_lib(name))
