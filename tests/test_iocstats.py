"""softioc.devIocStats(): devIocStats' records, with its names, record types
and fields, served over CA and PVA, whether called before or after
LoadDatabase; SYSRESET refuses writes unless restarts are allowed, and then
stops the IOC cleanly; after iocInit devIocStats() raises."""

import os
import platform
import re
import socket
import time

import pytest

from softioc import testing
from softioc.iocstats import uptime_text
from softioc.testing import IOCProcess

from .conftest import IOCS

# devIocStats' ioc.template, all that pythonSoftIOC's devIocStats() loads:
# 61 records and 2 aliases (LOAD, SysReset).  name -> record type.
TEMPLATE = {
    "ACCESS": "mbbo", "STARTTOD": "stringin", "TOD": "stringin", "HEARTBEAT": "calcout",
    "START_CNT": "calcout", "CA_CLNT_CNT": "ai", "CA_CONN_CNT": "ai", "RECORD_CNT": "ai",
    "FD_MAX": "ai", "FD_CNT": "ai", "FD_FREE": "calc", "SYS_CPU_LOAD": "ai",
    "IOC_CPU_LOAD": "ai", "LOAD": "ai", "CPU_CNT": "ai", "SUSP_TASK_CNT": "ai",
    "MEM_USED": "ai", "MEM_FREE": "ai", "MEM_MAX": "ai", "CA_UPD_TIME": "ao",
    "FD_UPD_TIME": "ao", "LOAD_UPD_TIME": "ao", "MEM_UPD_TIME": "ao",
    "ST_SCRIPT1": "stringin", "ST_SCRIPT2": "stringin", "ST_SCRIPT": "waveform",
    "KERNEL_VERS": "stringin", "EPICS_VERS": "stringin", "EPICS_VERSION": "waveform",
    "HOSTNAME": "stringin", "APP_DIR1": "stringin", "APP_DIR2": "stringin",
    "APP_DIR": "waveform", "UPTIME": "stringin", "ENGINEER": "stringin",
    "LOCATION": "stringin", "PROCESS_ID": "ai", "PARENT_ID": "ai", "SCANONCE_Q_SIZE": "ai",
    "CB_Q_SIZE": "ai",
    # devIocStats: sub records (C subroutines); here ao, the same channel type (double)
    "READACF": "ao", "SYSRESET": "ao", "SysReset": "ao",
}
for _q in ("SCANONCE", "CBLOW", "CBMEDIUM", "CBHIGH"):
    TEMPLATE.update({f"{_q}_Q_HIGH": "ai", f"{_q}_Q_HIGHPER": "calc", f"{_q}_Q_USED": "ai",
                     f"{_q}_Q_USEDPER": "calc", f"{_q}_Q_OVERRUNS": "ai"})
# The rest of devIocStats' soft IOC set (iocAdminSoft): General Time, EPICS
# and PVA settings (with the old aliases).
GENERAL_TIME = {"GTIM_TIME": "ai", "GTIM_RESET": "bo", "GTIM_ERR_CNT": "longin",
                "GTIM_CUR_SRC": "stringin", "GTIM_EVT_SRC": "stringin",
                "GTIM_HI_SRC": "stringin"}
