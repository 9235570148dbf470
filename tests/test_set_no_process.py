"""``set(value, process=False)`` on an output record: the value reaches
monitors at once (as pythonSoftIOC 4.7.0's did; 4.7.2's changes the value
without telling monitors), and nothing else happens: no on_update, no
forward link; the record's next processing posts a change from the value
set (a client putting back the value it had before is seen, and on_update
runs for it)."""

import itertools
import time

from softioc.testing import IOCProcess, monitor

from .conftest import IOCS


def _wait_output(ioc, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while text not in ioc.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    return ioc.output()


def test_set_without_processing_reaches_monitors():
    with IOCProcess([str(IOCS / "noprocess_ioc.py")], wait_for="NP:MODE") as ioc:
        calc_before = ioc.caget("NP:CALC")
        with monitor(ioc, "NP:MODE", "NP:WAVE", options=["-n"]) as camon:
            first = []              # the monitors' first values (camonitor -w 5)
            while {"NP:MODE", "NP:WAVE"} - {line.split()[0] for line in first if line.strip()}:
                line = camon.stdout.readline()
                assert line and "Not connected" not in line, first + [line]
                first.append(line)
            ioc.send("out.set(2, process=False); wave.set([7, 8], process=False)")
            ioc.send("print('SET DONE')")
            _wait_output(ioc, "SET DONE")
            time.sleep(1.0)
            ioc.send("print('UPDATES', updates)")
            assert "UPDATES []" in _wait_output(ioc, "UPDATES")
            assert ioc.caget("NP:CALC") == calc_before
            assert "rror" not in ioc.caput("NP:MODE", "1").stdout
            # on_update runs (in the dispatcher, maybe after caput -c returned):
            # the put changed the value from the one set
            deadline = time.monotonic() + 10
            for n in itertools.count():
                ioc.send(f"print('UPDATES', updates, 'END{n}')")
                out = _wait_output(ioc, f"END{n}")
                if f"UPDATES [1] END{n}" in out or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert f"UPDATES [1] END{n}" in out
        lines = [line.split() for line in ("".join(first) + camon.stdout.read()).splitlines()]
        # camonitor -n: NAME DATE TIME VALUE... [STATUS SEVERITY]
        modes = [line[3] for line in lines if line and line[0] == "NP:MODE"]
        waves = [line[3:] for line in lines if line and line[0] == "NP:WAVE"]
        assert modes == ["1", "2", "1"], lines
        assert waves == [["3", "1", "2", "3"], ["2", "7", "8"]], lines
        assert ioc.caget("NP:MODE", "-n") == "1"
