/* A Channel Access client for `pythonioc probe` (softioc.probe): read a few
 * PVs once, with libca, in a process that serves nothing.  The container's
 * image has no caget, so the package carries this much of a client.
 *
 * ca_get(names, timeout) -> [(text, time stamp, severity)]: each PV as
 * DBR_TIME_STRING (a CHAR array, as a long string, as DBR_TIME_CHAR up to its
 * NUL), its time stamp in POSIX seconds (0.0 for a record never processed).
 * Every PV is searched for at once and read in one round; TimeoutError names
 * the first PV that did not connect within ``timeout`` seconds (or says the
 * reads were not answered in what was left of it).
 * Where to search is libca's business: the caller sets EPICS_CA_* in the
 * environment first (softioc.probe: a TCP name server, no UDP).
 *
 * The calling thread gets a CA context of its own, made and destroyed here
 * (non-preemptive: nothing runs outside ca_pend_io), and the GIL is released
 * while libca waits.
 */
#include "pythonioc.h"

#include <stdlib.h>
#include <string.h>

#include <cadef.h>
#include <epicsTime.h>

enum { PROBE_CONNECT_FAILED = 1, PROBE_GET_FAILED, PROBE_CONTEXT_FAILED, PROBE_NO_MEMORY };

typedef struct {
    char *name;
    chid ch;
    chtype type;            /* DBR_TIME_STRING or DBR_TIME_CHAR */
    unsigned long count;
    void *value;
} probe_pv;

static double now_seconds(void)
{
    return (double)epicsMonotonicGet() * 1e-9;
}

static double posix_seconds(const epicsTimeStamp *stamp)
{
    if (stamp->secPastEpoch == 0 && stamp->nsec == 0)
        return 0.0;
    return (double)stamp->secPastEpoch + POSIX_TIME_AT_EPICS_EPOCH + stamp->nsec * 1e-9;
}

/* Connect, read, disconnect, without the GIL: 0, or a PROBE_* code with
 * *failed the index of the PV concerned (-1 for none). */
static int probe_read(probe_pv *pvs, Py_ssize_t n, double timeout, Py_ssize_t *failed,
                      int *ca_status)
{
    Py_ssize_t i;
    int status, result = 0;
    double deadline = now_seconds() + timeout, left;
    *failed = -1;
    *ca_status = ECA_NORMAL;
    if (ca_current_context() != NULL)
        return PROBE_CONTEXT_FAILED;       /* never take over a context of the caller's */
    status = ca_context_create(ca_disable_preemptive_callback);
    if (status != ECA_NORMAL) {
        *ca_status = status;
        return PROBE_CONTEXT_FAILED;
    }
    for (i = 0; i < n; i++) {
        status = ca_create_channel(pvs[i].name, NULL, NULL, CA_PRIORITY_DEFAULT, &pvs[i].ch);
        if (status != ECA_NORMAL) {
            *ca_status = status;
            *failed = i;
            result = PROBE_CONNECT_FAILED;
            goto done;
        }
    }
    ca_pend_io(timeout);                  /* ECA_TIMEOUT: some did not connect */
    for (i = 0; i < n; i++) {
        if (ca_state(pvs[i].ch) != cs_conn) {
            *failed = i;
            result = PROBE_CONNECT_FAILED;
            goto done;
        }
    }
    for (i = 0; i < n; i++) {
        probe_pv *pv = &pvs[i];
        unsigned long count = ca_element_count(pv->ch);
        if (ca_field_type(pv->ch) == DBF_CHAR && count > 1) {
            pv->type = DBR_TIME_CHAR;
            pv->count = count;
        } else {
            pv->type = DBR_TIME_STRING;
            pv->count = 1;
        }
        pv->value = calloc(1, dbr_size_n(pv->type, pv->count) + 1);
        if (!pv->value) {
            result = PROBE_NO_MEMORY;
            goto done;
        }
        status = ca_array_get(pv->type, pv->count, pv->ch, pv->value);
        if (status != ECA_NORMAL) {
            *ca_status = status;
            *failed = i;
            result = PROBE_GET_FAILED;
            goto done;
        }
    }
    left = deadline - now_seconds();
    status = ca_pend_io(left > 0.01 ? left : 0.01);
    if (status != ECA_NORMAL) {
        *ca_status = status;
        result = PROBE_GET_FAILED;
    }
done:
    for (i = 0; i < n; i++) {
        if (pvs[i].ch)
            ca_clear_channel(pvs[i].ch);
    }
    ca_context_destroy();
    return result;
}

