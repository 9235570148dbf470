"""Long strings as pythonSoftIOC serves them: a CHAR waveform with
``info(Q:form, "String")``, whole text at the record's own name over CA
(``caget -S``, ``caput -S``, pyepics ``as_string``) and a string over PVA."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from softioc.testing import IOCProcess, wait_until

from ..clients import pva_context
from ..conftest import module_ioc

IOC = textwrap.dedent('''
    from softioc import builder, softioc
    builder.SetDeviceName("LS")
    lsi = builder.longStringIn("IN", initial_value="i" * 100)
    lso = builder.longStringOut("OUT", "o" * 60, length=80,
        on_update=lambda v: print("UPDATE", type(v).__name__, repr(v), flush=True))
    small = builder.longStringOut("SMALL", length=10,
        on_update=lambda v: print("SMALL", repr(v), flush=True))
    empty = builder.longStringIn("EMPTY")
    checked = builder.longStringOut("CHECKED", "fine", validate=lambda rec, v: "bad" not in v)
    builder.LoadDatabase()
    softioc.iocInit()
    softioc.interactive_ioc(globals())
''')

TEXT = "A long text, well beyond the 39 characters of a DBF_STRING: " + "z" * 15


ioc = module_ioc("long_strings_ioc.py", "LS:IN", text=IOC)


def updates(ioc, prefix="UPDATE"):
    return [ln for ln in ioc.output().splitlines() if ln.startswith(prefix)]


def python_answer(ioc, expr):
    """Evaluate expr in the IOC's shell and read back what it printed."""
    marker = f"ANSWER{time.monotonic_ns()}"
    ioc.send(f"print({marker!r}, repr({expr}))")
    wait_until(lambda: marker in ioc.output(), what=f"{expr} answered in the shell")
    line = [ln for ln in ioc.output().splitlines() if ln.startswith(marker)][-1]
    return line[len(marker) + 1:]


