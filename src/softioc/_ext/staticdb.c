/* The static database: loading .dbd/.db files and building records before
 * iocInit (checked by EPICS itself: dbVerify, dbPutString), aliases.
 *
 * EPICS's static database has no lock of its own (one thread builds it):
 * every call here holds pyioc_static_mutex while it reads or changes it,
 * so Python threads may call them at once (pythonioc.h).
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <string.h>

#include <dbAccess.h>
#include <dbStaticLib.h>

PyObject *m_load_database(PyObject *mod, PyObject *args)
{
    const char *file, *path = NULL, *subs = NULL;
    long status;
    if (!PyArg_ParseTuple(args, "s|zz", &file, &path, &subs))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    epicsMutexMustLock(pyioc_static_mutex);
    status = dbLoadDatabase(file, path, subs);
    epicsMutexUnlock(pyioc_static_mutex);
    Py_END_ALLOW_THREADS
    if (status)
        return pyioc_epics_error(status, file);
    Py_RETURN_NONE;
}

PyObject *m_load_records(PyObject *mod, PyObject *args)
{
    const char *file, *subs = NULL;
    long status;
    if (!PyArg_ParseTuple(args, "s|z", &file, &subs))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    epicsMutexMustLock(pyioc_static_mutex);
    status = dbLoadRecords(file, subs);
    epicsMutexUnlock(pyioc_static_mutex);
    Py_END_ALLOW_THREADS
    if (status)
        return pyioc_raise_status(PYIOC_ERR_VALUE, status, "EPICS could not load records "
                                  "from %s (see the messages above)", file);
    Py_RETURN_NONE;
}

PyObject *m_record_exists(PyObject *mod, PyObject *args)
{
    const char *name;
    DBENTRY entry;
    long status;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    if (!pdbbase)
        Py_RETURN_FALSE;
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecord(&entry, name);
    dbFinishEntry(&entry);
    epicsMutexUnlock(pyioc_static_mutex);
    return PyBool_FromLong(status == 0);
}

/* ---- building records in the static database (before iocInit) ---------- */

/* Set one field of the record at entry to text, checked by EPICS: by
 * dbVerify unless the text is one of the builder's own defaults (dbPutString
 * alone would take an out-of-range number or menu index without a word). */
/* Raise RuntimeError(message) if the IOC runs: the static database is
 * changed only before iocInit. */
static int too_late(const char *message)
{
    if (pyioc_state.running)
        PyErr_SetString(PyExc_RuntimeError, message);
    return pyioc_state.running;
}

static int put_checked(DBENTRY *entry, const char *rtype, const char *name,
                       const char *field, const char *text, int verify)
{
    char *problem;
    long status;
    if (dbFindField(entry, field)) {
        PyErr_Format(PyExc_TypeError, "%s: %s records have no field %s", name, rtype, field);
        return -1;
    }
    problem = verify ? dbVerify(entry, text) : NULL;
    if (problem) {
        PyErr_Format(PyExc_ValueError, "%s: cannot set %s to \"%s\": %s", name, field,
                     text, problem);
        return -1;
    }
    status = dbPutString(entry, text);
    if (status) {
        pyioc_raise_status(PYIOC_ERR_VALUE, status, "%s: cannot set %s to \"%s\": %s",
                           name, field, text, "refused by EPICS");
        return -1;
    }
    return 0;
}

/* A field's value as .db text: str as it is, int and float as str() gives
 * them, anything else by text_of(value); NULL with an exception. */
static PyObject *field_text(PyObject *value, PyObject *text_of)
{
    if (PyUnicode_CheckExact(value)) {
        Py_INCREF(value);
        return value;
    }
    if (PyLong_CheckExact(value) || PyFloat_CheckExact(value))
        return PyObject_Str(value);
    value = PyObject_CallOneArg(text_of, value);
    if (value && !PyUnicode_Check(value)) {
        Py_DECREF(value);
        PyErr_SetString(PyExc_TypeError, "a field's text must be a str");
        return NULL;
    }
    return value;
}

/* The UTF-8 text of a str, NULL with ValueError if it holds a NUL (EPICS
 * would keep only what comes before it). */
static const char *c_text(PyObject *str)
{
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(str, &size);
    if (text && strlen(text) != (size_t)size) {
        PyErr_SetString(PyExc_ValueError, "embedded null character");
        return NULL;
    }
    return text;
}

