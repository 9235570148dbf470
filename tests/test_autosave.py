"""Autosave: values written by clients come back after a restart."""

import json

import yaml

from softioc.testing import IOCProcess, wait_until

from .conftest import IOCS


def start(tmp_path):
    return IOCProcess([str(IOCS / "autosave_ioc.py"), str(tmp_path)], wait_for="AS:SP")


def test_values_survive_restart(tmp_path):
    with start(tmp_path) as ioc:
        ioc.caput("AS:SP", "12.5")
        ioc.caput("AS:LIM.DRVH", "50")
        ioc.caput("AS:LIM", "40")
        ioc.caput("AS:TEXT", "saved text")
        ioc.caput("AS:WAVE", "3", "1", "2", "3", options=["-a"])
        ioc.caput("AS:PLAIN", "9")
        path = tmp_path / "test.softsav"

        def all_saved():
            # a periodic save may land between two of the puts: wait for the last one
            saved = yaml.safe_load(path.read_text()) if path.exists() else None
            return saved if saved and saved.get("AS:WAVE", [None])[:1] == [1] else None

        saved = wait_until(all_saved, timeout=10, what="the puts saved")  # pythonSoftIOC's layout
        assert saved["AS:SP"] == 12.5
        assert float(saved["AS:LIM.DRVH"]) == 50
        assert "AS:PLAIN" not in saved
        assert ioc.stop() == 0
    with start(tmp_path) as ioc:
        assert ioc.caget("AS:SP") == "12.5"
        assert ioc.caget("AS:LIM") == "40"
        assert ioc.caget("AS:LIM.DRVH") == "50"
        assert ioc.caget("AS:TEXT") == "saved text"
        assert ioc.caget("AS:WAVE").split()[:4] == ["3", "1", "2", "3"]
        assert ioc.caget("AS:PLAIN") == "5"
    # the file found at start was kept as a timestamped backup
    assert list(tmp_path.glob("test.softsav.*"))


def test_saved_at_exit(tmp_path):
    # A put right before a clean exit is saved by the exit, not the timer.
    with start(tmp_path) as ioc:
        ioc.send("autosave._state().save_period = 1000")
        ioc.caput("AS:SP", "77")
        assert ioc.stop() == 0
    saved = yaml.safe_load((tmp_path / "test.softsav").read_text())
    assert saved["AS:SP"] == 77


def test_corrupt_file_warns_and_starts(tmp_path):
    (tmp_path / "test.softsav").write_text("{not json")
    with start(tmp_path) as ioc:
        assert ioc.caget("AS:SP") == "1"
        ioc.stop()
        assert "unreadable" in ioc.output()


def test_mismatched_value_warns_and_starts(tmp_path):
    # pythonIOC 0.1's JSON layout is still read
    (tmp_path / "test.softsav").write_text(json.dumps({"AS:SP": {"VAL": "not a number"},
                                                       "AS:TEXT": {"VAL": "ok"}}))
    with start(tmp_path) as ioc:
        assert ioc.caget("AS:SP") == "1"
        assert ioc.caget("AS:TEXT") == "ok"
        ioc.stop()
        assert "cannot restore AS:SP.VAL" in ioc.output()
