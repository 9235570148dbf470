/* Strict puts: no conversion of a put may silently change the value.
 *
 * Every put (CA, PVA/QSRV2, dbpf, DB and CA links) is converted to the
 * field's type by EPICS Base through two tables exported by libdbCore:
 * dbFastPutConvertRoutine[dbrType][dbfType] (one element) and
 * dbPutConvertRoutine[dbrType][dbfType] (arrays, and fields with
 * SPC_DBADDR).  Several of Base's conversions change the value without
 * saying so: text parsed up to its first bad character ("12abc" -> 12),
 * numbers cast without a range check (1e13 -> -2147483648, 70000 -> 4464,
 * -1 -> 4294967295) and enum, menu and device indexes stored without a
 * matching state (bo 2, SCAN 10).
 *
 * The entries that can do so get wrappers, here, that check the
 * value first and refuse it with an error status (the field keeps its
 * value); a value that passes is stored by Base's own routine, so legal
 * conversions (fractions truncated, clamping by record support, strings cut
 * to the field size) are exactly those of EPICS.  Text meant as a number
 * must be one number and nothing else; a number with a fraction or an
 * exponent ("1.5", "1e3") means what it would as a double, as Base already
 * does for DBF_ULONG fields.  patches.c swaps the wrappers into Base's
 * tables ("put-conversions") while strict puts are on.
 *
 * A refusal never fails dbPut inside QSRV2's blocking put (pvxs throws a
 * C++ exception through dbNotify's C frames when dbPut fails there): that
 * put is checked before QSRV2 takes it (qsrvguard.cpp, through
 * pyioc_strict_check() here), and while QSRV2 runs it the thread is marked,
 * so a refusal then stores nothing without failing dbPut.  A put-callback
 * restarted by dbNotify (dbCommon.ppn is its processNotify) is failed the
 * way Base's db_put_process() fails one: processNotify.status = notifyError.
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dbAccess.h>
#include <dbAddr.h>
#include <dbBase.h>
#include <dbChannel.h>
#include <dbConvert.h>
#include <dbConvertFast.h>
#include <dbNotify.h>
#include <dbLock.h>
#include <dbStaticLib.h>
#include <ellLib.h>
#include <epicsThread.h>
#include <epicsStdlib.h>
#include <epicsString.h>
#include <errlog.h>
#include <errMdef.h>
#include <errSymTbl.h>
#include <recSup.h>


/* Our statuses; their text reaches PVA clients and Python's put_field(). */
#define S_pyioc_range    ((600 << 16) | 2)
#define S_pyioc_notnum   ((600 << 16) | 3)
#define S_pyioc_nochoice ((600 << 16) | 4)

#define S_pyioc_noguard  ((600 << 16) | 6)

#define NDBR PYIOC_NDBR
#define NDBF PYIOC_NDBF
typedef pyioc_fastfn fastfn;
typedef pyioc_arrayfn arrayfn;

static fastfn orig_fast[NDBR][NDBF];
static arrayfn orig_array[NDBR][NDBF];

/* ---- the values a put carries -------------------------------------------- */

enum { K_INT, K_UINT, K_FLT };
typedef struct {
    int kind;                   /* K_UINT only above INT64_MAX */
    epicsInt64 i;
    epicsUInt64 u;
    double d;
} num;

/* Size of one element of a DBR type in a put buffer. */
static size_t dbr_size(int dbr)
{
    static const unsigned char size[NDBR] = {
        MAX_STRING_SIZE, 1, 1, 2, 2, 4, 4, 8, 8, 4, 8, 2,
    };
    return size[dbr];
}

