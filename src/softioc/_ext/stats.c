/* Figures for softioc.health and softioc.iocstats, through public EPICS
 * interfaces only: dbServerStats() (dbServer.h, Base 7.0.10) for the clients
 * and channels of each server layer (rsrv for CA; QSRV2, "qsrv2", for PVA),
 * the static database's record-type walk for the number of records, the
 * queue statistics of dbCore (scanOnceQueueStatus(), callbackQueueStatus()),
 * the thread watchdog's suspensions (taskwd) and libCom's EPICS environment
 * parameters (env_param_list).
 */
#include "pythonioc.h"

#include <stdlib.h>
#include <string.h>

#include <callback.h>
#include <dbScan.h>
#include <dbServer.h>
#include <dbStaticLib.h>
#include <dbAccess.h>
#include <envDefs.h>
#include <epicsAtomic.h>
#include <epicsThread.h>
#include <taskwd.h>

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

/* queue_stats() -> ((size, used, most used, overflows) of the scanOnce
 * queue, (size, (used), (most used), (overflows)) of the callback queues,
 * each tuple inner by priority low, medium, high), or None before iocInit
 * has made the queues. */
PyObject *m_queue_stats(PyObject *mod, PyObject *unused)
{
    scanOnceQueueStats once;
    callbackQueueStats cb;
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = scanOnceQueueStatus(0, &once) || callbackQueueStatus(0, &cb);
    Py_END_ALLOW_THREADS
    if (failed)
        Py_RETURN_NONE;
    return Py_BuildValue("(iiii)(i(iii)(iii)(iii))",
                         once.size, once.numUsed, once.maxUsed, once.numOverflow, cb.size,
                         cb.numUsed[priorityLow], cb.numUsed[priorityMedium],
                         cb.numUsed[priorityHigh], cb.maxUsed[priorityLow],
                         cb.maxUsed[priorityMedium], cb.maxUsed[priorityHigh],
                         cb.numOverflow[priorityLow], cb.numOverflow[priorityMedium],
                         cb.numOverflow[priorityHigh]);
}

/* suspended_threads() -> how many times the thread watchdog has found an
 * EPICS thread suspended (after an assertion failure or cantProceed), since
 * the first call, which starts the counting. */
static int suspensions;

static void on_suspend(void *usr, epicsThreadId tid, int suspended)
{
    if (suspended)
        epicsAtomicIncrIntT(&suspensions);
}

static const taskwdMonitor suspension_monitor = {NULL, on_suspend, NULL};

static void watch_suspensions(void *unused)
{
    taskwdMonitorAdd(&suspension_monitor, NULL);
}

PyObject *m_suspended_threads(PyObject *mod, PyObject *unused)
{
    static epicsThreadOnceId once = EPICS_THREAD_ONCE_INIT;
    Py_BEGIN_ALLOW_THREADS
    epicsThreadOnce(&once, watch_suspensions, NULL);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(epicsAtomicGetIntT(&suspensions));
}

/* epics_env() -> [(name, value)]: every EPICS environment parameter libCom
 * knows (env_param_list), with its value from the C environment, else
 * Base's default, "" if neither gives one. */
PyObject *m_epics_env(PyObject *mod, PyObject *unused)
{
    const ENV_PARAM **param;
    PyObject *list = PyList_New(0), *item;
    if (!list)
        return NULL;
    for (param = env_param_list; *param; param++) {
        const char *value = envGetConfigParamPtr(*param);
        if (!value)
            value = "";
        item = Py_BuildValue("(sN)", (*param)->name,
                             PyUnicode_DecodeUTF8(value, (Py_ssize_t)strlen(value), "replace"));
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}
