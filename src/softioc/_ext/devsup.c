/* EPICS side of pythonIOC: device support for every builder record type,
 * and the put hook that lets Python validate a client's put.
 *
 * Device support never queues: set() writes the value into the record under
 * its lock and processes it in the caller's thread (record.c), so read
 * routines only apply the alarm and time that set() left, and write routines
 * hand the new value to Python (owner._on_write), which may start an
 * asynchronous completion (PACT) for blocking records.
 */
#define USE_TYPED_RSET
#define USE_TYPED_DSET

#include "pythonioc.h"

#include <stddef.h>
#include <string.h>

#include <alarm.h>
#include <dbAccess.h>
#include <special.h>
#include <dbBase.h>
#include <dbStaticLib.h>
#include <dbScan.h>
#include <dbNotify.h>
#include <errMdef.h>
#include <errSymTbl.h>
#include <devSup.h>
#include <recGbl.h>
#include <errlog.h>
#include <cantProceed.h>
#include <recSup.h>
#include <registryRecordType.h>
#include <epicsExport.h>
#include <epicsExit.h>

#include <aiRecord.h>
#include <aoRecord.h>
#include <biRecord.h>
#include <boRecord.h>
#include <longinRecord.h>
#include <longoutRecord.h>
#include <int64inRecord.h>
#include <int64outRecord.h>
#include <stringinRecord.h>
#include <stringoutRecord.h>
#include <lsiRecord.h>
#include <lsoRecord.h>
#include <mbbiRecord.h>
#include <mbboRecord.h>
#include <waveformRecord.h>
#include <aaiRecord.h>
#include <aaoRecord.h>

volatile int pyioc_ioc_running = 0;
volatile int pyioc_python_gone = 0;

/* ---- the GIL from EPICS threads ------------------------------------------
 * PyGILState_Ensure() on a thread Python has not seen makes a thread state,
 * and the matching PyGILState_Release() deletes it again: on CPython 3.11
 * and later that maps and unmaps the thread's frame stack each time, about
 * half of a put-callback's round trip.  So an EPICS thread that calls into
 * Python keeps its thread state (GIL released) until it exits. */
static void drop_thread_state(void *tstate)
{
    if (pyioc_python_gone)
        return;                     /* the interpreter freed it already */
    PyEval_RestoreThread((PyThreadState *)tstate);
    PyGILState_Release(PyGILState_UNLOCKED);    /* count 0: cleared, deleted */
}

PyGILState_STATE pyioc_gil_ensure(void)
{
    if (!PyGILState_GetThisThreadState()) {
        PyGILState_Ensure();        /* the kept state, count 1 */
        epicsAtThreadExit(drop_thread_state, PyEval_SaveThread());
    }
    return PyGILState_Ensure();
}

