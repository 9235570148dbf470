"""Records created after iocInit through the same builder API, and aliases."""

import time

from .clients import CLIENTS
from .conftest import module_ioc

ioc = module_ioc("runtime_ioc.py", wait_for="RT:FIXED")


def test_aliases(ioc):
    assert ioc.caget("RT:OTHER") == "1"
    assert ioc.caget("RT:THIRD") == "1"
    assert ioc.caget("DB:TOTAL") == ioc.caget("DB:SUM")


def test_new_records_after_init(ioc):
    ioc.send("new = builder.aIn('RT:NEW', 3.5, EGU='bar', PREC=2)")
    ioc.send("out = builder.aOut('RT:NEWOUT', 1.0, on_update=lambda v: new.set(v * 10))")
    ioc.wait_for_pv("RT:NEW", timeout=5)
    assert ioc.caget("RT:NEW") == "3.5"
    assert ioc.caget("RT:NEW.EGU") == "bar"
    assert ioc.caget("RT:NEW.PREC") == "2"
    for protocol in ("ca", "pva"):
        client = CLIENTS[protocol](ioc)
        try:
            assert client.put("RT:NEWOUT", 4.0 if protocol == "ca" else 5.0)
            expected = 40.0 if protocol == "ca" else 50.0
            deadline = time.monotonic() + 5
            while client.get("RT:NEW", like=1.0) != expected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.get("RT:NEW", like=1.0) == expected
        finally:
            client.close()


def test_new_waveform_and_enum_after_init(ioc):
    ioc.send("wf = builder.WaveformIn('RT:WF', [1.0, 2.0, 3.0], length=50)")
    ioc.send("mode = builder.mbbOut('RT:MODE', 'Off', 'On', 'Auto', initial_value=2)")
    ioc.wait_for_pv("RT:WF", timeout=5)
    ioc.wait_for_pv("RT:MODE", timeout=5)
    assert ioc.caget("RT:WF.NORD") == "3"
    assert ioc.caget("RT:MODE") == "Auto"
    assert "rror" not in ioc.caput("RT:MODE", "On").stdout


def test_pool_exhausted_is_a_clear_error(ioc):
    ioc.send("try:\n    builder.mbbOut('RT:MODE2', 'a', 'b')\nexcept RuntimeError as e:\n"
             "    print('REFUSED', e)\n")
    ioc.send("")
    ioc.send("print('SPARES', builder.SpareRecords())")
    ioc.stop()
    out = ioc.output()
    assert "REFUSED cannot create 'RT:MODE2' after iocInit: no spare mbbo" in out
    assert "SPARES" in out
