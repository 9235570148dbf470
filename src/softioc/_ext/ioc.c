/* IOC calls: registration, iocInit, the IOC shell, field access by name
 * (as text or from raw buffers), access security's file, exit.
 *
 * Every call that takes an EPICS lock or may block inside EPICS releases
 * the GIL first.
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <stdlib.h>
#include <string.h>

#include <dbAccess.h>
#include <dbLock.h>
#include <errlog.h>
#include <errMdef.h>
#include <iocInit.h>
#include <iocsh.h>
#include <asDbLib.h>
#include <asLib.h>
#include <epicsExit.h>

#include <iocshRegisterCommon.h>

PyObject *m_register(PyObject *mod, PyObject *unused)
{
    const char *what = "registerAllRecordDeviceDrivers";
    long status;
    int failed = 0;
    /* one thread at a time: devsup.c's and fieldwatch.c's set-up are once */
    PYIOC_LOCK_WITH_GIL(pyioc_setup_mutex);
    /* (review fix) and the static database: registering sets its record
     * types' support and sizes, and the put check (patches.c) changes VAL's
     * field descriptors, while other threads may be building records.
     * Setup, then static, as everywhere. */
    PYIOC_LOCK_WITH_GIL(pyioc_static_mutex);
    iocshRegisterCommon();
    status = registerAllRecordDeviceDrivers(pdbbase);
    if (!status) {
        failed = pyioc_devsup_init() || pyioc_install_field_watch();
        what = "installing strict puts";
        if (!failed)
            status = pyioc_install_strict_puts(-1);
    }
    epicsMutexUnlock(pyioc_static_mutex);
    epicsMutexUnlock(pyioc_setup_mutex);
    if (failed)
        return NULL;
    if (status)
        return pyioc_epics_error(status, what);
    Py_RETURN_NONE;
}

/* strict_puts(enable=None) -> bool: switch strict puts, and with them every
 * patch of patches.c (strict.c; an error when they cannot come on). */
PyObject *m_strict_puts(PyObject *mod, PyObject *args)
{
    PyObject *enable = Py_None;
    int on = -1;
    long status;
    if (!PyArg_ParseTuple(args, "|O", &enable))
        return NULL;
    if (enable != Py_None && (on = PyObject_IsTrue(enable)) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS          /* it takes pyioc_setup_mutex */
    /* (review fix) held across both (recursive): the answer is this switch's,
     * not another thread's that came in between */
    epicsMutexMustLock(pyioc_setup_mutex);
    status = pyioc_install_strict_puts(on);
    if (!status)
        on = pyioc_strict_puts_enabled();
    epicsMutexUnlock(pyioc_setup_mutex);
    Py_END_ALLOW_THREADS
    if (status)
        return pyioc_epics_error(status, "strict puts");
    return PyBool_FromLong(on);
}

/* state() -> (running, python_gone, strict): base.c's pyioc_state. */
PyObject *m_state(PyObject *mod, PyObject *unused)
{
    return Py_BuildValue("(OOi)", pyioc_state.running ? Py_True : Py_False,
                         pyioc_state.python_gone ? Py_True : Py_False, pyioc_state.strict);
}

/* iocInit's switch (an iocsh variable of dbCore, not in its headers): when set
 * and EPICS threads have real-time priorities (as root), iocInit calls
 * mlockall(MCL_CURRENT | MCL_FUTURE). */
extern int dbThreadRealtimeLock;

/* ioc_init(memlock): iocInit, locking all memory only if memlock is true. */
PyObject *m_ioc_init(PyObject *mod, PyObject *args)
{
    int status, memlock = 0;
    if (!PyArg_ParseTuple(args, "|p", &memlock))
        return NULL;
    /* with the set-up lock: strict puts switched, or the put log started,
     * by another thread wait until the IOC runs (iocInit's hooks take the
     * lock again: qsrvguard.cpp's; it is recursive) */
    Py_BEGIN_ALLOW_THREADS
    epicsMutexMustLock(pyioc_setup_mutex);
    dbThreadRealtimeLock = memlock;
    status = iocInit();
    if (!status)
        pyioc_state.running = 1;
    epicsMutexUnlock(pyioc_setup_mutex);
    Py_END_ALLOW_THREADS
    if (status)
        return pyioc_epics_error(status, "iocInit");
    Py_RETURN_NONE;
}

PyObject *m_iocsh(PyObject *mod, PyObject *args)
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
PyObject *m_get_field(PyObject *mod, PyObject *args)
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
        return pyioc_epics_error(status, name);
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
PyObject *m_put_field(PyObject *mod, PyObject *args)
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
        return pyioc_epics_error(status, name);
    Py_RETURN_NONE;
}

