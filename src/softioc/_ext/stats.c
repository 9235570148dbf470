/* Figures for softioc.health and softioc.iocstats, through public EPICS
 * interfaces only: dbServerStats() (dbServer.h, Base 7.0.10) for the clients
 * and channels of each server layer (rsrv for CA; QSRV2, "qsrv2", for PVA),
 * the static database's record-type walk for the number of records, the
 * queue statistics of dbCore (scanOnceQueueStatus(), callbackQueueStatus()),
 * the thread watchdog's suspensions (taskwd) and libCom's EPICS environment
 * parameters (env_param_list).  For the HTTP metrics (softioc.metrics): the
 * records of each type, and client puts counted, accepted or refused.
 */
#include "pythonioc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <asLib.h>
#include <asTrapWrite.h>
#include <callback.h>
#include <dbScan.h>
#include <dbServer.h>
#include <dbStaticLib.h>
#include <dbAccess.h>
#include <dbChannel.h>
#include <envDefs.h>
#include <epicsMutex.h>
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
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);    /* (records being made meanwhile) */
    dbInitEntry(pdbbase, &entry);
    for (status = dbFirstRecordType(&entry); !status; status = dbNextRecordType(&entry))
        total += dbGetNRecords(&entry) - dbGetNAliases(&entry);
    dbFinishEntry(&entry);
    epicsMutexUnlock(pyioc_static_mutex);
    return PyLong_FromLong(total);
}

/* records_by_type() -> [(record type, records)]: the types that have any,
 * aliases not counted. */
