/* Every change pythonIOC makes to EPICS itself, and their one switch.
 *
 * The switch is strict puts (softioc.strict.strict_puts(), default from
 * $PYTHONIOC_STRICT_PUTS: on): with it on at iocInit the patches below are
 * applied; with it off none is, and pythonIOC uses EPICS through its public
 * interfaces only (_ext.patches() says what is applied; tests/test_patches.py
 * checks both).  Switched off while the IOC runs, each stops acting; switched
 * on again, each acts again, which needs the QSRV2 guard in place (so an IOC
 * started without strict puts and serving PV Access cannot switch them on).
 *
 * Checked against EPICS Base 7.0.10 (epicscorelibs 7.0.10.99.0.2) and PVXS
 * 1.5.3 (pvxslibs 1.5.3).  The proposal that would make each unneeded is in
 * docs/explanations/decisions/ (0004).
 *
 * 1. put-conversions: Base converts every put to the field's type through
 *    two tables, dbFastPutConvertRoutine (one element) and
 *    dbPutConvertRoutine (arrays).  Strict puts put checking wrappers
 *    (strict.c) into the entries that can change a value.  Base has no
 *    hook for a put's conversion; dbPutConvertRoutine is a writable table,
 *    but dbFastPutConvertRoutine is const, in libdbCore's relocated
 *    read-only data: its page is made writable (mprotect, after reading
 *    its protection in /proc/self/maps) just while entries are swapped.
 * 2. qsrv2-put-guard: QSRV2 throws a C++ exception through dbNotify's C
 *    frames when dbPut fails inside its blocking put, so a strict refusal
 *    must come before QSRV2 sees the put.  qsrvguard.cpp replaces QSRV2's
 *    single-record and group sources, found on the server by their
 *    internal names ("qsrvSingle", "qsrvGroup"), by wrappers (PVXS's public
 *    Source interface; the names are not).  PVXS has no hook before a put.
 * 3. put-check: a client's put to VAL of an output record Python drives is
 *    checked (validate, strict puts' long-string rule) as soon as dbPut has
 *    stored it, before record support computes anything from it (alarms,
 *    OVAL, RVAL), and put back at once if refused, so nothing (a client, a
 *    monitor, a put to a busy record) ever sees it; the processing that
 *    follows fails, and with it a waiting client's put-callback.  EPICS
 *    calls a record type's special() around a put only to fields the dbd
 *    marks special, and hands device support a put only when the record
 *    processes: so the record support (rset) of each output type is
 *    replaced, in the registry before iocInit copies it, by a copy whose
 *    special() and cvt_dbaddr() wrap the originals, and VAL is marked
 *    SPC_MOD in the static database.  Fixed at iocInit (its copy of each
 *    rset); off, device support checks a put when the record processes
 *    (devsup.c), as pythonSoftIOC does.
 * 4. rsrv-peer-address: the put log names a Channel Access client by its
 *    IP address, as QSRV2 names a PV Access one; rsrv gives listeners only
 *    the host name the client declares.  The address is read from rsrv's
 *    private struct client (its start, the same from EPICS 7.0.3 on: rsrv's
 *    server.h, not installed), checked by thread, protocol and family,
 *    never written.  Off, the put log shows the declared host name.
 */
#define USE_TYPED_RSET
#include "pythonioc.h"

#include <stdio.h>
#include <string.h>

#include <dbAccess.h>
#include <dbBase.h>
#include <dbStaticLib.h>
#include <errlog.h>
#include <recSup.h>
#include <registryRecordType.h>
#include <special.h>
#include <dbConvert.h>
#include <dbConvertFast.h>
#include <ellLib.h>
#include <epicsThread.h>
#include <osiSock.h>

#include "pyioc_rtypes.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <sys/mman.h>
#include <unistd.h>
#endif

static const char *const patch_names[PYIOC_N_PATCHES] = {
    [PYIOC_PATCH_CONVERSIONS] = "put-conversions",
    [PYIOC_PATCH_QSRV_GUARD] = "qsrv2-put-guard",
    [PYIOC_PATCH_PUT_CHECK] = "put-check",
    [PYIOC_PATCH_RSRV_PEER] = "rsrv-peer-address",
};

/* ---- 1. put-conversions ---------------------------------------------------- */

#ifndef _WIN32
/* The hexadecimal number at *p, and *p moved past it.  By hand: with
 * _GNU_SOURCE (Python.h), glibc 2.38 and later bind the scanf and strtol
 * families to new symbols, which would raise the wheel's manylinux tag. */
static unsigned long hex_at(const char **p)
{
    unsigned long v = 0;
    for (;; (*p)++) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return v;
        v = v * 16 + (unsigned long)d;
    }
}

/* Protection of the mapping holding addr (Linux: /proc/self/maps; elsewhere
 * relocated read-only data is assumed). */
