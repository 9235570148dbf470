"""Put-callbacks to blocking records under each dispatcher, with real
clients: the put completes only after on_update (plain or async) has run, in
the dispatcher's thread (the loop's, for AsyncioDispatcher); a failing
on_update fails the put and leaves WRITE/INVALID; many puts in a row each
complete with their own value; work queued with ``dispatcher(func)`` still
runs beside client writes."""

import textwrap

import pytest

from softioc.testing import IOCProcess, wait_until

from .clients import python_client
from .test_dispatchers import COTHREAD

CAPUT_FAILED = "Channel write request failed"

IOC = textwrap.dedent('''
    import asyncio, sys, threading, time
    from softioc import builder, softioc

    kind = sys.argv[1]
    if kind == "asyncio":
        from softioc.asyncio_dispatcher import AsyncioDispatcher
        dispatcher = AsyncioDispatcher()
        sleep = time.sleep
    elif kind == "cothread":
        import cothread
        dispatcher = None
        sleep = cothread.Sleep
    else:
        dispatcher = None
        sleep = time.sleep

    builder.SetDeviceName("BP")
    seen = builder.aIn("SEEN", 0.0)
    count = builder.longIn("COUNT", 0)
    where = builder.stringIn("WHERE", initial_value="")
    marks = builder.longIn("MARKS", 0)
    threads = set()

    def plain(value):
        threads.add(threading.get_ident())
        where.set(threading.current_thread().name[:39])
        if kind == "asyncio":
            assert asyncio.get_running_loop() is dispatcher.loop
        seen.set(value)
        count.set(count.get() + 1)

    def slow(value):
        sleep(0.3)
        seen.set(value + 1000)

    def fail(value):
        raise RuntimeError("on_update fails on purpose")

    async def waits(value):
        await asyncio.sleep(0.3)
        seen.set(value + 2000)

    async def fails_later(value):
        await asyncio.sleep(0.05)
        raise RuntimeError("async on_update fails on purpose")

    builder.aOut("PLAIN", 0.0, on_update=plain, blocking=True, always_update=True)
    builder.aOut("SLOW", 0.0, on_update=slow, blocking=True)
    builder.aOut("FAIL", 0.0, on_update=fail, blocking=True)
    if kind != "cothread":
        builder.aOut("ASYNC", 0.0, on_update=waits, blocking=True)
        builder.aOut("ASYNCFAIL", 0.0, on_update=fails_later, blocking=True)
    builder.UnsetDevice()
    builder.LoadDatabase()
    softioc.iocInit(dispatcher)
    from softioc import _lifecycle

    def mark():
        marks.set(marks.get() + 1)

    def queue_marks(n):
        for _ in range(n):
            _lifecycle.dispatcher()(mark)

    softioc.interactive_ioc(globals())
''')

PUTS = """
from epics import ca
chid = ca.create_channel("BP:PLAIN")
assert ca.connect_channel(chid, timeout=10)
for i in range(1, 301):
    assert ca.put(chid, float(i), wait=True, timeout=10) == 1
    # the put completed after on_update ran: its value is there already
    got = ca.get(ca.create_channel("BP:SEEN"), timeout=10) if i % 50 == 0 else None
    assert got is None or got == float(i), (i, got)
print("done")
"""

KINDS = ["thread", pytest.param("cothread", marks=COTHREAD.marks), "asyncio"]


@pytest.fixture(params=KINDS)
def ioc(request, tmp_path):
    script = tmp_path / "blocking_ioc.py"
    script.write_text(IOC)
    with IOCProcess([str(script), request.param], wait_for="BP:PLAIN") as proc:
        proc.kind = request.param
        yield proc


def test_blocking_puts_complete_after_on_update(ioc):
    result = ioc.caput("BP:SLOW", "5")
    assert result.returncode == 0 and "rror" not in result.stdout, result.stdout
    assert ioc.caget("BP:SEEN") == "1005"       # on_update done before the put completed
    assert ioc.caget("BP:SLOW.SEVR") == "NO_ALARM"


def test_many_blocking_puts_in_a_row(ioc):
    assert python_client(ioc, PUTS, timeout=120).split()[-1] == "done"
    assert ioc.caget("BP:COUNT") == "300"
    assert ioc.caget("BP:SEEN") == "300"
    expected = {"thread": "softioc-dispatch", "asyncio": "softioc-asyncio",
                "cothread": "MainThread"}[ioc.kind]
    assert ioc.caget("BP:WHERE") == expected     # run in the dispatcher's thread
    ioc.send("print('threads', len(threads))")
    wait_until(lambda: "threads " in ioc.output(), timeout=10, what="the IOC's answer")
    assert "threads 1\n" in ioc.output()


def test_failed_blocking_put(ioc):
    result = ioc.caput("BP:FAIL", "3")
    assert result.returncode == 1 and CAPUT_FAILED in result.stdout, result.stdout
    assert ioc.caget("BP:FAIL.SEVR") == "INVALID"
    assert ioc.caget("BP:FAIL.STAT") == "WRITE"
    result = ioc.caput("BP:SLOW", "4")              # still serving
    assert result.returncode == 0, result.stdout
    assert ioc.caget("BP:SEEN") == "1004"


def test_async_blocking_puts(ioc):
    if ioc.kind == "cothread":
        pytest.skip("async on_update: the thread and asyncio dispatchers")
    result = ioc.caput("BP:ASYNC", "7")
    assert result.returncode == 0 and "rror" not in result.stdout, result.stdout
    assert ioc.caget("BP:SEEN") == "2007"       # awaited before the put completed
    result = ioc.caput("BP:ASYNCFAIL", "8")
    assert result.returncode == 1 and CAPUT_FAILED in result.stdout, result.stdout
    assert ioc.caget("BP:ASYNCFAIL.SEVR") == "INVALID"


def test_dispatched_work_runs_beside_client_writes(ioc):
    ioc.send("queue_marks(50)")
    result = ioc.caput("BP:PLAIN", "9")
    assert result.returncode == 0, result.stdout
    ioc.wait_value("BP:MARKS", "50")
    assert ioc.caget("BP:SEEN") == "9"
