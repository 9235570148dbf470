"""What each name of a module refers to, scope by scope, for ``pythonioc
migrate-check``: ``softioc`` imports followed through Python's scopes and
plain assignments; a name bound to anything else as well is unknown."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Union

from .rules import STAR

__all__ = ["Scope", "FUNCTIONS", "children", "bind", "qualname"]


@dataclass(frozen=True)
class _Alias:
    """``name = <expr>``: the name is what ``expr`` is."""

    expr: ast.expr
    scope: Scope


# A binding: an import's dotted target, an alias, or None (anything else).
_Binding = Union[str, _Alias, None]
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


class Scope:
    """The names one module, class, function or comprehension binds."""

    def __init__(self, node: ast.AST, parent: Scope | None) -> None:
        self.node = node
        self.parent = parent
        self.bound: dict[str, list[_Binding]] = {}
        self.star: dict[str, str] = {}
        self.params: set[str] = set()
        self.elsewhere: dict[str, Scope] = {}    # global and nonlocal names: their scope
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


def children(node: ast.AST, scope: Scope) -> list[tuple[ast.AST, Scope]]:
    """The node's children, each with the scope it is evaluated in."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        inner = Scope(node, scope)
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
        inner = Scope(node, scope)
        outer = [*node.decorator_list, *node.bases, *node.keywords]
        return [(n, scope) for n in outer] + [(n, inner) for n in node.body]
    if isinstance(node, _COMPREHENSIONS):
        inner = Scope(node, scope)
        first, *rest = node.generators
        pairs: list[tuple[ast.AST, Scope]] = [(first.iter, scope), (first.target, inner)]
        pairs += [(n, inner) for n in first.ifs]
        pairs += [(g, inner) for g in rest]
        results = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        return pairs + [(n, inner) for n in results]
    return [(child, scope) for child in ast.iter_child_nodes(node)]


def bind(node: ast.AST, scope: Scope, ignored: set[int]) -> None:
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
                for name in STAR.get(node.module, ()):
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


def _lookup(name: str, scope: Scope) -> str | None:
    """The dotted target ``name`` refers to in ``scope``, if it is certain."""
    current: Scope | None = scope
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
    targets = {qualname(b.expr, b.scope) if isinstance(b, _Alias) else b for b in bindings}
    return targets.pop() if len(targets) == 1 else None


def qualname(expr: ast.expr, scope: Scope) -> str | None:
    """``softioc.builder.aIn`` for ``builder.aIn`` after ``from softioc import builder``."""
    if isinstance(expr, ast.Name):
        return _lookup(expr.id, scope)
    if isinstance(expr, ast.Attribute):
        base = qualname(expr.value, scope)
        return f"{base}.{expr.attr}" if base else None
    return None


