/* The floor of the C layer: what every other file uses and that uses
 * nothing of theirs.
 *
 * - pyioc_state: the C layer's phase and settings, in one place (EPICS
 *   threads read it without the GIL; Python through _ext.state());
 * - the GIL from EPICS threads, and logging a Python error raised there;
 * - the record-type table (generated: pyioc_rtypes.h) and where each type
 *   keeps its value;
 * - which records are ours (their device support is devsup.c's).
 */
#define USE_TYPED_DSET

#include "pythonioc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <dbAccess.h>
#include <dbScan.h>
#include <devSup.h>
#include <epicsExit.h>
#include <epicsThread.h>

#include "pyioc_rtypes.h"

pyioc_state_t pyioc_state = {0, 0, -1, 0};

/* pythonioc.h says what each guards.  Made once, at import (the import lock
 * serialises it), before any thread can use them. */
epicsMutexId pyioc_setup_mutex, pyioc_static_mutex;

void pyioc_locks_init(void)
{
    if (!pyioc_setup_mutex)
        pyioc_setup_mutex = epicsMutexMustCreate();
    if (!pyioc_static_mutex)
        pyioc_static_mutex = epicsMutexMustCreate();
}

/* ---- the GIL from EPICS threads ------------------------------------------
 * PyGILState_Ensure() on a thread Python has not seen makes a thread state,
 * and the matching PyGILState_Release() deletes it again: on CPython 3.11
 * and later that maps and unmaps the thread's frame stack each time, about
 * half of a put-callback's round trip.  So an EPICS thread that calls into
 * Python keeps its thread state (GIL released) until it exits. */
static void drop_thread_state(void *tstate)
{
    if (pyioc_state.python_gone)
        return;                     /* the interpreter freed it already */
    PyEval_RestoreThread((PyThreadState *)tstate);
    PyGILState_Release(PyGILState_UNLOCKED);    /* count 0: cleared, deleted */
}

PyGILState_STATE pyioc_gil_ensure(void)
{
    if (!PyGILState_GetThisThreadState()) {
        PyGILState_Ensure();        /* the kept state, count 1 */
        epicsAtThreadExit(drop_thread_state, PyEval_SaveThread());
    }
    return PyGILState_Ensure();
}

