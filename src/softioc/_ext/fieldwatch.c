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
#include <dbAccess.h>
#include <dbChannel.h>
#include <epicsStdio.h>
#include <stdlib.h>

static PyObject *str_on_field_write;

/* softioc.pvlog: print every client put, "user@host REC.FIELD old -> new". */
volatile int pyioc_pvlog;

#define PVLOG_MAX 16                /* array elements shown */

typedef struct {
    long n;
    char text[PVLOG_MAX][MAX_STRING_SIZE];
} pvlog_value;

static pvlog_value *pvlog_read(struct dbChannel *chan)
{
    pvlog_value *v = calloc(1, sizeof *v);
    DBADDR *addr = &chan->addr;
    long i;
    if (!v)
        return NULL;
    v->n = addr->no_elements < PVLOG_MAX ? addr->no_elements : PVLOG_MAX;
    if (addr->field_type == DBF_FLOAT || addr->field_type == DBF_DOUBLE) {
        double d[PVLOG_MAX];
        if (dbGetField(addr, DBR_DOUBLE, d, NULL, &v->n, NULL))
            v->n = 0;
        for (i = 0; i < v->n; i++)
            epicsSnprintf(v->text[i], MAX_STRING_SIZE, "%.15g", d[i]);
    } else if (dbGetField(addr, DBR_STRING, v->text, NULL, &v->n, NULL)) {
        v->n = 0;
    }
    return v;
}

static void pvlog_print(const pvlog_value *v)
{
    long i;
    if (v && v->n == 1) {
        printf("%s", v->text[0]);
        return;
    }
    printf("[");
    for (i = 0; v && i < v->n; i++)
        printf(i ? ", %s" : "%s", v->text[i]);
    printf("]");
}

static void pvlog(asTrapWriteMessage *msg, struct dbChannel *chan, int after)
{
    pvlog_value *now = pvlog_read(chan);
    if (!after) {
        msg->userPvt = now;         /* the old value, printed after the put */
        return;
    }
    printf("%s@%s %s.%s ", msg->userid, msg->hostid, dbChannelRecord(chan)->name,
           dbChannelFldDes(chan)->name);
    pvlog_print(msg->userPvt);
    printf(" -> ");
    pvlog_print(now);
    printf("\n");
    fflush(stdout);
    free(msg->userPvt);
    msg->userPvt = NULL;
    free(now);
}

static void trap_listener(asTrapWriteMessage *msg, int after)
{
    struct dbChannel *chan = msg->serverSpecific;
    dbCommon *prec;
    RecordCore *rc;
    PyGILState_STATE gil;
    PyObject *res, *field;

    if (chan && pyioc_pvlog)
        pvlog(msg, chan, after);
    if (!after || !chan || pyioc_python_gone)
        return;
    prec = dbChannelRecord(chan);
    if (!pyioc_is_ours(prec))
        return;
    rc = (RecordCore *)prec->dpvt;
    if (!rc || !(rc->flags & RF_FIELD_WATCH))
        return;
    gil = PyGILState_Ensure();
    field = PyUnicode_FromString(dbChannelFldDes(chan)->name);
    res = field ? PyObject_CallMethodOneArg((PyObject *)rc, str_on_field_write, field) : NULL;
    if (!res)
        PyErr_WriteUnraisable((PyObject *)rc);
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
