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
import re
import stat
import sys
import tokenize
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class Rule:
    """A difference the check knows: what it looks for, what pythonSoftIOC
    4.7.2 did, what pythonIOC does, and what to write instead."""

    name: str
    looks_for: str
    pythonsoftioc: str
    here: str
    write: str


RULES: tuple[Rule, ...] = (
    Rule("positional-value",
         "one value after the record name of aIn, aOut, longIn, longOut, int64In, int64Out, "
         "boolIn or boolOut",
         "the first field: LOPR (aIn, longIn, int64In), DRVL (aOut, longOut, int64Out) or "
         "ZNAM (boolIn, boolOut)",
         "the initial value (an error if it cannot be one)",
         'the field as a keyword, aIn("X", LOPR=5), or initial_value= if the value is meant'),
    Rule("positional-values",
         "two or more values after the record name of those makers (or one, then *args)",
         "fields, in the order of its signatures: aIn(name, LOPR, HOPR, EGU, PREC), "
         "aOut(name, DRVL, DRVH, EGU, PREC), longIn and int64In(name, LOPR, HOPR, EGU), "
         "longOut and int64Out(name, DRVL, DRVH, EGU), boolIn and boolOut(name, ZNAM, ONAM)",
         "TypeError: only the initial value may follow the name",
         'the fields as keywords: aIn("X", LOPR=0, HOPR=10)'),
    Rule("input-alarm",
         "status= or severity= on an input record maker without PINI=",
         "writes the STAT and SEVR fields, which the record's first processing (PINI) "
         "clears: the record starts without an alarm",
         "the record starts in that alarm",
         "nothing if the alarm is meant; drop status= and severity= to start without it"),
    Rule("set-no-process",
         "set(..., process=False) (also a literal False second argument, or process in a "
         "**dict), in a file that imports softioc",
         "4.7.2 changes the value without sending it to monitors (4.7.0 sent it)",
         "monitors get the new value; the record is still not processed (no on_update)",
         "nothing, unless clients must not see values set this way"),
    Rule("long-string-length",
         "longStringIn or longStringOut given initial_value= or NELM= but no length=",
         "NELM is the initial text's length in bytes + 1 (256 without one), and NELM= is "
         "ignored: a longer text never fits",
         "NELM= is used; else at least 256 bytes (more for a longer initial text)",
         "length=N, which both read the same way"),
    Rule("write-records",
         "builder.WriteRecords(...) and epicsdbbuilder.WriteRecords(...)",
         "builder records are epicsdbbuilder records: either call writes all of them, also "
         "after LoadDatabase()",
         "builder.WriteRecords writes the records not yet loaded (none after LoadDatabase()), "
         "fields in another order; epicsdbbuilder.WriteRecords only builder.records ones",
         "builder.WriteRecords(...) before builder.LoadDatabase()"),
    Rule("pvlog",
         "importing softioc.pvlog",
         "installs its own access security file (any client may write) and logs each put "
         "with the CA client's host name",
         "your access rules stay; puts are logged where they say TRAPWRITE (pythonIOC's "
         "default rules do), with the client's IP address",
         "TRAPWRITE in the WRITE rules of your own access security file, if you load one"),
    Rule("missing-name",
         "a name of pythonSoftIOC's modules that pythonIOC does not have (MISSING)",
         "offers it",
         "AttributeError or ImportError",
         "what the table says for that name"),
)

_DBB = "re-exported from epicsdbbuilder"
_CTYPES = "internals of its ctypes device support"
_IN_C = "drop it: pythonIOC's device support is in C"
_STARTUP = "its start-up internals"
_NOT_NEEDED = "drop it: pythonIOC starts and stops EPICS itself"
_MAKERS = ("make records with the builder (softioc.device.ProcessDeviceSupportIn and "
           "ProcessDeviceSupportOut are their classes)")

