/* Python side of pythonIOC: RecordCore (the hot path: set, get, completion)
 * and the handful of IOC calls Python needs (load, register, init, iocsh).
 *
 * Every call that takes an EPICS lock or may block inside EPICS releases the
 * GIL first (Py_BEGIN_ALLOW_THREADS), so no thread ever waits for a record
 * lock while holding the GIL.
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <errno.h>
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include <alarm.h>
#include <dbAccess.h>
#include <dbEvent.h>
#include <dbLock.h>
#include <dbNotify.h>
#include <dbStaticLib.h>
#include <errlog.h>
#include <errMdef.h>
#include <iocInit.h>
#include <iocsh.h>
#include <asDbLib.h>
#include <asLib.h>
#include <recSup.h>
#include <recGbl.h>
#include <epicsExit.h>

#include <iocshRegisterCommon.h>

static PyObject *str_preinit_set;

static PyObject *epics_error(long status, const char *what)
{
    char msg[256];
    errSymLookup(status, msg, sizeof msg);
    PyErr_Format(PyExc_RuntimeError, "%s: %s (EPICS status %ld)", what, msg, status);
    return NULL;
}

/* ---- conversions --------------------------------------------------------- */

#define FIELD(prec, off, type) ((type *)((char *)(prec) + (off)))

/* A record's value (len bytes at src, in the field's own format) as a Python
 * object.  Caller holds the GIL. */
PyObject *pyioc_value_from(RecordCore *rc, const char *src, size_t len)
{
    switch (rc->ti->kind) {
    case KIND_DOUBLE: return PyFloat_FromDouble(*(const epicsFloat64 *)src);
    case KIND_LONG: return PyLong_FromLong(*(const epicsInt32 *)src);
    case KIND_ENUM: return PyLong_FromLong(*(const epicsEnum16 *)src);
    case KIND_INT64: return PyLong_FromLongLong(*(const epicsInt64 *)src);
    case KIND_STRING:
    case KIND_LSTRING:
        return PyUnicode_DecodeUTF8(src, src ? strnlen(src, len) : 0, "replace");
    case KIND_ARRAY:
        return PyBytes_FromStringAndSize(src, (Py_ssize_t)len);
    }
    Py_RETURN_NONE;
}

/* Current value of a bound record as a Python object.  Caller holds the GIL
 * and either the record lock or a guarantee nobody writes (before init). */
PyObject *pyioc_value_to_python(RecordCore *rc)
{
    epicsUInt32 nord = 0;
    size_t len = pyioc_value_bytes(rc, &nord);
    return pyioc_value_from(rc, pyioc_value_ptr(rc), len);
}

/* A value converted for one record, ready to copy under the lock. */
typedef struct {
    union { epicsFloat64 d; epicsInt32 l; epicsEnum16 e; epicsInt64 q; char s[MAX_STRING_SIZE]; } u;
    const char *data;   /* lstring/array bytes (borrowed from a Python object) */
    size_t len;         /* bytes */
    epicsUInt32 count;  /* elements (arrays) */
    Py_buffer view;     /* arrays */
    int have_view;
} converted;

static int as_integer(PyObject *value, long long lo, long long hi, long long *out,
                      const char *what)
{
    PyObject *index;
    int overflow = 0;
    long long v;
    if (PyFloat_Check(value)) {
        double d = PyFloat_AS_DOUBLE(value);
        if (!isfinite(d) || d != floor(d)) {
            PyErr_Format(PyExc_ValueError, "%s needs an integer, got %R", what, value);
            return -1;
        }
        if (d < (double)lo || d > (double)hi)
            goto range;
        *out = (long long)d;
        return 0;
    }
    index = PyNumber_Index(value);
    if (!index) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s needs an integer, got %.100s",
                     what, Py_TYPE(value)->tp_name);
        return -1;
    }
    v = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < lo || v > hi)
        goto range;
    *out = v;
    return 0;
range:
    PyErr_Format(PyExc_ValueError, "%R is out of range for %s (%lld to %lld)",
                 value, what, lo, hi);
    return -1;
}

