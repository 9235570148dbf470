"""The check of one module's tree for ``pythonioc migrate-check``: each
call, attribute and import whose meaning differs, reported as a `Finding`."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from .names import FUNCTIONS, Scope, bind, children, qualname
from .rules import (
    INPUT_MAKERS,
    LONG_STRINGS,
    MISSING,
    OLD_POSITIONAL,
    RULE_NAMES,
    field_takes,
    initial_takes,
)

__all__ = ["Checker", "Finding"]


@dataclass(frozen=True)
class Finding:
    """One construct that acts differently here."""

    line: int
    col: int
    rule: str
    message: str


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


def _is_no_alarm(node: ast.expr) -> bool:
    value = _literal(node)
    if value is not _UNKNOWN:
        return bool(value == 0)
    return isinstance(node, (ast.Name, ast.Attribute)) and \
        (node.id if isinstance(node, ast.Name) else node.attr) == "NO_ALARM"


class Checker:
    """Walks one module's tree and collects its findings."""

    def __init__(self, source: str, tree: ast.Module) -> None:
        self.source = source
        self.tree = tree
        self.parents: dict[int, ast.AST] = {}
        self.nodes: list[tuple[ast.AST, Scope]] = []
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
        stack: list[tuple[ast.AST, Scope]] = [(self.tree, Scope(self.tree, None))]
        while stack:
            node, scope = stack.pop()
            self.nodes.append((node, scope))
            self.scope_nodes.setdefault(id(scope.node), []).append(node)
            bind(node, scope, ignored)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if not node.level else []
                if any(m == "softioc" or m.startswith("softioc.") for m in modules):
                    self.imports_softioc = True
            below = children(node, scope)
            for child, _ in below:
                self.parents[id(child)] = node
            stack.extend(reversed(below))

    def _report(self, node: ast.AST, rule: str, what: str, theirs: str, here: str, write: str,
                version: str = "") -> None:
        """A finding at ``node``: ``what`` the code says, what pythonSoftIOC
        (``version``) and pythonIOC do with it, and what to ``write``."""
        assert rule in RULE_NAMES
        message = f"{what}: pythonSoftIOC{version}: {theirs}; here: {here}; {write}"
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
        self._report(node, "pvlog", what,
                     "installs its own access security file (any client may write) and "
                     "prints each put with the CA client's host name",
                     "your access rules stay, and puts are printed where they say TRAPWRITE "
                     "(pythonIOC's default rules do), with the client's IP address "
                     "(strict puts on)",
                     "write TRAPWRITE in the WRITE rules of your own access security file, "
                     "if you load one")

    def _missing_attribute(self, node: ast.Attribute, scope: Scope) -> None:
        base = qualname(node.value, scope)
        if base in MISSING:
            self._missing(node, base, node.attr)

    def _missing(self, node: ast.AST, module: str, name: str, what: str = "") -> None:
        entry = MISSING.get(module, {}).get(name)
        if entry is not None:
            what = what or self._src(node)
            was, instead = entry
            full = f"{module}.{name}"
            was = was if what == full else f"{full}, {was}"
            self._report(node, "missing-name", what, was,
                         "not provided (AttributeError or ImportError)", instead)

    # -- calls

    def _call(self, call: ast.Call, scope: Scope) -> None:
        target = qualname(call.func, scope)
        if target is not None and target.startswith("softioc.builder."):
            maker = target[len("softioc.builder."):]
            if maker in OLD_POSITIONAL:
                self._positional(call, scope, maker)
            if maker in INPUT_MAKERS:
                self._input_alarm(call, scope)
            if maker in LONG_STRINGS:
                self._long_string(call, scope)
            if maker == "WriteRecords":
                self._report(call, "write-records", f"{self._src(call.func)}(...)",
                             "writes every record made, also after LoadDatabase()",
                             "the records not yet loaded (none after LoadDatabase()), fields "
                             "in another order",
                             "write the call before builder.LoadDatabase(), and do not compare "
                             "the file's text with pythonSoftIOC's")
        elif target == "epicsdbbuilder.WriteRecords" and self.imports_softioc:
            self._report(call, "write-records", f"{self._src(call.func)}(...)",
                         "builder records are epicsdbbuilder records, so they are written too",
                         "only builder.records (epicsdbbuilder) records are",
                         "write builder.WriteRecords(...) before builder.LoadDatabase()")
        elif isinstance(call.func, ast.Attribute) and call.func.attr == "set" and \
                self.imports_softioc:
            receiver = qualname(call.func.value, scope)
            if receiver is None or receiver.startswith("softioc"):
                self._set_no_process(call, scope)

    def _keywords(self, call: ast.Call, scope: Scope
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

    def _positional(self, call: ast.Call, scope: Scope, maker: str) -> None:
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
        if any(v is not _UNKNOWN and not field_takes(maker, f, v)
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
            elif value is not _UNKNOWN and not initial_takes(maker, value):
                here = f"an error ({text} cannot be the initial value)"
                write = f"write {func}({name}, {as_fields}{more})"
            else:
                here = f"initial value {text}"
                write = (f"write {func}({name}, {as_fields}{more}) or "
                         f"{func}({name}, initial_value={text}{more})")
            self._report(call, "positional-value", what, as_fields, here, write)
            return
        theirs = as_fields
        here = "TypeError (only the initial value may follow the name)"
        if star is not None:
            rest = self._src(star)
            theirs += f", then fields from {rest}"
            if n == 1:
                here = (f"initial value {texts[0]}, and TypeError if {rest} "
                        f"is not empty")
        self._report(call, "positional-values", what, theirs, here,
                     f"write the fields as keywords: {func}({name}, {as_fields}{more})")

    def _input_alarm(self, call: ast.Call, scope: Scope) -> None:
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
        self._report(call, "input-alarm", f"{func}({name}, ..., {keys})",
                     "writes the STAT/SEVR fields, which the record's first processing "
                     "(PINI) clears, so it starts without an alarm", "it starts in that alarm",
                     f"write nothing if the alarm is meant, else drop "
                     f"{'/'.join(f'{k}=' for k in values)}")

    def _long_string(self, call: ast.Call, scope: Scope) -> None:
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
            self._report(call, "long-string-length", what,
                         f"NELM={nelm_text} is ignored: {theirs}", f"NELM={nelm_text}",
                         f"write length={nelm_text}, which both read")
        elif initial is not None:
            if theirs_n is not None:
                if theirs_n >= 256:
                    return
                self._report(call, "long-string-length", what,
                             f"NELM={theirs_n} (the initial text and its NUL: no longer text "
                             f"fits)", "NELM=256",
                             f"write length={theirs_n} for pythonSoftIOC's size, or the length "
                             f"the longest text needs")
            else:
                self._report(call, "long-string-length", what,
                             "NELM = the initial text's length in bytes + 1 (no longer text "
                             "fits)", "NELM=256, or more for a longer initial text",
                             "write length= the longest text's length + 1, which both read")

    def _set_no_process(self, call: ast.Call, scope: Scope) -> None:
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
        self._report(call, "set-no-process", f"{self._src(call.func)}(..., {shown}){where}",
                     "the value changes but monitors are not sent it (4.7.0 sent it)",
                     "monitors get the new value, and the record is still not processed (no "
                     "on_update)", "write nothing, unless clients must not see values set "
                     "this way", version=f" 4.7.2{when}")

    # -- dicts passed as **name

    def _dict_built(self, name: str, call: ast.Call, scope: Scope
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
                if isinstance(n, (*FUNCTIONS, ast.ClassDef, ast.Module)):
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


