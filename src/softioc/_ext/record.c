/* RecordCore: the Python handle of one record (the hot path: set, get,
 * alarm, completion of a blocking write, binding to the EPICS record).
 *
 * Every call that takes an EPICS lock releases the GIL first
 * (Py_BEGIN_ALLOW_THREADS), so no thread waits for a record lock while
 * holding the GIL.
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <structmember.h>

#include <alarm.h>
#include <dbAccess.h>
#include <dbEvent.h>
#include <dbLock.h>
#include <dbNotify.h>
#include <recSup.h>
#include <recGbl.h>

static PyObject *str_preinit_set, *str_is_output, *str_python;

/* set(process=False): no processing (no on_update, links or alarm update),
 * but monitors see the new value, as a get does.  The record's last-posted
 * copies (MLST, ALST; OVAL of string records) take the value too, so that
 * its next processing posts a change from it, not from the value before. */
static void post_unprocessed(RecordCore *rc)
{
    dbCommon *prec = rc->prec;
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
    /* The new value carries its own time: the one given, or now (device
     * time, as set() gives it), or what TSE says for other records. */
    if (rc->p_has_time)
        prec->time = rc->p_time;
    else if (prec->tse == epicsTimeEventDeviceTime)
        epicsTimeGetCurrent(&prec->time);
    else
        recGblGetTimeStamp(prec);
    db_post_events(prec, NULL, DBE_VALUE | DBE_LOG);
}

/* ---- RecordCore ---------------------------------------------------------- */

/* RecordCore(rtype, name, dbrecord=None): dbrecord, once epicsdbbuilder's
 * handle, is accepted and ignored (links are made from the name). */
