"""The C layer has floors (module.c's description): a file calls only the
pyioc_ functions of files on lower floors, so there is no call circle."""

import re
from pathlib import Path

import pytest

EXT = Path(__file__).parents[2] / "src" / "softioc" / "_ext"
pytestmark = pytest.mark.skipif(
    not EXT.is_dir(), reason=f"needs the C sources ({EXT}): run it in a source checkout "
    "(.ci/run runs it in the clone, step 4)")
FLOORS = [
    {"base.c", "errors.c", "stats.c"},
    {"convert.c", "patches.c"},
    {"writeq.c", "putlog.c"},
    {"devsup.c", "strict.c", "fieldwatch.c"},
    {"record.c", "staticdb.c", "ioc.c", "watch.c", "probe.c"},
    {"module.c"},
]
DEFINED = re.compile(r"^[A-Za-z][^;\n]*?\b(pyioc_\w+)\([^;\n]*$", re.M)    # not prototypes
CALLED = re.compile(r"\b(pyioc_\w+)\(")


def test_every_c_file_has_a_floor():
    assert {p.name for p in EXT.glob("*.c")} == set().union(*FLOORS)


def test_files_call_only_lower_floors():
    floor = {name: i for i, names in enumerate(FLOORS) for name in names}
    owner = {}
    for path in EXT.glob("*.c"):
        for fn in DEFINED.findall(path.read_text()):
            owner.setdefault(fn, path.name)
    wrong = []
    for path in EXT.glob("*.c"):
        for fn in set(CALLED.findall(path.read_text())):
            home = owner.get(fn)
            if home and home != path.name and floor[home] >= floor[path.name]:
                wrong.append(f"{path.name} (floor {floor[path.name]}) calls {fn} of "
                             f"{home} (floor {floor[home]})")
    assert not wrong, "\n".join(sorted(wrong))
