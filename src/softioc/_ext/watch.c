/* The live view's watcher (softioc._watch).  watch_start(), when Python first
 * asks, opens an event user of the database, as rsrv and QSRV2 do, and
 * subscribes to the value and alarm events of every record's VAL (aliases not
 * repeated).  The callback, in the event user's thread, marks the record's
 * index once in a list under a mutex and wakes watch_take(): no Python, no
 * GIL, so the cost follows the changes.  watch_row(i) reads record i under its
 * lock, GIL released, as a CA server does: the value as text (DBR_STRING,
 * doubles with PREC; arrays by 8 elements and their count; long strings up to
 * 255 bytes) with DBR_STATUS | DBR_UNITS | DBR_TIME. */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <stdint.h>                 /* (stdio.h, string.h: with Python.h) */
#include <alarm.h>
#include <dbAccess.h>
#include <dbChannel.h>
#include <dbEvent.h>
#include <dbLock.h>
#include <dbStaticLib.h>
#include <epicsAtomic.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <recSup.h>
#include <special.h>
#define W_ARRAY 8            /* array elements shown */
#define W_TEXT 256           /* a text value, with its NUL */

typedef struct {
    dbCommon *prec;
    dbChannel *chan;                /* its VAL, NULL if that cannot be read */
    dbEventSubscription sub;
} w_record;

/* What dbGet fills: the options in their order, then the value. */
typedef struct {
    DBRstatus DBRunits DBRtime
    union { char s[W_ARRAY][MAX_STRING_SIZE]; char c[W_TEXT]; } v;
} w_buffer;

/* Started and stopped under pyioc_setup_mutex; recs is set last, once
 * everything it needs exists, and n_recs (atomic) once its records are. */
static dbEventCtx ctx;
static int ctx_started;              /* its event task runs */
static epicsMutexId lock;           /* of marked, changed, n_changed, stopped */
static epicsEventId ready;
static w_record *recs;
static unsigned char *marked;       /* per record: its index is in `changed` */
static size_t n_recs, *changed, n_changed;
static int stopped;

static size_t watched(void)
{
    return epicsAtomicGetSizeT(&n_recs);
}

/* A subscription's callback (the event user's thread): mark record arg. */
static void on_event(void *arg, struct dbChannel *chan, int remaining, struct db_field_log *pfl)
{
    size_t i = (size_t)(uintptr_t)arg;
    int first;
    epicsMutexMustLock(lock);
    first = n_changed == 0;
    if (!marked[i]) {
        marked[i] = 1;
        changed[n_changed++] = i;
    }
    epicsMutexUnlock(lock);
    if (first)
        epicsEventSignal(ready);
}

/* Subscribe to every record (GIL released, static database locked);
 * returns how many records. */
static size_t subscribe_all(size_t capacity)
{
    DBENTRY entry;
    long status;
    size_t n = 0;
    dbInitEntry(pdbbase, &entry);
    for (status = dbFirstRecordType(&entry); !status; status = dbNextRecordType(&entry)) {
        long rs;
        for (rs = dbFirstRecord(&entry); !rs && n < capacity; rs = dbNextRecord(&entry)) {
            w_record *w = &recs[n];
            if (dbIsAlias(&entry))
                continue;
            w->prec = entry.precnode->precord;
            if ((w->chan = dbChannelCreate(w->prec->name)) && dbChannelOpen(w->chan)) {
                dbChannelDelete(w->chan);           /* its VAL cannot be read */
                w->chan = NULL;
            }
            if (w->chan && (w->sub = db_add_event(ctx, w->chan, on_event, (void *)(uintptr_t)n,
                                                  DBE_VALUE | DBE_ALARM)))
                db_event_enable(w->sub);
            n++;
        }
    }
    dbFinishEntry(&entry);
    return n;
}

/* The records in the database (not aliases); static database locked. */
static size_t count_records(void)
{
    DBENTRY entry;
    long status;
    size_t n = 0;
    dbInitEntry(pdbbase, &entry);
    for (status = dbFirstRecordType(&entry); !status; status = dbNextRecordType(&entry))
        n += (size_t)(dbGetNRecords(&entry) - dbGetNAliases(&entry));
    dbFinishEntry(&entry);
    return n;
}

