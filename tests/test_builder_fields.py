"""pythonSoftIOC's record attributes before iocInit: ``rec.FIELD = value`` sets
the field, ``rec.FIELD.Value()`` reads back what the builder was given, and
``builder.WriteRecords`` writes the records as a .db file (pandablocks-ioc
uses all three)."""

import subprocess
import sys

import pytest

from softioc.testing import IOCProcess

from .conftest import IOCS


@pytest.fixture(scope="module")
def ioc(tmp_path_factory):
    db = tmp_path_factory.mktemp("bf") / "records.db"
    with IOCProcess([str(IOCS / "builder_fields_ioc.py"), str(db)], wait_for="BF:OUT") as ioc:
        ioc.db = db
        yield ioc


def test_attribute_sets_the_field(ioc):
    assert float(ioc.caget("BF:OUT.DRVH")) == 10
    assert float(ioc.caget("BF:OUT.HOPR")) == 10
    assert ioc.caget("BF:IN.EGU") == "mm"
    assert ioc.caget("BF:IN.PREC") == "3"
    # the drive limit set by attribute is the one EPICS applies
    ioc.caput("BF:OUT", "50")
    assert ioc.caget("BF:OUT") == "10"


def test_value_reads_back_what_was_given(ioc):
    assert "VALUES {'DRVH': 10, 'PREC': 3, 'EGU': 'mm'}" in ioc.output()


def test_attribute_after_iocinit_is_refused(ioc):
    assert "after iocInit: BF:OUT: fields are attributes only before iocInit" in ioc.output()
    assert float(ioc.caget("BF:OUT.DRVH")) == 10


def test_write_records(ioc):
    text = ioc.db.read_text()
    assert 'record(longout, "BF:OUT")' in text and 'record(ai, "BF:IN")' in text
    for line in ['field(DRVH, "10")', 'field(EGU, "mm")', 'field(PREC, "3")',
                 'field(DTYP, "Python")']:
        assert line in text


CHECKS = """
import gc, weakref
from softioc import builder
rec = builder.aOut("X", PREC=2)
try:
    rec.NOSUCH = 1
except AttributeError as e:
    print("unknown:", e)
try:
    rec.HOPR.Value()
except KeyError:
    print("unset: KeyError")
class Owner:
    def __init__(self):
        self.rec = builder.aOut("Y", on_update=self.changed)
    def changed(self, value):
        pass
ref = weakref.ref(Owner())
builder.ClearRecords()
gc.collect()
print("owner kept:", ref() is not None)
"""


def test_bad_attribute_unset_value_and_cleared_records():
    result = subprocess.run([sys.executable, "-c", CHECKS], capture_output=True, text=True,
                            timeout=60)
    assert "unknown: X has no field NOSUCH" in result.stdout
    assert "unset: KeyError" in result.stdout
    # pythonSoftIOC keeps every record it made (and so its callbacks' owners)
    assert "owner kept: True" in result.stdout, result.stdout + result.stderr
