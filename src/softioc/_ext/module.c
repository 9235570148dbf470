/* softioc._ext: the module's functions and its initialisation.
 *
 * The code is split by concern into floors: a file calls only files on
 * lower floors (tests/unit/test_c_floors.py checks it).
 *
 * 0. base.c (the C layer's state, the GIL from EPICS threads, the record
 *    types and where each keeps its value), errors.c (EPICS statuses as
 *    exceptions), stats.c (figures for health, iocstats and metrics);
 * 1. convert.c (values between Python and EPICS), patches.c (every change
 *    made to EPICS itself);
 * 2. writeq.c (client writes queued for the dispatcher), putlog.c (who
 *    wrote what);
 * 3. EPICS calling in: devsup.c (device support), strict.c (strict puts'
 *    checks), fieldwatch.c (client writes of any field);
 * 4. Python calling in: record.c (RecordCore, the record handle), staticdb.c
 *    (the database before iocInit), ioc.c (IOC calls), watch.c (the live
 *    view's record events), probe.c (`pythonioc probe`'s CA client);
 * 5. this file.
 */
#include "pythonioc.h"

#include <stdlib.h>

#include <epicsAtomic.h>
#include <freeList.h>

/* EPICS's free lists (libCom freeList.h) guard each list with one epicsMutex,
 * a priority-inheriting mutex on POSIX.  Every monitor update takes an item of
 * one list (a db_field_log, in db_post_events, by the thread that sets the
 * record) and gives it back (in CAS-event, once sent): with many monitors and
 * both threads real-time (as root), the two collide on that lock so often that
 * each collision's hand-over in the kernel (futex_lock_pi/futex_unlock_pi)
 * feeds the next, and both threads spin there: in bench S10 at 100 records x
 * 100 Hz x 50 monitors, 190,000 such calls a second in each thread, 1.3-1.9
 * cores instead of 0.25.  EPICS's own switch, freeListBypass
 * ($EPICS_FREELIST_BYPASS), makes each list plain malloc()/free(), which do
 * not hand a lock over.  Set here, before iocInit makes the lists, unless
 * $EPICS_FREELIST_BYPASS says otherwise (NO: EPICS's lists as they are). */
static void bypass_free_lists(void)
{
    if (!getenv("EPICS_FREELIST_BYPASS"))
        epicsAtomicSetIntT(&freeListBypass, 1);
}

/* The module's functions, by the file that defines each as m_<name>:
 * X(name, calling convention).  Their documentation is in _ext.pyi. */
#define METHODS(X) \
    /* record.c */ X(record_types, NOARGS) \
    /* staticdb.c */ X(load_database, VARARGS) X(load_records, VARARGS) \
        X(record_exists, VARARGS) X(field_names, VARARGS) X(create_record, VARARGS) X(delete_record, VARARGS) \
        X(put_static, VARARGS) X(create_alias, VARARGS) \
    /* ioc.c */ X(register, NOARGS) X(strict_puts, VARARGS) X(state, NOARGS) \
        X(ioc_init, VARARGS) X(iocsh, VARARGS) X(get_field, VARARGS) X(put_field, VARARGS) \
        X(call_atexits, VARARGS) X(set_acf, VARARGS) X(put_raw, VARARGS) X(get_raw, VARARGS) \
    /* patches.c */ X(patches, NOARGS) \
    /* writeq.c */ X(wake, O) X(write_queue, VARARGS) X(take_writes, NOARGS) \
        X(queued_writes, NOARGS) \
    /* putlog.c */ X(putlog_start, VARARGS) X(putlog_take, VARARGS) X(putlog_wake, NOARGS) \
    /* stats.c */ X(server_stats, VARARGS) X(record_count, NOARGS) X(epics_version, NOARGS) \
        X(queue_stats, NOARGS) X(suspended_threads, NOARGS) X(epics_env, NOARGS) \
        X(records_by_type, NOARGS) X(put_counts, NOARGS) \
    /* watch.c */ X(watch_start, NOARGS) X(watch_take, VARARGS) X(watch_wake, NOARGS) \
        X(watch_mark, VARARGS) X(watch_row, O) X(watch_stop, NOARGS) \
    /* probe.c */ X(ca_get, VARARGS)

#define DECLARE(name, conv) PyObject *m_##name(PyObject *, PyObject *);
METHODS(DECLARE)

#define ENTRY(name, conv) {#name, m_##name, METH_##conv, NULL},
static PyMethodDef module_methods[] = {
    METHODS(ENTRY)
    {NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "softioc._ext", "pythonIOC's C layer.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__ext(void)
{
    PyObject *m;
    bypass_free_lists();
    pyioc_locks_init();
    if (pyioc_errors_init() < 0 || pyioc_record_type_ready() < 0)
        return NULL;
    m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
#ifdef Py_GIL_DISABLED
    /* Free-threaded CPython: every structure the C layer shares has a lock
     * of its own (pythonioc.h), so the GIL stays off. */
    if (PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    Py_INCREF(&pyioc_RecordCoreType);
#define ADD_FLAG(flag) PyModule_AddIntConstant(m, #flag, flag) < 0 ||
    if (PyModule_AddObject(m, "RecordCore", (PyObject *)&pyioc_RecordCoreType) < 0 ||
            PYIOC_RECORD_FLAGS(ADD_FLAG) 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