static int current_prot(const void *addr)
{
    int prot = PROT_READ;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    if (!maps)
        return prot;
    while (fgets(line, sizeof line, maps)) {
        /* "lo-hi perms ..." */
        const char *perms = line;
        unsigned long lo = hex_at(&perms), hi;
        if (*perms++ != '-')
            continue;
        hi = hex_at(&perms);
        if (*perms++ != ' ' || !perms[0] || !perms[1])
            continue;
        if ((size_t)addr >= lo && (size_t)addr < hi) {
            prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0);
            break;
        }
    }
    fclose(maps);
    return prot;
}
#endif

/* Swap entries one pointer store at a time: puts may be converting. */
static void swap_entries(volatile pyioc_fastfn *table, pyioc_fastfn const *want)
{
    int i;
    for (i = 0; i < PYIOC_NDBR * PYIOC_NDBF; i++)
        if (table[i] != want[i])
            table[i] = want[i];
}

static int write_fast_table(pyioc_fastfn const (*want)[PYIOC_NDBF])
{
    volatile pyioc_fastfn *table = (volatile pyioc_fastfn *)dbFastPutConvertRoutine;
    size_t size = sizeof dbFastPutConvertRoutine;
#ifdef _WIN32
    DWORD old;
    if (!VirtualProtect((void *)table, size, PAGE_READWRITE, &old))
        return -1;
    swap_entries(table, want[0]);
    VirtualProtect((void *)table, size, old, &old);
#else
    long page = sysconf(_SC_PAGESIZE);
    char *start = (char *)((size_t)table & ~(size_t)(page - 1));
    size_t len = (size_t)((const char *)table + size - start);
    int prot = current_prot((const void *)table);
    if (!(prot & PROT_WRITE) && mprotect(start, len, prot | PROT_WRITE))
        return -1;
    swap_entries(table, want[0]);
    if (!(prot & PROT_WRITE))
        mprotect(start, len, prot);
#endif
    return 0;
}

/* (this and pyioc_patch_put_check: strict.c's, under pyioc_setup_mutex) */
long pyioc_patch_conversions(pyioc_fastfn const (*fast)[PYIOC_NDBF],
                             pyioc_arrayfn const (*array)[PYIOC_NDBF], int applied)
{
    int s, d;
    if (write_fast_table(fast))
        return -1;
    for (s = 0; s < PYIOC_NDBR; s++)
        for (d = 0; d < PYIOC_NDBF; d++)
            dbPutConvertRoutine[s][d] = array[s][d];
    if (applied)
        pyioc_state.patches |= 1u << PYIOC_PATCH_CONVERSIONS;
    else
        pyioc_state.patches &= ~(1u << PYIOC_PATCH_CONVERSIONS);
    return 0;
}

/* ---- 2. qsrv2-put-guard (the code: qsrvguard.cpp) -------------------------- */

/* Called by the guard at iocInit when QSRV2 serves: guarded or not. */
void pyioc_note_qsrv(int guarded)
{
    epicsMutexMustLock(pyioc_setup_mutex);      /* patches: as strict.c changes it */
    pyioc_state.qsrv_served = 1;
    if (guarded)
        pyioc_state.patches |= 1u << PYIOC_PATCH_QSRV_GUARD;
    epicsMutexUnlock(pyioc_setup_mutex);
}

/* ---- 3. put-check --------------------------------------------------------------- */

static long (*put_checker)(dbCommon *prec);     /* devsup.c's, record locked */

typedef struct {
    const char *name;
    struct typed_rset rset;         /* our copy, installed in place of orig */
    const struct typed_rset *orig;
    recordTypeLocation *loc;
    dbFldDes *val;                  /* the VAL field descriptor */
    short val_special;              /* VAL's special before we touched it */
} hooked_type;

#define HOOKED(rtype) {#rtype},
static hooked_type hooked[] = {PYIOC_OUTPUT_TYPES(HOOKED) {NULL}};

static hooked_type *hooked_for(dbAddr *paddr)
{
    hooked_type *h;
    for (h = hooked; h->name; h++)
        if (h->orig && paddr->pfldDes->pdbRecordType->prset == (rset *)&h->rset)
            return h;
    return NULL;
}

static int checked(dbCommon *prec)
{
    RecordCore *rc = pyioc_is_ours(prec) ? (RecordCore *)prec->dpvt : NULL;
    return rc && (rc->flags & RF_CHECKED);
}

static long hook_special(dbAddr *paddr, int after)
{
    hooked_type *h = hooked_for(paddr);
    if (!h)
        return S_db_badField;       /* cannot happen: only installed on hooked types */
    if (paddr->pfldDes != h->val)
        return h->orig->special ? h->orig->special(paddr, after) : 0;
    /* Not an error of dbPut: QSRV2 turns a failed dbPut inside its
     * put-callback into a C++ exception that unwinds through dbNotify and
     * leaks the record lock.  The processing that follows fails instead. */
    if (after && put_checker && pyioc_state.strict > 0 && checked(paddr->precord))
        put_checker(paddr->precord);
    if (h->val_special >= SPC_MOD || strcmp(h->name, "lso") == 0)
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
    /* array and long-string VALs are SPC_DBADDR: ask for special() too */
    if (!status && paddr->pfldDes == h->val && checked(paddr->precord))
        paddr->special = SPC_MOD;
    return status;
}