PyObject *m_call_atexits(PyObject *mod, PyObject *args)
{
    int status = 0;
    if (!PyArg_ParseTuple(args, "|i", &status))
        return NULL;
    pyioc_state.python_gone = 1;
    Py_BEGIN_ALLOW_THREADS
    epicsExitCallAtExits();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* Access security configuration file, read by iocInit; check_client_ip sets
 * libCom's asCheckClientIP (rsrv then names CA clients by their IP address and
 * HAG host names are resolved when the ACF is loaded). */
PyObject *m_set_acf(PyObject *mod, PyObject *args)
{
    const char *path;
    int check_client_ip = 0;
    long status;
    if (!PyArg_ParseTuple(args, "s|p", &path, &check_client_ip))
        return NULL;
    PYIOC_LOCK_WITH_GIL(pyioc_setup_mutex);     /* asSetFilename frees the last name */
    asCheckClientIP = check_client_ip;
    status = asSetFilename(path);
    epicsMutexUnlock(pyioc_setup_mutex);
    if (status)
        return pyioc_epics_error(status, path);
    Py_RETURN_NONE;
}

/* The buffer of put_raw/get_raw at a raw address, after checking the
 * request: NULL with an exception set if it cannot be used. */
static void *raw_buffer(const char *name, short dbr_type, PyObject *address, long count)
{
    void *buf = PyLong_AsVoidPtr(address);
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
    return buf;
}

/* The arguments of put_raw and get_raw, and the buffer they name. */
typedef struct {
    const char *name;
    short dbr_type;
    long count;
    int process;
    void *buf;
} raw_request;

static int parse_raw(PyObject *args, int put, raw_request *r)
{
    PyObject *address;
    r->process = 0;
    if (put ? !PyArg_ParseTuple(args, "shOli", &r->name, &r->dbr_type, &address, &r->count,
                                &r->process)
            : !PyArg_ParseTuple(args, "shOl", &r->name, &r->dbr_type, &address, &r->count))
        return -1;
    r->buf = raw_buffer(r->name, r->dbr_type, address, r->count);
    return r->buf ? 0 : -1;
}

/* put_raw's put (record not locked): process -1: dbPutField, as a client
 * put; 1: dbPut and process (or ask a busy record to process again); 0:
 * dbPut only. */
static long raw_put(DBADDR *addr, raw_request *r)
{
    long status;
    if (r->process < 0)
        return dbPutField(addr, r->dbr_type, r->buf, r->count);
    dbScanLock(addr->precord);
    status = dbPut(addr, r->dbr_type, r->buf, r->count);
    if (!status && r->process) {
        if (addr->precord->pact)
            addr->precord->rpro = TRUE;
        else
            dbProcess(addr->precord);
    }
    dbScanUnlock(addr->precord);
    return status;
}

static PyObject *raw_access(PyObject *args, int put)
{
    raw_request r;
    long status;
    DBADDR addr;
    if (parse_raw(args, put, &r))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = dbNameToAddr(r.name, &addr);
    if (!status)
        status = put ? raw_put(&addr, &r)
                     : dbGetField(&addr, r.dbr_type, r.buf, NULL, &r.count, NULL);
    Py_END_ALLOW_THREADS
    if (status)
        return pyioc_epics_error(status, r.name);
    Py_RETURN_NONE;
}

/* put_raw(name, dbr_type, address, count, process): a put from a raw buffer
 * (pythonSoftIOC's softioc.imports.db_put_field*); the caller vouches for
 * the buffer.  get_raw(name, dbr_type, address, count): dbGetField into one. */
PyObject *m_put_raw(PyObject *mod, PyObject *args)
{
    return raw_access(args, 1);
}

PyObject *m_get_raw(PyObject *mod, PyObject *args)
{
    return raw_access(args, 0);
}
