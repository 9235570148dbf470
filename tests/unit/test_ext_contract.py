"""_ext.pyi declares the C layer's calls into Python (RecordHooks,
OutputHooks); the record classes implement each with the same parameters.
(mypy cannot check this: records answer any attribute, for field access.)"""

import ast
import inspect
import re
from pathlib import Path

import pytest

import softioc
from softioc import _record

PYI = Path(softioc.__file__).with_name("_ext.pyi")


def declared(protocol: str) -> dict[str, list[str]]:
    tree = ast.parse(PYI.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    methods = {}
    for base in [b.id for b in classes[protocol].bases if isinstance(b, ast.Name)]:
        if base in classes:
            methods.update(declared(base))
    for node in classes[protocol].body:
        if isinstance(node, ast.FunctionDef):
            methods[node.name] = [a.arg for a in node.args.args]
    return methods


@pytest.mark.parametrize("protocol, cls", [("RecordHooks", _record.Record),
                                           ("OutputHooks", _record.OutRecord),
                                           ("OutputHooks", _record.ArrayOutRecord),
                                           ("OutputHooks", _record.LongStringOut)])
def test_records_implement_what_c_calls(protocol, cls):
    methods = declared(protocol)
    assert {"_preinit_set", "_on_field_write"} <= set(methods)
    for name, params in methods.items():
        method = inspect.getattr_static(cls, name, None)
        assert callable(method), f"{cls.__name__} lacks {name}, which C calls"
        assert list(inspect.signature(method).parameters) == params, (cls, name)


def test_c_calls_only_declared_hooks():
    """Every method name the C sources call on a record is declared."""
    sources = Path(__file__).parents[2] / "src" / "softioc" / "_ext"
    if not sources.is_dir():
        pytest.skip(f"needs the C sources ({sources}): run it in a source checkout "
                    "(.ci/run runs it in the clone, step 4)")
    text = "".join(p.read_text() for p in sources.glob("*.c"))
    called = set(re.findall(r'InternFromString\("(_[a-z_]+)"\)', text))
    called |= set(re.findall(r'CallMethod\(\(PyObject \*\)\w+, "(_[a-z_]+)"', text))
    assert len(called) >= 6, called
    assert called == set(declared("OutputHooks")), called


def test_every_c_function_is_declared_in_the_stub():
    """module.c's table and _ext.pyi (which documents each) name the same functions."""
    from softioc import _ext

    tree = ast.parse(PYI.read_text())
    stub = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    functions = {name for name in dir(_ext)
                 if not name.startswith("_") and callable(getattr(_ext, name))
                 and not isinstance(getattr(_ext, name), type)}
    assert functions == stub