void pyioc_log_exception(const char *what, RecordCore *rc)
{
    PyObject *type, *value, *tb, *logging, *logger = NULL, *res = NULL;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    logging = PyImport_ImportModule("logging");
    if (logging)
        logger = PyObject_CallMethod(logging, "getLogger", "s", "softioc");
    if (logger) {
        PyObject *info = PyTuple_Pack(3, type ? type : Py_None, value ? value : Py_None,
                                      tb ? tb : Py_None);
        PyObject *args = Py_BuildValue("(ssO)", "%s of %r failed", what, (PyObject *)rc);
        PyObject *kwargs = info ? Py_BuildValue("{sOs{ss}}", "exc_info", info, "extra",
                                                "record", rc->prec ? rc->prec->name : "")
                                : NULL;
        PyObject *error = PyObject_GetAttrString(logger, "error");
        if (args && kwargs && error)
            res = PyObject_Call(error, args, kwargs);
        Py_XDECREF(error);
        Py_XDECREF(kwargs);
        Py_XDECREF(args);
        Py_XDECREF(info);
    }
    if (!res) {                     /* logging itself failed: stderr, both */
        PyErr_WriteUnraisable((PyObject *)rc);
        PyErr_Restore(type, value, tb);
        PyErr_WriteUnraisable((PyObject *)rc);
    } else {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    Py_XDECREF(res);
    Py_XDECREF(logger);
    Py_XDECREF(logging);
}

/* ---- the record types ---------------------------------------------------- */

#define KIND_OF_double KIND_DOUBLE
#define KIND_OF_long KIND_LONG
#define KIND_OF_enum KIND_ENUM
#define KIND_OF_int64 KIND_INT64
#define KIND_OF_string KIND_STRING
#define KIND_OF_lstring KIND_LSTRING
#define KIND_OF_array KIND_ARRAY

/* Where each kind keeps its value: VAL, or for arrays BPTR, NELM, NORD and
 * FTVL; long strings use nelm for SIZV and nord for LEN. */
#define OFFSETS_scalar(rtype) offsetof(rtype##Record, val), 0, 0, 0
#define OFFSETS_double OFFSETS_scalar
#define OFFSETS_long OFFSETS_scalar
#define OFFSETS_enum OFFSETS_scalar
#define OFFSETS_int64 OFFSETS_scalar
#define OFFSETS_string OFFSETS_scalar
#define OFFSETS_lstring(rtype) offsetof(rtype##Record, val), \
    offsetof(rtype##Record, sizv), offsetof(rtype##Record, len), 0
#define OFFSETS_array(rtype) offsetof(rtype##Record, bptr), \
    offsetof(rtype##Record, nelm), offsetof(rtype##Record, nord), offsetof(rtype##Record, ftvl)

#define TYPE_ENTRY(rtype, kind, out, max_enum) \
    {#rtype, KIND_OF_##kind, out, OFFSETS_##kind(rtype), max_enum},

const type_info pyioc_types[] = {
    PYIOC_RECORD_TYPES(TYPE_ENTRY)
    {NULL},
};

const type_info *pyioc_find_type(const char *name)
{
    const type_info *ti;
    for (ti = pyioc_types; ti->name; ti++)
        if (strcmp(ti->name, name) == 0)
            return ti;
    return NULL;
}

/* Size in bytes of the current value, and its element count for arrays. */
size_t pyioc_value_bytes(RecordCore *rc, epicsUInt32 *nord)
{
    const type_info *ti = rc->ti;
    dbCommon *prec = rc->prec;
    switch (ti->kind) {
    case KIND_DOUBLE: return sizeof(epicsFloat64);
    case KIND_LONG: return sizeof(epicsInt32);
    case KIND_ENUM: return sizeof(epicsEnum16);
    case KIND_INT64: return sizeof(epicsInt64);
    case KIND_STRING: return MAX_STRING_SIZE;
    case KIND_LSTRING:
        *nord = *FIELD(prec, ti->nord, epicsUInt32);
        return *FIELD(prec, ti->nelm, epicsUInt16);
    case KIND_ARRAY:
        *nord = *FIELD(prec, ti->nord, epicsUInt32);
        return (size_t)*nord * dbValueSize(*FIELD(prec, ti->ftvl, epicsEnum16));
    }
    return 0;
}

void *pyioc_value_ptr(RecordCore *rc)
{
    const type_info *ti = rc->ti;
    if (ti->kind == KIND_LSTRING || ti->kind == KIND_ARRAY)
        return *FIELD(rc->prec, ti->val, void *);
    return FIELD(rc->prec, ti->val, char);
}

/* ---- the last value accepted ---------------------------------------------
 * Kept for records whose client puts are checked (validate, long strings):
 * set() and an accepted put keep it, a refused put is put back from it.
 * The record is locked. */
void pyioc_keep_value(RecordCore *rc)
{
    epicsUInt32 nord = 0;
    size_t n = pyioc_value_bytes(rc, &nord);
    if (n > rc->snap_cap) {
        char *buf = realloc(rc->snap_buf, n);
        if (!buf) {
            rc->kept = 0;           /* a refusal then keeps what the put left */
            return;
        }
        rc->snap_buf = buf;
        rc->snap_cap = n;
    }
    if (n)
        memcpy(rc->snap_buf, pyioc_value_ptr(rc), n);
    rc->snap_len = n;
    rc->snap_nord = nord;
    rc->kept = 1;
}

void pyioc_restore_value(RecordCore *rc)
{
    const type_info *ti = rc->ti;
    if (!rc->kept)
        return;
    if (rc->snap_len)
        memcpy(pyioc_value_ptr(rc), rc->snap_buf, rc->snap_len);
    if (ti->kind == KIND_LSTRING || ti->kind == KIND_ARRAY)
        *FIELD(rc->prec, ti->nord, epicsUInt32) = rc->snap_nord;
}

int pyioc_value_changed(RecordCore *rc)
{
    epicsUInt32 nord = 0;
    size_t n = pyioc_value_bytes(rc, &nord);
    return !rc->kept || n != rc->snap_len || nord != rc->snap_nord ||
        (n && memcmp(rc->snap_buf, pyioc_value_ptr(rc), n) != 0);
}

/* ---- which records are ours ----------------------------------------------
 * Every dset of devsup.c has this get_ioint_info: Python processes the
 * record itself, and an I/O Intr scan list that nobody triggers keeps
 * "SCAN = I/O Intr" legal for users who ask for it. */
static IOSCANPVT never;

static void make_never(void *unused)
{
    scanIoInit(&never);
}

long pyioc_get_ioint_info(int detach, dbCommon *prec, IOSCANPVT *ppvt)
{
    /* once: two client threads may switch two records to I/O Intr at once */
    static epicsThreadOnceId once = EPICS_THREAD_ONCE_INIT;
    epicsThreadOnce(&once, make_never, NULL);
    *ppvt = never;
    return 0;
}

int pyioc_is_ours(dbCommon *prec)
{
    const dset *d = (const dset *)prec->dset;
    return d && d->number >= 5 && d->get_ioint_info == pyioc_get_ioint_info;
}
