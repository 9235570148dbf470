"""``pythonioc migrate-check``: find pythonSoftIOC code that acts differently here.

The check reads Python sources with :mod:`ast` (nothing is run or imported)
and prints ``FILE:LINE: message [rule]`` for each construct whose meaning or
behaviour differs between pythonSoftIOC 4.7.2 and pythonIOC.  ``RULES`` is
what it knows (the command-line reference lists it), ``MISSING`` the names
pythonSoftIOC offers that pythonIOC does not.

It reports only what it is sure of.  ``softioc`` imports are followed in
every form, through Python's scopes and plain assignments (``make =
builder.aIn``); a name also bound to something else (a parameter, another
value) is left alone.  A record maker passed in as a parameter, or given
``*args`` right after the name, cannot be told statically and is not
reported.  A ``**name`` splat counts when ``name`` is a dict the same
function builds (a literal, ``dict(...)``, ``name.update(...)``,
``name[key] = ...``) where it can run before the call.
"""

from __future__ import annotations

import ast
import io
import os
import stat
import sys
import tokenize
import warnings
from collections.abc import Iterator, Sequence

from .checker import Checker, Finding
from .rules import MISSING, OLD_POSITIONAL, RULES, Rule

__all__ = ["RULES", "MISSING", "OLD_POSITIONAL", "Rule", "Finding", "Unreadable",
           "python_files", "read_source", "check_file", "check_source", "main"]


class Unreadable(Exception):
    """A file that cannot be checked: not readable, not text, not Python."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


# ---- reading -------------------------------------------------------------------

def python_files(path: str) -> Iterator[tuple[str, str | None]]:
    """``(file, None)`` for ``path`` or each ``*.py`` under it (hidden
    directories and ``__pycache__`` skipped), ``(place, error)`` for what
    cannot be read."""
    if not os.path.isdir(path):
        yield path, None
        return
    errors: list[OSError] = []
    for top, dirs, files in os.walk(path, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(top, name), None
        while errors:
            e = errors.pop(0)
            yield str(e.filename or top), f"cannot read ({e.strerror or e})"
    for e in errors:
        yield str(e.filename or path), f"cannot read ({e.strerror or e})"


MAX_SOURCE_BYTES = 10 << 20     # a Python source larger than this is not checked


def read_source(path: str) -> str:
    """The text of a Python file, decoded as Python would (UTF-8 unless it
    declares another encoding)."""
    try:
        # Only regular files, and not huge ones: a FIFO or a device would block
        # or never end (stat first: opening a FIFO blocks).
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file")
        if info.st_size > MAX_SOURCE_BYTES:
            raise Unreadable(f"{info.st_size} bytes: larger than {MAX_SOURCE_BYTES} (not checked)")
        with open(path, "rb") as f:
            data = f.read(MAX_SOURCE_BYTES + 1)
    except OSError as e:
        raise Unreadable(f"cannot read ({e.strerror or e})") from None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as e:            # a bad encoding declaration, or bytes not UTF-8
        encoding, bad_declaration = "utf-8", e.msg
    else:
        bad_declaration = ""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        name = "UTF-8" if encoding.startswith("utf-8") else encoding
        raise Unreadable(f"not {name} text (byte 0x{data[e.start]:02x} at offset {e.start})"
                         ) from None
    if bad_declaration:
        raise Unreadable(bad_declaration)
    return text


def check_file(path: str) -> list[Finding]:
    """What differs in one Python file (``Unreadable`` if it cannot be checked)."""
    return check_source(read_source(path), path)


def check_source(source: str, filename: str = "<source>") -> list[Finding]:
    """What differs in Python source text, by line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")         # invalid escapes etc. are not ours to report
            tree = ast.parse(source, filename)
    except SyntaxError as e:
        raise Unreadable(f"syntax error: {e.msg}", e.lineno) from None
    except ValueError as e:                         # NUL bytes (Python < 3.12)
        raise Unreadable(str(e)) from None
    except (RecursionError, MemoryError):
        raise Unreadable("nested too deeply to parse") from None
    return sorted(Checker(source, tree).run(), key=lambda f: (f.line, f.col, f.rule))


# ---- the command ---------------------------------------------------------------------

def main(paths: Sequence[str]) -> int:
    """Check ``paths`` (files, or directories searched for ``*.py``); print
    the findings.  Returns 0 if none, 1 if any, 2 if some input could not
    be checked (the others still are)."""
    found = failed = False
    seen: set[str] = set()
    for path in paths:
        for file, error in python_files(path):
            if file in seen and error is None:
                continue
            seen.add(file)
            if error is not None:
                print(f"{file}: error: {error}", file=sys.stderr)
                failed = True
                continue
            try:
                findings = check_file(file)
            except Unreadable as e:
                where = f"{file}:{e.line}" if e.line else file
                print(f"{where}: error: {e}", file=sys.stderr)
                failed = True
                continue
            except Exception as e:      # a bug here must not hide the other files' findings
                print(f"{file}: error: cannot check ({type(e).__name__}: {e}); "
                      f"please report this", file=sys.stderr)
                failed = True
                continue
            for f in findings:
                print(f"{file}:{f.line}: {f.message} [{f.rule}]")
            found = found or bool(findings)
    sys.stdout.flush()
    return 2 if failed else 1 if found else 0