/* put_checked() of field (a str) to value made text by field_text(). */
static int put_value(DBENTRY *entry, const char *rtype, const char *name, PyObject *key,
                     PyObject *value, PyObject *text_of, int verify)
{
    const char *field = c_text(key), *text;
    PyObject *str;
    int failed;
    if (!field)
        return -1;
    str = field_text(value, text_of);
    if (!str)
        return -1;
    text = c_text(str);
    failed = !text || put_checked(entry, rtype, name, field, text, verify);
    Py_DECREF(str);
    return failed ? -1 : 0;
}

static PyObject *create_record(const char *rtype, const char *name, const char *dtyp,
                               PyObject *fields, PyObject *defaults, PyObject *text_of,
                               int take_over);

/* create_record(rtype, name, dtyp, {field: value}, ((field, value), ...), text_of,
 *               take_over=False)
 * DTYP first, then the fields in order (None: left at its default), then the
 * defaults for fields not given (the builder's own: not dbVerify'd), each value
 * made text as field_text() says.  Fields are checked by EPICS itself
 * (dbVerify/dbPutString); on any error the record is deleted again and
 * nothing is left behind.  A name already in the database (record or alias)
 * is refused, unless take_over is true and it is a record of the same type
 * (loaded from a .db file): then the fields are set on that record, as a
 * second definition in a .db file would set them. */
PyObject *m_create_record(PyObject *mod, PyObject *args)
{
    const char *rtype, *name, *dtyp;
    PyObject *given, *fields, *defaults, *text_of, *result;
    int take_over = 0;

    if (!PyArg_ParseTuple(args, "sssO!O!O|p", &rtype, &name, &dtyp, &PyDict_Type, &given,
                          &PyTuple_Type, &defaults, &text_of, &take_over))
        return NULL;
    if (too_late("records are created before iocInit()"))
        return NULL;
    /* a copy of our own, so that its items stay while text_of runs */
    fields = PyDict_Copy(given);
    if (!fields)
        return NULL;
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    result = create_record(rtype, name, dtyp, fields, defaults, text_of, take_over);
    epicsMutexUnlock(pyioc_static_mutex);
    Py_DECREF(fields);
    return result;
}

static PyObject *create_record(const char *rtype, const char *name, const char *dtyp,
                               PyObject *fields, PyObject *defaults, PyObject *text_of,
                               int take_over)
{
    PyObject *key, *value;
    DBENTRY entry;
    long status;
    Py_ssize_t pos = 0, i;
    int taken = 0;

    dbInitEntry(pdbbase, &entry);
    status = dbFindRecordType(&entry, rtype);
    if (status) {
        pyioc_raise_status(PYIOC_ERR_VALUE, status, "no record type %s", rtype);
        goto fail;
    }
    status = dbCreateRecord(&entry, name);
    if (status == S_dbLib_recExists && take_over) {
        const char *had;
        dbFindRecord(&entry, name);
        had = dbGetRecordTypeName(&entry);
        if (dbIsAlias(&entry) || strcmp(had, rtype) != 0) {
            pyioc_raise_status(PYIOC_ERR_VALUE, status, dbIsAlias(&entry)
                ? "record '%s' already exists (an alias)"
                : "record '%s' already exists, of type %s: a builder %s record cannot take it over",
                name, had, rtype);
            goto fail;
        }
        taken = 1;
        status = 0;
    }
    if (status) {
        pyioc_raise_status(PYIOC_ERR_VALUE, status, status == S_dbLib_recExists ?
                           "record '%s' already exists" : "cannot create record %s", name);
        goto fail;
    }
    if (put_checked(&entry, rtype, name, "DTYP", dtyp, 1))
        goto undo;
    while (PyDict_Next(fields, &pos, &key, &value)) {
        if (value != Py_None && put_value(&entry, rtype, name, key, value, text_of, 1))
            goto undo;
    }
    for (i = 0; i < PyTuple_GET_SIZE(defaults); i++) {
        PyObject *pair = PyTuple_GET_ITEM(defaults, i);
        int given;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "defaults must be (field, value) pairs");
            goto undo;
        }
        key = PyTuple_GET_ITEM(pair, 0);
        given = PyDict_Contains(fields, key);
        if (given < 0 || (!given && put_value(&entry, rtype, name, key,
                                               PyTuple_GET_ITEM(pair, 1), text_of, 0)))
            goto undo;
    }
    dbFinishEntry(&entry);
    Py_RETURN_NONE;
undo:
    if (!taken) {       /* a record of the .db file keeps what was set: the caller is told */
        dbFindRecord(&entry, name);
        dbDeleteRecord(&entry);
    }
fail:
    dbFinishEntry(&entry);
    return NULL;
}