def pyepics(ioc, code):
    """Run pyepics code in a fresh process with this IOC's client environment."""
    out = subprocess.run([sys.executable, "-c", "import epics\n" + code], env=ioc.env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_record_is_a_char_waveform_like_pythonsoftioc(ioc):
    assert ioc.caget("LS:IN.FTVL") == "CHAR"
    assert ioc.caget("LS:OUT.NELM") == "80"
    assert ioc.caget("LS:IN.NELM") == "256"          # default length
    assert ioc.caget("LS:OUT.DTYP") == "PythonLongStringOut"
    info = ioc.run_tool("cainfo", "LS:IN").stdout
    assert "DBF_CHAR" in info


def test_ca_reads_whole_text_at_bare_name(ioc):
    assert ioc.caget("LS:IN", "-S") == "i" * 100
    assert ioc.caget("LS:OUT", "-S") == "o" * 60
    assert ioc.caget("LS:EMPTY", "-S") == ""


def test_caput_S_writes_whole_text_and_on_update_gets_str(ioc):
    result = ioc.caput("LS:OUT", TEXT, options=["-S"])
    assert "error" not in result.stdout.lower(), result.stdout
    assert ioc.caget("LS:OUT", "-S") == TEXT
    wait_until(lambda: f"UPDATE str {TEXT!r}" in updates(ioc), what="on_update ran")
    assert python_answer(ioc, "lso.get()") == repr(TEXT)


def test_pyepics_as_string(ioc):
    assert pyepics(ioc, "print(epics.caget('LS:IN', as_string=True, timeout=5))") == "i" * 100
    pyepics(ioc, "assert epics.caput('LS:OUT', 'from-pyepics;' * 5, wait=True, timeout=5) == 1")
    assert ioc.caget("LS:OUT", "-S") == ("from-pyepics;" * 5)
    wait_until(lambda: f"UPDATE str {'from-pyepics;' * 5!r}" in updates(ioc),
               what="on_update ran")


def test_pva_sees_a_string(ioc):
    ctx = pva_context(ioc)
    try:
        assert ctx.get("LS:IN", timeout=5)["value"] == "i" * 100
        ctx.put("LS:OUT", "over-PVA;" * 5, wait=True, timeout=5)
        assert ctx.get("LS:OUT", timeout=5)["value"] == "over-PVA;" * 5
    finally:
        ctx.close()
    assert ioc.caget("LS:OUT", "-S") == "over-PVA;" * 5
    wait_until(lambda: f"UPDATE str {'over-PVA;' * 5!r}" in updates(ioc), what="on_update ran")
    assert '"i' in ioc.pvget("LS:IN") or "iiii" in ioc.pvget("LS:IN")


def test_text_too_long_is_refused_with_a_clear_error(ioc):
    """CA clients refuse it themselves (element count); over PVA QSRV2 would
    cut it to NELM bytes: strict puts refuse it and tell the client."""
    ioc.caput("LS:SMALL", "123456789", options=["-S"])      # 9 bytes + NUL: fits
    assert ioc.caget("LS:SMALL", "-S") == "123456789"
    ca = ioc.caput("LS:SMALL", "0123456789abc", options=["-S"])
    assert "Invalid element count" in ca.stdout, ca.stdout
    pva = ioc.run_tool("pvput", "-w", "5", "LS:SMALL", "0123456789", check=False, timeout=30)
    assert pva.returncode != 0
    assert "too long" in pva.stdout, pva.stdout
    ctx = pva_context(ioc)
    try:
        with pytest.raises(Exception, match="too long"):  # noqa: B017
            ctx.put("LS:SMALL", "far too long for ten", wait=False, timeout=5)
        with pytest.raises(Exception, match="dbNotify|too long"):  # noqa: B017 (p4p's RemoteError)
            ctx.put("LS:SMALL", "far too long for ten", wait=True, timeout=5)
    finally:
        ctx.close()
    assert ioc.caget("LS:SMALL", "-S") == "123456789"
    assert updates(ioc, "SMALL") == ["SMALL '123456789'"]
    # a full-length CA char array with no NUL is a text cut short too
    cut = ioc.caput("LS:SMALL", "10", *["65"] * 10, options=["-a"])
    assert "error" in cut.stdout.lower() or "failed" in cut.stdout, cut.stdout
    assert ioc.caget("LS:SMALL", "-S") == "123456789"


def test_set_from_python_takes_and_returns_str(ioc):
    ioc.send("lsi.set('set-from-Python;' * 4)")
    ioc.wait_value("LS:IN", "set-from-Python;" * 4, options=["-S"])
    assert python_answer(ioc, "lsi.get()") == repr("set-from-Python;" * 4)
    ioc.send("try:\n    small.set('x' * 10)\nexcept ValueError as e:\n    print('REFUSED', e)\n")
    wait_until(lambda: any("REFUSED" in ln and "too long" in ln
                           for ln in ioc.output().splitlines()), what="the refusal printed")


def test_strict_off_cuts_as_epics_does(tmp_path):
    script = tmp_path / "ioc.py"
    script.write_text(IOC)
    with IOCProcess([str(script)], wait_for="LS:IN",
                    env={"PYTHONIOC_STRICT_PUTS": "NO"}) as ioc:
        pva = ioc.run_tool("pvput", "-w", "5", "LS:SMALL", "0123456789abc", check=False,
                           timeout=30)
        assert pva.returncode == 0, pva.stdout
        assert ioc.caget("LS:SMALL", "-S").startswith("012345678")


def test_long_string_made_after_iocinit_from_a_spare(tmp_path):
    script = tmp_path / "ioc.py"
    script.write_text(textwrap.dedent('''
        from softioc import builder, softioc
        builder.ReserveRecords(builder.longStringOut, 1, length=300)
        builder.aIn("RT:READY", initial_value=1)
        builder.LoadDatabase()
        softioc.iocInit()
        late = builder.longStringOut("RT:LATE", "made at run time " * 3,
            on_update=lambda v: print("LATE", type(v).__name__, repr(v), flush=True))
        softioc.interactive_ioc(globals())
    '''))
    with IOCProcess([str(script)], wait_for="RT:LATE") as ioc:
        assert ioc.caget("RT:LATE", "-S") == ("made at run time " * 3).strip()
        ioc.caput("RT:LATE", "x" * 250, options=["-S"])
        wait_until(lambda: f"LATE str {'x' * 250!r}" in ioc.output(), what="on_update ran")
        ctx = pva_context(ioc)
        try:
            assert ctx.get("RT:LATE", timeout=5)["value"] == "x" * 250
        finally:
            ctx.close()


def test_validate_sees_str_and_refuses_over_ca_and_pva(ioc):
    assert "error" not in ioc.caput("LS:CHECKED", "still fine", options=["-S"]).stdout.lower()
    bad = ioc.caput("LS:CHECKED", "a bad text", options=["-S"])
    assert "Channel write request failed" in bad.stdout, bad.stdout
    pva = ioc.run_tool("pvput", "-w", "5", "LS:CHECKED", "bad again", check=False, timeout=30)
    assert "refused by the IOC's validate" in pva.stdout
    assert ioc.caget("LS:CHECKED", "-S") == "still fine"