static void read_num(int dbr, const void *p, num *n)
{
    n->kind = K_INT;
    switch (dbr) {
    case DBR_CHAR: n->i = *(const epicsInt8 *)p; break;
    case DBR_UCHAR: n->i = *(const epicsUInt8 *)p; break;
    case DBR_SHORT: n->i = *(const epicsInt16 *)p; break;
    case DBR_USHORT: n->i = *(const epicsUInt16 *)p; break;
    case DBR_LONG: n->i = *(const epicsInt32 *)p; break;
    case DBR_ULONG: n->i = *(const epicsUInt32 *)p; break;
    case DBR_INT64: n->i = *(const epicsInt64 *)p; break;
    case DBR_UINT64:
        n->u = *(const epicsUInt64 *)p;
        if (n->u > (epicsUInt64)0x7fffffffffffffffULL)
            n->kind = K_UINT;
        else
            n->i = (epicsInt64)n->u;
        break;
    case DBR_FLOAT: n->kind = K_FLT; n->d = *(const epicsFloat32 *)p; break;
    case DBR_DOUBLE: n->kind = K_FLT; n->d = *(const epicsFloat64 *)p; break;
    case DBR_ENUM: n->i = *(const epicsEnum16 *)p; break;
    }
}

/* Does n, truncated toward zero if it has a fraction, lie in [lo, hi]? */
static int in_range(const num *n, epicsInt64 lo, epicsUInt64 hi)
{
    double t;
    switch (n->kind) {
    case K_INT: return n->i >= lo && (n->i < 0 || (epicsUInt64)n->i <= hi);
    case K_UINT: return n->u <= hi;
    }
    if (!isfinite(n->d))
        return 0;
    t = trunc(n->d);
    /* (double)hi + 1 is exact for every hi used here (2^k - 1). */
    return t >= (double)lo && t < (double)hi + 1.0;
}

/* Integer field types: the values they hold. */
static const struct { epicsInt64 lo; epicsUInt64 hi; } int_limits[NDBF] = {
    [DBF_CHAR] = {-128, 127},
    [DBF_UCHAR] = {0, 255},
    [DBF_SHORT] = {-32768, 32767},
    [DBF_USHORT] = {0, 65535},
    [DBF_LONG] = {-2147483647LL - 1, 2147483647},
    [DBF_ULONG] = {0, 4294967295ULL},
    [DBF_INT64] = {-9223372036854775807LL - 1, 9223372036854775807ULL},
    [DBF_UINT64] = {0, 18446744073709551615ULL},
};

#define IS_INT_DBF(d) ((d) >= DBF_CHAR && (d) <= DBF_UINT64)
#define IS_CHOICE_DBF(d) ((d) >= DBF_ENUM && (d) <= DBF_DEVICE)

/* bo, bi and busy records have two states, named or not: get_enum_strs only
 * counts up to the last named one.  (An mbbo or mbbi with no named state is
 * not an enum at all: its VAL is a DBF_USHORT, as cvt_dbaddr says.) */
static const char *const two_states[] = {"bo", "bi", "busy", NULL};

/* How many choices an enum, menu or device field has (65536 if unknown:
 * conversions into a plain buffer, as links do, have no field). */
static epicsUInt32 choices(const dbAddr *paddr, int dbf)
{
    dbFldDes *fld = paddr ? paddr->pfldDes : NULL;
    if (!fld)
        return 65536;
    if (dbf == DBF_MENU) {
        dbMenu *menu = fld->ftPvt;
        return menu ? (epicsUInt32)menu->nChoice : 65536;
    }
    if (dbf == DBF_DEVICE) {
        dbDeviceMenu *devs = fld->ftPvt;
        return devs ? (epicsUInt32)devs->nChoice : 1;
    }
    {
        rset *prset = dbGetRset(paddr);
        struct dbr_enumStrs strs;
        epicsUInt32 n = 0;
        int i;
        if (prset && prset->get_enum_strs && paddr->precord &&
                prset->get_enum_strs(paddr, &strs) == 0)
            n = strs.no_str;
        for (i = 0; two_states[i] && n < 2; i++)
            if (fld->pdbRecordType && fld->pdbRecordType->name &&
                    strcmp(fld->pdbRecordType->name, two_states[i]) == 0)
                n = 2;
        return n ? n : 65536;
    }
}

