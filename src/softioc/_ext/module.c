/* softioc._ext: the module's functions and its initialisation.  The code
 * is split by concern: record.c (RecordCore, the record handle), convert.c
 * (values between Python and EPICS), staticdb.c (the database before
 * iocInit), ioc.c (IOC calls), errors.c (EPICS statuses as
 * exceptions), stats.c (figures for softioc.health, softioc.iocstats and
 * softioc.metrics),
 * watch.c (the live view's record events), probe.c (`pythonioc probe`'s CA
 * client), and devsup.c, fieldwatch.c,
 * putlog.c, strict.c, writeq.c (EPICS calling in).
 */
#include "pythonioc.h"

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
    {"watch_start", pyioc_watch_start, METH_NOARGS,
     "watch_start() -> records: subscribe to every record's changes (watch.c)."},
    {"watch_take", pyioc_watch_take, METH_VARARGS,
     "watch_take(timeout) -> [index]: the records changed since the last call."},
    {"watch_wake", pyioc_watch_wake, METH_NOARGS, "End a waiting watch_take()."},
    {"watch_mark", pyioc_watch_mark, METH_VARARGS, "watch_mark(name): take record name again."},
    {"watch_row", pyioc_watch_row, METH_O,
     "watch_row(index) -> (name, rtype, value, units, severity, status, time)."},
    {"watch_stop", pyioc_watch_stop, METH_NOARGS, "Cancel the watcher's subscriptions."},
    {"write_queue", pyioc_write_queue, METH_VARARGS,
     "write_queue(fd): queue on_update writes, waking fd (writeq.c); -1 stops."},
    {"take_writes", pyioc_take_writes, METH_NOARGS,
     "take_writes() -> [(record, raw, busy)]: the queued writes, oldest first."},
    {"queued_writes", pyioc_queued_writes, METH_NOARGS,
     "queued_writes() -> writes waiting for the dispatcher."},
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
    {"server_stats", m_server_stats, METH_VARARGS,
     "server_stats(name) -> (clients, channels) of a server layer (rsrv, qsrv2), or None."},
    {"record_count", m_record_count, METH_NOARGS, "Records in the database, not aliases."},
    {"epics_version", m_epics_version, METH_NOARGS,
     "EPICS_VERSION_FULL of the C environment (set by the IOC shell), or None."},
    {"queue_stats", m_queue_stats, METH_NOARGS,
     "queue_stats() -> the scanOnce and callback queues' statistics, or None before iocInit."},
    {"suspended_threads", m_suspended_threads, METH_NOARGS,
     "suspended_threads() -> EPICS threads found suspended since the first call."},
    {"epics_env", m_epics_env, METH_NOARGS,
     "epics_env() -> [(name, value)] of EPICS's environment parameters (or defaults)."},
    {"records_by_type", m_records_by_type, METH_NOARGS,
     "records_by_type() -> [(record type, records)], aliases not counted."},
    {"put_counts", m_put_counts, METH_NOARGS,
     "put_counts() -> {protocol: (accepted, refused by validate, by strict puts)}."},
    {"ca_get", m_ca_get, METH_VARARGS,
     "ca_get(names, timeout) -> [(text, stamp, severity)]: read PVs once over CA (probe.c)."},
    {NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "softioc._ext", "pythonIOC's C layer.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__ext(void)
{
    PyObject *m;
    if (pyioc_errors_init() < 0 || pyioc_record_type_ready() < 0)
        return NULL;
    m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    Py_INCREF(&pyioc_RecordCoreType);
    if (PyModule_AddObject(m, "RecordCore", (PyObject *)&pyioc_RecordCoreType) < 0 ||
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
