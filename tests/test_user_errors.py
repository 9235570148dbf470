"""Exceptions in user callbacks are logged with their traceback, show as an
alarm on the record, fail a blocking put for the client waiting on it (CA and
PVA), and the IOC keeps serving."""


import pytest
from p4p.client.thread import RemoteError

from .clients import pva_context, python_client
from .conftest import module_ioc

# What each client says when a put-callback fails (ECA_PUTFAIL over CA).
CAPUT_FAILED = "Channel write request failed"
PVA_FAILED = "Error in dbNotify"
ECA_PUTFAIL = 160


ioc = module_ioc("errors_ioc.py", wait_for="ERR:FINE")


def assert_failed_write(ioc, pv, value):
    """The value stays as written; the record is in WRITE/INVALID alarm."""
    assert float(ioc.caget(pv)) == value
    assert ioc.caget(pv + ".SEVR") == "INVALID"
    assert ioc.caget(pv + ".STAT") == "WRITE"


@pytest.mark.parametrize("pv, told_ok", [("ERR:SYNC", True), ("ERR:ASYNC", True),
                                         ("ERR:BLOCK", False)])
def test_failed_on_update_alarms(ioc, pv, told_ok):
    # caput -c: a non-blocking record completes before on_update runs, so
    # only the blocking one can tell the client.
    result = ioc.caput(pv, "3")
    assert (result.returncode == 0) == told_ok, result.stdout
    ioc.wait_value(pv + ".SEVR", "INVALID")
    assert_failed_write(ioc, pv, 3.0)
    assert ioc.caget("ERR:FINE") == "1"          # everything else still served
    ioc.send("fine.set(2); fine.set(1)")


def test_failed_blocking_put_fails_for_caput(ioc):
    result = ioc.caput("ERR:BLOCK", "5")
    assert result.returncode == 1 and CAPUT_FAILED in result.stdout, result.stdout
    assert_failed_write(ioc, "ERR:BLOCK", 5.0)


def test_failed_blocking_put_fails_for_aioca(ioc):
    out = python_client(ioc, (
        "import asyncio\n"
        "from aioca import CANothing, caput\n"
        "async def main():\n"
        "    try:\n"
        "        await caput('ERR:BLOCK', 6, wait=True, timeout=10)\n"
        "        print('succeeded')\n"
        "    except CANothing as e:\n"
        "        print('failed', e.errorcode)\n"
        "asyncio.run(main())\n"))
    assert out.split() == ["failed", str(ECA_PUTFAIL)], out
    assert_failed_write(ioc, "ERR:BLOCK", 6.0)


def test_failed_blocking_put_fails_for_pvput(ioc):
    # pvput waits for processing only when asked (record[block=true]).
    result = ioc.run_tool("pvput", "-w", "5", "-r", "record[block=true]",
                          "ERR:BLOCK", "7", check=False)
    assert result.returncode == 1 and PVA_FAILED in result.stdout, result.stdout
    assert_failed_write(ioc, "ERR:BLOCK", 7.0)


def test_failed_blocking_put_fails_for_p4p(ioc):
    ctx = pva_context(ioc)
    try:
        with pytest.raises(RemoteError, match=PVA_FAILED):
            ctx.put("ERR:BLOCK", 8.0, wait=True, timeout=10)
    finally:
        ctx.close()
    assert_failed_write(ioc, "ERR:BLOCK", 8.0)


def test_failed_async_blocking_put_fails_for_caput(ioc):
    # an async def on_update that raises after an await
    result = ioc.caput("ERR:SLOW", "-2")
    assert result.returncode == 1 and CAPUT_FAILED in result.stdout, result.stdout
    assert_failed_write(ioc, "ERR:SLOW", -2.0)


def test_blocking_put_that_succeeds_is_told_so(ioc):
    assert ioc.caput("ERR:SLOW", "1").returncode == 0
    ctx = pva_context(ioc)
    try:
        ctx.put("ERR:SLOW", 2.0, wait=True, timeout=10)
    finally:
        ctx.close()
    assert ioc.caget("ERR:SLOW") == "2"
    assert ioc.caget("ERR:SLOW.SEVR") == "NO_ALARM"


def test_put_waiting_behind_a_failed_write_succeeds(ioc):
    # A plain caput starts a write that fails after 2 s; a caput -c sent while
    # it runs waits for it, then makes its own write, which succeeds: only the
    # put whose own write failed is told so.
    assert ioc.caput("ERR:SLOW", "-1", callback=False).returncode == 0
    assert ioc.caget("ERR:SLOW.PACT") == "1"     # still busy with -1
    result = ioc.caput("ERR:SLOW", "3")
    assert result.returncode == 0, result.stdout
    assert ioc.caget("ERR:SLOW") == "3"
    assert ioc.caget("ERR:SLOW.SEVR") == "NO_ALARM"
    assert "ValueError: slow boom -1.0" in ioc.output()


def test_next_good_processing_clears_the_alarm(ioc):
    ioc.caput("ERR:SYNC", "4")
    ioc.wait_value("ERR:SYNC.SEVR", "INVALID")
    ioc.send("sync._configure(on_update=print)")
    ioc.caput("ERR:SYNC", "5")
    ioc.wait_value("ERR:SYNC.SEVR", "NO_ALARM")


def test_tracebacks_logged(ioc):
    ioc.stop()
    out = ioc.output()
    assert "Traceback" in out
    assert "RuntimeError: sync boom 3.0" in out
    assert "ValueError: async boom 3.0" in out