/* delete_record(name): undo create_record before iocInit. */
PyObject *m_delete_record(PyObject *mod, PyObject *args)
{
    const char *name;
    DBENTRY entry;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    if (too_late("records cannot be deleted after iocInit()"))
        return NULL;
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    dbInitEntry(pdbbase, &entry);
    if (!dbFindRecord(&entry, name)) {
        if (entry.precnode->precord && ((dbCommon *)entry.precnode->precord)->dpvt) {
            dbFinishEntry(&entry);      /* a record object points at it */
            epicsMutexUnlock(pyioc_static_mutex);
            PyErr_Format(PyExc_RuntimeError, "record %s is bound and cannot be deleted", name);
            return NULL;
        }
        dbDeleteRecord(&entry);
    }
    dbFinishEntry(&entry);
    epicsMutexUnlock(pyioc_static_mutex);
    Py_RETURN_NONE;
}

/* put_static(name, field, text) / put_info(name, info, text): before iocInit. */
PyObject *m_put_static(PyObject *mod, PyObject *args)
{
    const char *name, *field, *text;
    DBENTRY entry;
    char *problem = NULL;
    long status;
    int info;
    if (!PyArg_ParseTuple(args, "sssp", &name, &field, &text, &info))
        return NULL;
    if (too_late("use put_field() once the IOC runs"))
        return NULL;
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecord(&entry, name);
    if (status) {
        dbFinishEntry(&entry);
        epicsMutexUnlock(pyioc_static_mutex);
        return pyioc_raise_status(PYIOC_ERR_VALUE, status, "no record %s", name);
    }
    if (info) {
        status = dbPutInfo(&entry, field, text);
    } else if (dbFindField(&entry, field)) {
        dbFinishEntry(&entry);
        epicsMutexUnlock(pyioc_static_mutex);
        PyErr_Format(PyExc_TypeError, "%s has no field %s", name, field);
        return NULL;
    } else {
        problem = dbVerify(&entry, text);
        status = problem ? 0 : dbPutString(&entry, text);
    }
    /* problem lives in entry until dbFinishEntry */
    if (problem)
        PyErr_Format(PyExc_ValueError, "%s: cannot set %s to \"%s\": %s", name, field, text,
                     problem);
    else if (status)
        pyioc_raise_status(PYIOC_ERR_VALUE, status, "%s: cannot set %s to \"%s\": %s", name,
                           field, text, "refused by EPICS");
    dbFinishEntry(&entry);
    epicsMutexUnlock(pyioc_static_mutex);
    if (problem || status)
        return NULL;
    Py_RETURN_NONE;
}

/* alias(record, alias): another name for a record, before or after iocInit.
 * The PV name table is locked by Base; the alias is live for CA and PVA at once. */
PyObject *m_create_alias(PyObject *mod, PyObject *args)
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
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecord(&entry, name);
    if (!status)
        status = dbCreateAlias(&entry, alias);
    dbFinishEntry(&entry);
    epicsMutexUnlock(pyioc_static_mutex);
    if (status == S_dbLib_recExists)
        return pyioc_raise_status(PYIOC_ERR_VALUE, status, "%s already exists", alias);
    if (status)
        return pyioc_epics_error(status, alias);
    Py_RETURN_NONE;
}

/* field_names(rtype) -> (field, ...): every field of a record type, in the
 * dbd's order (None for an unknown type).  Readable after iocInit, when
 * EPICS no longer reads a dbd a second time for epicsdbbuilder. */
PyObject *m_field_names(PyObject *mod, PyObject *args)
{
    const char *rtype;
    DBENTRY entry;
    long status;
    PyObject *names, *name, *tuple;
    if (!PyArg_ParseTuple(args, "s", &rtype))
        return NULL;
    if (!pdbbase)
        Py_RETURN_NONE;
    names = PyList_New(0);
    if (!names)
        return NULL;
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    dbInitEntry(pdbbase, &entry);
    if (dbFindRecordType(&entry, rtype)) {
        Py_CLEAR(names);
    } else {
        for (status = dbFirstField(&entry, 0); !status; status = dbNextField(&entry, 0)) {
            name = PyUnicode_FromString(dbGetFieldName(&entry));
            if (!name || PyList_Append(names, name) < 0) {
                Py_XDECREF(name);
                Py_CLEAR(names);
                break;
            }
            Py_DECREF(name);
        }
    }
    dbFinishEntry(&entry);
    epicsMutexUnlock(pyioc_static_mutex);
    if (!names) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    tuple = PyList_AsTuple(names);
    Py_DECREF(names);
    return tuple;
}
