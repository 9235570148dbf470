/* The put log's C half: who wrote what, recorded without ever blocking a put.
 *
 * A second access-security write-trap listener (see fieldwatch.c): before a
 * client's put it takes a free entry from a fixed pool and notes the time,
 * the client's user and host, the protocol (from the server thread's name),
 * the record, the field and the field's value as text; after the put, the
 * value again.  The finished entry joins a queue that Python's put-log
 * thread empties (putlog_take, which waits without the GIL).  Nothing here
 * takes the GIL or allocates: when the pool is empty (Python fell behind)
 * the put is counted as dropped, and the put itself goes on as ever.
 *
 * A put the IOC refuses after access security let it through (validate(),
 * strict puts) is marked by pyioc_putlog_refused(), called in the thread
 * doing the put, between the two calls of the listener.  Puts refused by
 * access security never reach the listener (the servers check first).  A
 * blocking PVA put that strict puts refuse before QSRV2 sees it (qsrvguard.cpp)
 * is logged whole by pyioc_putlog_refused_put().
 *
 * The client's host is the IP address it connected from, over both protocols:
 * QSRV2 gives access security (so the write trap) the PVA peer's address,
 * while rsrv gives it the name a CA client declares (unless asCheckClientIP),
 * so for CA the address is read from rsrv's client of the thread doing the put
 * (patches.c, "rsrv-peer-address": without EPICS patches, the declared name).
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asLib.h>
#include <asTrapWrite.h>
#include <dbAccess.h>
#include <dbChannel.h>
#include <dbLock.h>
#include <dbStaticLib.h>
#include <epicsAtomic.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <osiSock.h>

#define PL_TEXT 128          /* a value as text (longer text is cut) */
#define PL_ARRAY 8           /* array elements shown */

typedef struct {
    epicsTimeStamp time;
    dbChannel *chan;                /* while the put is under way, else NULL */
    epicsThreadId owner;            /* the thread that began the put */
    char protocol[4];
    char user[64];
    char host[64];
    char record[PVNAME_STRINGSZ];
    char field[32];
    char old_value[PL_TEXT];
    char new_value[PL_TEXT];
    int refused;
} pl_entry;

static epicsMutexId lock;
static epicsEventId ready;
static epicsThreadPrivateId current;      /* the entry of this thread's put */
static pl_entry *pool;
static pl_entry **free_list, **done;       /* a stack and a ring, both of capacity */
static size_t capacity, n_free, done_head, n_done;
static unsigned long dropped;
static int started;                        /* set last, once everything exists (atomic) */

static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= size) {
        n = size - 4;
        memcpy(dst + n, "...", 4);
    } else {
        dst[n] = '\0';
    }
    if (n)
        memcpy(dst, src, n);
}

/* The shortest %g form that reads back as v (as a float if is_float). */
static void shortest(double v, int is_float, char *out, size_t size)
{
    int digits;
    for (digits = is_float ? 6 : 15; digits < (is_float ? 9 : 17); digits++) {
        snprintf(out, size, "%.*g", digits, v);
        if (is_float ? (float)strtod(out, NULL) == (float)v : strtod(out, NULL) == v)
            return;
    }
    snprintf(out, size, "%.*g", is_float ? 9 : 17, v);
}

/* The field's value as text, read through a copy of the channel's address:
 * reading an array may move the address's pfield, which the server uses next. */
