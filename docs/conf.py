"""Sphinx configuration for the pythonIOC documentation.

Build (warnings are errors):  python -m sphinx -W --keep-going -b html docs docs/_build/html
Every code block in these pages is run by tests/test_docs.py.
"""

from __future__ import annotations

import importlib.util

import softioc

project = "pythonIOC"
author = "pythonIOC contributors"
copyright = "pythonIOC contributors"
release = softioc.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "myst_parser"]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "snippets", "Thumbs.db", ".DS_Store"]

# Python blocks without a language (the founding page's) are Python.
highlight_language = "python3"

# Reference pages list their members explicitly, in the order a reader needs.
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True          # show "initial_value=_SKIP", not an object repr
autodoc_typehints = "signature"
autodoc_typehints_format = "short"

myst_heading_anchors = 3

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = f"pythonIOC {release}"
html_static_path: list[str] = []
