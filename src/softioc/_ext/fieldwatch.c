#define USE_TYPED_RSET
/* Tell Python when a client writes any field of a watched record.
 *
 * Channel Access (rsrv) and PV Access (QSRV2) both report every client put
 * to access security's write-trap listeners, before and after the write,
 * for records whose access security rule has TRAPWRITE (pythonIOC's default
 * ACF grants it everywhere).  After the write, no record lock is held, so
 * calling Python here follows the lock order.
 */
#include "pythonioc.h"

#include <asLib.h>
#include <asTrapWrite.h>
#include <dbBase.h>
#include <dbChannel.h>

static PyObject *str_on_field_write;

static void trap_listener(asTrapWriteMessage *msg, int after)
{
    struct dbChannel *chan = msg->serverSpecific;
    dbCommon *prec;
    RecordCore *rc;
    PyGILState_STATE gil;
    PyObject *res, *field;

    if (!after || !chan || pyioc_state.python_gone)
        return;
    prec = dbChannelRecord(chan);
    if (!pyioc_is_ours(prec))
        return;
    rc = (RecordCore *)prec->dpvt;
    if (!rc || !(rc->flags & RF_FIELD_WATCH))
        return;
    gil = pyioc_gil_ensure();
    field = PyUnicode_FromString(dbChannelFldDes(chan)->name);
    res = field ? PyObject_CallMethodOneArg((PyObject *)rc, str_on_field_write, field) : NULL;
    if (!res)
        pyioc_log_exception("watching a field write", rc);
    Py_XDECREF(res);
    Py_XDECREF(field);
    PyGILState_Release(gil);
}

long pyioc_install_field_watch(void)
{
    static int done;
    if (done)
        return 0;
    str_on_field_write = PyUnicode_InternFromString("_on_field_write");
    if (!str_on_field_write)
        return -1;
    asTrapWriteRegisterListener(trap_listener);
    done = 1;
    return 0;
}