static void value_text(dbChannel *chan, char *out, size_t size)
{
    dbAddr addr = chan->addr;
    long options = 0, n, status;
    if ((addr.dbr_field_type == DBR_CHAR || addr.dbr_field_type == DBR_UCHAR) &&
            addr.no_elements > 1) {
        char buf[PL_TEXT + 1];
        n = addr.no_elements < PL_TEXT ? addr.no_elements : PL_TEXT;
        status = dbGetField(&addr, DBR_CHAR, buf, &options, &n, NULL);
        buf[status ? 0 : n] = '\0';
        copy_text(out, size, buf);
    } else if (addr.no_elements > 1) {
        double v[PL_ARRAY];
        size_t at = 0;
        long i;
        n = addr.no_elements < PL_ARRAY ? addr.no_elements : PL_ARRAY;
        status = dbGetField(&addr, DBR_DOUBLE, v, &options, &n, NULL);
        if (status)
            n = 0;
        out[at++] = '[';
        for (i = 0; i < n && at < size - 32; i++) {
            char num[28];
            shortest(v[i], addr.dbr_field_type == DBR_FLOAT, num, sizeof num);
            at += (size_t)snprintf(out + at, size - at, i ? ", %s" : "%s", num);
        }
        snprintf(out + at, size - at, "%s]",
                 n == PL_ARRAY && addr.no_elements > PL_ARRAY ? ", ..." : "");
    } else if (addr.dbr_field_type == DBR_DOUBLE || addr.dbr_field_type == DBR_FLOAT) {
        double v;               /* all its digits: DBR_STRING would round to PREC */
        n = 1;
        status = dbGetField(&addr, DBR_DOUBLE, &v, &options, &n, NULL);
        if (status || n < 1)
            out[0] = '\0';
        else
            shortest(v, addr.dbr_field_type == DBR_FLOAT, out, size);
    } else if (addr.field_type == DBF_STRING && addr.field_size > MAX_STRING_SIZE) {
        /* a long string (lsi, lso): DBR_STRING would give its first 40 characters */
        char buf[PL_TEXT + 1];
        size_t len = (size_t)addr.field_size < sizeof buf ? (size_t)addr.field_size : sizeof buf;
        dbScanLock(addr.precord);
        memcpy(buf, addr.pfield, len);
        dbScanUnlock(addr.precord);
        buf[len - 1] = '\0';
        copy_text(out, size, buf);
    } else if (addr.dbr_field_type == DBR_ENUM) {
        /* the state's name, or its number if the state has none (a bo made by
         * builder.Action has no ZNAM or ONAM): DBR_STRING alone gives "" there */
        char buf[MAX_STRING_SIZE + 1];
        epicsEnum16 state;
        long n_state = 1;
        n = 1;
        dbScanLock(addr.precord);
        status = dbGet(&addr, DBR_STRING, buf, &options, &n, NULL);
        buf[status || n < 1 ? 0 : MAX_STRING_SIZE] = '\0';
        if (!buf[0] && !dbGet(&addr, DBR_ENUM, &state, &options, &n_state, NULL) && n_state == 1)
            snprintf(buf, sizeof buf, "%u", (unsigned)state);
        dbScanUnlock(addr.precord);
        copy_text(out, size, buf);
    } else {
        char buf[MAX_STRING_SIZE + 1];
        n = 1;
        status = dbGetField(&addr, DBR_STRING, buf, &options, &n, NULL);
        buf[status || n < 1 ? 0 : MAX_STRING_SIZE] = '\0';
        copy_text(out, size, buf);
    }
}

/* A free entry from the pool, or NULL (the put counted as dropped). */
static pl_entry *take_entry(void)
{
    pl_entry *e;
    epicsMutexMustLock(lock);
    e = n_free ? free_list[--n_free] : NULL;
    if (!e)
        dropped++;
    epicsMutexUnlock(lock);
    return e;
}

/* Hand a finished entry to Python's put-log thread. */
static void finish_entry(pl_entry *e)
{
    epicsMutexMustLock(lock);
    done[(done_head + n_done++) % capacity] = e;
    epicsMutexUnlock(lock);
    epicsEventSignal(ready);
}

static void listener(asTrapWriteMessage *msg, int after)
{
    pl_entry *e;
    if (!after) {
        dbChannel *chan = msg->serverSpecific;
        const char *thread = epicsThreadGetNameSelf();
        if (!chan || !(e = take_entry()))
            return;
        epicsTimeGetCurrent(&e->time);
        e->chan = chan;
        e->owner = epicsThreadGetIdSelf();
        copy_text(e->user, sizeof e->user, msg->userid);
        /* rsrv serves each client in a thread named CAS-client; QSRV2 puts run in PVXS
         * threads, and give the peer's address as the host */
        if (pyioc_rsrv_peer_address(e->host, sizeof e->host)) {
            strcpy(e->protocol, "ca");
        } else {
            strcpy(e->protocol, thread && strncmp(thread, "CAS-", 4) == 0 ? "ca" : "pva");
            copy_text(e->host, sizeof e->host, msg->hostid);
        }
        copy_text(e->record, sizeof e->record, dbChannelRecord(chan)->name);
        copy_text(e->field, sizeof e->field, dbChannelFldDes(chan)->name);
        value_text(chan, e->old_value, sizeof e->old_value);
        e->refused = 0;
        msg->userPvt = e;
        epicsThreadPrivateSet(current, e);
    } else if ((e = msg->userPvt) != NULL) {
        /* after a put-callback completes, possibly in another thread */
        if (epicsThreadPrivateGet(current) == e)
            epicsThreadPrivateSet(current, NULL);
        value_text(e->chan, e->new_value, sizeof e->new_value);
        e->chan = NULL;
        finish_entry(e);
    }
}

void pyioc_putlog_refused(dbCommon *prec)
{
    pl_entry *e = current ? epicsThreadPrivateGet(current) : NULL;
    /* only the put this thread began and has not finished, to this record */
    if (e && e->owner == epicsThreadGetIdSelf() && e->chan &&
            dbChannelRecord(e->chan) == prec)
        e->refused = 1;
}

void pyioc_putlog_refused_put(dbChannel *chan, const char *user, const char *host)
{
    pl_entry *e;
    if (!epicsAtomicGetIntT(&started) || !chan || !(e = take_entry()))
        return;                     /* the put log is off, or full */
    epicsTimeGetCurrent(&e->time);
    e->chan = NULL;
    e->owner = epicsThreadGetIdSelf();
    strcpy(e->protocol, "pva");
    copy_text(e->user, sizeof e->user, user);
    copy_text(e->host, sizeof e->host, host);
    copy_text(e->record, sizeof e->record, dbChannelRecord(chan)->name);
    copy_text(e->field, sizeof e->field, dbChannelFldDes(chan)->name);
    value_text(chan, e->old_value, sizeof e->old_value);
    strcpy(e->new_value, e->old_value);     /* refused: nothing changed */
    e->refused = 1;
    finish_entry(e);
}