static int RecordCore_init(RecordCore *self, PyObject *args, PyObject *kw)
{
    static char *keywords[] = {"rtype", "name", "dbrecord", NULL};
    const char *rtype;
    const type_info *ti;
    PyObject *name = Py_None, *dbrecord = Py_None, *is_output;
    int again;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|OO", keywords, &rtype, &name, &dbrecord))
        return -1;
    ti = pyioc_find_type(rtype);
    if (!ti) {
        PyErr_Format(PyExc_ValueError, "no Python device support for record type %s", rtype);
        return -1;
    }
    PYIOC_BEGIN_OBJECT((PyObject *)self);       /* once, whole, as members are set */
    again = self->ti != NULL;
    if (!again) {
        self->ti = ti;
        Py_INCREF(name);
        Py_XSETREF(self->name, name);
        Py_INCREF(name);
        Py_XSETREF(self->spare_name, name);
        if (!self->dtyp) {
            Py_INCREF(str_python);
            self->dtyp = str_python;
        }
    }
    PYIOC_END_OBJECT();
    if (again) {
        PyErr_SetString(PyExc_RuntimeError, "a record handle is initialised once");
        return -1;
    }
    /* Input records take set()'s arguments in pythonSoftIOC's order for
     * them: (value, severity, alarm, timestamp); outputs (value, process, ...). */
    is_output = PyObject_GetAttr((PyObject *)Py_TYPE(self), str_is_output);
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
    Py_CLEAR(self->name);
    Py_CLEAR(self->spare_name);
    Py_CLEAR(self->given);
    Py_CLEAR(self->dtyp);
    PyMem_Free(self->init_buf);
    free(self->snap_buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The Python objects a RecordCore holds. */
#define OBJECT_MEMBERS(X) X(dict) X(name) X(spare_name) X(given) X(dtyp)

static int RecordCore_traverse(RecordCore *self, visitproc visit, void *arg)
{
#define VISIT(member) Py_VISIT(self->member);
    OBJECT_MEMBERS(VISIT)
    return 0;
}

static int RecordCore_clear(RecordCore *self)
{
#define CLEAR(member) Py_CLEAR(self->member);
    OBJECT_MEMBERS(CLEAR)
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
    if (pyioc_parse_alarm(a[2], INVALID_ALARM, &sevr, "severity") ||
            pyioc_parse_alarm(a[3], ALARM_NSTATUS - 1, &stat, "alarm"))
        return NULL;
    has_time = pyioc_parse_time(a[4], &ts);
    process = PyObject_IsTrue(a[1]);
    if (has_time < 0 || process < 0)
        return NULL;

    if (!pyioc_state.running) {
        /* Before iocInit: Python keeps it and hands it to init_record. */
        return PyObject_CallMethodObjArgs((PyObject *)self, str_preinit_set,
                                          a[0], a[2] ? a[2] : Py_None,
                                          a[3] ? a[3] : Py_None, NULL);
    }
    if (!self->prec)
        return not_bound(self);
    if (pyioc_convert(self, a[0], &c))
        return NULL;

    Py_BEGIN_ALLOW_THREADS
    dbScanLock(self->prec);
    pyioc_store(self, &c);
    self->refused = 0;
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
            self->setting = 1;
            status = dbProcess(self->prec);
            self->setting = 0;
        }
    } else if (!self->prec->pact) {
        post_unprocessed(self);
    }
    /* (busy: a blocking put is in progress, and its completion posts the value
     * with the alarm given here, in one event, as pythonSoftIOC's does) */
    dbScanUnlock(self->prec);
    Py_END_ALLOW_THREADS
    pyioc_release(&c);
    if (status)
        return pyioc_epics_error(status, self->prec->name);
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
    int failed;
    if (!PyArg_ParseTuple(args, "O|ii", &value, &sevr, &stat))
        return NULL;
    if (pyioc_convert(self, value, &c))
        return NULL;
    /* the initial value (init_buf, reallocated) is the object's alone */
    PYIOC_BEGIN_OBJECT((PyObject *)self);
    failed = pyioc_store_initial(self, &c);
    if (!failed) {
        self->p_sevr = (epicsEnum16)sevr;
        self->p_stat = (epicsEnum16)(sevr && !stat ? UDF_ALARM : stat);
    }
    PYIOC_END_OBJECT();
    pyioc_release(&c);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

/* The value set before iocInit, as get() will read it once the IOC runs:
 * converted to the field's type (0, 0.0 or "" if none was set). */
static PyObject *RecordCore_initial_value(RecordCore *self, PyObject *unused)
{
    static const char zero[sizeof(epicsFloat64)];
    PyObject *v;
    PYIOC_BEGIN_OBJECT((PyObject *)self);       /* (_set_initial reallocates it) */
    if (!self->init_set)
        v = pyioc_value_from(self, zero, self->ti->kind == KIND_STRING ? sizeof zero : 0);
    else
        v = pyioc_value_from(self, self->init_buf, self->init_len);
    PYIOC_END_OBJECT();
    return v;
}

static PyObject *RecordCore_get(RecordCore *self, PyObject *unused)
{
    PyObject *v;
    if (!pyioc_state.running)
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
    long status = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &osevr, &ostat, &otime))
        return NULL;
    if (pyioc_parse_alarm(osevr, INVALID_ALARM, &sevr, "severity") ||
            pyioc_parse_alarm(ostat, ALARM_NSTATUS - 1, &stat, "alarm"))
        return NULL;
    has_time = pyioc_parse_time(otime, &ts);
    if (has_time < 0)
        return NULL;
    if (!pyioc_state.running) {
        PYIOC_BEGIN_OBJECT((PyObject *)self);   /* as _set_initial sets them */
        self->p_sevr = sevr;
        self->p_stat = sevr && !stat ? UDF_ALARM : stat;
        PYIOC_END_OBJECT();
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
    /* Python states the record's alarm: its value (0 if never set) is
     * defined from now on, or UDF's INVALID alarm would hide the one given. */
    if (!self->prec->pact)
        self->prec->udf = FALSE;
    if (!self->prec->pact)
        status = dbProcess(self->prec);     /* a client's value not yet checked is checked */
    dbScanUnlock(self->prec);
    Py_END_ALLOW_THREADS
    if (status)
        return pyioc_epics_error(status, self->prec->name);
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
    if (!self->prec || !pyioc_state.running)
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

static PyObject *bind(RecordCore *self, const char *name);

static PyObject *RecordCore_bind(RecordCore *self, PyObject *args)
{
    const char *name;
    PyObject *res;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    /* a record's binding is part of the static database (delete_record
     * reads it): checked and made under its lock */
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    res = bind(self, name);
    epicsMutexUnlock(pyioc_static_mutex);
    return res;
}

static PyObject *bind(RecordCore *self, const char *name)
{
    DBADDR addr;
    long status;
    if (self->prec) {
        PyErr_Format(PyExc_RuntimeError, "record %s is already bound", name);
        return NULL;
    }
    status = dbNameToAddr(name, &addr);
    if (status)
        return pyioc_epics_error(status, name);
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
    PYIOC_BEGIN_OBJECT((PyObject *)self);       /* as the _given member is set */
    Py_CLEAR(self->given);          /* the builder's fields are kept until loaded */
    PYIOC_END_OBJECT();
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
    if ((v & RF_CHECKED) && self->prec && pyioc_state.running) {
        /* checks switched on while the IOC runs: keep what a refusal puts
         * back before any put is checked */
        Py_BEGIN_ALLOW_THREADS
        dbScanLock(self->prec);
        pyioc_keep_value(self);
        self->flags = (int)v;
        dbScanUnlock(self->prec);
        Py_END_ALLOW_THREADS
    } else {
        self->flags = (int)v;
    }
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
    {"_initial_value", (PyCFunction)RecordCore_initial_value, METH_NOARGS, NULL},
    {"_complete", (PyCFunction)RecordCore_complete, METH_VARARGS, NULL},
    {"_post_alarm", (PyCFunction)RecordCore_post_alarm, METH_VARARGS, NULL},
    {"_bind", (PyCFunction)RecordCore_bind, METH_VARARGS, NULL},
    {NULL},
};

static PyMemberDef RecordCore_members[] = {
    {"name", T_OBJECT, offsetof(RecordCore, name), 0, NULL},
    {"_spare_name", T_OBJECT, offsetof(RecordCore, spare_name), 0, NULL},
    {"_given", T_OBJECT, offsetof(RecordCore, given), 0, NULL},
    {"_dtyp", T_OBJECT, offsetof(RecordCore, dtyp), 0, NULL},
    {NULL},
};

static PyGetSetDef RecordCore_getset[] = {
    {"_flags", (getter)RecordCore_get_flags, (setter)RecordCore_set_flags, NULL, NULL},
    {"_rtype", (getter)RecordCore_get_rtype, NULL, NULL, NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

PyTypeObject pyioc_RecordCoreType = {
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
    .tp_members = RecordCore_members,
    .tp_dictoffset = offsetof(RecordCore, dict),
};

/* Ready RecordCore (before the module adds it). */
int pyioc_record_type_ready(void)
{
    str_preinit_set = PyUnicode_InternFromString("_preinit_set");
    str_is_output = PyUnicode_InternFromString("is_output");
    str_python = PyUnicode_InternFromString("Python");
    if (!str_preinit_set || !str_is_output || !str_python || PyType_Ready(&pyioc_RecordCoreType) < 0)
        return -1;
    return 0;
}

/* record_types(): the closed type table (base.c), for the checks against it. */
PyObject *m_record_types(PyObject *mod, PyObject *unused)
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