static PyObject *start(void)
{
    size_t capacity, n;
    w_record *r;
    if (recs)
        return PyLong_FromSize_t(watched());
    if (!pyioc_state.running || !pdbbase) {
        PyErr_SetString(PyExc_RuntimeError, "the watcher starts once the IOC runs");
        return NULL;
    }
    /* (a failed start may be tried again: what was made stays and is reused) */
    if (!lock)
        lock = epicsMutexCreate();
    if (!ready)
        ready = epicsEventCreate(epicsEventEmpty);
    if (!ctx)
        ctx = db_init_events();
    if (ctx && !ctx_started)
        ctx_started = !db_start_events(ctx, "pyioc-watch", NULL, NULL,
                                       epicsThreadPriorityCAServerLow);
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    capacity = count_records();
    r = PyMem_RawCalloc(capacity + 1, sizeof *recs);
    marked = PyMem_RawCalloc(capacity + 1, 1);
    changed = PyMem_RawCalloc(capacity + 1, sizeof *changed);
    if (!r || !marked || !changed || !lock || !ready || !ctx_started) {
        epicsMutexUnlock(pyioc_static_mutex);
        PyMem_RawFree(r);
        PyMem_RawFree(marked);
        PyMem_RawFree(changed);
        marked = NULL;
        changed = NULL;
        PyErr_SetString(PyExc_RuntimeError, "the live view's watcher could not start");
        return NULL;
    }
    recs = r;
    Py_BEGIN_ALLOW_THREADS
    n = subscribe_all(capacity);
    Py_END_ALLOW_THREADS
    epicsMutexUnlock(pyioc_static_mutex);
    epicsAtomicSetSizeT(&n_recs, n);
    return PyLong_FromSize_t(n);
}

/* watch_start() -> the number of records watched (once; the IOC must run). */
PyObject *m_watch_start(PyObject *mod, PyObject *unused)
{
    PyObject *n;
    PYIOC_LOCK_WITH_GIL(pyioc_setup_mutex);
    n = start();
    epicsMutexUnlock(pyioc_setup_mutex);
    return n;
}

/* watch_take(timeout) -> [index]: the records changed since the last call,
 * each once, waiting up to timeout s for the first one (or watch_wake()). */
PyObject *m_watch_take(PyObject *mod, PyObject *args)
{
    double timeout;
    PyObject *list;
    size_t i, n = 0, *taken = NULL;
    if (!PyArg_ParseTuple(args, "d", &timeout))
        return NULL;
    if (!recs)
        return PyList_New(0);
    /* the lock is never held with the GIL (watch_mark() takes it with it) */
    Py_BEGIN_ALLOW_THREADS
    epicsMutexMustLock(lock);
    if (!n_changed && !stopped && timeout > 0) {
        epicsMutexUnlock(lock);
        epicsEventWaitWithTimeout(ready, timeout);
        epicsMutexMustLock(lock);
    }
    taken = PyMem_RawMalloc((n_changed ? n_changed : 1) * sizeof *taken);
    if (taken) {
        n = n_changed;
        memcpy(taken, changed, n * sizeof *taken);
        for (i = 0; i < n; i++)
            marked[changed[i]] = 0;
        n_changed = 0;
    }
    epicsMutexUnlock(lock);
    Py_END_ALLOW_THREADS
    if (!taken)
        return PyErr_NoMemory();
    list = PyList_New((Py_ssize_t)n);
    for (i = 0; list && i < n; i++)
        PyList_SET_ITEM(list, (Py_ssize_t)i, PyLong_FromSize_t(taken[i]));
    PyMem_RawFree(taken);
    if (list && PyErr_Occurred())
        Py_CLEAR(list);                 /* an index not made: its NULL item is fine */
    return list;
}

/* watch_wake(): end a waiting watch_take() (something else changed). */
PyObject *m_watch_wake(PyObject *mod, PyObject *unused)
{
    if (ready)
        epicsEventSignal(ready);
    Py_RETURN_NONE;
}

/* watch_mark(name): deliver record `name` again (a spare record renamed). */
PyObject *m_watch_mark(PyObject *mod, PyObject *args)
{
    const char *name;
    size_t i, n = watched();
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    for (i = 0; i < n && strcmp(recs[i].prec->name, name); i++)
        ;
    if (i < n)
        on_event((void *)(uintptr_t)i, NULL, 0, NULL);
    Py_RETURN_NONE;
}

