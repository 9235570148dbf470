"""An exception in Python called from an EPICS thread by the C layer (not in
user code, which has its own handling) reaches the "softioc" logger with its
traceback; the put is marked failed and the IOC keeps serving."""

import textwrap

from softioc.testing import IOCProcess, wait_until

SCRIPT = textwrap.dedent("""
    import logging, sys
    from softioc import builder, softioc

    logging.basicConfig(stream=sys.stdout,
                        format="LOG %(name)s %(levelname)s [%(record)s] %(message)s")

    def broken_dispatcher(func, func_args=(), completion=None, completion_args=()):
        raise RuntimeError("the dispatcher is gone")

    out = builder.aOut("CERR:OUT", 1.0, on_update=print)
    fine = builder.aIn("CERR:FINE", 5.0)
    watched = builder.aOut("CERR:WATCHED", 0.0)
    watched.on_field_change("DESC", print)
    builder.LoadDatabase()
    softioc.iocInit(broken_dispatcher)
    softioc.interactive_ioc(globals())
""")


def test_error_in_glue_is_logged_with_traceback(tmp_path):
    script = tmp_path / "cerr_ioc.py"
    script.write_text(SCRIPT)
    with IOCProcess([str(script)], wait_for="CERR:OUT") as ioc:
        ioc.caput("CERR:OUT", "2", callback=False)
        ioc.wait_value("CERR:OUT.SEVR", "INVALID")
        assert ioc.caget("CERR:OUT.STAT") == "WRITE"
        log = ioc.output()
        assert ("LOG softioc ERROR [CERR:OUT] handing on a client's write of "
                "<OutRecord CERR:OUT (ao)> failed") in log, log
        assert "Traceback" in log and "RuntimeError: the dispatcher is gone" in log, log
        assert "Exception ignored" not in log, log
        assert ioc.caget("CERR:FINE") == "5"


def test_error_in_field_watch_is_logged_with_traceback(tmp_path):
    script = tmp_path / "cerr_ioc.py"
    script.write_text(SCRIPT)
    with IOCProcess([str(script)], wait_for="CERR:WATCHED") as ioc:
        ioc.caput("CERR:WATCHED.DESC", "seen")
        head = ("LOG softioc ERROR [CERR:WATCHED] watching a field write of "
                "<OutRecord CERR:WATCHED (ao)> failed")
        log = wait_until(lambda: head in ioc.output() and ioc.output(), what=head)
        assert log.count("Traceback") == 1 and "RuntimeError: the dispatcher is gone" in log, log
        assert "Exception ignored" not in log, log
        assert ioc.caget("CERR:WATCHED.DESC") == "seen"
