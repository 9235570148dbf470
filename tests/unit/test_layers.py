"""Only the core imports the C layer: the rest of softioc reaches it through
softioc._core (import-linter cannot check this: grimp reads only Python
files, and the C extensions are none).  Reads the package's sources with ast;
nothing is imported or run."""

import ast
from pathlib import Path

import softioc

PACKAGE = Path(softioc.__file__).parent

# The core (see softioc._core's description) and the C layer's modules.
CORE = {"_core", "_ioc", "_lifecycle", "_database", "_record", "_links", "_dispatch", "_wakeup",
        "_dso", "_status"}
C_LAYER = {"_ext", "_pvaserver", "_qsrvguard"}


def imports_of(source: str, package: tuple[str, ...]) -> set[str]:
    """The softioc modules a source imports, anywhere in it, as names under
    softioc ("_ext", "_core.ioc"...); ``package``: the subpackage it is in
    (``()`` for softioc itself)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(["softioc", *base, *([module] if module else [])])
            names = [module, *(f"{module}.{a.name}" for a in node.names)]
        else:
            continue
        found.update(n[len("softioc."):] for n in names if n.startswith("softioc."))
    return found


def modules() -> dict[str, tuple[Path, tuple[str, ...]]]:
    """Each module's name under softioc: its file and the subpackage it is in."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        package = parts[:-1]
        found[".".join(package if parts[-1] == "__init__" else parts)] = (path, package)
    return found


def test_only_the_core_imports_the_c_layer():
    wrong = {}
    for name, (path, package) in modules().items():
        if name in CORE:
            continue
        source = path.read_text()
        # (also through the core: "from softioc._core import _ext", "_core._ext")
        c_modules = {m for m in imports_of(source, package) if set(m.split(".")) & C_LAYER}
        c_modules |= {f"{node.value.id}.{node.attr}" for node in ast.walk(ast.parse(source))
                      if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                      and node.value.id in CORE and node.attr in C_LAYER}
        if c_modules:
            wrong[name] = sorted(c_modules)
    assert not wrong, f"import the C layer through softioc._core instead: {wrong}"


def test_the_check_sees_every_form_of_import():
    source = ("from . import _ext\nfrom ._pvaserver import x\nimport softioc._qsrvguard\n"
              "def f():\n    from softioc import _core\n")
    found = {m.split(".")[0] for m in imports_of(source, ())}
    assert {"_ext", "_pvaserver", "_qsrvguard", "_core"} <= found
    assert imports_of("from .. import _ext\n", ("_migrate",)) >= {"_ext"}
    assert imports_of("from .rules import RULES\n", ("_migrate",)) >= {"_migrate.rules"}
    assert modules()["_core"][1] == ()


def test_the_interface_hands_out_no_core_module():
    """``from softioc._core import _lifecycle`` would get round the
    'interface' import contract (grimp sees an import of _core only)."""
    wrong = {}
    for name, (path, package) in modules().items():
        if name in CORE:
            continue
        through = {m for m in imports_of(path.read_text(), package)
                   if m.startswith("_core.") and m.split(".")[1] in CORE | C_LAYER}
        if through:
            wrong[name] = sorted(through)
    assert not wrong, wrong