/* The value as text into out, and the options into b (record locked). */
static void read_value(dbChannel *chan, w_buffer *b, char *out)
{
    dbAddr addr = chan->addr, copy = chan->addr;    /* reading an array may move pfield */
    rset *prset = dbGetRset(&addr);
    long options = DBR_STATUS | DBR_UNITS | DBR_TIME, n, total = addr.no_elements, offset;
    long none = 0, i;
    size_t at = 0;
    if (addr.no_elements > 1 && addr.field_type == DBF_CHAR) {
        n = W_TEXT - 1;                 /* a long string in a CHAR waveform */
        if (dbGet(&addr, DBR_CHAR, b, &options, &n, NULL) || n < 0)
            n = 0;
        snprintf(out, W_TEXT, "%.*s", (int)n, b->v.c);
        return;
    }
    n = addr.no_elements > 1 ? W_ARRAY : 1;
    if (addr.no_elements > 1 && addr.special == SPC_DBADDR && prset && prset->get_array_info &&
            prset->get_array_info(&copy, &total, &offset))
        total = 0;                      /* the elements it holds now */
    if (dbGet(&addr, DBR_STRING, b, &options, &n, NULL))
        n = 0;
    if (addr.field_type == DBF_STRING && addr.field_size > MAX_STRING_SIZE) {
        size_t len = (size_t)addr.field_size < W_TEXT ? (size_t)addr.field_size : W_TEXT;
        memcpy(out, addr.pfield, len);  /* a long string (lsi, lso): all of it */
        out[len - 1] = '\0';
        return;
    }
    if (addr.no_elements == 1) {
        epicsEnum16 state;
        long one = 1;
        snprintf(out, W_TEXT, "%.*s", n ? MAX_STRING_SIZE : 0, b->v.s[0]);
        /* an enum state with no name (a bo of builder.Action): its number */
        if (!out[0] && addr.dbr_field_type == DBR_ENUM &&
                !dbGet(&addr, DBR_ENUM, &state, &none, &one, NULL) && one == 1)
            snprintf(out, W_TEXT, "%u", (unsigned)state);
        return;
    }
    out[0] = '\0';
    for (i = 0; i < n && at < W_TEXT; i++)
        at += (size_t)snprintf(out + at, W_TEXT - at, i ? ", %.*s" : "%.*s",
                               MAX_STRING_SIZE, b->v.s[i]);
    if (total > W_ARRAY && at < W_TEXT)
        snprintf(out + at, W_TEXT - at, " \xe2\x80\xa6 (%ld)", total);
}

static PyObject *text(const char *s, size_t size)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strnlen(s, size), "replace");
}

/* watch_row(i) -> (name, record type, value, units, severity, status, time):
 * the name is the record object's (a renamed spare's new name) for Python's
 * records, status "" when there is no alarm, time in POSIX seconds. */
PyObject *m_watch_row(PyObject *mod, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    w_record *w;
    w_buffer b;
    char value[W_TEXT];
    PyObject *name;
    double t;
    if (i < 0 || (size_t)i >= watched()) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_IndexError, "no watched record %zd", i);
        return NULL;
    }
    w = &recs[i];
    memset(&b, 0, sizeof b);
    value[0] = '\0';
    Py_BEGIN_ALLOW_THREADS
    dbScanLock(w->prec);
    if (w->chan) {
        read_value(w->chan, &b, value);
    } else {
        b.status = w->prec->stat;
        b.severity = w->prec->sevr;
        b.time = w->prec->time;
    }
    dbScanUnlock(w->prec);
    Py_END_ALLOW_THREADS
    if (pyioc_is_ours(w->prec) && w->prec->dpvt) {
        /* a strong reference, taken as `name` is set (its member descriptor
         * does so in the object's critical section): another thread may be
         * renaming the record, which drops the old name */
        RecordCore *rc = (RecordCore *)w->prec->dpvt;
        PYIOC_BEGIN_OBJECT((PyObject *)rc);
        name = rc->name;
        Py_XINCREF(name);               /* (Py_NewRef: Python 3.10 on) */
        PYIOC_END_OBJECT();
        if (!name)
            name = text(w->prec->name, sizeof w->prec->name);
    } else
        name = text(w->prec->name, sizeof w->prec->name);
    t = b.time.secPastEpoch ? (double)b.time.secPastEpoch + POSIX_TIME_AT_EPICS_EPOCH
        + b.time.nsec * 1e-9 : 0.0;
    return Py_BuildValue(
        "(NsNNiNd)", name, w->prec->rdes->name, text(value, sizeof value),
        text(b.units, sizeof b.units), b.severity < ALARM_NSEV ? (int)b.severity : 3,
        text(b.status && b.status < ALARM_NSTATUS ? epicsAlarmConditionStrings[b.status] : "",
             MAX_STRING_SIZE), t);
}

/* watch_stop(): cancel the subscriptions and end the event thread (once).
 * The records' list stays: watch_row() still reads them. */
PyObject *m_watch_stop(PyObject *mod, PyObject *unused)
{
    size_t i, n;
    PYIOC_LOCK_WITH_GIL(pyioc_setup_mutex);     /* once, after any start */
    n = watched();
    if (recs && !stopped) {
        Py_BEGIN_ALLOW_THREADS
        for (i = 0; i < n; i++)
            if (recs[i].sub)
                db_cancel_event(recs[i].sub);
        db_close_events(ctx);
        epicsMutexMustLock(lock);
        stopped = 1;                    /* watch_take() waits no more */
        epicsMutexUnlock(lock);
        epicsEventSignal(ready);
        Py_END_ALLOW_THREADS
    }
    epicsMutexUnlock(pyioc_setup_mutex);
    Py_RETURN_NONE;
}
