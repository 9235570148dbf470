"""``pythonioc migrate-check``: pythonSoftIOC code that acts differently here,
found without running it.  The command runs as a subprocess on files written
here; each expected finding is marked in its file with ``# expect: RULE``."""

import importlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from softioc import _migrate

ROOT = Path(__file__).resolve().parents[2]


def check(*paths, cwd=None, script=False):
    """Run the command (``pythonioc`` itself if ``script``) on ``paths``."""
    if script:
        exe = shutil.which("pythonioc", path=os.path.dirname(sys.executable)) or \
            shutil.which("pythonioc")
        if exe is None:
            pytest.skip("the pythonioc console script is not installed")
        argv = [exe, "migrate-check", *map(str, paths)]
    else:
        argv = [sys.executable, "-m", "softioc", "migrate-check", *map(str, paths)]
    return subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)


def write(directory, name, text):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def expected(*paths):
    """(file, line, rule) for each ``# expect: RULE`` comment."""
    marks = set()
    for path in paths:
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            m = re.search(r"# expect: ([\w-]+)", line)
            if m:
                marks.add((str(path), number, m.group(1)))
    return marks


def found(stdout):
    """(file, line, rule) for each finding the command printed."""
    hits = set()
    for line in stdout.splitlines():
        m = re.fullmatch(r"(.+?):(\d+): .+ \[([\w-]+)\]", line)
        assert m, f"not FILE:LINE: message [rule]: {line!r}"
        hits.add((m.group(1), int(m.group(2)), m.group(3)))
    return hits


EVERY_RULE = """\
from softioc import alarm, builder
import epicsdbbuilder

builder.aIn("T", 5)                                  # expect: positional-value
builder.aOut("H", 0, EGU="W")                        # expect: positional-value
builder.int64Out("I", -3)                            # expect: positional-value
builder.boolOut("Q", "Zero")                         # expect: positional-value
builder.boolIn("B", 2)                               # expect: positional-value
builder.aIn("S", "5")                                # expect: positional-value
builder.aIn("D", 5, initial_value=3)                 # expect: positional-value
builder.aOut("L", 0, 100)                            # expect: positional-values
builder.longIn("C", 0, 100, "counts")                # expect: positional-values
builder.boolIn("SW",                                 # expect: positional-values
               "Off", "On")


def limits(*more):
    builder.aIn("M", 0, *more)                       # expect: positional-values


builder.aIn("A", status=alarm.HIGH_ALARM)            # expect: input-alarm
builder.mbbIn("E", "a", "b", severity=alarm.MINOR_ALARM)  # expect: input-alarm
builder.longStringIn("LS", initial_value="abc")      # expect: long-string-length
builder.longStringOut("LN", NELM=100)                # expect: long-string-length
builder.WriteRecords("records.db")                   # expect: write-records
epicsdbbuilder.WriteRecords("records.db")            # expect: write-records
builder.ResetRecords()                               # expect: missing-name


def mirror(record, value, flag):
    record.set(value, process=False)                 # expect: set-no-process
    record.set(value, False)                         # expect: set-no-process
    record.set(value, process=flag)                 # expect: set-no-process
    extra = {}
    if flag:
        extra.update({"process": False})
    record.set(value, **extra)                       # expect: set-no-process
"""

MORE_MISSING = """\
import softioc.imports
import softioc.pvlog                                 # expect: pvlog
from softioc import device, fields
from softioc.imports import create_callback_capsule  # expect: missing-name
from softioc.device_core import RecordFactory        # expect: missing-name

softioc.imports.get_field_offsets                    # expect: missing-name
device.ai                                            # expect: missing-name
fields.RecordFactory                                 # expect: missing-name
"""


def test_every_rule_is_found_at_its_line(tmp_path):
    files = [write(tmp_path, "old_ioc.py", EVERY_RULE),
             write(tmp_path, "internals.py", MORE_MISSING)]
    result = check(*files)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    assert found(result.stdout) == expected(*files)
    assert {rule for _, _, rule in found(result.stdout)} == {r.name for r in _migrate.RULES}