static int convert(RecordCore *rc, PyObject *value, converted *c)
{
    const type_info *ti = rc->ti;
    long long v;
    c->have_view = 0;
    switch (ti->kind) {
    case KIND_DOUBLE:
        if (PyUnicode_Check(value) || PyBytes_Check(value)) {
            PyErr_Format(PyExc_TypeError, "%s record needs a number, got %.100s",
                         ti->name, Py_TYPE(value)->tp_name);
            return -1;
        }
        c->u.d = PyFloat_AsDouble(value);
        if (c->u.d == -1.0 && PyErr_Occurred())
            return -1;
        c->len = sizeof c->u.d;
        return 0;
    case KIND_LONG:
        if (as_integer(value, -2147483648LL, 2147483647LL, &v, ti->name))
            return -1;
        c->u.l = (epicsInt32)v;
        c->len = sizeof c->u.l;
        return 0;
    case KIND_ENUM:
        if (as_integer(value, 0, ti->max_enum, &v, ti->name))
            return -1;
        c->u.e = (epicsEnum16)v;
        c->len = sizeof c->u.e;
        return 0;
    case KIND_INT64:
        if (as_integer(value, -9223372036854775807LL - 1, 9223372036854775807LL, &v, ti->name))
            return -1;
        c->u.q = (epicsInt64)v;
        c->len = sizeof c->u.q;
        return 0;
    case KIND_STRING:
    case KIND_LSTRING: {
        Py_ssize_t n;
        const char *s;
        size_t limit;
        if (PyUnicode_Check(value)) {
            s = PyUnicode_AsUTF8AndSize(value, &n);
            if (!s)
                return -1;
        } else if (PyBytes_Check(value)) {
            s = PyBytes_AS_STRING(value);
            n = PyBytes_GET_SIZE(value);
        } else {
            PyErr_Format(PyExc_TypeError, "%s record needs a str, got %.100s",
                         ti->name, Py_TYPE(value)->tp_name);
            return -1;
        }
        if (memchr(s, 0, (size_t)n)) {
            PyErr_Format(PyExc_ValueError, "%s record value may not contain NUL", ti->name);
            return -1;
        }
        limit = ti->kind == KIND_STRING ? MAX_STRING_SIZE - 1 :
            (rc->prec && pyioc_ioc_running ? (size_t)*FIELD(rc->prec, ti->nelm, epicsUInt16) - 1
                                           : (size_t)-1);
        if ((size_t)n > limit) {
            PyErr_Format(PyExc_ValueError,
                         "string of %zd bytes is too long for %s record (at most %zu)",
                         n, ti->name, limit);
            return -1;
        }
        if (ti->kind == KIND_STRING) {
            memset(c->u.s, 0, sizeof c->u.s);
            memcpy(c->u.s, s, (size_t)n);
            c->len = MAX_STRING_SIZE;
        } else {
            c->data = s;
            c->len = (size_t)n;
        }
        return 0;
    }
    case KIND_ARRAY:
        /* Python (_record.py) hands us a contiguous array of the FTVL type. */
        if (PyObject_GetBuffer(value, &c->view, PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        c->have_view = 1;
        c->data = c->view.buf;
        c->len = (size_t)c->view.len;
        c->count = (epicsUInt32)(c->view.itemsize ? c->view.len / c->view.itemsize : 0);
        /* The record's own element type decides, not the caller. */
        if (rc->prec && (size_t)c->view.itemsize !=
                dbValueSize(*FIELD(rc->prec, ti->ftvl, epicsEnum16))) {
            PyErr_Format(PyExc_TypeError,
                         "an array of %zd-byte elements does not match %s record %s (FTVL %s)",
                         c->view.itemsize, ti->name, rc->prec->name,
                         pamapdbfType[*FIELD(rc->prec, ti->ftvl, epicsEnum16)].strvalue);
            PyBuffer_Release(&c->view);
            c->have_view = 0;
            return -1;
        }
        if (rc->prec && pyioc_ioc_running &&
                c->count > *FIELD(rc->prec, ti->nelm, epicsUInt32)) {
            PyErr_Format(PyExc_ValueError, "%u elements do not fit %s record (NELM %u)",
                         c->count, ti->name, *FIELD(rc->prec, ti->nelm, epicsUInt32));
            PyBuffer_Release(&c->view);
            c->have_view = 0;
            return -1;
        }
        return 0;
    }
    return 0;
}

static void release(converted *c)
{
    if (c->have_view)
        PyBuffer_Release(&c->view);
}

/* Copy a converted value into the record; record locked. */
static void store(RecordCore *rc, converted *c)
{
    const type_info *ti = rc->ti;
    dbCommon *prec = rc->prec;
    switch (ti->kind) {
    case KIND_LSTRING: {
        char *val = *FIELD(prec, ti->val, char *);
        memcpy(val, c->data, c->len);
        val[c->len] = 0;
        *FIELD(prec, ti->nord, epicsUInt32) = (epicsUInt32)c->len + 1;
        break;
    }
    case KIND_ARRAY:
        memcpy(*FIELD(prec, ti->val, char *), c->data, c->len);
        *FIELD(prec, ti->nord, epicsUInt32) = c->count;
        break;
    default:
        memcpy(FIELD(prec, ti->val, char), &c->u, c->len);
    }
    prec->udf = FALSE;
}

/* set(process=False): no processing (no on_update, links or alarm update),
 * but monitors see the new value, as a get does.  The record's last-posted
 * copies (MLST, ALST; OVAL of string records) take the value too, so that
 * its next processing posts a change from it, not from the value before. */
static void post_unprocessed(dbCommon *prec)
{
    static const char *const copies[] = {"MLST", "ALST", "OVAL"};
    char name[PVNAME_STRINGSZ + 8];
    DBADDR val, copy;
    size_t i;
    snprintf(name, sizeof name, "%s.VAL", prec->name);
    if (dbNameToAddr(name, &val) == 0 && val.no_elements == 1) {
        for (i = 0; i < sizeof copies / sizeof copies[0]; i++) {
            if (i == 2 && val.field_type != DBF_STRING)
                continue;       /* ao's OVAL is its output value, not a copy */
            snprintf(name, sizeof name, "%s.%s", prec->name, copies[i]);
            if (dbNameToAddr(name, &copy) == 0 && copy.field_size == val.field_size)
                memcpy(copy.pfield, val.pfield, (size_t)val.field_size);
        }
    }
    db_post_events(prec, NULL, DBE_VALUE | DBE_LOG);
}

/* Keep a copy of the value for init_record (before iocInit). */
static int store_initial(RecordCore *rc, converted *c)
{
    const char *src = (rc->ti->kind == KIND_LSTRING || rc->ti->kind == KIND_ARRAY)
        ? c->data : (const char *)&c->u;
    char *buf = PyMem_Realloc(rc->init_buf, c->len ? c->len : 1);
    if (!buf) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(buf, src, c->len);
    rc->init_buf = buf;
    rc->init_len = c->len;
    rc->init_nord = c->count;
    rc->init_set = 1;
    return 0;
}

static int parse_alarm(PyObject *o, epicsEnum16 limit, epicsEnum16 *out, const char *what)
{
    long long v;
    if (o == NULL || o == Py_None) {
        *out = 0;
        return 0;
    }
    if (as_integer(o, 0, limit, &v, what))
        return -1;
    *out = (epicsEnum16)v;
    return 0;
}

static int parse_time(PyObject *o, epicsTimeStamp *ts)
{
    double t, secs;
    if (o == NULL || o == Py_None)
        return 0;
    t = PyFloat_AsDouble(o);
    if (t == -1.0 && PyErr_Occurred())
        return -1;
    if (!isfinite(t) || t < POSIX_TIME_AT_EPICS_EPOCH || t > 4294967295.0 + POSIX_TIME_AT_EPICS_EPOCH) {
        PyErr_Format(PyExc_ValueError, "timestamp %R is not a time EPICS can hold", o);
        return -1;
    }
    secs = floor(t);
    ts->secPastEpoch = (epicsUInt32)(secs - POSIX_TIME_AT_EPICS_EPOCH);
    ts->nsec = (epicsUInt32)((t - secs) * 1e9);
    return 1;
}

/* ---- RecordCore ---------------------------------------------------------- */

static int RecordCore_init(RecordCore *self, PyObject *args, PyObject *kw)
{
    const char *rtype;
    if (!PyArg_ParseTuple(args, "s", &rtype))
        return -1;
    PyObject *is_output;
    self->ti = pyioc_find_type(rtype);
    if (!self->ti) {
        PyErr_Format(PyExc_ValueError, "no Python device support for record type %s", rtype);
        return -1;
    }
    /* Input records take set()'s arguments in pythonSoftIOC's order for
     * them: (value, severity, alarm, timestamp); outputs (value, process, ...). */
    is_output = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "is_output");
    if (is_output) {
        self->in_order = !PyObject_IsTrue(is_output);
        Py_DECREF(is_output);
    } else {
        PyErr_Clear();
    }
    return 0;
}

static void RecordCore_dealloc(RecordCore *self)
{
    /* Bound records hold a reference from EPICS and are never freed. */
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->dict);
    PyMem_Free(self->init_buf);
    free(self->snap_buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int RecordCore_traverse(RecordCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dict);
    return 0;
}

static int RecordCore_clear(RecordCore *self)
{
    Py_CLEAR(self->dict);
    return 0;
}

/* A running IOC with a handle that was never bound to its EPICS record
 * (made but not loaded, or dropped by ClearRecords()): refuse, never touch. */
static PyObject *not_bound(RecordCore *self)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)self, "name");
    if (!name)
        PyErr_Clear();
    PyErr_Format(PyExc_RuntimeError,
                 "record %S is not in the running IOC: it was made by the builder but "
                 "never loaded (builder.LoadDatabase() must come after making it and "
                 "before softioc.iocInit()), or builder.ClearRecords() dropped it", name ? name : Py_None);
    Py_XDECREF(name);
    return NULL;
}