# Module -> name -> (what it was in pythonSoftIOC, what to do here).
MISSING: dict[str, dict[str, tuple[str, str]]] = {
    "softioc": {
        "dbLoadDatabase": ("imported from softioc.imports", "write softioc.softioc.dbLoadDatabase"),
        **dict.fromkeys(("registerRecordDeviceDriver", "iocshRegisterCommon", "pdbbase",
                         "base_dbd_path", "iocStats"), (_STARTUP, _NOT_NEEDED)),
    },
    "softioc.builder": {
        **{name: (_DBB, f"write epicsdbbuilder.{name}") for name in (
            "CA", "CPP", "MSI", "MSS", "NMS", "ConstArray", "const_array", "CountRecords",
            "Disclaimer", "ImportRecord", "Parameter", "parameter", "PopPrefix", "PushPrefix",
            "RecordName", "SetRecordNames", "SetSeparator", "SetSimpleRecordNames",
            "SetTemplateRecordNames", "SimpleRecordNames", "TemplateRecordNames",
            "create_fanout", "create_dfanout", "fanout")},
        "ResetRecords": (_DBB, "write builder.ClearRecords()"),
        "InitialiseDbd": (_DBB, "drop it: pythonIOC loads the record definitions"),
        "LoadDbdFile": (_DBB, "drop it: pythonIOC loads the record definitions"),
        "LookupRecord": (_DBB, "write epicsdbbuilder.LookupRecord, or softioc.device_core."
                               "LookupRecord for builder records"),
        "RecordLookup": ("imported from softioc.device_core",
                         "write softioc.device_core.RecordLookup"),
        "dbLoadDatabase": ("imported from softioc.softioc",
                           "write softioc.softioc.dbLoadDatabase"),
        "load_autosave": ("imported from softioc.autosave",
                          "drop it: builder.LoadDatabase() restores autosaved values"),
        "qform_string": ("its long-string helper", 'write record.add_info("Q:form", "String")'),
        "NumpyDtypeToDbf": ("its waveform type table", "give datatype= or FTVL= to the makers"),
        "DbfStringToNumpy": ("its waveform type table", "give datatype= or FTVL= to the makers"),
    },
    "softioc.softioc": {
        "auto_encode": ("imported from softioc.imports", "write softioc.imports.auto_encode"),
        "Exiter": ("the class of its exit command", "write softioc.softioc.exit"),
        "ExportTest": ("its IOC shell command wrapper", "drop it: no replacement"),
        "epicsAtPyExit": ("its exit hook", _NOT_NEEDED),
    },
    "softioc.autosave": {
        "AutosaveConfig": ("its settings", "write softioc.autosave.configure(...)"),
        "DEFAULT_SAVE_PERIOD": ("its default period", "write configure(save_period=...)"),
        "SAV_SUFFIX": ("its file name suffix", "drop it: the file is NAME.softsav"),
        "SAVB_SUFFIX": ("its backup file suffix", "drop it: no replacement"),
        "add_pv_to_autosave": ("its internal registration",
                               "write softioc.autosave.add(record, fields)"),
        "load_autosave": ("its internal restore",
                          "drop it: builder.LoadDatabase() restores autosaved values"),
        "start_autosave_thread": ("its internal start", "drop it: autosave starts at iocInit()"),
    },
    "softioc.device": {
        **dict.fromkeys(("ai", "ao", "bi", "bo", "longin", "longout", "int64in", "int64out",
                         "stringin", "stringout", "mbbi", "mbbo", "long_stringin",
                         "long_stringout"), (_CTYPES, _MAKERS)),
        **dict.fromkeys(("EpicsString", "LongStringBase", "create_callback_capsule",
                         "signal_processing_complete", "dset_process_linconv"),
                        (_CTYPES, _IN_C)),
        "DeviceSupportCore": ("imported from softioc.device_core",
                              "write softioc.device_core.DeviceSupportCore"),
    },
    "softioc.device_core": dict.fromkeys(("DSET_BASE", "RecordFactory"), (_CTYPES, _IN_C)),
    "softioc.fields": dict.fromkeys(("RecordFactory", "get_field_offsets"), (_CTYPES, _IN_C)),
    "softioc.imports": {
        **dict.fromkeys(("get_field_offsets", "create_callback_capsule",
                         "signal_processing_complete", "expect_success", "expect_true"),
                        (_CTYPES, _IN_C)),
        "iocInit": ("EPICS's iocInit", "write softioc.softioc.iocInit()"),
        "registerRecordDeviceDriver": (_STARTUP, _NOT_NEEDED),
    },
}

# pythonSoftIOC's fields after the name, by maker (its signatures, per its docs).
OLD_POSITIONAL: dict[str, tuple[str, ...]] = {
    "aIn": ("LOPR", "HOPR", "EGU", "PREC"), "aOut": ("DRVL", "DRVH", "EGU", "PREC"),
    "longIn": ("LOPR", "HOPR", "EGU"), "longOut": ("DRVL", "DRVH", "EGU"),
    "int64In": ("LOPR", "HOPR", "EGU"), "int64Out": ("DRVL", "DRVH", "EGU"),
    "boolIn": ("ZNAM", "ONAM"), "boolOut": ("ZNAM", "ONAM"),
}
_VALUE_KIND = {"aIn": "float", "aOut": "float", "longIn": "int32", "longOut": "int32",
               "int64In": "int64", "int64Out": "int64", "boolIn": "bool", "boolOut": "bool"}