def test_messages_say_what_pythonsoftioc_did_what_happens_here_and_what_to_write(tmp_path):
    path = write(tmp_path, "x.py", """\
        from softioc import builder
        builder.aIn("X", 5)
        builder.aOut("Y", 0, 10)
        builder.boolOut("Z", "Zero")
        """)
    lines = check(path).stdout.splitlines()
    assert lines == [
        f'{path}:2: builder.aIn("X", 5): pythonSoftIOC: LOPR=5; here: initial value 5; '
        f'write builder.aIn("X", LOPR=5) or builder.aIn("X", initial_value=5) '
        f'[positional-value]',
        f'{path}:3: builder.aOut("Y", 0, 10): pythonSoftIOC: DRVL=0, DRVH=10; here: TypeError '
        f'(only the initial value may follow the name); write the fields as keywords: '
        f'builder.aOut("Y", DRVL=0, DRVH=10) [positional-values]',
        f'{path}:4: builder.boolOut("Z", "Zero"): pythonSoftIOC: ZNAM="Zero"; here: an error '
        f'("Zero" cannot be the initial value); write builder.boolOut("Z", ZNAM="Zero") '
        f'[positional-value]',
    ]


def test_messages_quote_the_source_as_written(tmp_path):
    path = write(tmp_path, "x.py", """\
        from softioc import builder
        température = "°C"; builder.aIn("TEMPÉRATURE", 5, EGU=température)
        builder.aOut(
            "SPEED",
            -1.5,
        )
        """)
    first, second = check(path).stdout.splitlines()
    assert first.startswith(f'{path}:2: builder.aIn("TEMPÉRATURE", 5, ...): pythonSoftIOC: '
                            f'LOPR=5; here: initial value 5; write builder.aIn("TEMPÉRATURE", '
                            f'LOPR=5, ...)')
    assert second.startswith(f'{path}:3: builder.aOut("SPEED", -1.5): pythonSoftIOC: DRVL=-1.5;')


