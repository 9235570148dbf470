/* EPICS side of pythonIOC: device support for every builder record type
 * (the dsets are made from the generated table, pyioc_rtypes.h).
 *
 * Device support never queues: set() writes the value into the record under
 * its lock and processes it in the caller's thread (record.c), so read
 * routines only apply the alarm and time that set() left.  Write routines
 * check a client's put (validate, and strict puts' long-string rule) and
 * hand the new value to Python (owner._on_write), which may start an
 * asynchronous completion (PACT) for blocking records.
 *
 * With strict puts (the default) a client's put is checked as soon as
 * dbPut has stored it (patches.c's "put-check" calls check_stored_put());
 * without them, where record support hands it to device support, as
 * pythonSoftIOC does (the value is in VAL after any DRVL/DRVH clamping).
 * Either way a refusal puts back the last value accepted (kept by base.c)
 * and fails the processing, and a put-callback's completion, so CA and PVA
 * clients are told.
 */
#define USE_TYPED_RSET
#define USE_TYPED_DSET

#include "pythonioc.h"

#include <string.h>

#include <alarm.h>
#include <dbAccess.h>
#include <dbNotify.h>
#include <devSup.h>
#include <errSymTbl.h>
#include <recGbl.h>
#include <cantProceed.h>
#include <epicsExport.h>

#include "pyioc_rtypes.h"

static RecordCore *core_of(dbCommon *prec)
{
    return (RecordCore *)prec->dpvt;
}

/* Alarm and timestamp left by set(); the record is locked. */
void pyioc_apply_pending(RecordCore *rc, dbCommon *prec)
{
    if (rc->p_sevr)
        recGblSetSevr(prec, rc->p_stat, rc->p_sevr);
    if (prec->tse == epicsTimeEventDeviceTime) {
        if (rc->p_has_time)
            prec->time = rc->p_time;
        else
            epicsTimeGetCurrent(&prec->time);
    }
    rc->p_sevr = rc->p_stat = 0;
    rc->p_has_time = 0;
}

/* ---- init_record: apply the initial value given to the builder ---------- */

static long init_common(dbCommon *prec)
{
    RecordCore *rc = core_of(prec);
    const type_info *ti;
    if (!rc) {
        recGblRecordError(S_dev_noDeviceFound, prec,
            "pythonIOC: record has DTYP Python but was not made by the builder");
        return S_dev_noDeviceFound;
    }
    ti = rc->ti;
    if (rc->init_set) {
        switch (ti->kind) {
        case KIND_LSTRING: {
            epicsUInt16 sizv = *FIELD(prec, ti->nelm, epicsUInt16);
            char *val = *FIELD(prec, ti->val, char *);
            size_t n = rc->init_len < sizv ? rc->init_len : (size_t)sizv - 1;
            memcpy(val, rc->init_buf, n);
            val[n] = 0;
            *FIELD(prec, ti->nord, epicsUInt32) = (epicsUInt32)n + 1;
            break;
        }
        case KIND_ARRAY: {
            epicsUInt32 nelm = *FIELD(prec, ti->nelm, epicsUInt32);
            void *bptr = *FIELD(prec, ti->val, void *);
            epicsUInt32 n = rc->init_nord < nelm ? rc->init_nord : nelm;
            size_t esize = dbValueSize(*FIELD(prec, ti->ftvl, epicsEnum16));
            if (esize && n > rc->init_len / esize)      /* never read past what was given */
                n = (epicsUInt32)(rc->init_len / esize);
            memcpy(bptr, rc->init_buf, n * esize);
            *FIELD(prec, ti->nord, epicsUInt32) = n;
            break;
        }
        default:
            memcpy(FIELD(prec, ti->val, char), rc->init_buf, rc->init_len);
        }
        prec->udf = FALSE;
    }
    if (rc->init_set || rc->p_sevr) {
        /* A value (and any alarm) given at creation is served from the
         * start, stamped with the start time, without waiting for a set(). */
        prec->sevr = rc->p_sevr;
        prec->stat = rc->p_stat;
        prec->nsev = prec->nsta = 0;
        /* An input keeps it pending for its PINI processing; an output's
         * first write must not re-raise it. */
        if (rc->ti->is_output)
            rc->p_sevr = rc->p_stat = 0;
    }
    if (prec->tse == epicsTimeEventDeviceTime)
        epicsTimeGetCurrent(&prec->time);
    if (rc->flags & RF_CHECKED)
        pyioc_keep_value(rc);       /* what a refused put puts back */
    return 0;
}

static long init_noconvert(dbCommon *prec)
{
    long status = init_common(prec);
    return status ? status : 2;
}

static long init_array(dbCommon *prec)
{
    /* aai/aao call us in pass 0, before any buffer exists, and let device
     * support provide it: allocate it here so the initial value fits. */
    RecordCore *rc = core_of(prec);
    const type_info *ti = rc ? rc->ti : NULL;
    if (ti && !*FIELD(prec, ti->val, void *)) {
        epicsUInt32 nelm = *FIELD(prec, ti->nelm, epicsUInt32);
        *FIELD(prec, ti->val, void *) = callocMustSucceed(
            nelm ? nelm : 1, dbValueSize(*FIELD(prec, ti->ftvl, epicsEnum16)),
            "pythonIOC: array buffer");
    }
    return init_common(prec);
}

/* ---- input records: the value is already in VAL ------------------------- */

static long read_keep(dbCommon *prec)
{
    RecordCore *rc = core_of(prec);
    if (rc)
        pyioc_apply_pending(rc, prec);
    return 0;
}

static long read_noconvert(dbCommon *prec)
{
    read_keep(prec);
    return 2;
}

/* ---- output records: check a client's put, tell Python -------------------- */