_INPUT_MAKERS = frozenset(("aIn", "boolIn", "longIn", "int64In", "stringIn", "mbbIn",
                           "WaveformIn", "Waveform", "longStringIn"))
_LONG_STRINGS = frozenset(("longStringIn", "longStringOut"))
# What `from softioc.builder import *` brings that the rules look at.
_STAR = {"softioc.builder": frozenset(OLD_POSITIONAL) | _INPUT_MAKERS | _LONG_STRINGS}


@dataclass(frozen=True)
class Finding:
    """One construct that acts differently here."""

    line: int
    col: int
    rule: str
    message: str


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
    return sorted(_Checker(source, tree).run(), key=lambda f: (f.line, f.col, f.rule))


# ---- names: what each name refers to, scope by scope -------------------------------

@dataclass(frozen=True)
class _Alias:
    """``name = <expr>``: the name is what ``expr`` is."""

    expr: ast.expr
    scope: _Scope


# A binding: an import's dotted target, an alias, or None (anything else).
_Binding = Union[str, _Alias, None]
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


class _Scope:
    """The names one module, class, function or comprehension binds."""

    def __init__(self, node: ast.AST, parent: _Scope | None) -> None:
        self.node = node
        self.parent = parent
        self.bound: dict[str, list[_Binding]] = {}
        self.star: dict[str, str] = {}
        self.params: set[str] = set()
        self.elsewhere: dict[str, _Scope] = {}    # global and nonlocal names: their scope
        self.resolved: dict[str, str | None] = {}   # _lookup's answers

    def bind(self, name: str, target: _Binding) -> None:
        scope = self.elsewhere.get(name, self)
        scope.bound.setdefault(name, []).append(target)

    def declare(self, node: ast.Global | ast.Nonlocal) -> None:
        """``global``/``nonlocal`` names: bound in the module or an outer function."""
        scope = self
        while scope.parent is not None and \
                (isinstance(node, ast.Global) or scope is self or
                 isinstance(scope.node, ast.ClassDef)):
            scope = scope.parent
        for name in node.names:
            self.elsewhere[name] = scope