#define SCALAR(rtype, kind, out, maxe) \
    {#rtype, kind, out, offsetof(rtype##Record, val), 0, 0, 0, maxe}
#define LSTRING(rtype, out) \
    {#rtype, KIND_LSTRING, out, offsetof(rtype##Record, val), \
     offsetof(rtype##Record, sizv), offsetof(rtype##Record, len), 0, 0}
#define ARRAY(rtype, out) \
    {#rtype, KIND_ARRAY, out, offsetof(rtype##Record, bptr), \
     offsetof(rtype##Record, nelm), offsetof(rtype##Record, nord), \
     offsetof(rtype##Record, ftvl), 0}

/* The closed table of record types Python can drive. */
const type_info pyioc_types[] = {
    SCALAR(ai, KIND_DOUBLE, 0, 0),
    SCALAR(ao, KIND_DOUBLE, 1, 0),
    SCALAR(bi, KIND_ENUM, 0, 1),
    SCALAR(bo, KIND_ENUM, 1, 1),
    SCALAR(longin, KIND_LONG, 0, 0),
    SCALAR(longout, KIND_LONG, 1, 0),
    SCALAR(int64in, KIND_INT64, 0, 0),
    SCALAR(int64out, KIND_INT64, 1, 0),
    SCALAR(stringin, KIND_STRING, 0, 0),
    SCALAR(stringout, KIND_STRING, 1, 0),
    SCALAR(mbbi, KIND_ENUM, 0, 15),
    SCALAR(mbbo, KIND_ENUM, 1, 15),
    LSTRING(lsi, 0),
    LSTRING(lso, 1),
    ARRAY(waveform, 0),
    ARRAY(aai, 0),
    ARRAY(aao, 1),
    {NULL},
};

const type_info *pyioc_find_type(const char *name)
{
    const type_info *ti;
    for (ti = pyioc_types; ti->name; ti++)
        if (strcmp(ti->name, name) == 0)
            return ti;
    return NULL;
}

static RecordCore *core_of(dbCommon *prec)
{
    return (RecordCore *)prec->dpvt;
}

/* Size in bytes of the current value, and its element count for arrays. */
size_t pyioc_value_bytes(RecordCore *rc, epicsUInt32 *nord)
{
    const type_info *ti = rc->ti;
    dbCommon *prec = rc->prec;
    switch (ti->kind) {
    case KIND_DOUBLE: return sizeof(epicsFloat64);
    case KIND_LONG: return sizeof(epicsInt32);
    case KIND_ENUM: return sizeof(epicsEnum16);
    case KIND_INT64: return sizeof(epicsInt64);
    case KIND_STRING: return MAX_STRING_SIZE;
    case KIND_LSTRING:
        *nord = *FIELD(prec, ti->nord, epicsUInt32);
        return *FIELD(prec, ti->nelm, epicsUInt16);
    case KIND_ARRAY:
        *nord = *FIELD(prec, ti->nord, epicsUInt32);
        return (size_t)*nord * dbValueSize(*FIELD(prec, ti->ftvl, epicsEnum16));
    }
    return 0;
}

void *pyioc_value_ptr(RecordCore *rc)
{
    const type_info *ti = rc->ti;
    if (ti->kind == KIND_LSTRING || ti->kind == KIND_ARRAY)
        return *FIELD(rc->prec, ti->val, void *);
    return FIELD(rc->prec, ti->val, char);
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
    return 0;
}

static long init_convert_none(dbCommon *prec)
{
    long status = init_common(prec);
    return status ? status : 2;
}

static long init_array_out(dbCommon *prec)
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

static long get_ioint_info(int detach, dbCommon *prec, IOSCANPVT *ppvt)
{
    /* Python processes the record itself; an I/O Intr scan list that nobody
     * triggers keeps "SCAN = I/O Intr" legal for users who ask for it. */
    static IOSCANPVT never;
    if (!never)
        scanIoInit(&never);
    *ppvt = never;
    return 0;
}

/* ---- input records: the value is already in VAL ------------------------- */

static long read_keep(dbCommon *prec)
{
    RecordCore *rc = core_of(prec);
    if (rc)
        pyioc_apply_pending(rc, prec);
    return 0;
}

static long read_keep_noconvert(dbCommon *prec)
{
    read_keep(prec);
    return 2;
}

/* ---- output records: tell Python ---------------------------------------- */

static PyObject *str_on_write, *str_validate_put;

void pyioc_log_exception(const char *what, RecordCore *rc)
{
    PyObject *type, *value, *tb, *logging, *logger = NULL, *res = NULL;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    logging = PyImport_ImportModule("logging");
    if (logging)
        logger = PyObject_CallMethod(logging, "getLogger", "s", "softioc");
    if (logger) {
        PyObject *info = PyTuple_Pack(3, type ? type : Py_None, value ? value : Py_None,
                                      tb ? tb : Py_None);
        PyObject *args = Py_BuildValue("(ssO)", "%s of %r failed", what, (PyObject *)rc);
        PyObject *kwargs = info ? Py_BuildValue("{sOs{ss}}", "exc_info", info, "extra",
                                                "record", rc->prec ? rc->prec->name : "")
                                : NULL;
        PyObject *error = PyObject_GetAttrString(logger, "error");
        if (args && kwargs && error)
            res = PyObject_Call(error, args, kwargs);
        Py_XDECREF(error);
        Py_XDECREF(kwargs);
        Py_XDECREF(args);
        Py_XDECREF(info);
    }
    if (!res) {                     /* logging itself failed: stderr, both */
        PyErr_WriteUnraisable((PyObject *)rc);
        PyErr_Restore(type, value, tb);
        PyErr_WriteUnraisable((PyObject *)rc);
    } else {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    Py_XDECREF(res);
    Py_XDECREF(logger);
    Py_XDECREF(logging);
}

static long write_common(dbCommon *prec)
{
    RecordCore *rc = core_of(prec);
    PyGILState_STATE gil;
    PyObject *value, *res;
    int started = 0;

    if (!rc)
        return S_dev_noDeviceFound;
    pyioc_apply_pending(rc, prec);
    if (prec->pact)
        return 0;                   /* second pass after async completion */
    if (rc->rejected) {
        /* The put that led here was refused (the value is restored): fail
         * the processing, and a put-callback's completion, so CA and PVA
         * clients are told. */
        long status = rc->rejected;
        rc->rejected = 0;
        if (prec->ppn)
            prec->ppn->status = notifyError;
        return status;
    }
    if (!(rc->flags & RF_ON_WRITE) || pyioc_python_gone)
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

static long write_convert_none(dbCommon *prec)
{
    return write_common(prec);
}

/* ---- dsets --------------------------------------------------------------- */

#define DSET(name, rtype, dtype, init, rw) \
    static dtype name = {{6, NULL, NULL, (long (*)(dbCommon *))init, \
        get_ioint_info}, (long (*)(struct rtype##Record *))rw}; \
    epicsExportAddress(dset, name)

DSET(devPyAi, ai, aidset, init_convert_none, read_keep_noconvert);
DSET(devPyBi, bi, bidset, init_common, read_keep_noconvert);
DSET(devPyLongin, longin, longindset, init_common, read_keep);
DSET(devPyInt64in, int64in, int64indset, init_common, read_keep);
DSET(devPyStringin, stringin, stringindset, init_common, read_keep);
DSET(devPyLsi, lsi, lsidset, init_common, read_keep);
DSET(devPyMbbi, mbbi, mbbidset, init_common, read_keep_noconvert);
DSET(devPyWaveform, waveform, wfdset, init_common, read_keep);
DSET(devPyAai, aai, aaidset, init_array_out, read_keep);

DSET(devPyAo, ao, aodset, init_convert_none, write_convert_none);
DSET(devPyBo, bo, bodset, init_convert_none, write_convert_none);
DSET(devPyLongout, longout, longoutdset, init_common, write_common);
DSET(devPyInt64out, int64out, int64outdset, init_common, write_common);
DSET(devPyStringout, stringout, stringoutdset, init_common, write_common);
DSET(devPyLso, lso, lsodset, init_common, write_common);
DSET(devPyMbbo, mbbo, mbbodset, init_convert_none, write_convert_none);
DSET(devPyWaveformOut, waveform, wfdset, init_common, write_common);
DSET(devPyAao, aao, aaodset, init_array_out, write_common);

static const dset *const our_dsets[] = {
    &devPyAi.common, &devPyBi.common, &devPyLongin.common, &devPyInt64in.common,
    &devPyStringin.common, &devPyLsi.common, &devPyMbbi.common,
    &devPyWaveform.common, &devPyAai.common, &devPyAo.common, &devPyBo.common,
    &devPyLongout.common, &devPyInt64out.common, &devPyStringout.common,
    &devPyLso.common, &devPyMbbo.common, &devPyWaveformOut.common,
    &devPyAao.common, NULL,
};

int pyioc_is_ours(dbCommon *prec)
{
    const dset *const *p;
    for (p = our_dsets; *p; p++)
        if (prec->dset == *p)
            return 1;
    return 0;
}

/* ---- put hook: validate a client's put to VAL -----------------------------
 *
 * EPICS calls a record type's special(paddr, after) around a put to any field
 * marked special.  For the output types we drive, we mark VAL special
 * (SPC_MOD; or, for array VALs, set paddr->special in cvt_dbaddr the way
 * lsoRecord does) and wrap special(): before the put we copy VAL, after it
 * we ask Python; a refusal restores the copy and fails the put, so the CA
 * or PVA client sees an error and the record keeps its value.
 */

typedef struct {
    const char *name;
    struct typed_rset rset;         /* our copy, installed in place of orig */
    const struct typed_rset *orig;
    dbFldDes *val;                  /* the VAL field descriptor */
    short val_special;              /* VAL's special before we touched it */
} hooked_type;

static hooked_type hooked[] = {
    {"ao"}, {"bo"}, {"longout"}, {"int64out"}, {"stringout"}, {"mbbo"},
    {"lso"}, {"waveform"}, {"aao"}, {NULL},
};

static hooked_type *hooked_for(dbAddr *paddr)
{
    hooked_type *h;
    for (h = hooked; h->name; h++)
        if (paddr->pfldDes->pdbRecordType->prset == (rset *)&h->rset)
            return h;
    return NULL;
}

static long snapshot(RecordCore *rc)
{
    epicsUInt32 nord = 0;
    size_t n = pyioc_value_bytes(rc, &nord);
    if (n > rc->snap_cap) {
        char *buf = realloc(rc->snap_buf, n);
        if (!buf)
            return S_db_noMemory;
        rc->snap_buf = buf;
        rc->snap_cap = n;
    }
    memcpy(rc->snap_buf, pyioc_value_ptr(rc), n);
    rc->snap_len = n;
    rc->snap_nord = nord;
    return 0;
}

static void restore(RecordCore *rc)
{
    const type_info *ti = rc->ti;
    memcpy(pyioc_value_ptr(rc), rc->snap_buf, rc->snap_len);
    if (ti->kind == KIND_LSTRING || ti->kind == KIND_ARRAY)
        *FIELD(rc->prec, ti->nord, epicsUInt32) = rc->snap_nord;
}

static int validate_with_python(RecordCore *rc)
{
    PyGILState_STATE gil;
    if (pyioc_python_gone)
        return 0;                   /* nobody left to approve it */
    gil = pyioc_gil_ensure();
    PyObject *value = pyioc_value_to_python(rc);
    PyObject *res = value ?
        PyObject_CallMethodOneArg((PyObject *)rc, str_validate_put, value) : NULL;
    int ok = res ? PyObject_IsTrue(res) == 1 : 0;
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

static long hook_special(dbAddr *paddr, int after)
{
    hooked_type *h = hooked_for(paddr);
    dbCommon *prec = paddr->precord;
    RecordCore *rc;

    if (!h)
        return S_db_badField;       /* cannot happen: only installed on hooked types */
    if (paddr->pfldDes != h->val)
        return h->orig->special ? h->orig->special(paddr, after) : 0;

    rc = pyioc_is_ours(prec) ? core_of(prec) : NULL;
    if (rc && (rc->flags & (RF_VALIDATE | RF_LSTRING))) {
        if (!after) {
            long status = snapshot(rc);
            rc->rejected = 0;
            if (status)
                return status;
        } else {
            /* Not an error here: QSRV2 turns a failed dbPut inside its
             * put-callback into a C++ exception that unwinds through
             * dbNotify and leaks the record lock.  The processing that
             * follows the put fails instead (write_common). */
            if ((rc->flags & RF_LSTRING) && pyioc_strict_puts_enabled() && text_cut(rc))
                rc->rejected = S_pyioc_toolong;
            else if ((rc->flags & RF_VALIDATE) && !validate_with_python(rc))
                rc->rejected = S_pyioc_rejected;
            if (rc->rejected) {
                restore(rc);
                pyioc_putlog_refused(prec);
                pyioc_count_refused(prec, rc->rejected == S_pyioc_toolong ?
                                    PYIOC_REFUSED_STRICT : PYIOC_REFUSED_VALIDATE);
            }
        }
    }
    if (h->val_special >= SPC_MOD || (strcmp(h->name, "lso") == 0))
        return h->orig->special ? h->orig->special(paddr, after) : 0;
    return 0;
}

static long hook_cvt_dbaddr(dbAddr *paddr)
{
    hooked_type *h = hooked_for(paddr);
    long status;
    if (!h || !h->orig->cvt_dbaddr)
        return S_db_badField;
    status = h->orig->cvt_dbaddr(paddr);
    if (!status && paddr->pfldDes == h->val && pyioc_is_ours(paddr->precord)
            && core_of(paddr->precord)
            && (core_of(paddr->precord)->flags & (RF_VALIDATE | RF_LSTRING)))
        paddr->special = SPC_MOD;
    return status;
}

long pyioc_install_put_hooks(void)
{
    DBENTRY entry;
    hooked_type *h;
    long status = 0;

    errSymbolAdd(S_pyioc_rejected, "put refused by the IOC's validate()");
    errSymbolAdd(S_pyioc_toolong, "text too long for record (strict puts)");
    if (pyioc_install_field_watch())
        return -1;
    str_on_write = PyUnicode_InternFromString("_on_write");
    str_validate_put = PyUnicode_InternFromString("_validate_put");
    if (!str_on_write || !str_validate_put)
        return -1;

    /* iocInit copies each type's rset from the registry: swap it there. */
    dbInitEntry(pdbbase, &entry);
    for (h = hooked; h->name && !status; h++) {
        recordTypeLocation *loc;
        if (h->orig)
            continue;               /* already installed */
        loc = registryRecordTypeFind(h->name);
        status = dbFindRecordType(&entry, h->name);
        if (status || !loc || !loc->prset || !entry.precordType->pvalFldDes) {
            errlogPrintf("pythonIOC: cannot hook puts of %s records (%ld)\n", h->name, status);
            status = status ? status : S_db_notFound;
            break;
        }
        h->orig = loc->prset;
        h->rset = *h->orig;
        h->rset.special = hook_special;
        if (h->orig->cvt_dbaddr)
            h->rset.cvt_dbaddr = hook_cvt_dbaddr;
        h->val = entry.precordType->pvalFldDes;
        h->val_special = h->val->special;
        if (h->val_special == 0)
            h->val->special = SPC_MOD;
        loc->prset = &h->rset;
    }
    dbFinishEntry(&entry);
    return status;
}