/* 0 if the number fits the field, else our status. */
static long check_num(const num *n, int dbf, const dbAddr *paddr)
{
    if (IS_INT_DBF(dbf))
        return in_range(n, int_limits[dbf].lo, int_limits[dbf].hi) ? 0 : S_pyioc_range;
    if (dbf == DBF_FLOAT)
        return n->kind == K_FLT && isfinite(n->d) && fabs(n->d) > FLT_MAX ? S_pyioc_range : 0;
    if (IS_CHOICE_DBF(dbf))
        return in_range(n, 0, choices(paddr, dbf) - 1) ? 0 : S_pyioc_nochoice;
    return 0;
}

/* Text meant as a number: one number, surrounding blanks allowed. */
static long parse_text(const char *text, int dbf, num *n)
{
    const char *s = text;
    char *end = NULL;
    int status;

    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    if (!*s)
        return S_pyioc_notnum;
    if (IS_INT_DBF(dbf)) {
        /* Integers as Base 7.0.10 reads them: C literals (base 0: 0x10 is
         * 16, 010 is 8), then range-checked here ("-1" is not 4294967295). */
        if (dbf == DBF_UINT64 && *s != '-') {
            status = epicsParseUInt64(s, &n->u, 0, &end);
            n->kind = K_UINT;
            if (!status && n->u <= (epicsUInt64)0x7fffffffffffffffULL) {
                n->kind = K_INT;
                n->i = (epicsInt64)n->u;
            }
        } else {
            status = epicsParseInt64(s, &n->i, 0, &end);
            n->kind = K_INT;
        }
        if (status == S_stdlib_overflow)
            return S_pyioc_range;
        if (!status && !*end)
            return 0;
        /* Not an integer: a number with a fraction or exponent reads as a
         * double, as Base reads text into DBF_ULONG fields. */
        if (!(status == S_stdlib_noConversion ||
              (!status && (*end == '.' || *end == 'e' || *end == 'E'))))
            return S_pyioc_notnum;
    }
    status = epicsParseFloat64(s, &n->d, NULL);
    n->kind = K_FLT;
    if (status == S_stdlib_overflow)
        return S_pyioc_range;
    return status ? S_pyioc_notnum : 0;
}

/* ---- refusing a put ------------------------------------------------------- */

/* The channel of the QSRV2 blocking put this thread is running, if any
 * (qsrvguard.cpp marks it around QSRV2's put handler). */
static epicsThreadPrivateId blocking_put;

void pyioc_strict_mark_blocking(dbChannel *chan)
{
    if (blocking_put)
        epicsThreadPrivateSet(blocking_put, chan);
}

static int same_field(const dbAddr *a, const dbAddr *b)
{
    return a->precord == b->precord && a->pfldDes == b->pfldDes;
}

/* Refuse a put: the caller stores nothing and returns what this returns.
 *
 * A put made by a put-callback of dbProcessNotify that is under way on
 * this record (a put restarted after the record was busy: the record's
 * ppn, set by dbNotify, is its processNotify) is refused the way Base's own
 * put-callback helper db_put_process() fails one: processNotify.status =
 * notifyError, nothing stored, dbPut returns 0; the client is told through
 * the put-callback's completion.  Inside QSRV2's blocking put (marked by
 * qsrvguard.cpp, which has already checked the value) dbPut must not fail
 * either: the put is dropped.  Everywhere else dbPut fails with status. */
static long refuse(const dbAddr *paddr, long status)
{
    dbCommon *prec;
    processNotify *ppn;
    dbChannel *blocking;

    if (!paddr || !paddr->precord || !paddr->pfldDes)
        return status;
    prec = paddr->precord;
    pyioc_putlog_refused(prec);
    pyioc_count_refused(prec, PYIOC_REFUSED_STRICT);
    ppn = prec->ppn;
    /* this very put: a restarted put-callback converts through its own
     * channel's address (another client's put to the field has its own) */
    if (ppn && ppn->chan && &ppn->chan->addr == paddr &&
            (ppn->requestType == putProcessRequest ||
             ppn->requestType == putProcessGetRequest)) {
        ppn->status = notifyError;
        return 0;
    }
    blocking = blocking_put ? epicsThreadPrivateGet(blocking_put) : NULL;
    if (blocking && same_field(&blocking->addr, paddr))
        return 0;
    return status;
}