/* Outputs: set(value, process=True, severity=0, alarm=0, timestamp=None);
 * inputs: set(value, severity=0, alarm=0, timestamp=None, process=True). */
static PyObject *RecordCore_set(RecordCore *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    static const char *const names[] = {"value", "process", "severity", "alarm", "timestamp"};
    static const int in_slot[] = {0, 2, 3, 4, 1};
    PyObject *a[5] = {NULL, Py_True, NULL, NULL, NULL};
    int given = 0;
    Py_ssize_t i;
    converted c;
    epicsEnum16 sevr, stat;
    epicsTimeStamp ts;
    int has_time, process;
    long status = 0;

    if (nargs > 5 || nargs < 1 - (kwnames ? PyTuple_GET_SIZE(kwnames) : 0))
        goto usage;
    for (i = 0; i < nargs; i++) {
        int slot = self->in_order ? in_slot[i] : (int)i;
        a[slot] = args[i];
        given |= 1 << slot;
    }
    if (kwnames) {
        for (i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            const char *k = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
            int j;
            if (!k)
                return NULL;
            for (j = 0; j < 5 && strcmp(k, names[j]); j++)
                ;
            if (j == 5 || (given & (1 << j))) {
                PyErr_Format(PyExc_TypeError, "set() got an unexpected or repeated argument '%s'", k);
                return NULL;
            }
            a[j] = args[nargs + i];
        }
    }
    if (!a[0])
        goto usage;
    if (parse_alarm(a[2], INVALID_ALARM, &sevr, "severity") ||
            parse_alarm(a[3], ALARM_NSTATUS - 1, &stat, "alarm"))
        return NULL;
    has_time = parse_time(a[4], &ts);
    process = PyObject_IsTrue(a[1]);
    if (has_time < 0 || process < 0)
        return NULL;

    if (!pyioc_ioc_running) {
        /* Before iocInit: Python keeps it and hands it to init_record. */
        return PyObject_CallMethodObjArgs((PyObject *)self, str_preinit_set,
                                          a[0], a[2] ? a[2] : Py_None,
                                          a[3] ? a[3] : Py_None, NULL);
    }
    if (!self->prec)
        return not_bound(self);
    if (convert(self, a[0], &c))
        return NULL;

    Py_BEGIN_ALLOW_THREADS
    dbScanLock(self->prec);
    store(self, &c);
    self->rejected = 0;
    self->p_sevr = sevr;
    self->p_stat = sevr && !stat ? UDF_ALARM : stat;
    self->p_has_time = has_time;
    if (has_time)
        self->p_time = ts;
    if (process) {
        if (self->prec->pact) {
            /* Busy (a blocking put is in progress): post what we can. */
            db_post_events(self->prec, NULL, DBE_VALUE | DBE_LOG);
        } else {
            status = dbProcess(self->prec);
        }
    } else {
        post_unprocessed(self->prec);
    }
    dbScanUnlock(self->prec);
    Py_END_ALLOW_THREADS
    release(&c);
    if (status)
        return epics_error(status, self->prec->name);
    if (!process && (self->flags & RF_ON_WRITE))
        /* on_update's "changed?" test starts from this value */
        return PyObject_CallMethod((PyObject *)self, "_set_unprocessed", "O", a[0]);
    Py_RETURN_NONE;
usage:
    PyErr_SetString(PyExc_TypeError, self->in_order
                    ? "set(value, severity=0, alarm=0, timestamp=None, process=True)"
                    : "set(value, process=True, severity=0, alarm=0, timestamp=None)");
    return NULL;
}

