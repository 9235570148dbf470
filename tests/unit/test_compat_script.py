"""compat/pandablocks_ioc.py, offline: how it reads pytest's results and what it
prints. The comparison itself (two virtualenvs, pandablocks-ioc's suite run
twice, some 10 minutes and the package index) is the script's job, not CI's."""

from pathlib import Path

import pytest
from compat.pandablocks_ioc import Result, fetch_source, read_junit, report, requirements

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad" time="0.1">
  <failure message="AssertionError: assert 1 == 2&#10;more">trace</failure></testcase>
<testcase classname="tests.test_a" name="test_setup" time="0.1">
  <error message="failed on setup with &quot;Failed: timeout&quot;">trace</error></testcase>
<testcase classname="tests.test_a" name="test_skip" time="0.1">
  <skipped message="no hardware">skip</skipped></testcase>
<testcase classname="tests.test_a" name="test_bad" time="0.1">
  <error message="failed on teardown">trace</error></testcase>
</testsuite></testsuites>
"""


def test_junit_outcomes_and_report(tmp_path: Path) -> None:
    (tmp_path / "ours.xml").write_text(JUNIT)
    ours = Result("ours")
    read_junit(tmp_path / "ours.xml", ours)
    assert ours.outcomes == {"tests.test_a::test_ok": "passed",
                             "tests.test_a::test_bad": "failed",
                             "tests.test_a::test_setup": "error",
                             "tests.test_a::test_skip": "skipped"}
    assert ours.messages["tests.test_a::test_bad"] == "AssertionError: assert 1 == 2"
    theirs = Result("pythonsoftioc", outcomes=dict.fromkeys(ours.outcomes, "passed"))
    text = report({"pythonsoftioc": theirs, "ours": ours})
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:8]}
    assert rows["passed"] == ["4", "1"]
    assert rows["failed"] == ["0", "1"]
    assert rows["error"] == ["0", "1"]
    assert rows["skipped"] == ["0", "1"]
    assert "pass on pythonsoftioc, not on ours: 3" in text
    assert "tests.test_a::test_bad: failed -- AssertionError: assert 1 == 2" in text
    assert "pass on ours, not on pythonsoftioc: 0" in text


def test_source_without_tests_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="has no tests/conftest.py: pass --source"):
        fetch_source(tmp_path)


def test_requirements_leave_pythonsoftioc_out(tmp_path: Path) -> None:
    (tmp_path / "PKG-INFO").write_text(
        "Name: pandablocks-ioc\nRequires-Dist: numpy<2\nRequires-Dist: softioc>=4.4.0\n"
        'Requires-Dist: typing-extensions; python_version < "3.8"\nRequires-Dist: pvi~=0.10.0\n')
    assert requirements(tmp_path) == ["numpy<2", "pvi~=0.10.0"]