/* ---- the replacements ------------------------------------------------------ */

/* Text into an enumerated field: Base's routine (state names, then an index
 * with a state), then the index it stored must have a state: an empty text
 * matches the first unnamed state in Base. */
static long strict_text_enum(const void *from, void *to, const dbAddr *paddr)
{
    const char *text = from;
    epicsEnum16 *field = paddr ? (epicsEnum16 *)paddr->pfield : NULL;
    epicsEnum16 old = field ? *field : 0;
    long status;

    if (!field || !paddr->pfldDes)
        return orig_fast[DBR_STRING][DBF_ENUM](from, to, paddr);
    if (!*text)
        return refuse(paddr, S_pyioc_nochoice);
    status = orig_fast[DBR_STRING][DBF_ENUM](from, to, paddr);
    if (status)
        return refuse(paddr, status);
    if (*field >= choices(paddr, DBF_ENUM)) {
        *field = old;
        return refuse(paddr, S_pyioc_nochoice);
    }
    return 0;
}

/* Check one element; text into a number is parsed into *n (stored as that). */
static long check_elem(int dbr, int dbf, const void *from, const dbAddr *paddr, num *n)
{
    if (dbr == DBR_STRING) {
        long status = parse_text(from, dbf, n);
        return status ? status : check_num(n, dbf, paddr);
    }
    read_num(dbr, from, n);
    return check_num(n, dbf, paddr);
}

/* Store a parsed text through Base's routine for the number's type. */
static long store_num(const num *n, int dbf, void *to, const dbAddr *paddr)
{
    switch (n->kind) {
    case K_INT: return orig_fast[DBR_INT64][dbf](&n->i, to, paddr);
    case K_UINT: return orig_fast[DBR_UINT64][dbf](&n->u, to, paddr);
    }
    return orig_fast[DBR_DOUBLE][dbf](&n->d, to, paddr);
}

static long strict_fast(int dbr, int dbf, const void *from, void *to, const dbAddr *paddr)
{
    num n;
    long status;
    if (dbr == DBR_STRING && dbf == DBF_ENUM)
        return strict_text_enum(from, to, paddr);
    status = check_elem(dbr, dbf, from, paddr, &n);
    if (!status) {
        /* Integers take a parsed text's value ("1e3" is 1000); Base's own
         * parse of a valid text is kept for floats. */
        status = dbr == DBR_STRING && IS_INT_DBF(dbf) ? store_num(&n, dbf, to, paddr)
                                                      : orig_fast[dbr][dbf](from, to, paddr);
    }
    return status ? refuse(paddr, status) : 0;
}

static long strict_array(int dbr, int dbf, dbAddr *paddr, const void *from,
                         long nRequest, long no_elements, long offset)
{
    const char *src = from;
    size_t ssize = dbr_size(dbr);
    long i, status = 0;
    num n;

    if (dbr == DBR_STRING && dbf == DBF_ENUM && nRequest == 1 && no_elements == 1 && !offset)
        return strict_text_enum(from, paddr->pfield, paddr);
    /* All or nothing: check every element before storing any. */
    for (i = 0; i < nRequest && !status; i++)
        status = check_elem(dbr, dbf, src + i * ssize, paddr, &n);
    if (!status) {
        if (dbr == DBR_STRING && IS_INT_DBF(dbf)) {
            char *field = paddr->pfield;
            size_t esize = dbValueSize(dbf);
            for (i = 0; i < nRequest && !status; i++) {
                long at = no_elements > 0 ? (offset + i) % no_elements : 0;
                parse_text(src + i * ssize, dbf, &n);
                status = store_num(&n, dbf, field + at * esize, paddr);
            }
        } else {
            status = orig_array[dbr][dbf](paddr, from, nRequest, no_elements, offset);
        }
    }
    return status ? refuse(paddr, status) : 0;
}