/* Store the value before iocInit (called from Python's _preinit_set). */
static PyObject *RecordCore_set_initial(RecordCore *self, PyObject *args)
{
    PyObject *value;
    int sevr = 0, stat = 0;
    converted c;
    if (!PyArg_ParseTuple(args, "O|ii", &value, &sevr, &stat))
        return NULL;
    if (convert(self, value, &c))
        return NULL;
    if (store_initial(self, &c)) {
        release(&c);
        return NULL;
    }
    release(&c);
    self->p_sevr = (epicsEnum16)sevr;
    self->p_stat = (epicsEnum16)(sevr && !stat ? UDF_ALARM : stat);
    Py_RETURN_NONE;
}

static PyObject *RecordCore_get(RecordCore *self, PyObject *unused)
{
    PyObject *v;
    if (!pyioc_ioc_running)
        return PyObject_CallMethod((PyObject *)self, "_preinit_get", NULL);
    if (!self->prec)
        return not_bound(self);
    /* The lock is taken without the GIL, then the value is read with both:
     * the lock->GIL order that device support uses too. */
    Py_BEGIN_ALLOW_THREADS
    dbScanLock(self->prec);
    Py_END_ALLOW_THREADS
    v = pyioc_value_to_python(self);
    Py_BEGIN_ALLOW_THREADS
    dbScanUnlock(self->prec);
    Py_END_ALLOW_THREADS
    return v;
}

/* set_alarm(severity, alarm, timestamp=None): process with the same value. */
static PyObject *RecordCore_set_alarm(RecordCore *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"severity", "alarm", "timestamp", NULL};
    PyObject *osevr, *ostat, *otime = Py_None;
    epicsEnum16 sevr, stat;
    epicsTimeStamp ts;
    int has_time;
    long status;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &osevr, &ostat, &otime))
        return NULL;
    if (parse_alarm(osevr, INVALID_ALARM, &sevr, "severity") ||
            parse_alarm(ostat, ALARM_NSTATUS - 1, &stat, "alarm"))
        return NULL;
    has_time = parse_time(otime, &ts);
    if (has_time < 0)
        return NULL;
    if (!pyioc_ioc_running) {
        self->p_sevr = sevr;
        self->p_stat = sevr && !stat ? UDF_ALARM : stat;
        Py_RETURN_NONE;
    }
    if (!self->prec)
        return not_bound(self);
    Py_BEGIN_ALLOW_THREADS
    dbScanLock(self->prec);
    self->p_sevr = sevr;
    self->p_stat = sevr && !stat ? UDF_ALARM : stat;
    self->p_has_time = has_time;
    if (has_time)
        self->p_time = ts;
    status = self->prec->pact ? 0 : dbProcess(self->prec);
    dbScanUnlock(self->prec);
    Py_END_ALLOW_THREADS
    if (status)
        return epics_error(status, self->prec->name);
    Py_RETURN_NONE;
}

/* Raise an alarm without processing (e.g. on_update failed): posted to
 * monitors now, cleared by the next processing. */
