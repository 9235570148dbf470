/* EPICS statuses as the exceptions of softioc.errors, with the status text. */
#include "pythonioc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <dbAccessDefs.h>
#include <dbStaticLib.h>
#include <errlog.h>
#include <errMdef.h>

static PyObject *classes[4];    /* PYIOC_ERR_RUNTIME, _VALUE, _NOT_FOUND, _EXISTS */

int pyioc_errors_init(void)
{
    static const char *const names[] = {
        "EpicsRuntimeError", "EpicsValueError", "RecordNotFoundError", "RecordExistsError"};
    PyObject *mod = PyImport_ImportModule("softioc.errors");
    size_t i;
    if (!mod)
        return -1;
    for (i = 0; i < 4; i++) {
        Py_XSETREF(classes[i], PyObject_GetAttrString(mod, names[i]));
        if (!classes[i]) {
            Py_DECREF(mod);
            return -1;
        }
    }
    Py_DECREF(mod);
    return 0;
}

/* The texts of dbAccessDefs.h and dbStaticLib.h, for a Base whose status
 * table was not generated (errSymLookup then gives only "Error (M,N)"). */
static const struct { long status; const char *text; } known[] = {
    {S_db_notFound, "Process Variable Not Found"},
    {S_db_badDbrtype, "Illegal Database Request Type"},
    {S_db_noMod, "Attempt to modify noMod field"},
    {S_db_precision, "get precision failed"},
    {S_db_onlyOne, "Only one element allowed"},
    {S_db_badChoice, "Illegal choice"},
    {S_db_badField, "Illegal field value"},
    {S_db_noSupport, "RSET or DSXT routine not defined"},
    {S_db_Blocked, "Request is Blocked"},
    {S_db_putDisabled, "putFields are disabled"},
    {S_db_errArg, "Error in argument"},
    {S_db_noMemory, "unable to allocate data structure from pool"},
    {S_db_notInit, "Not initialized"},
    {S_dbLib_recordTypeNotFound, "Record Type does not exist"},
    {S_dbLib_recExists, "Record Already exists"},
    {S_dbLib_recNotFound, "Record Not Found"},
    {S_dbLib_fieldNotFound, "Field Not Found"},
    {S_dbLib_badField, "Bad Field value"},
    {S_dbLib_menuNotFound, "Menu not found"},
    {S_dbLib_badLink, "Bad Link Field"},
    {S_dbLib_nameLength, "Record Name is too long"},
    {S_dbLib_strLen, "String is too long"},
    {S_dbLib_outMem, "Out of memory"},
    {S_dbLib_infoNotFound, "Info item Not Found"},
};

/* EPICS's text for a status. */
static void status_text(long status, char *buf, size_t size)
{
    size_t i;
    errSymLookup(status, buf, size);
    if (strncmp(buf, "Error (", 7) != 0)
        return;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].status == status) {
            snprintf(buf, size, "%s", known[i].text);
            return;
        }
}

static int not_found(long status)
{
    return status == S_db_notFound || status == S_dbLib_recNotFound ||
        status == S_dbLib_fieldNotFound;
}

PyObject *pyioc_raise_status(int kind, long status, const char *fmt, ...)
{
    char text[256] = "";
    PyObject *msg, *exc, *cls;
    va_list ap;
    if (kind == PYIOC_ERR_RUNTIME && not_found(status))
        kind = PYIOC_ERR_NOT_FOUND;
    else if (kind == PYIOC_ERR_VALUE && status == S_dbLib_recExists)
        kind = PYIOC_ERR_EXISTS;
    cls = classes[kind];
    if (status)
        status_text(status, text, sizeof text);
    va_start(ap, fmt);
    msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (!msg)
        return NULL;
    exc = PyObject_CallFunction(cls, "Ols", msg, status, text);
    Py_DECREF(msg);
    if (exc) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *pyioc_epics_error(long status, const char *what)
{
    char text[256];
    status_text(status, text, sizeof text);
    return pyioc_raise_status(PYIOC_ERR_RUNTIME, status, "%s: %s (EPICS status %ld)",
                              what, text, status);
}