def _children(node: ast.AST, scope: _Scope) -> list[tuple[ast.AST, _Scope]]:
    """The node's children, each with the scope it is evaluated in."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        inner = _Scope(node, scope)
        args = node.args
        every = [a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg,
                             args.kwarg) if a is not None]
        for a in every:
            inner.bind(a.arg, None)
            inner.params.add(a.arg)
        outer: list[ast.AST] = [*args.defaults, *[d for d in args.kw_defaults if d]]
        if isinstance(node, ast.Lambda):
            return [(n, scope) for n in outer] + [(node.body, inner)]
        outer += [a.annotation for a in every if a.annotation]
        outer += [*node.decorator_list, *([node.returns] if node.returns else [])]
        return [(n, scope) for n in outer] + [(n, inner) for n in node.body]
    if isinstance(node, ast.ClassDef):
        inner = _Scope(node, scope)
        outer = [*node.decorator_list, *node.bases, *node.keywords]
        return [(n, scope) for n in outer] + [(n, inner) for n in node.body]
    if isinstance(node, _COMPREHENSIONS):
        inner = _Scope(node, scope)
        first, *rest = node.generators
        pairs: list[tuple[ast.AST, _Scope]] = [(first.iter, scope), (first.target, inner)]
        pairs += [(n, inner) for n in first.ifs]
        pairs += [(g, inner) for g in rest]
        results = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        return pairs + [(n, inner) for n in results]
    return [(child, scope) for child in ast.iter_child_nodes(node)]


def _bind(node: ast.AST, scope: _Scope, ignored: set[int]) -> None:
    """Record the names ``node`` binds in ``scope``."""
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.asname:
                scope.bind(a.asname, a.name)
            else:
                top = a.name.split(".")[0]
                scope.bind(top, top)
    elif isinstance(node, ast.ImportFrom):
        for a in node.names:
            if node.level or not node.module:
                scope.bind(a.asname or a.name, None)
            elif a.name == "*":
                for name in _STAR.get(node.module, ()):
                    scope.star[name] = f"{node.module}.{name}"
            else:
                scope.bind(a.asname or a.name, f"{node.module}.{a.name}")
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        scope.bind(node.name, None)
    elif isinstance(node, (ast.Global, ast.Nonlocal)):
        scope.declare(node)
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 and \
            isinstance(node.targets[0], ast.Name):
        target = node.targets[0]
        if isinstance(node.value, (ast.Name, ast.Attribute)):
            scope.bind(target.id, _Alias(node.value, scope))
            ignored.add(id(target))
        elif isinstance(node.value, ast.Constant) and node.value.value is None:
            ignored.add(id(target))     # `builder = None` when the import fails
    elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        if id(node) not in ignored:
            scope.bind(node.id, None)
    elif isinstance(node, ast.ExceptHandler) and node.name:
        scope.bind(node.name, None)
    else:
        captured = getattr(node, "name", None) or getattr(node, "rest", None)
        if type(node).__name__ in ("MatchAs", "MatchStar", "MatchMapping") and captured:
            scope.bind(str(captured), None)


def _lookup(name: str, scope: _Scope) -> str | None:
    """The dotted target ``name`` refers to in ``scope``, if it is certain."""
    current: _Scope | None = scope
    while current is not None:
        skip = isinstance(current.node, ast.ClassDef) and current is not scope
        if not skip and name in current.bound:
            if name not in current.resolved:
                current.resolved[name] = None       # while resolving: a cycle is unknown
                current.resolved[name] = _resolve(current.bound[name])
            return current.resolved[name]
        if name in current.star:
            return current.star[name]
        current = current.parent
    return None


def _resolve(bindings: list[_Binding]) -> str | None:
    if None in bindings:
        return None
    targets = {_qualname(b.expr, b.scope) if isinstance(b, _Alias) else b for b in bindings}
    return targets.pop() if len(targets) == 1 else None


def _qualname(expr: ast.expr, scope: _Scope) -> str | None:
    """``softioc.builder.aIn`` for ``builder.aIn`` after ``from softioc import builder``."""
    if isinstance(expr, ast.Name):
        return _lookup(expr.id, scope)
    if isinstance(expr, ast.Attribute):
        base = _qualname(expr.value, scope)
        return f"{base}.{expr.attr}" if base else None
    return None


# ---- values known from the source ------------------------------------------------

_UNKNOWN: Any = object()


def _literal(node: ast.expr) -> Any:
    """The value of a constant (``5``, ``-1.5``, ``"mA"``, ``None``), else _UNKNOWN."""
    if isinstance(node, (ast.Constant, ast.UnaryOp)):
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return _UNKNOWN
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
    return _UNKNOWN


_INT_TEXT = re.compile(r"\s*[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)\s*")
_INT_BITS = {"int32": 31, "int64": 63}


def _field_takes(maker: str, field: str, value: Any) -> bool:
    """Whether pythonSoftIOC's builder accepts ``value`` for ``field`` (it
    writes ``str(value)``, which EPICS parses for the field's type)."""
    text = str(value)
    if field in ("EGU", "ZNAM", "ONAM"):
        return len(text.encode()) < (16 if field == "EGU" else 26)
    kind = "int32" if field == "PREC" else _VALUE_KIND[maker]
    if kind == "float":
        try:
            float(text)
        except ValueError:
            return False
        return True
    if not _INT_TEXT.fullmatch(text):
        return False
    number = int(text, 0) if "x" in text.lower() else int(text)
    return -(1 << _INT_BITS[kind]) <= number < 1 << _INT_BITS[kind]


def _initial_takes(maker: str, value: Any) -> bool:
    """Whether pythonIOC's maker takes ``value`` as the initial value."""
    if not isinstance(value, (bool, int, float)):
        return False
    kind = _VALUE_KIND[maker]
    if kind == "float":
        return True
    if kind == "bool":
        return bool(value in (0, 1))
    if isinstance(value, float) and not value.is_integer():
        return False
    return -(1 << _INT_BITS[kind]) <= int(value) < 1 << _INT_BITS[kind]


def _is_no_alarm(node: ast.expr) -> bool:
    value = _literal(node)
    if value is not _UNKNOWN:
        return bool(value == 0)
    return isinstance(node, (ast.Name, ast.Attribute)) and \
        (node.id if isinstance(node, ast.Name) else node.attr) == "NO_ALARM"


# ---- the check ---------------------------------------------------------------------

_RULE_NAMES = frozenset(r.name for r in RULES)


