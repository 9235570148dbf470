"""What an IOC loads to start: an IOC of builder records with the default
dispatcher imports neither asyncio (with ssl, 6 MB), setuptools (20 MB) nor
tempfile; ``async def`` callbacks still run, on a loop made for the first."""

import time

from softioc.testing import IOCProcess

from .conftest import IOCS


def wait_line(ioc: IOCProcess, start: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in ioc.output().splitlines():
            if line.startswith(start):
                return line.split()[1:]
        time.sleep(0.05)
    raise AssertionError(f"no line {start!r} in:\n{ioc.output()}")


def wait_value(ioc: IOCProcess, pv: str, value: float, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while float(ioc.caget(pv)) != value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert float(ioc.caget(pv)) == value


def test_idle_ioc_imports_only_what_it_uses():
    with IOCProcess([str(IOCS / "lean_ioc.py")], wait_for="LEAN:AI") as ioc:
        assert wait_line(ioc, "IMPORTED") == ["nothing"]
        # field names from the running database (epicsdbbuilder never read the dbd)
        count, has_val, has_inpa = wait_line(ioc, "FIELDS")
        assert int(count) > 50 and has_val == "True" and has_inpa == "False"
        ioc.caput("LEAN:AO", "2")
        assert wait_line(ioc, "ASYNC 2") == ["2.0", "True"]
        ioc.caput("LEAN:AO", "3")           # the loop made for the first is reused
        assert wait_line(ioc, "ASYNC 3") == ["3.0", "True"]
        assert float(ioc.caget("LEAN:AO")) == 3.0


def test_applications_that_import_epicsdbbuilder_make_records_with_it():
    with IOCProcess([str(IOCS / "dbbuilder_ioc.py")], wait_for="DBB:DOUBLE") as ioc:
        ioc.caput("DBB:SRC", "5")
        wait_value(ioc, "DBB:DOUBLE", 10.0)
        assert float(ioc.caget("DBB:TWICE")) == 10.0
        assert ioc.caget("DBB:DOUBLE.INPA").split() == ["DBB:SRC", "CP", "MS"]


def test_epicsdbbuilder_imported_late_and_rules_read_again():
    """epicsdbbuilder imported after SetDeviceName (in a helper) and used at
    once, and through GetRecordNames(); after iocInit, asInit rereads the
    IOC's access rules (a file in memory, kept open), so puts still work."""
    with IOCProcess([str(IOCS / "dbbuilder_late_ioc.py")], wait_for="LATE:CALC") as ioc:
        assert wait_line(ioc, "ASINIT") == ["0"]
        ioc.caget("LATE:SUB:IN")
        ioc.caput("LATE:AO", "4")
        wait_value(ioc, "LATE:CALC", 5.0)
        assert float(ioc.caget("LATE:AO")) == 4.0