/* Which conversions can change a value: those get a wrapper. */
static int needs_check(int dbr, int dbf)
{
    static const struct { epicsInt64 lo; epicsUInt64 hi; } src[NDBR] = {
        [DBR_CHAR] = {-128, 127}, [DBR_UCHAR] = {0, 255},
        [DBR_SHORT] = {-32768, 32767}, [DBR_USHORT] = {0, 65535},
        [DBR_LONG] = {-2147483647LL - 1, 2147483647}, [DBR_ULONG] = {0, 4294967295ULL},
        [DBR_INT64] = {-9223372036854775807LL - 1, 9223372036854775807ULL},
        [DBR_UINT64] = {0, 18446744073709551615ULL}, [DBR_ENUM] = {0, 65535},
    };
    if (dbf == DBF_STRING)
        return 0;               /* numbers print; text is cut to the field */
    if (dbr == DBR_STRING)
        return dbf <= DBF_ENUM; /* menus and devices: Base checks text fully */
    if (IS_CHOICE_DBF(dbf))
        return 1;
    if (dbr == DBR_FLOAT || dbr == DBR_DOUBLE)
        return IS_INT_DBF(dbf) || (dbr == DBR_DOUBLE && dbf == DBF_FLOAT);
    if (IS_INT_DBF(dbf))
        return src[dbr].lo < int_limits[dbf].lo || src[dbr].hi > int_limits[dbf].hi;
    return 0;                   /* integers into floating point */
}

/* One wrapper per (dbrType, dbfType), generated. */
#define FAST(S, D) static long fast_##S##_##D(const void *f, void *t, const dbAddr *a) \
    { return strict_fast(S, D, f, t, a); }
#define ARRAY(S, D) static long array_##S##_##D(dbAddr *a, const void *f, long n, long ne, long o) \
    { return strict_array(S, D, a, f, n, ne, o); }
#define ROW(M, S) M(S, 0) M(S, 1) M(S, 2) M(S, 3) M(S, 4) M(S, 5) M(S, 6) \
    M(S, 7) M(S, 8) M(S, 9) M(S, 10) M(S, 11) M(S, 12) M(S, 13)
#define ALL(M) ROW(M, 0) ROW(M, 1) ROW(M, 2) ROW(M, 3) ROW(M, 4) ROW(M, 5) \
    ROW(M, 6) ROW(M, 7) ROW(M, 8) ROW(M, 9) ROW(M, 10) ROW(M, 11)
ALL(FAST)
ALL(ARRAY)
#define FAST_REF(S, D) [S][D] = fast_##S##_##D,
#define ARRAY_REF(S, D) [S][D] = array_##S##_##D,
static const fastfn strict_fast_table[NDBR][NDBF] = { ALL(FAST_REF) };
static const arrayfn strict_array_table[NDBR][NDBF] = { ALL(ARRAY_REF) };

/* ---- checking a put before it is made ---------------------------------------- */

/* Would a dbPut of nRequest elements of dbrType from buf through chan be
 * refused?  0 if not (or strict puts are off), else the refusal's status.
 * For qsrvguard.cpp, which must refuse QSRV2's blocking puts before QSRV2
 * hands them to dbProcessNotify.  Nothing is stored. */
long pyioc_strict_check(dbChannel *chan, short dbrType, const void *buf, long nRequest)
{
    dbAddr *paddr = &chan->addr;
    dbCommon *prec = paddr->precord;
    int dbf = paddr->field_type;
    long i, status = 0;
    num n;

    if (pyioc_state.strict <= 0 || !prec || dbrType < 0 || dbrType >= NDBR || nRequest < 1)
        return 0;
    dbScanLock(prec);
    if (dbrType == DBR_CHAR && (dbf == DBF_CHAR || dbf == DBF_UCHAR) && pyioc_is_ours(prec)) {
        /* A long string: its text and NUL must fit (devsup.c checks the
         * same after a put, for the puts that get there). */
        RecordCore *rc = (RecordCore *)prec->dpvt;
        if (rc && (rc->flags & RF_LSTRING) && nRequest > paddr->no_elements)
            status = S_pyioc_toolong;
    } else if (dbf < NDBF && needs_check(dbrType, dbf) &&
               !(dbrType == DBR_STRING && dbf == DBF_ENUM)) {
        if (nRequest > paddr->no_elements)
            nRequest = paddr->no_elements;
        for (i = 0; i < nRequest && !status; i++)
            status = check_elem(dbrType, dbf, (const char *)buf + i * dbr_size(dbrType),
                                paddr, &n);
    }
    dbScanUnlock(prec);
    return status;
}