class _Checker:
    """Walks one module's tree and collects its findings."""

    def __init__(self, source: str, tree: ast.Module) -> None:
        self.source = source
        self.tree = tree
        self.parents: dict[int, ast.AST] = {}
        self.nodes: list[tuple[ast.AST, _Scope]] = []
        self.scope_nodes: dict[int, list[ast.AST]] = {}
        self.findings: list[Finding] = []
        self.imports_softioc = False
        self.lines: list[bytes] = []

    def run(self) -> list[Finding]:
        self._index()
        for node, scope in self.nodes:
            if isinstance(node, ast.Call):
                self._call(node, scope)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                self._missing_attribute(node, scope)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self._import(node)
        return self.findings

    def _index(self) -> None:
        """Scopes and bindings of every node, parents, in source order."""
        ignored: set[int] = set()
        stack: list[tuple[ast.AST, _Scope]] = [(self.tree, _Scope(self.tree, None))]
        while stack:
            node, scope = stack.pop()
            self.nodes.append((node, scope))
            self.scope_nodes.setdefault(id(scope.node), []).append(node)
            _bind(node, scope, ignored)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if not node.level else []
                if any(m == "softioc" or m.startswith("softioc.") for m in modules):
                    self.imports_softioc = True
            children = _children(node, scope)
            for child, _ in children:
                self.parents[id(child)] = node
            stack.extend(reversed(children))

    def _report(self, node: ast.AST, rule: str, message: str) -> None:
        assert rule in _RULE_NAMES
        self.findings.append(Finding(getattr(node, "lineno", 1), getattr(node, "col_offset", 0),
                                     rule, message))

    def _src(self, node: ast.AST, limit: int = 40) -> str:
        """The node's source text, on one line, cut to ``limit``."""
        text = " ".join((self._segment(node) or ast.unparse(node)).split())
        return text if len(text) <= limit else text[:limit - 3] + "..."

    def _segment(self, node: ast.AST) -> str | None:
        """ast.get_source_segment, without splitting the source each time."""
        if not self.lines:
            self.lines = [line.encode() for line in re.findall(r"[^\r\n]*(?:\r\n|\r|\n|$)",
                                                                self.source)]
        where: list[int | None] = [getattr(node, attr, None) for attr in
                                   ("lineno", "end_lineno", "col_offset", "end_col_offset")]
        first, last, start, end = where
        if first is None or last is None or start is None or end is None:
            return None
        if first == last:
            return self.lines[first - 1][start:end].decode(errors="replace")
        parts = [self.lines[first - 1][start:], *self.lines[first:last - 1],
                 self.lines[last - 1][:end]]
        return b"".join(parts).decode(errors="replace")

    # -- imports and attributes naming what pythonIOC lacks

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            if any(a.name == "softioc.pvlog" for a in node.names):
                self._pvlog(node, "import softioc.pvlog")
            return
        if node.level or not node.module:
            return
        names = [a.name for a in node.names]
        if node.module == "softioc.pvlog" or (node.module == "softioc" and "pvlog" in names):
            self._pvlog(node, f"from {node.module} import {', '.join(names)}")
        for name in names:
            self._missing(node, node.module, name, f"from {node.module} import {name}")

    def _pvlog(self, node: ast.AST, what: str) -> None:
        self._report(node, "pvlog",
                     f"{what}: pythonSoftIOC: installs its own access security file (any "
                     f"client may write) and prints each put with the CA client's host name; "
                     f"here: your access rules stay, and puts are printed where they say "
                     f"TRAPWRITE (pythonIOC's default rules do), with the client's IP address; "
                     f"write TRAPWRITE in the WRITE rules of your own access security file, "
                     f"if you load one")

    def _missing_attribute(self, node: ast.Attribute, scope: _Scope) -> None:
        base = _qualname(node.value, scope)
        if base in MISSING:
            self._missing(node, base, node.attr)

    def _missing(self, node: ast.AST, module: str, name: str, what: str = "") -> None:
        entry = MISSING.get(module, {}).get(name)
        if entry is not None:
            what = what or self._src(node)
            was, instead = entry
            full = f"{module}.{name}"
            was = was if what == full else f"{full}, {was}"
            self._report(node, "missing-name",
                         f"{what}: pythonSoftIOC: {was}; here: not provided (AttributeError or "
                         f"ImportError); {instead}")

    # -- calls

    def _call(self, call: ast.Call, scope: _Scope) -> None:
        target = _qualname(call.func, scope)
        if target is not None and target.startswith("softioc.builder."):
            maker = target[len("softioc.builder."):]
            if maker in OLD_POSITIONAL:
                self._positional(call, scope, maker)
            if maker in _INPUT_MAKERS:
                self._input_alarm(call, scope)
            if maker in _LONG_STRINGS:
                self._long_string(call, scope)
            if maker == "WriteRecords":
                self._report(call, "write-records",
                             f"{self._src(call.func)}(...): pythonSoftIOC: writes every record "
                             f"made, also after LoadDatabase(); here: the records not yet "
                             f"loaded (none after LoadDatabase()), fields in another order; "
                             f"write the call before builder.LoadDatabase(), and do not compare "
                             f"the file's text with pythonSoftIOC's")
        elif target == "epicsdbbuilder.WriteRecords" and self.imports_softioc:
            self._report(call, "write-records",
                         f"{self._src(call.func)}(...): pythonSoftIOC: builder records are "
                         f"epicsdbbuilder records, so they are written too; here: only "
                         f"builder.records (epicsdbbuilder) records are; write "
                         f"builder.WriteRecords(...) before builder.LoadDatabase()")
        elif isinstance(call.func, ast.Attribute) and call.func.attr == "set" and \
                self.imports_softioc:
            receiver = _qualname(call.func.value, scope)
            if receiver is None or receiver.startswith("softioc"):
                self._set_no_process(call, scope)

    def _keywords(self, call: ast.Call, scope: _Scope
                  ) -> tuple[dict[str, ast.expr], dict[str, tuple[ast.expr, str]], bool]:
        """The call's keywords, those its ``**`` splats may add (with the
        splat's text), and whether the splats' keys are all known."""
        given = {k.arg: k.value for k in call.keywords if k.arg is not None}
        maybe: dict[str, tuple[ast.expr, str]] = {}
        complete = True
        for k in call.keywords:
            if k.arg is not None:
                continue
            text = f"**{self._src(k.value, 30)}"
            if isinstance(k.value, ast.Dict):
                keys, known = _dict_literal(k.value)
            elif isinstance(k.value, ast.Name):
                keys, known = self._dict_built(k.value.id, call, scope)
            else:
                keys, known = {}, False
            maybe.update((key, (value, text)) for key, value in keys.items())
            complete = complete and known
        return given, maybe, complete

    def _positional(self, call: ast.Call, scope: _Scope, maker: str) -> None:
        """Values after the name of aIn & co: fields there, the initial value here."""
        if not call.args or isinstance(call.args[0], ast.Starred):
            return
        after = call.args[1:]
        fixed: list[ast.expr] = []
        for arg in after:
            if isinstance(arg, ast.Starred):
                break
            fixed.append(arg)
        star = next((a for a in after if isinstance(a, ast.Starred)), None)
        fields = OLD_POSITIONAL[maker]
        given, _, _ = self._keywords(call, scope)
        n = len(fixed)
        if n == 0 or n > len(fields) or any(f in given for f in fields[:n]):
            return      # nothing to check, or pythonSoftIOC raises TypeError as well
        values = [_literal(a) for a in fixed]
        if any(v is not _UNKNOWN and not _field_takes(maker, f, v)
               for f, v in zip(fields, values)):
            return      # pythonSoftIOC refuses that field value too
        func, name = self._src(call.func), self._src(call.args[0])
        texts = [self._src(a) for a in fixed]
        more = ", ..." if call.keywords or star is not None else ""
        what = f"{func}({name}, {', '.join(texts)}{more})"
        as_fields = ", ".join(f"{f}={t}" for f, t in zip(fields, texts))
        if n == 1 and star is None:
            value, text = values[0], texts[0]
            if value is None:
                return      # LOPR=None is no field, initial value None is none: the same
            if "initial_value" in given:
                here = "an error (the initial value is given twice)"
                write = f"write {func}({name}, {as_fields}{more})"
            elif value is not _UNKNOWN and not _initial_takes(maker, value):
                here = f"an error ({text} cannot be the initial value)"
                write = f"write {func}({name}, {as_fields}{more})"
            else:
                here = f"initial value {text}"
                write = (f"write {func}({name}, {as_fields}{more}) or "
                         f"{func}({name}, initial_value={text}{more})")
            self._report(call, "positional-value",
                         f"{what}: pythonSoftIOC: {as_fields}; here: {here}; {write}")
            return
        theirs = as_fields
        here = "TypeError (only the initial value may follow the name)"
        if star is not None:
            rest = self._src(star)
            theirs += f", then fields from {rest}"
            if n == 1:
                here = (f"initial value {texts[0]}, and TypeError if {rest} "
                        f"is not empty")
        self._report(call, "positional-values",
                     f"{what}: pythonSoftIOC: {theirs}; here: {here}; write the fields as "
                     f"keywords: {func}({name}, {as_fields}{more})")

    def _input_alarm(self, call: ast.Call, scope: _Scope) -> None:
        """status=/severity= on input records: cleared by PINI there, kept here."""
        given, maybe, _ = self._keywords(call, scope)
        values = {k: given[k] if k in given else maybe[k][0]
                  for k in ("status", "severity") if k in given or k in maybe}
        if not values or all(_is_no_alarm(v) for v in values.values()):
            return
        if "PINI" in given or "PINI" in maybe:
            return      # PINI="NO" keeps the alarm there too; another PINI cannot be told
        func = self._src(call.func)
        name = self._src(call.args[0]) if call.args else "..."
        keys = ", ".join(f"{k}={self._src(v)}" for k, v in values.items())
        self._report(call, "input-alarm",
                     f"{func}({name}, ..., {keys}): pythonSoftIOC: writes the STAT/SEVR "
                     f"fields, which the record's first processing (PINI) clears, so it "
                     f"starts without an alarm; here: it starts in that alarm; write nothing "
                     f"if the alarm is meant, else drop {'/'.join(f'{k}=' for k in values)}")

    def _long_string(self, call: ast.Call, scope: _Scope) -> None:
        """Long strings sized by the initial text there, 256 bytes or more here."""
        if len(call.args) != 1 or isinstance(call.args[0], ast.Starred):
            return      # pythonSoftIOC takes only the name positionally
        given, maybe, complete = self._keywords(call, scope)
        if "length" in given or "length" in maybe or not complete:
            return

        def get(key: str) -> ast.expr | None:
            return given[key] if key in given else maybe[key][0] if key in maybe else None

        initial, nelm = get("initial_value"), get("NELM")
        text = _literal(initial) if initial is not None else _UNKNOWN
        if initial is not None and (text is None or (text is not _UNKNOWN and
                                                     not isinstance(text, str))):
            return      # None or a non-text: pythonSoftIOC fails on it
        theirs_n: int | None = len(text.encode("utf-8", "replace")) + 1 \
            if isinstance(text, str) else 256 if initial is None else None
        what = f"{self._src(call.func)}({self._src(call.args[0])}, ...)"
        if nelm is not None:
            nelm_text = self._src(nelm)
            if theirs_n is not None and _literal(nelm) == theirs_n:
                return
            theirs = f"NELM={theirs_n}" if theirs_n is not None else \
                "NELM = the initial text's length in bytes + 1"
            self._report(call, "long-string-length",
                         f"{what}: pythonSoftIOC: NELM={nelm_text} is ignored: {theirs}; here: "
                         f"NELM={nelm_text}; write length={nelm_text}, which both read")
        elif initial is not None:
            if theirs_n is not None:
                if theirs_n >= 256:
                    return
                self._report(call, "long-string-length",
                             f"{what}: pythonSoftIOC: NELM={theirs_n} (the initial text and "
                             f"its NUL: no longer text fits); here: NELM=256; write "
                             f"length={theirs_n} for pythonSoftIOC's size, or the length the "
                             f"longest text needs")
            else:
                self._report(call, "long-string-length",
                             f"{what}: pythonSoftIOC: NELM = the initial text's length in "
                             f"bytes + 1 (no longer text fits); here: NELM=256, or more for a "
                             f"longer initial text; write length= the longest text's length "
                             f"+ 1, which both read")

    def _set_no_process(self, call: ast.Call, scope: _Scope) -> None:
        """set(value, process=False): 4.7.2 does not post monitors, we do."""
        given, maybe, _ = self._keywords(call, scope)
        where = ""
        if "process" in given:
            value = given["process"]
        elif "process" in maybe:
            value, where = maybe["process"][0], f" (from {maybe['process'][1]})"
        elif len(call.args) >= 2 and _literal(call.args[1]) is False:
            value = call.args[1]
        else:
            return
        literal = _literal(value)
        if literal is not _UNKNOWN and literal:
            return
        positional = len(call.args) >= 2 and value is call.args[1]
        shown = "False" if positional else f"process={self._src(value)}"
        when = "" if literal is not _UNKNOWN else f" when {self._src(value)} is false"
        self._report(call, "set-no-process",
                     f"{self._src(call.func)}(..., {shown}){where}: pythonSoftIOC 4.7.2{when}: "
                     f"the value changes but monitors are not sent it (4.7.0 sent it); here: "
                     f"monitors get the new value, and the record is still not processed (no "
                     f"on_update); write nothing, unless clients must not see values set this "
                     f"way")

    # -- dicts passed as **name

    def _dict_built(self, name: str, call: ast.Call, scope: _Scope
                    ) -> tuple[dict[str, ast.expr], bool]:
        """Keys the dict ``name`` may hold at ``call``, from the statements of
        the same scope that can run before it, and whether those are all."""
        if name not in scope.bound or name in scope.params or name in scope.elsewhere:
            return {}, False
        keys: dict[str, ast.expr] = {}
        complete = True
        for node in self.scope_nodes.get(id(scope.node), []):
            stored = isinstance(node, ast.Name) and node.id == name and \
                not isinstance(node.ctx, ast.Load)
            if stored and _dict_step(self._statement(node), name) is None and \
                    self._reaches(node, call):
                complete = False        # bound some other way (import, walrus...)
            found = _dict_step(node, name)
            if found is None or not self._reaches(node, call):
                continue
            step_keys, known = found
            keys.update(step_keys)
            complete = complete and known
        return keys, complete

    def _statement(self, node: ast.AST) -> ast.AST:
        while not isinstance(node, ast.stmt) and id(node) in self.parents:
            node = self.parents[id(node)]
        return node

    def _ancestors(self, node: ast.AST) -> list[ast.AST]:
        chain = [node]
        while id(chain[-1]) in self.parents:
            chain.append(self.parents[id(chain[-1])])
        return chain

    def _reaches(self, node: ast.AST, call: ast.Call) -> bool:
        """Whether ``node`` (a statement or name) may run before ``call``:
        not in another branch of an if, match or try, nor after it outside a loop."""
        stmt, at = self._statement(node), self._statement(call)
        ours, theirs = self._ancestors(stmt), self._ancestors(at)
        index = {id(n): i for i, n in enumerate(theirs)}
        i = next(i for i, n in enumerate(ours) if id(n) in index)
        common, j = ours[i], index[id(ours[i])]
        if i > 0 and j > 0:
            a, b = ours[i - 1], theirs[j - 1]
            if isinstance(common, ast.If) and (a in common.body) != (b in common.body) and \
                    a is not common.test and b is not common.test:
                return False
            if type(common).__name__ == "Match" and a is not b and \
                    a in getattr(common, "cases", ()) and b in getattr(common, "cases", ()):
                return False
            if isinstance(common, ast.Try) and a is not b:
                handlers = (a in common.handlers) + (b in common.handlers)
                if handlers == 2 or (handlers == 1 and (a in common.orelse or
                                                        b in common.orelse)):
                    return False
        if getattr(stmt, "lineno", 0) > getattr(at, "end_lineno", 0):
            for n in ours[i:]:          # after the call: only in a loop around both
                if isinstance(n, (*_FUNCTIONS, ast.ClassDef, ast.Module)):
                    return False
                if isinstance(n, (ast.For, ast.AsyncFor, ast.While)):
                    return True
            return False
        return True


