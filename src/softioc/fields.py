"""pythonSoftIOC's ``softioc.fields``: EPICS field type codes (``DBF_*``).

Also re-exports Channel Access's ``DBR_*`` types and ``ca_timestamp`` from
``epicscorelibs.ca.dbr``, as pythonSoftIOC does.
"""

from ctypes import (
    c_byte,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int16,
    c_int32,
    c_int64,
    c_ubyte,
    c_uint16,
    c_uint64,
    c_void_p,
)

from epicscorelibs.ca.dbr import *  # noqa: F403  (pythonSoftIOC re-exports these)
from epicscorelibs.ca.dbr import EPICS_epoch, ca_timestamp  # noqa: F401

# The dbfType enumeration of EPICS's dbFldTypes.h, in its order.
DBF_NAMES = (
    "DBF_STRING", "DBF_CHAR", "DBF_UCHAR", "DBF_SHORT", "DBF_USHORT", "DBF_LONG",
    "DBF_ULONG", "DBF_INT64", "DBF_UINT64", "DBF_FLOAT", "DBF_DOUBLE", "DBF_ENUM",
    "DBF_MENU", "DBF_DEVICE", "DBF_INLINK", "DBF_OUTLINK", "DBF_FWDLINK", "DBF_NOACCESS",
)
(DBF_STRING, DBF_CHAR, DBF_UCHAR, DBF_SHORT, DBF_USHORT, DBF_LONG, DBF_ULONG, DBF_INT64,
 DBF_UINT64, DBF_FLOAT, DBF_DOUBLE, DBF_ENUM, DBF_MENU, DBF_DEVICE, DBF_INLINK,
 DBF_OUTLINK, DBF_FWDLINK, DBF_NOACCESS) = range(len(DBF_NAMES))

# ctypes type of a field's value, by DBF code (strings: 40 bytes).
DbfCodeToCtypes = {
    DBF_STRING: c_char * 40, DBF_CHAR: c_byte, DBF_UCHAR: c_ubyte, DBF_SHORT: c_int16,
    DBF_USHORT: c_uint16, DBF_LONG: c_int32, DBF_INT64: c_int64, DBF_UINT64: c_uint64,
    DBF_ULONG: c_int32, DBF_FLOAT: c_float, DBF_DOUBLE: c_double, DBF_ENUM: c_uint16,
    DBF_MENU: c_uint16, DBF_INLINK: c_char_p, DBF_OUTLINK: c_char_p, DBF_NOACCESS: c_void_p,
}


def get_DBF_values() -> dict[str, int]:
    """``{"DBF_STRING": 0, ...}``."""
    return {name: code for code, name in enumerate(DBF_NAMES)}