static PyObject *str_on_write, *str_validate_put;

static int validate_with_python(RecordCore *rc)
{
    PyGILState_STATE gil;
    PyObject *value, *res;
    int ok;
    if (pyioc_state.python_gone)
        return 0;                   /* nobody left to approve it */
    gil = pyioc_gil_ensure();
    value = pyioc_value_to_python(rc);
    res = value ? PyObject_CallMethodOneArg((PyObject *)rc, str_validate_put, value) : NULL;
    ok = res ? PyObject_IsTrue(res) == 1 : 0;
    if (!res)
        pyioc_log_exception("validating a client's put", rc);
    Py_XDECREF(res);
    Py_XDECREF(value);
    PyGILState_Release(gil);
    return ok;
}

/* A long string put that filled the whole buffer without its NUL was cut
 * by dbPut (QSRV2 sends the text with its NUL, whatever NELM is). */
static int text_cut(RecordCore *rc)
{
    epicsUInt32 nord = 0;
    size_t n = pyioc_value_bytes(rc, &nord);
    return nord >= *FIELD(rc->prec, rc->ti->nelm, epicsUInt32) &&
        !memchr(pyioc_value_ptr(rc), 0, n);
}

/* 0, or why the put now in VAL is refused (record locked). */
static long check_put(RecordCore *rc)
{
    if ((rc->flags & RF_LSTRING) && pyioc_state.strict > 0 && text_cut(rc))
        return S_pyioc_toolong;
    if ((rc->flags & RF_VALIDATE) && ((rc->flags & RF_ALWAYS) || pyioc_value_changed(rc)) &&
            !validate_with_python(rc))
        return S_pyioc_rejected;
    return 0;
}

/* Check the put now in VAL (record locked): accepted, keep it; refused,
 * put the last accepted value back, count and log the refusal, and return
 * why. */
static long settle_put(RecordCore *rc, dbCommon *prec)
{
    long status = check_put(rc);
    if (!status) {
        pyioc_keep_value(rc);
        return 0;
    }
    pyioc_restore_value(rc);
    pyioc_putlog_refused(prec);
    pyioc_count_refused(prec, status == S_pyioc_toolong ?
                        PYIOC_REFUSED_STRICT : PYIOC_REFUSED_VALIDATE);
    return status;
}

/* patches.c's put-check, in the thread of the put, just after dbPut stored
 * it: a refusal fails the processing that follows (write_common). */
static long check_stored_put(dbCommon *prec)
{
    RecordCore *rc = core_of(prec);
    return rc ? (rc->refused = settle_put(rc, prec)) : 0;
}

/* Is patches.c's put-check checking each put as it is stored? */
static int put_check_acts(void)
{
    return pyioc_state.strict > 0 && (pyioc_state.patches & (1u << PYIOC_PATCH_PUT_CHECK));
}

static long write_common(dbCommon *prec)
{
    RecordCore *rc = core_of(prec);
    PyGILState_STATE gil;
    PyObject *value, *res;
    int started = 0;
    long refused;

    if (!rc)
        return S_dev_noDeviceFound;
    pyioc_apply_pending(rc, prec);
    if (prec->pact)
        return 0;                   /* second pass after async completion */
    /* refused as it was stored (put-check), or, with strict puts off,
     * checked now, as pythonSoftIOC does: a refusal fails the processing */
    refused = rc->refused;
    rc->refused = 0;
    if (!refused && !rc->setting && (rc->flags & RF_CHECKED) && !put_check_acts())
        refused = settle_put(rc, prec);
    if (refused) {
        if (prec->ppn)
            prec->ppn->status = notifyError;
        return refused;
    }
    if (!(rc->flags & RF_ON_WRITE) || pyioc_state.python_gone)
        return 0;
    if (pyioc_queue_write(rc, (rc->flags & RF_BLOCKING) != 0) == 0) {
        if (rc->flags & RF_BLOCKING)
            prec->pact = TRUE;      /* finished by RecordCore._complete() */
        return 0;
    }

    gil = pyioc_gil_ensure();
    value = pyioc_value_to_python(rc);
    res = value ? PyObject_CallMethodOneArg((PyObject *)rc, str_on_write, value) : NULL;
    if (res) {
        started = PyObject_IsTrue(res) == 1;
    } else {
        pyioc_log_exception("handing on a client's write", rc);
        recGblSetSevr(prec, WRITE_ALARM, INVALID_ALARM);
    }
    Py_XDECREF(res);
    Py_XDECREF(value);
    PyGILState_Release(gil);

    if (started)
        prec->pact = TRUE;          /* finished by RecordCore._complete() */
    return 0;
}

/* ---- the dsets: one per row of the table -----------------------------------
 * Number 6 for all: ai and ao want a 6th routine (special_linconv, unused). */

typedef struct {
    dset common;
    long (*read_write)(dbCommon *prec);
    long (*special_linconv)(dbCommon *prec, int after);
} py_dset;

#define DSET(name, rtype, is_output, init, rw) \
    static py_dset name = {{6, NULL, NULL, init, pyioc_get_ioint_info}, rw, NULL}; \
    epicsExportAddress(dset, name);
PYIOC_DSETS(DSET)

int pyioc_devsup_init(void)
{
    if (str_on_write)
        return 0;                   /* done already */
    pyioc_set_put_checker(check_stored_put);
    errSymbolAdd(S_pyioc_rejected, "put refused by the IOC's validate()");
    errSymbolAdd(S_pyioc_toolong, "text too long for record (strict puts)");
    str_on_write = PyUnicode_InternFromString("_on_write");
    str_validate_put = PyUnicode_InternFromString("_validate_put");
    return str_on_write && str_validate_put ? 0 : -1;
}