static PyObject *text(const char *s)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

/* putlog_start(capacity): allocate the pool and listen (once per process). */
PyObject *m_putlog_start(PyObject *mod, PyObject *args)
{
    Py_ssize_t cap;
    size_t i;
    if (!PyArg_ParseTuple(args, "n", &cap))
        return NULL;
    if (cap < 1 || cap > 1000000) {
        PyErr_Format(PyExc_ValueError, "put log capacity %zd: must be 1 to 1000000", cap);
        return NULL;
    }
    PYIOC_LOCK_WITH_GIL(pyioc_setup_mutex);     /* one start, whole, before any use */
    if (started) {
        epicsMutexUnlock(pyioc_setup_mutex);
        PyErr_SetString(PyExc_RuntimeError, "the put log is already on");
        return NULL;
    }
    /* (a failed start may be tried again: what was made stays) */
    if (!pool)
        pool = PyMem_RawCalloc((size_t)cap, sizeof *pool);
    if (!free_list)
        free_list = PyMem_RawCalloc((size_t)cap, sizeof *free_list);
    if (!done)
        done = PyMem_RawCalloc((size_t)cap, sizeof *done);
    if (!lock)
        lock = epicsMutexCreate();
    if (!ready)
        ready = epicsEventCreate(epicsEventEmpty);
    if (!current)
        current = epicsThreadPrivateCreate();
    if (!pool || !free_list || !done || !lock || !ready || !current) {
        PyMem_RawFree(pool);
        PyMem_RawFree(free_list);
        PyMem_RawFree(done);
        pool = NULL;
        free_list = done = NULL;
        epicsMutexUnlock(pyioc_setup_mutex);
        return PyErr_NoMemory();
    }
    capacity = (size_t)cap;
    for (i = 0; i < capacity; i++)
        free_list[i] = &pool[i];
    n_free = capacity;
    /* Without the GIL: access security holds its write-trap lock while it
     * calls the listeners, one of which (fieldwatch.c) takes the GIL. */
    Py_BEGIN_ALLOW_THREADS
    asTrapWriteRegisterListener(listener);
    Py_END_ALLOW_THREADS
    epicsAtomicSetIntT(&started, 1);
    epicsMutexUnlock(pyioc_setup_mutex);
    Py_RETURN_NONE;
}

/* putlog_take(timeout) -> (entries, dropped): wait up to timeout seconds for
 * finished entries; each is (time, protocol, host, user, record, field, old,
 * new, refused); dropped counts puts not recorded since the last call. */
PyObject *m_putlog_take(PyObject *mod, PyObject *args)
{
    double timeout;
    PyObject *list;
    pl_entry *batch[256];
    size_t n = 0, i;
    unsigned long lost;
    if (!PyArg_ParseTuple(args, "d", &timeout))
        return NULL;
    if (!epicsAtomicGetIntT(&started))
        return Py_BuildValue("([]k)", 0UL);
    Py_BEGIN_ALLOW_THREADS
    epicsMutexMustLock(lock);
    if (!n_done) {
        epicsMutexUnlock(lock);
        epicsEventWaitWithTimeout(ready, timeout);
        epicsMutexMustLock(lock);
    }
    while (n_done && n < sizeof batch / sizeof batch[0]) {
        batch[n++] = done[done_head];
        done_head = (done_head + 1) % capacity;
        n_done--;
    }
    lost = dropped;
    dropped = 0;
    epicsMutexUnlock(lock);
    Py_END_ALLOW_THREADS
    list = PyList_New(0);
    for (i = 0; list && i < n; i++) {
        pl_entry *e = batch[i];
        double t = (double)e->time.secPastEpoch + POSIX_TIME_AT_EPICS_EPOCH
            + e->time.nsec * 1e-9;
        PyObject *item = Py_BuildValue(
            "(dNNNNNNNO)", t, text(e->protocol), text(e->host), text(e->user),
            text(e->record), text(e->field), text(e->old_value), text(e->new_value),
            e->refused ? Py_True : Py_False);
        if (!item || PyList_Append(list, item))
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    epicsMutexMustLock(lock);
    for (i = 0; i < n; i++)
        free_list[n_free++] = batch[i];
    epicsMutexUnlock(lock);
    if (!list)
        return NULL;
    return Py_BuildValue("(Nk)", list, lost);
}

/* putlog_wake(): end a putlog_take() that is waiting. */
PyObject *m_putlog_wake(PyObject *mod, PyObject *unused)
{
    if (ready)
        epicsEventSignal(ready);
    Py_RETURN_NONE;
}