SETTINGS = [
    "CA_ADDR_LIST", "CA_AUTO_ADDR_LIST", "CA_CONN_TMO", "CA_REPEATER_PORT", "CA_SERVER_PORT",
    "CA_MAX_ARRAY_BYTES", "CA_MAX_SEARCH_PERIOD", "CA_BEACON_PERIOD", "CAS_INTF_ADDR_LIST",
    "CAS_IGNORE_ADDR_LIST", "CAS_AUTO_BEACON_ADDR_LIST", "CAS_BEACON_ADDR_LIST",
    "CAS_SERVER_PORT", "CAS_BEACON_PERIOD", "CAS_BEACON_PORT", "TZ", "TS_NTP_INET",
    "IOC_LOG_PORT", "IOC_LOG_INET",
    # the old names
    "CA_CONN_TIME", "CA_AUTO_ADDR", "CA_RPTR_PORT", "CA_SRVR_PORT", "CA_MAX_ARRAY",
    "CA_SRCH_TIME", "CA_BEAC_TIME", "CAS_SRVR_PORT", "CAS_AUTO_ADDR", "CAS_ADDR_LIST",
    "CAS_ADDR_INTF_LIST", "CAS_ADDR_IGNORE_LIST",
    "PVA_ADDR_LIST", "PVA_AUTO_ADDR_LIST", "PVA_BEACON_PERIOD", "PVA_CONN_TMO",
    "PVA_MAX_ARRAY_BYTES", "PVA_MAX_SEARCH_PERIOD", "PVA_SERVER_PORT", "PVAS_INTF_ADDR_LIST",
    "PVAS_BEACON_ADDR_LIST", "PVAS_AUTO_BEACON_ADDR_LIST", "PVAS_BEACON_PERIOD",
    "PVAS_BROADCAST_PORT", "PVAS_PROVIDER_NAMES", "PVAS_SERVER_PORT",
]
ALL = {**TEMPLATE, **GENERAL_TIME, **dict.fromkeys(SETTINGS, "stringin")}
# The channel type each record type serves (its VAL field)
DBF = {"ai": "DBF_DOUBLE", "ao": "DBF_DOUBLE", "calc": "DBF_DOUBLE", "calcout": "DBF_DOUBLE",
       "stringin": "DBF_STRING", "mbbo": "DBF_ENUM", "bo": "DBF_ENUM", "longin": "DBF_LONG",
       "waveform": "DBF_CHAR"}
UPTIME = re.compile(r"(\d+ days?, )?\d\d:[0-5]\d:[0-5]\d")
ENV = {"ENGINEER": "Ada Lovelace", "LOCATION": "Hall B, rack 7"}