static PyObject *RecordCore_post_alarm(RecordCore *self, PyObject *args)
{
    int sevr, stat;
    if (!PyArg_ParseTuple(args, "ii", &sevr, &stat))
        return NULL;
    if (sevr < 0 || sevr > INVALID_ALARM || stat < 0 || stat >= ALARM_NSTATUS) {
        PyErr_SetString(PyExc_ValueError, "no such severity or status");
        return NULL;
    }
    if (!self->prec || !pyioc_ioc_running)
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    dbScanLock(self->prec);
    if (!self->prec->pact) {
        unsigned short mask;
        recGblSetSevr(self->prec, stat, sevr);
        mask = recGblResetAlarms(self->prec);
        if (mask)
            db_post_events(self->prec, NULL, mask);
    }
    dbScanUnlock(self->prec);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* Finish an asynchronous (blocking) write: the second pass of processing.
 * failed (on_update raised): the value stays as written, the record goes
 * into WRITE/INVALID alarm, and the put-callback that started this
 * processing (caput -c, pvput, p4p put(wait=True)) is told it failed.
 * dbNotify owns prec->ppn; wasProcessed tells its own processing apart from
 * a put-callback that arrived while we were busy and only waits to restart
 * (that one must go ahead: its put has not happened yet). */
static PyObject *RecordCore_complete(RecordCore *self, PyObject *args)
{
    int failed = 0;
    if (!PyArg_ParseTuple(args, "|p", &failed))
        return NULL;
    if (!self->prec)
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    dbScanLock(self->prec);
    if (self->prec->pact) {
        if (failed) {
            self->p_sevr = INVALID_ALARM;
            self->p_stat = WRITE_ALARM;
            if (self->prec->ppn && self->prec->ppn->wasProcessed)
                self->prec->ppn->status = notifyError;
        }
        self->prec->rset->process(self->prec);
    }
    dbScanUnlock(self->prec);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *RecordCore_bind(RecordCore *self, PyObject *args)
{
    const char *name;
    DBADDR addr;
    long status;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    if (self->prec) {
        PyErr_Format(PyExc_RuntimeError, "record %s is already bound", name);
        return NULL;
    }
    status = dbNameToAddr(name, &addr);
    if (status)
        return epics_error(status, name);
    if (strcmp(addr.precord->rdes->name, self->ti->name) != 0) {
        PyErr_Format(PyExc_RuntimeError, "record %s is a %s, not a %s", name,
                     addr.precord->rdes->name, self->ti->name);
        return NULL;
    }
    if (addr.precord->dpvt) {
        PyErr_Format(PyExc_RuntimeError, "record %s already has device data", name);
        return NULL;
    }
    Py_INCREF(self);                /* owned by the EPICS record from now on */
    self->prec = addr.precord;
    addr.precord->dpvt = self;
    Py_RETURN_NONE;
}

static PyObject *RecordCore_get_flags(RecordCore *self, void *closure)
{
    return PyLong_FromLong(self->flags);
}

static int RecordCore_set_flags(RecordCore *self, PyObject *value, void *closure)
{
    long v = PyLong_AsLong(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    self->flags = (int)v;
    return 0;
}

static PyObject *RecordCore_get_rtype(RecordCore *self, void *closure)
{
    return PyUnicode_FromString(self->ti->name);
}

static PyMethodDef RecordCore_methods[] = {
    {"set", (PyCFunction)(void (*)(void))RecordCore_set, METH_FASTCALL | METH_KEYWORDS,
     "set(value, process=True, severity=0, alarm=0, timestamp=None)\n"
     "Write the value and (by default) process the record, in this thread."},
    {"get", (PyCFunction)RecordCore_get, METH_NOARGS, "The record's current value."},
    {"set_alarm", (PyCFunction)(void (*)(void))RecordCore_set_alarm,
     METH_VARARGS | METH_KEYWORDS,
     "set_alarm(severity, alarm, timestamp=None): process with a new alarm."},
    {"_set_initial", (PyCFunction)RecordCore_set_initial, METH_VARARGS, NULL},
    {"_complete", (PyCFunction)RecordCore_complete, METH_VARARGS, NULL},
    {"_post_alarm", (PyCFunction)RecordCore_post_alarm, METH_VARARGS, NULL},
    {"_bind", (PyCFunction)RecordCore_bind, METH_VARARGS, NULL},
    {NULL},
};

static PyGetSetDef RecordCore_getset[] = {
    {"_flags", (getter)RecordCore_get_flags, (setter)RecordCore_set_flags, NULL, NULL},
    {"_rtype", (getter)RecordCore_get_rtype, NULL, NULL, NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyTypeObject RecordCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "softioc._ext.RecordCore",
    .tp_basicsize = sizeof(RecordCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "C state of one Python-driven EPICS record.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RecordCore_init,
    .tp_dealloc = (destructor)RecordCore_dealloc,
    .tp_traverse = (traverseproc)RecordCore_traverse,
    .tp_clear = (inquiry)RecordCore_clear,
    .tp_methods = RecordCore_methods,
    .tp_getset = RecordCore_getset,
    .tp_dictoffset = offsetof(RecordCore, dict),
};

/* ---- waking a dispatcher -------------------------------------------------- */

/* wake(fd): write one byte to a non-blocking pipe, keeping the GIL.
 * os.write() releases the GIL around the write and takes it back at once,
 * while the thread it woke wants it too: from an EPICS thread handing a
 * client's put to a dispatcher, that wait cost the put ~40 us. */
static PyObject *m_wake(PyObject *mod, PyObject *arg)
{
    static const char byte = 1;
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0)
        return NULL;
    if (write(fd, &byte, 1) < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return PyErr_SetFromErrno(PyExc_OSError);   /* full: a wake is pending */
    Py_RETURN_NONE;
}

/* ---- IOC calls ----------------------------------------------------------- */

static PyObject *m_load_database(PyObject *mod, PyObject *args)
{
    const char *file, *path = NULL, *subs = NULL;
    long status;
    if (!PyArg_ParseTuple(args, "s|zz", &file, &path, &subs))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = dbLoadDatabase(file, path, subs);
    Py_END_ALLOW_THREADS
    if (status)
        return epics_error(status, file);
    Py_RETURN_NONE;
}

static PyObject *m_load_records(PyObject *mod, PyObject *args)
{
    const char *file, *subs = NULL;
    long status;
    if (!PyArg_ParseTuple(args, "s|z", &file, &subs))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = dbLoadRecords(file, subs);
    Py_END_ALLOW_THREADS
    if (status) {
        PyErr_Format(PyExc_ValueError, "EPICS could not load records from %s "
                     "(see the messages above)", file);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *m_register(PyObject *mod, PyObject *unused)
{
    long status;
    iocshRegisterCommon();
    status = registerAllRecordDeviceDrivers(pdbbase);
    if (status)
        return epics_error(status, "registerAllRecordDeviceDrivers");
    status = pyioc_install_put_hooks();
    if (status)
        return PyErr_Occurred() ? NULL : epics_error(status, "installing put hooks");
    status = pyioc_install_strict_puts(-1);
    if (status)
        return epics_error(status, "installing strict puts");
    Py_RETURN_NONE;
}

/* strict_puts(enable=None) -> bool: switch strict put conversions (strict.c). */
static PyObject *m_strict_puts(PyObject *mod, PyObject *args)
{
    PyObject *enable = Py_None;
    int on = -1;
    long status;
    if (!PyArg_ParseTuple(args, "|O", &enable))
        return NULL;
    if (enable != Py_None && (on = PyObject_IsTrue(enable)) < 0)
        return NULL;
    status = pyioc_install_strict_puts(on);
    if (status)
        return epics_error(status, "strict puts");
    return PyBool_FromLong(pyioc_strict_puts_enabled());
}

/* iocInit's switch (an iocsh variable of dbCore, not in its headers): when set
 * and EPICS threads have real-time priorities (as root), iocInit calls
 * mlockall(MCL_CURRENT | MCL_FUTURE). */
extern int dbThreadRealtimeLock;

/* ioc_init(memlock): iocInit, locking all memory only if memlock is true. */
static PyObject *m_ioc_init(PyObject *mod, PyObject *args)
{
    int status, memlock = 0;
    if (!PyArg_ParseTuple(args, "|p", &memlock))
        return NULL;
    dbThreadRealtimeLock = memlock;
    Py_BEGIN_ALLOW_THREADS
    status = iocInit();
    Py_END_ALLOW_THREADS
    if (status)
        return epics_error(status, "iocInit");
    pyioc_ioc_running = 1;
    Py_RETURN_NONE;
}

static PyObject *m_iocsh(PyObject *mod, PyObject *args)
{
    const char *cmd;
    int status;
    if (!PyArg_ParseTuple(args, "s", &cmd))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = iocshCmd(cmd);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(status);
}

/* get_field("REC.FIELD") -> str, through dbGetField with DBR_STRING (or
 * DBR_CHAR for long strings, "REC.FIELD$"). */
static PyObject *m_get_field(PyObject *mod, PyObject *args)
{
    const char *name;
    DBADDR addr;
    long status, n;
    char buf[MAX_STRING_SIZE];
    char *lbuf = NULL;
    PyObject *res;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = dbNameToAddr(name, &addr);
    if (!status) {
        if (addr.dbr_field_type == DBR_CHAR && addr.no_elements > 1) {
            n = addr.no_elements;
            lbuf = calloc((size_t)n + 1, 1);
            status = lbuf ? dbGetField(&addr, DBR_CHAR, lbuf, NULL, &n, NULL) : S_db_noMemory;
        } else {
            n = 1;
            status = dbGetField(&addr, DBR_STRING, buf, NULL, &n, NULL);
        }
    }
    Py_END_ALLOW_THREADS
    if (status) {
        free(lbuf);
        return epics_error(status, name);
    }
    if (lbuf) {
        res = PyUnicode_DecodeUTF8(lbuf, strnlen(lbuf, (size_t)addr.no_elements), "replace");
        free(lbuf);
    } else {
        res = PyUnicode_DecodeUTF8(buf, strnlen(buf, sizeof buf), "replace");
    }
    return res;
}

/* The IOC's own write of a field: what dbPutField does (a process-passive
 * field processes a passive record), without its DISP check: DISP=1 (input
 * records, as in pythonSoftIOC) refuses clients' puts, not Python's. */
static long put_as_ioc(DBADDR *addr, short dbr, const void *buf, long n)
{
    dbCommon *prec = addr->precord;
    long status;
    dbScanLock(prec);
    status = dbPut(addr, dbr, buf, n);
    if (!status && (addr->pfield == (void *)&prec->proc ||
                    (addr->pfldDes->process_passive && prec->scan == 0))) {
        if (prec->pact) {
            prec->rpro = TRUE;
        } else {
            prec->putf = TRUE;
            status = dbProcess(prec);
        }
    }
    dbScanUnlock(prec);
    return status;
}

/* put_field("REC.FIELD", "text"): as a client put with DBR_STRING (DBR_CHAR
 * for long string fields), but not refused by DISP. */
static PyObject *m_put_field(PyObject *mod, PyObject *args)
{
    const char *name, *value;
    Py_ssize_t len;
    DBADDR addr;
    long status;
    if (!PyArg_ParseTuple(args, "ss#", &name, &value, &len))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = dbNameToAddr(name, &addr);
    if (!status) {
        if (addr.dbr_field_type == DBR_CHAR && addr.no_elements > 1)
            status = put_as_ioc(&addr, DBR_CHAR, value, (long)len + 1);
        else if ((size_t)len >= MAX_STRING_SIZE)
            status = S_db_errArg;
        else
            status = put_as_ioc(&addr, DBR_STRING, value, 1);
    }
    Py_END_ALLOW_THREADS
    if (status)
        return epics_error(status, name);
    Py_RETURN_NONE;
}

static PyObject *m_record_exists(PyObject *mod, PyObject *args)
{
    const char *name;
    DBENTRY entry;
    long status;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    if (!pdbbase)
        Py_RETURN_FALSE;
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecord(&entry, name);
    dbFinishEntry(&entry);
    return PyBool_FromLong(status == 0);
}

static PyObject *m_exit(PyObject *mod, PyObject *args)
{
    int status = 0;
    if (!PyArg_ParseTuple(args, "|i", &status))
        return NULL;
    pyioc_python_gone = 1;
    Py_BEGIN_ALLOW_THREADS
    epicsExitCallAtExits();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* ---- building records in the static database (before iocInit) ---------- */

/* create_record(rtype, name, [(field, text), ...], info_json_or_None)
 * Fields are checked by EPICS itself (dbVerify/dbPutString); on any error
 * the record is deleted again and nothing is left behind. */
static PyObject *m_create_record(PyObject *mod, PyObject *args)
{
    const char *rtype, *name;
    PyObject *fields, *seq = NULL;
    DBENTRY entry;
    long status;
    Py_ssize_t i, n;

    if (!PyArg_ParseTuple(args, "ssO", &rtype, &name, &fields))
        return NULL;
    if (pyioc_ioc_running) {
        PyErr_SetString(PyExc_RuntimeError, "records are created before iocInit()");
        return NULL;
    }
    seq = PySequence_Fast(fields, "fields must be a sequence of (name, text)");
    if (!seq)
        return NULL;
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecordType(&entry, rtype);
    if (status) {
        PyErr_Format(PyExc_ValueError, "no record type %s", rtype);
        goto fail;
    }
    status = dbCreateRecord(&entry, name);
    if (status) {
        PyErr_Format(PyExc_ValueError, status == S_dbLib_recExists ?
                     "record %s already exists" : "cannot create record %s", name);
        goto fail;
    }
    n = PySequence_Fast_GET_SIZE(seq);
    for (i = 0; i < n; i++) {
        const char *field, *text;
        char *problem;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ss", &field, &text))
            goto undo;
        if (dbFindField(&entry, field)) {
            PyErr_Format(PyExc_TypeError, "%s: %s records have no field %s", name, rtype, field);
            goto undo;
        }
        problem = dbVerify(&entry, text);
        if (problem || dbPutString(&entry, text)) {
            PyErr_Format(PyExc_ValueError, "%s: cannot set %s to \"%s\": %s", name, field,
                         text, problem ? problem : "refused by EPICS");
            goto undo;
        }
    }
    dbFinishEntry(&entry);
    Py_DECREF(seq);
    Py_RETURN_NONE;
undo:
    dbFindRecord(&entry, name);
    dbDeleteRecord(&entry);
fail:
    dbFinishEntry(&entry);
    Py_XDECREF(seq);
    return NULL;
}

/* delete_record(name): undo create_record before iocInit. */
static PyObject *m_delete_record(PyObject *mod, PyObject *args)
{
    const char *name;
    DBENTRY entry;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    if (pyioc_ioc_running) {
        PyErr_SetString(PyExc_RuntimeError, "records cannot be deleted after iocInit()");
        return NULL;
    }
    dbInitEntry(pdbbase, &entry);
    if (!dbFindRecord(&entry, name))
        dbDeleteRecord(&entry);
    dbFinishEntry(&entry);
    Py_RETURN_NONE;
}

/* put_static(name, field, text) / put_info(name, info, text): before iocInit. */
static PyObject *m_put_static(PyObject *mod, PyObject *args)
{
    const char *name, *field, *text;
    DBENTRY entry;
    char *problem = NULL;
    long status;
    int info;
    if (!PyArg_ParseTuple(args, "sssp", &name, &field, &text, &info))
        return NULL;
    if (pyioc_ioc_running) {
        PyErr_SetString(PyExc_RuntimeError, "use put_field() once the IOC runs");
        return NULL;
    }
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecord(&entry, name);
    if (status) {
        dbFinishEntry(&entry);
        PyErr_Format(PyExc_ValueError, "no record %s", name);
        return NULL;
    }
    if (info) {
        status = dbPutInfo(&entry, field, text);
    } else if (dbFindField(&entry, field)) {
        dbFinishEntry(&entry);
        PyErr_Format(PyExc_TypeError, "%s has no field %s", name, field);
        return NULL;
    } else {
        problem = dbVerify(&entry, text);
        status = problem ? -1 : dbPutString(&entry, text);
    }
    dbFinishEntry(&entry);
    if (status) {
        PyErr_Format(PyExc_ValueError, "%s: cannot set %s to \"%s\": %s", name, field, text,
                     problem ? problem : "refused by EPICS");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* alias(record, alias): another name for a record, before or after iocInit.
 * The PV name table is locked by Base; the alias is live for CA and PVA at once. */
static PyObject *m_create_alias(PyObject *mod, PyObject *args)
{
    const char *name, *alias;
    DBENTRY entry;
    long status;
    if (!PyArg_ParseTuple(args, "ss", &name, &alias))
        return NULL;
    if (!pdbbase) {
        PyErr_SetString(PyExc_RuntimeError, "no database loaded yet");
        return NULL;
    }
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecord(&entry, name);
    if (!status)
        status = dbCreateAlias(&entry, alias);
    dbFinishEntry(&entry);
    if (status == S_dbLib_recExists) {
        PyErr_Format(PyExc_ValueError, "%s already exists", alias);
        return NULL;
    }
    if (status)
        return epics_error(status, alias);
    Py_RETURN_NONE;
}

/* Access security configuration file, read by iocInit; check_client_ip sets
 * libCom's asCheckClientIP (rsrv then names CA clients by their IP address and
 * HAG host names are resolved when the ACF is loaded). */
static PyObject *m_set_acf(PyObject *mod, PyObject *args)
{
    const char *path;
    int check_client_ip = 0;
    long status;
    if (!PyArg_ParseTuple(args, "s|p", &path, &check_client_ip))
        return NULL;
    asCheckClientIP = check_client_ip;
    status = asSetFilename(path);
    if (status)
        return epics_error(status, path);
    Py_RETURN_NONE;
}

/* put_raw(name, dbr_type, address, count, process): a put from a raw buffer
 * (pythonSoftIOC's softioc.imports.db_put_field*).  process -1: dbPutField,
 * as a client put; 1: dbPut and process (or ask a busy record to process
 * again); 0: dbPut only.  The caller vouches for the buffer. */
static PyObject *m_put_raw(PyObject *mod, PyObject *args)
{
    const char *name;
    short dbr_type;
    PyObject *address;
    long count, status;
    int process;
    void *buf;
    DBADDR addr;
    if (!PyArg_ParseTuple(args, "shOli", &name, &dbr_type, &address, &count, &process))
        return NULL;
    buf = PyLong_AsVoidPtr(address);
    if (!buf) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "buffer address is NULL");
        return NULL;
    }
    if (dbr_type < DBR_STRING || dbr_type > DBR_ENUM || count < 1) {
        PyErr_Format(PyExc_ValueError, "%s: bad request type %d or count %ld",
                     name, dbr_type, count);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    status = dbNameToAddr(name, &addr);
    if (!status && process < 0) {
        status = dbPutField(&addr, dbr_type, buf, count);
    } else if (!status) {
        dbScanLock(addr.precord);
        status = dbPut(&addr, dbr_type, buf, count);
        if (!status && process) {
            if (addr.precord->pact)
                addr.precord->rpro = TRUE;
            else
                dbProcess(addr.precord);
        }
        dbScanUnlock(addr.precord);
    }
    Py_END_ALLOW_THREADS
    if (status)
        return epics_error(status, name);
    Py_RETURN_NONE;
}

/* get_raw(name, dbr_type, address, count): dbGetField into a raw buffer. */
static PyObject *m_get_raw(PyObject *mod, PyObject *args)
{
    const char *name;
    short dbr_type;
    PyObject *address;
    long count, status;
    void *buf;
    DBADDR addr;
    if (!PyArg_ParseTuple(args, "shOl", &name, &dbr_type, &address, &count))
        return NULL;
    buf = PyLong_AsVoidPtr(address);
    if (!buf) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "buffer address is NULL");
        return NULL;
    }
    if (dbr_type < DBR_STRING || dbr_type > DBR_ENUM || count < 1) {
        PyErr_Format(PyExc_ValueError, "%s: bad request type %d or count %ld",
                     name, dbr_type, count);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    status = dbNameToAddr(name, &addr);
    if (!status)
        status = dbGetField(&addr, dbr_type, buf, NULL, &count, NULL);
    Py_END_ALLOW_THREADS
    if (status)
        return epics_error(status, name);
    Py_RETURN_NONE;
}

/* record_types(): the closed type table (devsup.c), for the checks against it. */
static PyObject *m_record_types(PyObject *mod, PyObject *unused)
{
    static const char *const kinds[] = {"double", "long", "enum", "int64", "string",
                                        "lstring", "array"};
    const type_info *ti;
    PyObject *list = PyList_New(0);
    for (ti = pyioc_types; list && ti->name; ti++) {
        PyObject *item = Py_BuildValue("(sNs)", ti->name, PyBool_FromLong(ti->is_output),
                                       kinds[ti->kind]);
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}

static PyMethodDef module_methods[] = {
    {"record_types", m_record_types, METH_NOARGS,
     "record_types() -> [(rtype, is_output, kind)]: the record types Python drives."},
    {"put_raw", m_put_raw, METH_VARARGS, "Put into REC.FIELD from a raw buffer address."},
    {"get_raw", m_get_raw, METH_VARARGS, "Get REC.FIELD into a raw buffer address."},
    {"putlog_start", pyioc_putlog_start, METH_VARARGS,
     "putlog_start(capacity): record client puts (putlog.c)."},
    {"putlog_take", pyioc_putlog_take, METH_VARARGS,
     "putlog_take(timeout) -> (entries, dropped)."},
    {"putlog_wake", pyioc_putlog_wake, METH_NOARGS, "End a waiting putlog_take()."},
    {"write_queue", pyioc_write_queue, METH_VARARGS,
     "write_queue(fd): queue on_update writes, waking fd (writeq.c); -1 stops."},
    {"take_writes", pyioc_take_writes, METH_NOARGS,
     "take_writes() -> [(record, raw, busy)]: the queued writes, oldest first."},
    {"wake", m_wake, METH_O, "wake(fd): write a byte to a non-blocking pipe, GIL kept."},
    {"set_acf", m_set_acf, METH_VARARGS,
     "set_acf(path, check_client_ip=False): the ACF iocInit loads, and asCheckClientIP."},
    {"create_alias", m_create_alias, METH_VARARGS, "Another name for a record."},
    {"create_record", m_create_record, METH_VARARGS, "Create a record with fields (static)."},
    {"delete_record", m_delete_record, METH_VARARGS, "Delete a record (before iocInit)."},
    {"put_static", m_put_static, METH_VARARGS, "Set a field or info item (before iocInit)."},
    {"load_database", m_load_database, METH_VARARGS, "dbLoadDatabase(file, path, subs)"},
    {"load_records", m_load_records, METH_VARARGS, "dbLoadRecords(file, subs)"},
    {"register", m_register, METH_NOARGS,
     "Register iocsh commands and all record/device support; hook puts."},
    {"ioc_init", m_ioc_init, METH_VARARGS, "iocInit(memlock=False)"},
    {"strict_puts", m_strict_puts, METH_VARARGS,
     "strict_puts(enable=None) -> bool: refuse puts that conversion would change."},
    {"iocsh", m_iocsh, METH_VARARGS, "Run one IOC shell command."},
    {"get_field", m_get_field, METH_VARARGS, "Read REC.FIELD as text."},
    {"put_field", m_put_field, METH_VARARGS, "Write REC.FIELD from text."},
    {"record_exists", m_record_exists, METH_VARARGS, "Is there a record of this name?"},
    {"call_atexits", m_exit, METH_VARARGS, "Run EPICS exit handlers (stops servers)."},
    {NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "softioc._ext", "pythonIOC's C layer.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__ext(void)
{
    PyObject *m;
    str_preinit_set = PyUnicode_InternFromString("_preinit_set");
    if (!str_preinit_set || PyType_Ready(&RecordCoreType) < 0)
        return NULL;
    m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    Py_INCREF(&RecordCoreType);
    if (PyModule_AddObject(m, "RecordCore", (PyObject *)&RecordCoreType) < 0 ||
            PyModule_AddIntConstant(m, "RF_ON_WRITE", RF_ON_WRITE) < 0 ||
            PyModule_AddIntConstant(m, "RF_VALIDATE", RF_VALIDATE) < 0 ||
            PyModule_AddIntConstant(m, "RF_FIELD_WATCH", RF_FIELD_WATCH) < 0 ||
            PyModule_AddIntConstant(m, "RF_LSTRING", RF_LSTRING) < 0 ||
            PyModule_AddIntConstant(m, "RF_BLOCKING", RF_BLOCKING) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
