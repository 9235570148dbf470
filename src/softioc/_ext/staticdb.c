/* The static database: loading .dbd/.db files and building records before
 * iocInit (checked by EPICS itself: dbVerify, dbPutString), aliases.
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <dbAccess.h>
#include <dbStaticLib.h>

PyObject *m_load_database(PyObject *mod, PyObject *args)
{
    const char *file, *path = NULL, *subs = NULL;
    long status;
    if (!PyArg_ParseTuple(args, "s|zz", &file, &path, &subs))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = dbLoadDatabase(file, path, subs);
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
    status = dbLoadRecords(file, subs);
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
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecord(&entry, name);
    dbFinishEntry(&entry);
    return PyBool_FromLong(status == 0);
}

/* ---- building records in the static database (before iocInit) ---------- */

/* create_record(rtype, name, [(field, text), ...], info_json_or_None)
 * Fields are checked by EPICS itself (dbVerify/dbPutString); on any error
 * the record is deleted again and nothing is left behind. */
PyObject *m_create_record(PyObject *mod, PyObject *args)
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
        pyioc_raise_status(PYIOC_ERR_VALUE, status, "no record type %s", rtype);
        goto fail;
    }
    status = dbCreateRecord(&entry, name);
    if (status) {
        pyioc_raise_status(PYIOC_ERR_VALUE, status, status == S_dbLib_recExists ?
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
        if (problem) {
            PyErr_Format(PyExc_ValueError, "%s: cannot set %s to \"%s\": %s", name, field,
                         text, problem);
            goto undo;
        }
        status = dbPutString(&entry, text);
        if (status) {
            pyioc_raise_status(PYIOC_ERR_VALUE, status, "%s: cannot set %s to \"%s\": %s",
                               name, field, text, "refused by EPICS");
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
PyObject *m_delete_record(PyObject *mod, PyObject *args)
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
PyObject *m_put_static(PyObject *mod, PyObject *args)
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
        return pyioc_raise_status(PYIOC_ERR_VALUE, status, "no record %s", name);
    }
    if (info) {
        status = dbPutInfo(&entry, field, text);
    } else if (dbFindField(&entry, field)) {
        dbFinishEntry(&entry);
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
    dbInitEntry(pdbbase, &entry);
    status = dbFindRecord(&entry, name);
    if (!status)
        status = dbCreateAlias(&entry, alias);
    dbFinishEntry(&entry);
    if (status == S_dbLib_recExists)
        return pyioc_raise_status(PYIOC_ERR_VALUE, status, "%s already exists", alias);
    if (status)
        return pyioc_epics_error(status, alias);
    Py_RETURN_NONE;
}
