/* Value conversions between Python objects and a record's own storage.
 *
 * Python to EPICS in two steps: pyioc_convert() checks and converts with
 * the GIL and no lock; pyioc_store() copies under the record lock.
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <math.h>
#include <string.h>

#include <alarm.h>
#include <dbAccess.h>

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

int pyioc_convert(RecordCore *rc, PyObject *value, converted *c)
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
            (rc->prec && pyioc_state.running ? (size_t)*FIELD(rc->prec, ti->nelm, epicsUInt16) - 1
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
        if (rc->prec && c->view.itemsize !=
                (Py_ssize_t)dbValueSize(*FIELD(rc->prec, ti->ftvl, epicsEnum16))) {
            PyErr_Format(PyExc_TypeError,
                         "an array of %zd-byte elements does not match %s record %s (FTVL %s)",
                         c->view.itemsize, ti->name, rc->prec->name,
                         pamapdbfType[*FIELD(rc->prec, ti->ftvl, epicsEnum16)].strvalue);
            PyBuffer_Release(&c->view);
            c->have_view = 0;
            return -1;
        }
        if (rc->prec && pyioc_state.running &&
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

void pyioc_release(converted *c)
{
    if (c->have_view)
        PyBuffer_Release(&c->view);
}

/* Copy a converted value into the record; record locked. */
void pyioc_store(RecordCore *rc, converted *c)
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
    if (rc->flags & RF_CHECKED)
        pyioc_keep_value(rc);       /* Python's value needs no approval */
}

/* Keep a copy of the value for init_record (before iocInit). */
int pyioc_store_initial(RecordCore *rc, converted *c)
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

int pyioc_parse_alarm(PyObject *o, epicsEnum16 limit, epicsEnum16 *out, const char *what)
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

int pyioc_parse_time(PyObject *o, epicsTimeStamp *ts)
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
