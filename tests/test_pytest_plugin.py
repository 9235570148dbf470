"""The pytest plugin users get: run a user's IOC script with the fixture."""

import subprocess
import sys
import textwrap


def test_user_suite_with_fixture(tmp_path):
    (tmp_path / "my_ioc.py").write_text(textwrap.dedent("""
        from softioc import builder, softioc
        sp = builder.aOut("USER:SP", 1.0, on_update=lambda v: rb.set(v + 1))
        rb = builder.aIn("USER:RB", 2.0)
        builder.LoadDatabase()
        softioc.iocInit()
        softioc.interactive_ioc(globals())
    """))
    (tmp_path / "test_mine.py").write_text(textwrap.dedent("""
        import time

        def test_my_ioc(pythonioc):
            ioc = pythonioc("my_ioc.py", wait_for="USER:RB")
            assert ioc.caget("USER:RB") == "2"
            ioc.caput("USER:SP", "41")
            deadline = time.monotonic() + 5
            while ioc.caget("USER:RB") != "42" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ioc.caget("USER:RB") == "42"

        def test_loopback(epics_loopback):
            import os
            assert os.environ["EPICS_CA_ADDR_LIST"] == "127.0.0.1"
    """))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(tmp_path / "test_mine.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert "2 passed" in result.stdout, result.stdout + result.stderr