def test_code_that_means_the_same_gives_nothing(tmp_path):
    path = write(tmp_path, "new_ioc.py", """\
        from softioc import alarm, builder, softioc
        from softioc.builder import *

        builder.aIn("A", LOPR=0, HOPR=10, EGU="mA", PREC=2)
        builder.aOut("B", initial_value=0, DRVL=-5, DRVH=5)
        builder.boolIn("C", ZNAM="Off", ONAM="On")
        aIn("D", initial_value=1.5)
        builder.aIn("E", None)                  # LOPR=None there, no initial value here
        builder.aIn("F", "V")                   # refused by pythonSoftIOC too
        builder.aIn("G", True)                  # LOPR=True: refused there
        builder.longIn("H", 2.5)                # LOPR must be an integer there
        builder.aIn("I", 5, LOPR=0)             # TypeError there: LOPR twice
        builder.aIn("J", 1, 2, "mA", 3, 4)      # TypeError on both
        builder.aOut("K", status=alarm.MAJOR_ALARM)   # refused on both
        builder.aIn("L", severity=alarm.MINOR_ALARM, PINI="NO")
        builder.aIn("M", status=alarm.NO_ALARM)
        builder.mbbOut("N", "Off", "On")         # options: the same on both
        builder.WaveformIn("O", [1, 2, 3])
        builder.stringIn("P", initial_value="text")
        builder.longStringIn("Q", initial_value="x", length=40)
        builder.longStringOut("R")
        builder.Action("S", on_update=print)

        def f(*args, **kwargs):
            builder.aIn("T", *args)             # *args: cannot be told
            builder.aIn("U", **kwargs)
            builder.longStringIn("V", initial_value="x", **kwargs)

        def g(record):
            record.set(1)
            record.set(1, process=True)
            record.set(1, alarm.MINOR_ALARM)

        builder.LoadDatabase()
        softioc.iocInit()
        softioc.dbl()
        softioc.interactive_ioc(globals())
        softioc.non_interactive_ioc()
        """)
    result = check(path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


IMPORT_STYLES = {
    "plain.py": """\
        from softioc import builder
        builder.aIn("X", 5)                 # expect: positional-value
        """,
    "function.py": """\
        from softioc.builder import aIn
        aIn("X", 5)                         # expect: positional-value
        """,
    "module_alias.py": """\
        import softioc.builder as b
        b.aIn("X", 5)                       # expect: positional-value
        """,
    "from_alias.py": """\
        from softioc import builder as b
        b.aOut("X", 5)                      # expect: positional-value
        """,
    "star.py": """\
        from softioc.builder import *
        aIn("X", 5)                         # expect: positional-value
        """,
    "dotted.py": """\
        import softioc.builder
        softioc.builder.longIn("X", 5)      # expect: positional-value
        """,
    "renamed_function.py": """\
        from softioc.builder import boolOut as make
        make("X", 1)                        # expect: positional-value
        """,
    "assigned.py": """\
        from softioc import builder
        make = builder.aIn
        make("X", 5)                        # expect: positional-value
        """,
    "in_function.py": """\
        def build():
            from softioc import builder
            builder.aIn("X", 5)             # expect: positional-value
        """,
    "fallback.py": """\
        try:
            from softioc import builder
        except ImportError:
            builder = None
        builder.aIn("X", 5)                 # expect: positional-value
        """,
}

NOT_BUILDER = {
    "other_object.py": """\
        from softioc import builder
        something = object()
        something.aIn("X", 5)
        builder.records.ai("Y", LOPR=5)
        """,
    "other_module.py": """\
        import mylib.builder as builder
        from otherlib import aIn
        builder.aIn("X", 5)
        aIn("Y", 5)
        """,
    "parameter.py": """\
        from softioc import builder
        def make(builder):
            builder.aIn("X", 5)
        def make2(aIn):
            aIn("Y", 5)
        """,
    "rebound.py": """\
        from softioc import builder
        builder = make_builder()
        builder.aIn("X", 5)
        """,
    "class_scope.py": """\
        class Maker:
            from softioc import builder
            def make(self):
                builder.aIn("X", 5)
        """,
    "no_softioc.py": """\
        def mirror(record):
            record.set(1, process=False)
        """,
    "local_star_shadowed.py": """\
        from softioc.builder import *
        def aIn(name, value):
            return name, value
        aIn("X", 5)
        """,
}


def test_every_import_style_is_followed_and_nothing_else(tmp_path):
    files = [write(tmp_path, name, text) for name, text in {**IMPORT_STYLES,
                                                            **NOT_BUILDER}.items()]
    result = check(*files)
    assert result.returncode == 1, result.stderr
    assert found(result.stdout) == expected(*files)
    assert len(found(result.stdout)) == len(IMPORT_STYLES)


def test_unreadable_input_exits_2_and_the_rest_is_still_checked(tmp_path):
    good = write(tmp_path, "old_ioc.py", "from softioc import builder\nbuilder.aIn('X', 5)\n")
    bad_syntax = write(tmp_path, "broken.py", "from softioc import builder\ndef f(:\n")
    not_utf8 = tmp_path / "latin1.py"
    not_utf8.write_bytes(b"from softioc import builder\nname = 'caf\xe9'\n")
    missing = tmp_path / "missing.py"
    result = check(missing, bad_syntax, not_utf8, good)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert found(result.stdout) == {(str(good), 2, "positional-value")}
    missing_error, syntax_error, encoding_error = result.stderr.splitlines()
    assert missing_error == f"{missing}: error: cannot read (No such file or directory)"
    assert syntax_error.startswith(f"{bad_syntax}:2: error: syntax error: ")
    offset = not_utf8.read_bytes().index(b"\xe9")
    assert encoding_error == f"{not_utf8}: error: not UTF-8 text (byte 0xe9 at offset {offset})"


def test_a_fifo_or_device_is_refused_not_read(tmp_path):
    """A FIFO named *.py (in a directory walked, too) would block a reader
    for ever, a device never end: exit 2 at once, the rest still checked."""
    good = write(tmp_path, "app/old_ioc.py", "from softioc import builder\nbuilder.aIn('X', 5)\n")
    fifo = tmp_path / "app" / "fifo.py"
    os.mkfifo(fifo)
    result = check(tmp_path / "app", "/dev/zero")      # check() has a timeout
    assert result.returncode == 2, result.stderr
    assert found(result.stdout) == {(str(good), 2, "positional-value")}
    assert f"{fifo}: error: not a regular file" in result.stderr
    assert "/dev/zero: error: not a regular file" in result.stderr


def test_declared_encodings_are_read_as_python_reads_them(tmp_path):
    path = tmp_path / "declared.py"
    path.write_bytes(b"# -*- coding: latin-1 -*-\nfrom softioc import builder\n"
                     b"builder.aIn('caf\xe9', 5)\n")
    result = check(path)
    assert result.returncode == 1, result.stderr
    assert found(result.stdout) == {(str(path), 3, "positional-value")}


def test_a_directory_is_searched_for_python_files(tmp_path):
    top = write(tmp_path, "app/ioc.py", "from softioc import builder\nbuilder.aIn('A', 1)\n")
    deep = write(tmp_path, "app/sub/deeper/records.py",
                 "from softioc.builder import aOut\naOut('B', 0, 10)\n")
    write(tmp_path, "app/sub/clean.py", "from softioc import builder\nbuilder.aIn('C')\n")
    write(tmp_path, "app/notes.txt", "builder.aIn('D', 1)\n")
    write(tmp_path, "app/.venv/lib/site.py", "from softioc import builder\nbuilder.aIn('E', 1)\n")
    result = check("app", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert found(result.stdout) == {
        (os.path.join("app", "ioc.py"), 2, "positional-value"),
        (os.path.join("app", "sub", "deeper", "records.py"), 2, "positional-values"),
    }
    assert top.exists() and deep.exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs a directory this user cannot read (root reads any)")
def test_a_directory_that_cannot_be_read_exits_2(tmp_path):
    write(tmp_path, "app/ioc.py", "from softioc import builder\nbuilder.aIn('A', 1)\n")
    locked = tmp_path / "app" / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        result = check(tmp_path / "app")
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2
    assert "[positional-value]" in result.stdout
    assert f"{locked}: error: cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_console_script_runs_it_too(tmp_path):
    clean = write(tmp_path, "clean.py", "from softioc import builder\nbuilder.aIn('A')\n")
    result = check(clean, script=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    help_text = subprocess.run([sys.executable, "-m", "softioc", "--help"],
                               stdout=subprocess.PIPE, text=True).stdout
    assert "migrate-check" in help_text


# ---- the tables behind the rules -----------------------------------------------------

def test_missing_names_are_missing_here():
    """Every name MISSING lists is absent from pythonIOC's module (when one is
    added, its entry must go)."""
    present = [f"{module}.{name}" for module, names in _migrate.MISSING.items()
               for name in names if hasattr(importlib.import_module(module), name)]
    assert present == []


def test_positional_fields_are_the_builders():
    from softioc import builder
    from softioc._types import MAKERS

    assert set(_migrate.OLD_POSITIONAL) == {"aIn", "aOut", "longIn", "longOut", "int64In",
                                            "int64Out", "boolIn", "boolOut"}
    for maker, fields in _migrate.OLD_POSITIONAL.items():
        assert fields == MAKERS[maker].old_positional
        assert callable(getattr(builder, maker))


def test_the_reference_lists_every_rule_and_its_example_output(tmp_path):
    """docs/reference/command-line.rst lists each rule, and its example's
    output is what the command prints for the example shown."""
    page = (ROOT / "docs" / "reference" / "command-line.rst").read_text()
    for rule in _migrate.RULES:
        assert f"``{rule.name}``" in page, rule.name
    unlisted = [f"{module}.{name}" for module, names in _migrate.MISSING.items()
                for name in names if f"``{name}``" not in page]
    assert unlisted == []
    blocks = re.findall(r"^\.\. code-block:: text\n\n((?:    .*\n|\n)+)", page, re.M)
    source, output = (textwrap.dedent(b).strip("\n") + "\n" for b in blocks[:2])
    (tmp_path / "old_ioc.py").write_text(source)
    result = check("old_ioc.py", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == output