def _dict_literal(node: ast.Dict) -> tuple[dict[str, ast.expr], bool]:
    keys: dict[str, ast.expr] = {}
    complete = True
    for key, value in zip(node.keys, node.values):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys[key.value] = value
        else:
            complete = False
    return keys, complete


def _dict_step(node: ast.AST, name: str) -> tuple[dict[str, ast.expr], bool] | None:
    """What statement ``node`` puts in the dict ``name``: (keys, all known),
    or None if it does not touch it."""
    def is_name(n: ast.AST | None) -> bool:
        return isinstance(n, ast.Name) and n.id == name

    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and is_name(target.value):
                key = target.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    return {key.value: node.value} if node.value else {}, True
                return {}, False
        if not any(is_name(t) for t in targets):
            if any(is_name(n) for t in targets for n in ast.walk(t)):
                return {}, False        # unpacked into: unknown
            return None
        value = node.value
        if isinstance(value, ast.Dict):
            return _dict_literal(value)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and \
                value.func.id == "dict" and not value.args:
            return _keywords_of(value)
        return {}, False
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        if isinstance(call.func, ast.Attribute) and is_name(call.func.value):
            if call.func.attr == "update":
                keys, complete = _keywords_of(call)
                for arg in call.args:
                    if isinstance(arg, ast.Dict):
                        more, known = _dict_literal(arg)
                        keys.update(more)
                        complete = complete and known
                    else:
                        complete = False
                return keys, complete
            if call.func.attr == "setdefault" and call.args:
                key = call.args[0]
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    return {key.value: call.args[1] if len(call.args) > 1 else key}, True
                return {}, False
        return None
    if isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
        targets = [node.target] if isinstance(node, (ast.For, ast.AsyncFor)) else \
            [i.optional_vars for i in node.items if i.optional_vars]
        if any(is_name(n) for t in targets for n in ast.walk(t)):
            return {}, False
    return None


def _keywords_of(call: ast.Call) -> tuple[dict[str, ast.expr], bool]:
    keys = {k.arg: k.value for k in call.keywords if k.arg is not None}
    return keys, all(k.arg is not None for k in call.keywords)


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