static PyObject *probe_result(const probe_pv *pv)
{
    const char *text;
    Py_ssize_t length;
    epicsTimeStamp stamp;
    int severity;
    if (pv->type == DBR_TIME_CHAR) {
        const struct dbr_time_char *v = pv->value;
        const char *start = (const char *)&v->value;
        const char *nul = memchr(start, '\0', pv->count);
        text = start;
        length = nul ? nul - start : (Py_ssize_t)pv->count;
        stamp = v->stamp;
        severity = v->severity;
    } else {
        const struct dbr_time_string *v = pv->value;
        text = v->value;
        length = (Py_ssize_t)strnlen(v->value, MAX_STRING_SIZE);
        stamp = v->stamp;
        severity = v->severity;
    }
    return Py_BuildValue("(Ndi)", PyUnicode_DecodeUTF8(text, length, "replace"),
                         posix_seconds(&stamp), severity);
}

PyObject *m_ca_get(PyObject *mod, PyObject *args)
{
    PyObject *names, *seq, *result = NULL;
    double timeout;
    probe_pv *pvs;
    Py_ssize_t n, i, failed;
    int code, ca_status;
    if (!PyArg_ParseTuple(args, "Od", &names, &timeout))
        return NULL;
    if (!(timeout > 0)) {
        PyErr_SetString(PyExc_ValueError, "ca_get: the timeout must be > 0 s");
        return NULL;
    }
    seq = PySequence_Fast(names, "ca_get: names must be a sequence of PV names");
    if (seq && PyList_Check(seq)) {
        /* a tuple of our own: another thread may change the list meanwhile */
        PyObject *items = PyList_AsTuple(seq);
        Py_DECREF(seq);
        seq = items;
    }
    if (!seq)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    pvs = calloc(n ? n : 1, sizeof(*pvs));
    if (!pvs) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (i = 0; i < n; i++) {
        const char *name = PyUnicode_Check(PySequence_Fast_GET_ITEM(seq, i)) ?
            PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i)) : NULL;
        if (!name) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "ca_get: a PV name must be a str");
            goto out;
        }
        pvs[i].name = strdup(name);
        if (!pvs[i].name) {
            PyErr_NoMemory();
            goto out;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    code = probe_read(pvs, n, timeout, &failed, &ca_status);
    Py_END_ALLOW_THREADS
    switch (code) {
    case 0:
        result = PyList_New(n);
        for (i = 0; result && i < n; i++) {
            PyObject *item = probe_result(&pvs[i]);
            if (!item) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, item);
        }
        break;
    case PROBE_CONNECT_FAILED:
        if (ca_status != ECA_NORMAL)
            PyErr_Format(PyExc_ValueError, "%s: %s", pvs[failed].name, ca_message(ca_status));
        else
            PyErr_Format(PyExc_TimeoutError, "%s: no server answered", pvs[failed].name);
        break;
    case PROBE_GET_FAILED:
        if (ca_status == ECA_TIMEOUT)
            PyErr_SetString(PyExc_TimeoutError, "the server did not answer the reads");
        else
            PyErr_Format(PyExc_RuntimeError, "%s%sread failed: %s",
                         failed >= 0 ? pvs[failed].name : "", failed >= 0 ? ": " : "",
                         ca_message(ca_status));
        break;
    case PROBE_CONTEXT_FAILED:
        PyErr_Format(PyExc_RuntimeError, "ca_get: %s",
                     ca_status != ECA_NORMAL ? ca_message(ca_status) :
                     "this thread already has a Channel Access context");
        break;
    default:
        PyErr_NoMemory();
    }
out:
    for (i = 0; i < n; i++) {
        free(pvs[i].name);
        free(pvs[i].value);
    }
    free(pvs);
    Py_DECREF(seq);
    return result;
}