@pytest.fixture(scope="module")
def ioc(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("iocstats")
    with IOCProcess([str(IOCS / "iocstats_ioc.py")], wait_for="STATS:UPTIME", env=ENV,
                    cwd=str(cwd)) as ioc:
        ioc.cwd = cwd
        yield ioc


def test_uptime_is_text_that_counts(ioc):
    first = ioc.caget("STATS:UPTIME")
    assert UPTIME.fullmatch(first), first
    later = ioc.wait_value("STATS:UPTIME", lambda t: t != first, timeout=5)
    assert UPTIME.fullmatch(later) and later > first, (first, later)


def test_uptime_text_past_a_day():
    assert uptime_text(5) == "00:00:05"
    assert uptime_text(3599) == "00:59:59"
    assert uptime_text(86400 + 3661) == "1 day, 01:01:01"
    assert uptime_text(3 * 86400 + 59) == "3 days, 00:00:59"


def test_every_record_with_its_type(ioc):
    names = [f"STATS:{name}" for name in ALL]
    rtypes = ioc.run_tool("caget", "-t", *(f"{n}.RTYP" for n in names)).stdout.split()
    assert dict(zip(ALL, rtypes)) == ALL
    info = ioc.run_tool("cainfo", *names).stdout
    native = dict(zip(names, re.findall(r"Native data type: (\S+)", info)))
    assert native == {f"STATS:{name}": DBF[rtype] for name, rtype in ALL.items()}, info


def test_fields_as_devIocStats_sets_them(ioc):
    fields = {
        "CA_CLNT_CNT.HOPR": "200", "CA_CLNT_CNT.HIHI": "175", "CA_CLNT_CNT.HIGH": "100",
        "CA_CLNT_CNT.HHSV": "MAJOR", "CA_CLNT_CNT.HSV": "MINOR", "CA_CONN_CNT.HIHI": "4500",
        "CA_CONN_CNT.HIGH": "4000", "IOC_CPU_LOAD.EGU": "%", "IOC_CPU_LOAD.PREC": "1",
        "IOC_CPU_LOAD.HIHI": "80", "IOC_CPU_LOAD.HIGH": "70", "SYS_CPU_LOAD.HHSV": "MAJOR",
        "SUSP_TASK_CNT.HIHI": "1", "MEM_USED.EGU": "byte", "MEM_FREE.LLSV": "MAJOR",
        "FD_FREE.LOLO": "5", "FD_FREE.LOW": "20", "FD_FREE.LSV": "MINOR",
        "CA_UPD_TIME.DRVH": "60", "CA_UPD_TIME.DRVL": "1", "CA_UPD_TIME.EGU": "sec",
        "ST_SCRIPT.NELM": "120", "EPICS_VERSION.NELM": "120", "APP_DIR.NELM": "160",
        "ST_SCRIPT.FTVL": "CHAR", "CBLOW_Q_HIGHPER.EGU": "%", "GTIM_ERR_CNT.HIHI": "1",
        "ACCESS.ONST": "Maintenance", "ACCESS.THSV": "MAJOR",
        # the update periods' defaults
        "CA_UPD_TIME": "15", "FD_UPD_TIME": "20", "LOAD_UPD_TIME": "10",
        "MEM_UPD_TIME": "10",
    }
    got = ioc.run_tool("caget", "-t", *(f"STATS:{f}" for f in fields)).stdout.split("\n")
    assert dict(zip(fields, (g.strip() for g in got))) == fields


def test_values(ioc):
    names = ["ENGINEER", "LOCATION", "ST_SCRIPT1", "PROCESS_ID", "CPU_CNT", "HOSTNAME",
             "EPICS_VERS", "KERNEL_VERS", "RECORD_CNT", "CB_Q_SIZE", "SCANONCE_Q_SIZE",
             "CA_ADDR_LIST", "CA_SERVER_PORT", "CA_SRVR_PORT", "PVA_SERVER_PORT",
             "MEM_USED", "MEM_MAX", "FD_CNT", "FD_MAX", "START_CNT", "ACCESS", "STARTTOD",
             "TOD", "PVAS_PROVIDER_NAMES"]
    # -f 0: whole numbers in full (a pid of 7 digits is not 1.23457e+06)
    values = {n: ioc.caget(f"STATS:{n}", "-f", "0") for n in names}
    assert values["ENGINEER"] == ENV["ENGINEER"]
    assert values["LOCATION"] == ENV["LOCATION"]
    assert values["ST_SCRIPT1"] == str(IOCS / "iocstats_ioc.py")[:39]
    assert int(values["PROCESS_ID"]) == ioc.proc.pid
    assert int(values["CPU_CNT"]) == os.cpu_count()
    assert values["HOSTNAME"] == socket.gethostname()[:39]
    assert values["EPICS_VERS"].startswith("EPICS 7.")
    assert values["KERNEL_VERS"].startswith(f"{platform.system()} {platform.release()}"[:39])
    assert int(values["RECORD_CNT"]) > len(ALL)
    assert int(values["CB_Q_SIZE"]) > 0 and int(values["SCANONCE_Q_SIZE"]) > 0
    assert values["CA_ADDR_LIST"] == "127.0.0.1"
    assert values["CA_SERVER_PORT"] == values["CA_SRVR_PORT"] == str(ioc.ca_port)
    assert values["PVA_SERVER_PORT"] == str(ioc.pva_port)
    assert values["PVAS_PROVIDER_NAMES"] == "<not available>"
    assert 1e6 < float(values["MEM_USED"]) < float(values["MEM_MAX"])
    assert 3 <= int(values["FD_CNT"]) < int(values["FD_MAX"])
    assert values["START_CNT"] == "1" and values["ACCESS"] == "Running"
    for stamp in (values["STARTTOD"], values["TOD"]):
        time.strptime(stamp, "%m/%d/%Y %H:%M:%S")
    # the working directory, whole in the waveform and in two pieces
    app_dir = ioc.run_tool("caget", "-t", "-S", "STATS:APP_DIR").stdout.strip()
    assert app_dir == str(ioc.cwd)
    assert ioc.caget("STATS:APP_DIR1") + ioc.caget("STATS:APP_DIR2") == app_dir[:78]


def test_heartbeat_and_time_of_day_move(ioc):
    beat = float(ioc.caget("STATS:HEARTBEAT"))
    ioc.wait_value("STATS:HEARTBEAT", lambda t: float(t) > beat, timeout=5)
    tod = ioc.caget("STATS:TOD")
    ioc.wait_value("STATS:TOD", lambda t: t != tod, timeout=5)


def test_ca_counts_follow_a_client(ioc):
    ioc.caput("STATS:CA_UPD_TIME", "1")
    try:
        with testing.monitor(ioc, "STATS:HEARTBEAT", "APP:A", settle=0):
            assert float(ioc.wait_value("STATS:CA_CLNT_CNT", lambda t: float(t) >= 1)) >= 1
            assert float(ioc.wait_value("STATS:CA_CONN_CNT", lambda t: float(t) >= 2)) >= 2
    finally:
        ioc.caput("STATS:CA_UPD_TIME", "15")


def test_loads_and_queues(ioc):
    ioc.caput("STATS:LOAD_UPD_TIME", "1")
    try:
        for name in ("IOC_CPU_LOAD", "LOAD", "SYS_CPU_LOAD"):
            load = float(ioc.caget(f"STATS:{name}"))
            assert 0 <= load <= 100, (name, load)
        # the first figure comes a second after iocInit: by now it is a real one
        ioc.wait_value("STATS:SYS_CPU_LOAD", lambda t: float(t) > 0, timeout=5)
    finally:
        ioc.caput("STATS:LOAD_UPD_TIME", "10")
    for q in ("SCANONCE", "CBLOW", "CBMEDIUM", "CBHIGH"):
        for what in ("HIGH", "USED", "OVERRUNS"):
            assert float(ioc.caget(f"STATS:{q}_Q_{what}")) >= 0
        for what in ("HIGHPER", "USEDPER"):
            assert 0 <= float(ioc.caget(f"STATS:{q}_Q_{what}")) <= 100
            assert ioc.caget(f"STATS:{q}_Q_{what}.SEVR") == "NO_ALARM"
    assert ioc.caget("STATS:SUSP_TASK_CNT") == "0"


def test_pva_serves_them_too(ioc):
    assert UPTIME.search(ioc.pvget("STATS:UPTIME"))
    out = ioc.pvget("STATS:IOC_CPU_LOAD", "-M", "raw")
    assert "display" in out and "string units %" in out
    access = ioc.pvget("STATS:ACCESS")
    assert "Running" in access and "INVALID" not in access, access


def test_health_records_made_after_load_database_serve_too(ioc):
    assert int(ioc.caget("STATS:HEALTH:UPTIME")) >= 0
    beat = int(ioc.caget("STATS:HEALTH:HEARTBEAT"))
    ioc.wait_value("STATS:HEALTH:HEARTBEAT", lambda t: int(t) > beat, timeout=5)


def test_sysreset_and_readacf_refuse_writes(ioc):
    for name in ("SYSRESET", "SysReset", "READACF"):
        result = ioc.caput(f"STATS:{name}", "1")
        assert "error" in result.stdout.lower() or result.returncode != 0, result.stdout
    refused = ioc.run_tool("pvput", "-w", "5", "STATS:SYSRESET", "1", check=False)
    assert refused.returncode != 0 and "refused" in refused.stdout, refused.stdout
    assert ioc.proc.poll() is None
    testing.wait_until(lambda: "allow_restart=True" in ioc.output()
                       and "no file to re-read" in ioc.output(), what="the refusals logged")
    assert ioc.caget("STATS:SYSRESET") == "0"


def test_after_ioc_init_it_raises(ioc):
    ioc.send("softioc.devIocStats('LATE')")
    testing.wait_until(lambda: "RuntimeError: devIocStats() must come before iocInit()"
                       in ioc.output(), what="devIocStats after iocInit refused")


def test_clean_exit(ioc):
    """Last: the updating thread stops with the IOC (end of stdin)."""
    assert ioc.stop() == 0
    output = ioc.output()
    # the one traceback: devIocStats() after iocInit, typed into the shell
    assert output.count("Traceback") == output.count("RuntimeError: devIocStats()") == 1, output


def test_sysreset_restarts_when_allowed():
    with IOCProcess([str(IOCS / "iocstats_ioc.py"), "restart"],
                    wait_for="STATS:UPTIME") as ioc:
        ioc.caput("STATS:SYSRESET", "0")            # only 1 restarts
        time.sleep(1.5)
        assert ioc.proc.poll() is None
        result = ioc.caput("STATS:SYSRESET", "1")
        assert "error" not in result.stdout.lower(), result.stdout
        assert ioc.proc.wait(10) == 0
        assert "the IOC stops in 1 s" in ioc.output(), ioc.output()


def test_devIocStats_checks_names():
    from softioc import iocstats

    with pytest.raises(ValueError, match="IOC name"):
        iocstats.create(":")
