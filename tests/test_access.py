"""An ACF loaded through the API refuses puts from users it does not list;
reads still work; other records stay writable."""

import pytest

from softioc import access

from .clients import CLIENTS
from .conftest import module_ioc

ioc = module_ioc("access_ioc.py", wait_for="AS:LOCKED")


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_put_refused_read_allowed(ioc, protocol):
    client = CLIENTS[protocol](ioc)
    try:
        assert client.get("AS:LOCKED", like=1.0) == 1.0
        assert not client.put("AS:LOCKED", 5.0)
        assert client.get("AS:LOCKED", like=1.0) == 1.0
        assert client.put("AS:OPEN", 6.0)
        assert client.get("AS:OPEN", like=1.0) == 6.0
    finally:
        client.close()


def test_ca_reports_no_write_access(ioc):
    out = ioc.caput("AS:LOCKED", "7").stdout.lower()
    assert "write access" in out or "no write" in out or "denied" in out, out


def test_bad_acf_is_refused_early():
    with pytest.raises(ValueError):
        access.load_acf("this is not an ACF")