void pyioc_set_put_checker(long (*checker)(dbCommon *prec))
{
    put_checker = checker;
}

/* Install (on) or remove the wrapped record support; before iocInit only. */
long pyioc_patch_put_check(int on)
{
    DBENTRY entry;
    hooked_type *h;
    long status = 0;

    if (pyioc_state.running || !pdbbase)
        return 0;
    /* (review fix) the record types' rsets and VAL's field descriptors are
     * the static database's: changed under its lock (the caller holds
     * pyioc_setup_mutex, without the GIL or, in m_register, with this lock
     * already held), so not while another thread builds records */
    epicsMutexMustLock(pyioc_static_mutex);
    dbInitEntry(pdbbase, &entry);
    for (h = hooked; h->name && !status; h++) {
        if (!on && h->orig) {
            h->loc->prset = (rset *)h->orig;
            h->val->special = h->val_special;
            h->orig = NULL;
        } else if (on && !h->orig) {
            recordTypeLocation *loc = registryRecordTypeFind(h->name);
            status = dbFindRecordType(&entry, h->name);
            if (status || !loc || !loc->prset || !entry.precordType->pvalFldDes) {
                errlogPrintf("pythonIOC: cannot check puts of %s records (%ld)\n",
                             h->name, status);
                status = status ? status : S_db_notFound;
                break;
            }
            h->loc = loc;
            h->orig = (const struct typed_rset *)loc->prset;
            h->rset = *h->orig;
            h->rset.special = hook_special;
            if (h->orig->cvt_dbaddr)
                h->rset.cvt_dbaddr = hook_cvt_dbaddr;
            h->val = entry.precordType->pvalFldDes;
            h->val_special = h->val->special;
            if (h->val_special == 0)
                h->val->special = SPC_MOD;
            loc->prset = (rset *)&h->rset;
        }
    }
    dbFinishEntry(&entry);
    epicsMutexUnlock(pyioc_static_mutex);
    if (on && !status)
        pyioc_state.patches |= 1u << PYIOC_PATCH_PUT_CHECK;
    else if (!on)
        pyioc_state.patches &= ~(1u << PYIOC_PATCH_PUT_CHECK);
    return status;
}

/* ---- 4. rsrv-peer-address -------------------------------------------------- */

extern epicsThreadPrivateId rsrvCurrentClient;

struct rsrv_message_buffer {
    char *buf;
    unsigned stk, maxstk, cnt;
    int type;                       /* enum messageBufferType */
};

struct rsrv_client_start {
    ELLNODE node;
    struct rsrv_message_buffer send, recv;
    epicsMutexId lock, putNotifyLock, chanListLock, eventqLock;
    ELLLIST chanList, chanPendingUpdateARList, putNotifyQue;
    struct sockaddr_in addr;        /* the peer */
    epicsTimeStamp time_at_last_send, time_at_last_recv;
    void *evuser;
    char *pUserName, *pHostName;
    epicsEventId blockSem;
    SOCKET sock, udpRecv;
    int proto;
    epicsThreadId tid;
};

/* The IP address of the CA client this thread serves (rsrv sets
 * rsrvCurrentClient in the thread serving a client, which is the thread
 * calling write-trap listeners before a CA put); 0 if there is none, or
 * the patch is off. */
int pyioc_rsrv_peer_address(char *out, size_t size)
{
    const struct rsrv_client_start *client;
    epicsUInt32 ip;
    if (pyioc_state.strict <= 0 || !rsrvCurrentClient)      /* off, or rsrv not started */
        return 0;
    client = epicsThreadPrivateGet(rsrvCurrentClient);
    if (!client || client->tid != epicsThreadGetIdSelf() || client->proto != IPPROTO_TCP ||
            client->addr.sin_family != AF_INET)
        return 0;
    ip = ntohl(client->addr.sin_addr.s_addr);
    snprintf(out, size, "%u.%u.%u.%u", (unsigned)(ip >> 24) & 0xff,
             (unsigned)(ip >> 16) & 0xff, (unsigned)(ip >> 8) & 0xff, (unsigned)ip & 0xff);
    return 1;
}

/* patches() -> [(name, applied)]: the patches and whether each acts now
 * (the QSRV2 guard and the put check stay in place, passing everything
 * through, when strict puts are switched off while the IOC runs). */
PyObject *m_patches(PyObject *mod, PyObject *unused)
{
    PyObject *list = PyList_New(0);
    int i;
    for (i = 0; list && i < PYIOC_N_PATCHES; i++) {
        int applied = (pyioc_state.patches >> i) & 1;
        PyObject *item;
        if (i == PYIOC_PATCH_RSRV_PEER)
            applied = pyioc_state.strict > 0 && pyioc_state.running;
        else if (i != PYIOC_PATCH_CONVERSIONS)
            applied = applied && pyioc_state.strict > 0;   /* in place, acting while on */
        item = Py_BuildValue("(sO)", patch_names[i], applied ? Py_True : Py_False);
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(item);
    }
    return list;
}
