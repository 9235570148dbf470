"""A .db file with a syntax error at its very end (one that stops inside a
record) made EPICS's parser dereference NULL and kill the process; pythonIOC
must raise a clear error instead, and go on loading other files.  Macro
definitions with empty names or values ("=,=,=") overran EPICS's macro
parser's arrays and corrupted the heap; they must load (or be refused)."""

import os
import subprocess
import sys

from softioc.testing import client_env, free_port

SCRIPT = """\
import sys
from pathlib import Path
from softioc import builder, softioc
d = Path(sys.argv[1])
for i, text in enumerate(['record(ao, "A") {', 'x', 'record(ao, "B") {} x',
                          'record(ao, "C") { field(VAL, "1")']):
    (d / f"bad{i}.db").write_text(text)
    try:
        softioc.dbLoadDatabase(f"bad{i}.db", str(d))
    except ValueError as e:
        print("refused:", e)
(d / "good.db").write_text('record(ao, "GOOD:$(N)") { field(VAL, "$(V)") }\\n')
softioc.dbLoadDatabase("good.db", str(d), "N=1,V=7")
builder.LoadDatabase()
softioc.iocInit()
from softioc import _ext
print("VAL", _ext.get_field("GOOD:1.VAL"))
"""


def run(code, tmp_path):
    """Run ``code`` in a fresh Python (CA only, on its own ports) with tmp_path
    as its argument: what it printed.  It must exit 0."""
    env = dict(os.environ, **client_env(free_port(), free_port(), free_port()), PYTHONIOC_PVA="NO")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
    return result


def test_truncated_db_files_are_refused_not_fatal(tmp_path):
    result = run(SCRIPT, tmp_path)
    assert result.stdout.count("refused: EPICS could not load records from") == 4
    assert "VAL" in result.stdout and "7" in result.stdout.split("VAL", 1)[1], result.stdout


MACROS = """\
import sys
from pathlib import Path
from softioc import softioc
d = Path(sys.argv[1])
(d / "m.db").write_text('record(ao, "M:$(N=0)") { field(DESC, "$(D=)") }\\n')
for subs in ["=,=,=", "=,=,=,=,=,=", "a=,=,=", "=,=,a=", "N=1,D=x"]:
    try:
        softioc.dbLoadDatabase("m.db", str(d), subs)
        print("loaded", subs)
    except ValueError:
        print("refused", subs)
print("alive")
"""


def test_empty_macro_definitions_do_not_corrupt_memory(tmp_path):
    result = run(MACROS, tmp_path)
    assert result.stdout.count("loaded ") == 5 and "alive" in result.stdout, result.stdout
