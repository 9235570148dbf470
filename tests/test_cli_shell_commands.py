"""The IOC-shell commands softioc exports behave as documented (real IOC, fed through stdin)."""

from softioc.testing import IOCProcess

DEMO = ["-m", "softioc", "demo"]

COMMANDS = {
    "ALL": "dbl()",
    "GLOB": 'dbl("DEMO:SET*")',
    "MID": 'dbl("DEMO:*E*")',
    "NONE": 'dbl("NOPE:*")',
    "FIELDS": 'dbl("DEMO:SETPOINT", "EGU")',
    "ALLF": 'dbl("", "EGU")',
}


def run_commands():
    """Type each command between marker prints; what each printed, once the IOC has ended."""
    with IOCProcess(DEMO, wait_for="DEMO:UPTIME") as ioc:
        for marker, command in COMMANDS.items():
            ioc.send(f"print('<<{marker}'); {command}; print('{marker}>>')")
        assert ioc.stop() == 0          # end of input ends the shell
        out = ioc.output()
    return {m: out.split(f"<<{m}", 1)[1].split(f"{m}>>", 1)[0] for m in COMMANDS}


def names(text):
    return {line.split()[0].rstrip(",") for line in text.splitlines()
            if line.startswith("DEMO:")}


def test_dbl_pattern_is_a_name_glob_not_a_record_type():
    out = run_commands()
    every = names(out["ALL"])
    assert {"DEMO:SETPOINT", "DEMO:READBACK", "DEMO:UPTIME", "DEMO:WAVE"} <= every
    assert names(out["GLOB"]) == {"DEMO:SETPOINT"}
    assert names(out["MID"]) == {n for n in every if "E" in n[len("DEMO:"):]}
    assert names(out["NONE"]) == set()
    assert names(out["FIELDS"]) == {"DEMO:SETPOINT"} and "mA" in out["FIELDS"]
    assert names(out["ALLF"]) == every and "mA" in out["ALLF"]
