/* Figures for softioc.health, through public EPICS interfaces only:
 * dbServerStats() (dbServer.h, Base 7.0.10) for the clients and channels of
 * each server layer (rsrv for CA; QSRV2, "qsrv2", for PVA), and the static
 * database's record-type walk for the number of records.
 */
#include "pythonioc.h"

#include <stdlib.h>
#include <string.h>

#include <dbServer.h>
#include <dbStaticLib.h>
#include <dbAccess.h>

/* server_stats(name) -> (clients, channels), or None when the IOC is not
 * running or has no such server with statistics. */
PyObject *m_server_stats(PyObject *mod, PyObject *args)
{
    const char *name;
    unsigned channels = 0, clients = 0;
    int n;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    n = dbServerStats(name, &channels, &clients);
    Py_END_ALLOW_THREADS
    if (n <= 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(II)", clients, channels);
}

/* record_count() -> records in the database (every type, not aliases). */
PyObject *m_record_count(PyObject *mod, PyObject *unused)
{
    DBENTRY entry;
    long status, total = 0;
    if (!pdbbase)
        return PyLong_FromLong(0);
    dbInitEntry(pdbbase, &entry);
    for (status = dbFirstRecordType(&entry); !status; status = dbNextRecordType(&entry))
        total += dbGetNRecords(&entry) - dbGetNAliases(&entry);
    dbFinishEntry(&entry);
    return PyLong_FromLong(total);
}

/* epics_version() -> EPICS_VERSION_FULL as the IOC shell sets it in the C
 * environment (iocshRegisterCommon, from the running dbCore), or None. */
PyObject *m_epics_version(PyObject *mod, PyObject *unused)
{
    const char *v = getenv("EPICS_VERSION_FULL");
    if (!v || !*v)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(v, (Py_ssize_t)strlen(v), "replace");
}