/* ---- installing (through patches.c) ------------------------------------------ */

static long install_strict_puts(int enable);

static int env_default(void)
{
    const char *v = getenv("PYTHONIOC_STRICT_PUTS");
    if (!v)
        return 1;
    return !(epicsStrCaseCmp(v, "NO") == 0 || strcmp(v, "0") == 0 ||
             epicsStrCaseCmp(v, "FALSE") == 0 || epicsStrCaseCmp(v, "OFF") == 0);
}

int pyioc_strict_puts_enabled(void)
{
    return pyioc_state.strict > 0;
}

/* enable: 1 strict, 0 plain EPICS, -1 keep the current choice (the first
 * time: PYTHONIOC_STRICT_PUTS, strict unless NO/0/FALSE/OFF).  Off from
 * the start, EPICS's tables are never touched.  Called without the GIL:
 * from Python threads (ioc.c) and at iocInit (qsrvguard.cpp). */
long pyioc_install_strict_puts(int enable)
{
    long status;
    /* one switch at a time: the tables below, the conversion tables' page
     * (made writable, swapped and protected again), the put check's rsets */
    epicsMutexMustLock(pyioc_setup_mutex);
    status = install_strict_puts(enable);
    epicsMutexUnlock(pyioc_setup_mutex);
    return status;
}

static long install_strict_puts(int enable)
{
    static fastfn want_fast[NDBR][NDBF];
    static arrayfn want_array[NDBR][NDBF];
    int s, d;
    long status;

    if (!orig_fast[0][0]) {
        memcpy(orig_fast, dbFastPutConvertRoutine, sizeof orig_fast);
        memcpy(orig_array, dbPutConvertRoutine, sizeof orig_array);
        blocking_put = epicsThreadPrivateCreate();
        errSymbolAdd(S_pyioc_range, "value out of range for the field (strict puts)");
        errSymbolAdd(S_pyioc_notnum, "text is not a number (strict puts)");
        errSymbolAdd(S_pyioc_nochoice, "no such state or choice (strict puts)");
        errSymbolAdd(S_pyioc_noguard, "strict puts were off at iocInit, so EPICS was not "
                     "patched for them: choose them before iocInit");
    }
    if (enable < 0)
        enable = pyioc_state.strict >= 0 ? pyioc_state.strict : env_default();
    enable = enable ? 1 : 0;
    if (enable && pyioc_state.running &&
            !(pyioc_state.patches & (1u << PYIOC_PATCH_PUT_CHECK)))
        return S_pyioc_noguard;
    /* the put check follows the choice until iocInit (also one made before
     * the dbd was loaded): nothing to do once the IOC runs, or when already so */
    status = pyioc_patch_put_check(enable);
    if (status || enable == pyioc_state.strict)
        return status;
    if (enable || (pyioc_state.patches & (1u << PYIOC_PATCH_CONVERSIONS))) {
        for (s = 0; s < NDBR; s++)
            for (d = 0; d < NDBF; d++) {
                int wrap = enable && needs_check(s, d);
                want_fast[s][d] = wrap && orig_fast[s][d] ? strict_fast_table[s][d]
                                                          : orig_fast[s][d];
                want_array[s][d] = wrap && orig_array[s][d] ? strict_array_table[s][d]
                                                            : orig_array[s][d];
            }
        if (pyioc_patch_conversions((fastfn const (*)[NDBF])want_fast,
                                    (arrayfn const (*)[NDBF])want_array, enable)) {
            errlogPrintf("pythonIOC: cannot install strict put conversions\n");
            return S_db_noMemory;
        }
    }
    pyioc_state.strict = enable;
    return 0;
}