PyObject *m_records_by_type(PyObject *mod, PyObject *unused)
{
    DBENTRY entry;
    long status;
    PyObject *list = PyList_New(0), *item;
    if (!list || !pdbbase)
        return list;
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    dbInitEntry(pdbbase, &entry);
    for (status = dbFirstRecordType(&entry); !status; status = dbNextRecordType(&entry)) {
        long n = dbGetNRecords(&entry) - dbGetNAliases(&entry);
        if (n <= 0)
            continue;
        item = Py_BuildValue("(sl)", dbGetRecordTypeName(&entry), n);
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(item);
    }
    dbFinishEntry(&entry);
    epicsMutexUnlock(pyioc_static_mutex);
    return list;
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

/* ---- client puts, counted ---------------------------------------------------
 *
 * From the first put_counts() call on, a write-trap listener (as fieldwatch.c
 * and putlog.c: every client put over CA and PVA that a TRAPWRITE rule
 * covers, which pythonIOC's default ACF does everywhere) sorts each client
 * put when it ends: accepted, or refused with a reason.  A refusal is noted
 * where the IOC makes it, in the thread doing the put, for that put's record
 * (pyioc_count_refused: validate(), strict puts), in a small table the
 * listener reads when the put ends; the table is looked at only while a
 * refusal waits there, so an accepted put costs the listener a thread-name
 * look-up and two atomic operations.  A blocking PVA put that strict puts
 * refuse before QSRV2 sees it (qsrvguard.cpp) never reaches the listener and
 * is counted refused at once (pyioc_count_refused_put).  Puts that access
 * security or DISP refuse never reach the listener either (rsrv and QSRV2
 * check first), and are not counted.  Each count only grows.
 */
enum { PROTO_CA, PROTO_PVA, N_PROTO };
#define N_WAITING 64                /* refusals noted, waiting for their put to end */

static size_t accepted[N_PROTO], refused[N_PROTO][PYIOC_N_REFUSALS];
static struct {
    asTrapWriteMessage *msg;        /* NULL: a free slot */
    int proto, reason;
} waiting[N_WAITING];
static int n_waiting;
static epicsMutexId count_lock;
/* The put this thread makes: its message, compared but never read (a
 * put-callback ends in another thread, which cannot clear these, so they may
 * be stale), and its record, read when the put starts. */
static __thread asTrapWriteMessage *thread_msg;
static __thread dbCommon *thread_rec;
static volatile int counting;

/* rsrv serves each CA client in a thread named CAS-client; QSRV2's puts run
 * in PVXS's threads. */
static int thread_protocol(void)
{
    const char *name = epicsThreadGetNameSelf();
    return name && strncmp(name, "CAS-", 4) == 0 ? PROTO_CA : PROTO_PVA;
}

static void count_listener(asTrapWriteMessage *msg, int after)
{
    int proto, i;
    if (!after) {
        /* the protocol travels with the message (a put-callback may end in
         * another thread): asTrapWrite keeps each listener's userPvt */
        msg->userPvt = (void *)(intptr_t)(thread_protocol() + 1);
        thread_msg = msg;
        thread_rec = msg->serverSpecific ?
            dbChannelRecord((dbChannel *)msg->serverSpecific) : NULL;
        return;
    }
    proto = (int)(intptr_t)msg->userPvt - 1;
    if (proto < 0 || proto >= N_PROTO)
        return;
    if (thread_msg == msg)
        thread_msg = NULL;
    if (epicsAtomicGetIntT(&n_waiting)) {
        epicsMutexMustLock(count_lock);
        for (i = 0; i < N_WAITING; i++) {
            if (waiting[i].msg == msg) {
                epicsAtomicIncrSizeT(&refused[waiting[i].proto][waiting[i].reason]);
                waiting[i].msg = NULL;
                epicsAtomicDecrIntT(&n_waiting);
                epicsMutexUnlock(count_lock);
                return;
            }
        }
        epicsMutexUnlock(count_lock);
    }
    epicsAtomicIncrSizeT(&accepted[proto]);
}

void pyioc_count_refused(dbCommon *prec, int reason)
{
    asTrapWriteMessage *msg;
    int i;
    if (!counting || reason < 0 || reason >= PYIOC_N_REFUSALS)
        return;
    msg = thread_msg;
    /* only the client put this thread makes, to this record, and once */
    if (!msg || thread_rec != prec)
        return;
    thread_msg = NULL;
    epicsMutexMustLock(count_lock);
    for (i = 0; i < N_WAITING && waiting[i].msg; i++)
        ;
    if (i < N_WAITING) {
        waiting[i].msg = msg;
        waiting[i].proto = thread_protocol();
        waiting[i].reason = reason;
        epicsAtomicIncrIntT(&n_waiting);
    } else {
        /* 64 refused puts under way at once: count this one now (its end
         * will count it accepted as well) */
        epicsAtomicIncrSizeT(&refused[thread_protocol()][reason]);
    }
    epicsMutexUnlock(count_lock);
}

void pyioc_count_refused_put(int reason)
{
    if (counting && reason >= 0 && reason < PYIOC_N_REFUSALS)
        epicsAtomicIncrSizeT(&refused[PROTO_PVA][reason]);
}

static void start_counting(void *unused)
{
    count_lock = epicsMutexMustCreate();
    asTrapWriteRegisterListener(count_listener);
    counting = 1;
}

/* put_counts() -> {"ca": (accepted, refused by validate(), refused by strict
 * puts), "pva": (...)}: the client puts that ended since the first call,
 * which starts the counting. */
PyObject *m_put_counts(PyObject *mod, PyObject *unused)
{
    static epicsThreadOnceId once = EPICS_THREAD_ONCE_INIT;
    static const char *const names[N_PROTO] = {"ca", "pva"};
    PyObject *dict;
    int p;
    Py_BEGIN_ALLOW_THREADS
    epicsThreadOnce(&once, start_counting, NULL);
    Py_END_ALLOW_THREADS
    dict = PyDict_New();
    for (p = 0; dict && p < N_PROTO; p++) {
        PyObject *counts = Py_BuildValue(
            "(nnn)", (Py_ssize_t)epicsAtomicGetSizeT(&accepted[p]),
            (Py_ssize_t)epicsAtomicGetSizeT(&refused[p][PYIOC_REFUSED_VALIDATE]),
            (Py_ssize_t)epicsAtomicGetSizeT(&refused[p][PYIOC_REFUSED_STRICT]));
        if (!counts || PyDict_SetItemString(dict, names[p], counts) < 0)
            Py_CLEAR(dict);
        Py_XDECREF(counts);
    }
    return dict;
}
