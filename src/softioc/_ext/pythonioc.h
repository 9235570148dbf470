/* pythonIOC C layer: shared declarations.
 *
 * Ownership: every Python-driven record has one RecordCore (a Python object,
 * see record.c).  Binding it to its EPICS record stores it in prec->dpvt and
 * takes a reference that is never dropped: records live as long as the
 * process, like the EPICS database itself.
 *
 * Lock order, everywhere: record lock (dbScanLock) first, then the GIL.
 * Code holding the GIL releases it before it waits for a record lock.
 */
#ifndef PYTHONIOC_H
#define PYTHONIOC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dbCommon.h>
#include <dbFldTypes.h>
#include <dbScan.h>
#include <epicsMutex.h>
#include <epicsTime.h>

/* ---- what the GIL alone used to guard -------------------------------------
 * With the GIL each call from Python ran whole; a free-threaded CPython
 * (3.13t on, the GIL off) runs them at once.  So what Python threads change
 * in the C layer has a lock of its own (EPICS threads keep theirs: the
 * record's lock, the write queue's, the put log's...):
 *
 * - pyioc_setup_mutex: the C layer's one-time set-up and settings: register,
 *   iocInit, strict puts and the patches (the conversion tables, made
 *   writable while swapped), the access security file, starting the write
 *   queue, the put log, the live view's watcher;
 * - pyioc_static_mutex: the static database (pdbbase's records and
 *   aliases, a record's binding to its handle) against Python threads
 *   changing it and walking it at once.
 *
 * Both are recursive (epicsMutex), made at import (base.c), and held across
 * calls into Python (create_record's text_of): so a Python thread never
 * waits for either with the GIL (an attached thread state) held, which
 * PYIOC_LOCK_WITH_GIL ensures; the order is the lock, then the GIL, as for
 * records.  Setup before static where both are taken. */
extern epicsMutexId pyioc_setup_mutex, pyioc_static_mutex;
#define PYIOC_LOCK_WITH_GIL(m) do { \
    if (epicsMutexTryLock(m) != epicsMutexLockOK) { \
        Py_BEGIN_ALLOW_THREADS \
        epicsMutexMustLock(m); \
        Py_END_ALLOW_THREADS \
    } } while (0)

/* A Python object's own lock (a critical section) where there is no GIL; with
 * the GIL (and on Pythons before 3.13, which lack the API) the GIL is it. */
#ifdef Py_GIL_DISABLED
#define PYIOC_BEGIN_OBJECT(o) Py_BEGIN_CRITICAL_SECTION(o)
#define PYIOC_END_OBJECT() Py_END_CRITICAL_SECTION()
#else
#define PYIOC_BEGIN_OBJECT(o) {
#define PYIOC_END_OBJECT() }
#endif

/* base.c: the C layer's phase and settings, in one place.  EPICS threads
 * read it without the GIL; Python reads it with _ext.state() (softioc._ioc's
 * IOC.running is this running). */
typedef struct {
    volatile int running;       /* iocInit has run */
    volatile int python_gone;   /* Python shut down: EPICS threads must not call into it */
    volatile int strict;        /* strict puts, the patches' switch: -1 unset, 0 off, 1 on */
    volatile int qsrv_served;   /* QSRV2 serves PV Access (found at iocInit) */
    volatile unsigned patches;  /* patches.c: 1 << PYIOC_PATCH_... of those applied */
} pyioc_state_t;
extern pyioc_state_t pyioc_state;

/* How a record's value is stored, which decides conversions to Python. */
enum value_kind {
    KIND_DOUBLE,   /* ai, ao: epicsFloat64 VAL */
    KIND_LONG,     /* longin, longout: epicsInt32 VAL */
    KIND_ENUM,     /* bi, bo, mbbi, mbbo: epicsEnum16 VAL */
    KIND_INT64,    /* int64in, int64out: epicsInt64 VAL */
    KIND_STRING,   /* stringin, stringout: char VAL[40] */
    KIND_LSTRING,  /* lsi, lso: char *VAL of SIZV bytes, LEN */
    KIND_ARRAY,    /* waveform, aai, aao: BPTR, NELM, NORD, FTVL */
};

/* Where a record type keeps its value (base.c's table, from the record
 * headers and the generated pyioc_rtypes.h). */
typedef struct type_info {
    const char *name;       /* EPICS record type */
    enum value_kind kind;
    int is_output;
    size_t val;             /* offsetof VAL (or BPTR for arrays) */
    size_t nelm, nord, ftvl;/* arrays only; lstrings use nelm for SIZV, nord for LEN */
    epicsUInt32 max_enum;   /* KIND_ENUM: highest legal index */
} type_info;

/* Per-record state shared by Python (record.c) and EPICS (devsup.c). */
typedef struct {
    PyObject_HEAD
    PyObject *dict;                 /* instance attributes of Python subclasses */
    /* Attributes every record has (Python sees them as members). */
    PyObject *name;                 /* its name for Python and clients */
    PyObject *spare_name;           /* _spare_name: its name in the database */
    PyObject *given;                /* _given: the builder's fields, until loaded */
    PyObject *dtyp;                 /* _dtyp: its DTYP */
    dbCommon *prec;                 /* NULL until bound */
    const type_info *ti;
    int flags;
    int in_order;                   /* set() takes (value, severity, alarm, timestamp, process) */
    /* Alarm and time handed from set() to the read/write routine, under lock. */
    epicsEnum16 p_sevr, p_stat;
    int p_has_time;
    epicsTimeStamp p_time;
    /* Initial value (bytes in the field's own format) applied by init_record. */
    char *init_buf;
    size_t init_len;                /* bytes */
    epicsUInt32 init_nord;          /* elements, arrays and lstrings */
    int init_set;
    /* The last value accepted (records whose client puts are checked), put
     * back when a put is refused: base.c. */
    char *snap_buf;
    size_t snap_cap, snap_len;
    epicsUInt32 snap_nord;
    int kept;                       /* snap_buf holds it */
    int setting;                    /* set() is processing the record: no checks */
    int refused;                    /* status refusing the last client put (put-check), 0 if none */
} RecordCore;

/* Status of a put refused by validate: its text reaches PVA clients. */
#define S_pyioc_rejected ((600 << 16) | 1)
/* Status of a text put longer than a long-string record holds (strict puts). */
#define S_pyioc_toolong ((600 << 16) | 5)

/* RecordCore.flags (Python sees them as _ext.RF_...) */
#define RF_ON_WRITE   1   /* call owner._on_write(value) when an output processes */
#define RF_VALIDATE   2   /* call owner._validate_put(value) on a client's new value */
#define RF_FIELD_WATCH 4  /* call owner._on_field_write(field) after a client put */
#define RF_LSTRING    8   /* a long string (CHAR waveform): refuse puts with no room for the NUL */
#define RF_BLOCKING  16   /* on_update completes the write (the record stays PACT) */
#define RF_ALWAYS    32   /* always_update: validate a put of the same value too */
/* a client's put to it is checked, and the last value accepted kept (base.c) */
#define RF_CHECKED    (RF_VALIDATE | RF_LSTRING)
#define PYIOC_RECORD_FLAGS(X) \
    X(RF_ON_WRITE) X(RF_VALIDATE) X(RF_FIELD_WATCH) X(RF_LSTRING) X(RF_BLOCKING) X(RF_ALWAYS)

/* base.c: the record types, and where a record keeps its value. */
extern const type_info pyioc_types[];
const type_info *pyioc_find_type(const char *name);
size_t pyioc_value_bytes(RecordCore *rc, epicsUInt32 *nord);
void *pyioc_value_ptr(RecordCore *rc);
/* base.c: the last value accepted, kept, compared and put back (locked). */
void pyioc_keep_value(RecordCore *rc);
int pyioc_value_changed(RecordCore *rc);
void pyioc_restore_value(RecordCore *rc);
/* base.c: is prec one of ours (its dset is devsup.c's)? */
int pyioc_is_ours(dbCommon *prec);
long pyioc_get_ioint_info(int detach, dbCommon *prec, IOSCANPVT *ppvt);

/* base.c: make pyioc_setup_mutex and pyioc_static_mutex (at import). */
void pyioc_locks_init(void);

/* base.c: PyGILState_Ensure() for EPICS threads, which keep their Python
 * thread state from their first call until they exit.  Release with
 * PyGILState_Release(). */
PyGILState_STATE pyioc_gil_ensure(void);

/* devsup.c */
void pyioc_apply_pending(RecordCore *rc, dbCommon *prec);
int pyioc_devsup_init(void);

/* fieldwatch.c */
long pyioc_install_field_watch(void);

/* putlog.c: the IOC refusing a put, for the put log. */
void pyioc_putlog_refused(dbCommon *prec);
struct dbChannel;
/* A PVA put refused before QSRV2 saw it (qsrvguard.cpp), logged as refused. */
void pyioc_putlog_refused_put(struct dbChannel *chan, const char *user, const char *host);

/* stats.c: client puts counted for the HTTP metrics, by what refused them:
 * a refusal the IOC makes in the thread doing a client put, to that put's
 * record (no-op unless counting; once per put), and a PVA put refused before
 * QSRV2 saw it (qsrvguard.cpp). */
enum { PYIOC_REFUSED_VALIDATE, PYIOC_REFUSED_STRICT, PYIOC_N_REFUSALS };
void pyioc_count_refused(dbCommon *prec, int reason);
void pyioc_count_refused_put(int reason);

/* patches.c: the changes made to EPICS (see there), each a bit of
 * pyioc_state.patches; the put conversion tables' element types. */
enum { PYIOC_PATCH_CONVERSIONS, PYIOC_PATCH_QSRV_GUARD, PYIOC_PATCH_PUT_CHECK,
       PYIOC_PATCH_RSRV_PEER, PYIOC_N_PATCHES };
#define PYIOC_NDBR (DBR_ENUM + 1)
#define PYIOC_NDBF (DBF_DEVICE + 1)
struct dbAddr;
typedef long (*pyioc_fastfn)(const void *from, void *to, const struct dbAddr *paddr);
typedef long (*pyioc_arrayfn)(struct dbAddr *paddr, const void *from, long nRequest,
                              long no_elements, long offset);
long pyioc_patch_conversions(pyioc_fastfn const (*fast)[PYIOC_NDBF],
                             pyioc_arrayfn const (*array)[PYIOC_NDBF], int applied);
/* qsrvguard.cpp at iocInit: QSRV2 serves, guarded (1) or not (0). */
void pyioc_note_qsrv(int guarded);
int pyioc_rsrv_peer_address(char *out, size_t size);
/* patches.c, "put-check": install or remove it (before iocInit), and the
 * check it calls after a client's put is stored (devsup.c's; locked). */
long pyioc_patch_put_check(int on);
void pyioc_set_put_checker(long (*checker)(dbCommon *prec));

/* strict.c: range-checked put conversions.  enable: 1 on, 0 plain EPICS,
 * -1 keep the current choice (first time: $PYTHONIOC_STRICT_PUTS, on). */
long pyioc_install_strict_puts(int enable);
int pyioc_strict_puts_enabled(void);

/* strict.c, for qsrvguard.cpp (softioc._qsrvguard, QSRV2's blocking put):
 * the strict check of a dbPut that is not made, and the channel of the
 * blocking put this thread runs (NULL when it ends). */
struct dbChannel;
long pyioc_strict_check(struct dbChannel *chan, short dbrType, const void *buf, long nRequest);
void pyioc_strict_mark_blocking(struct dbChannel *chan);

/* base.c: report the pending Python exception of a call from an EPICS
 * thread into Python (``what`` of record ``rc``) to the "softioc" logger,
 * with its traceback and the record's name as the log record's ``record``
 * attribute (PyErr_WriteUnraisable only if logging itself fails); GIL held,
 * clears the error. */
void pyioc_log_exception(const char *what, RecordCore *rc);

/* A field of a record at a byte offset (from type_info). */
#define FIELD(prec, off, type) ((type *)((char *)(prec) + (off)))

/* convert.c: conversions, GIL held: the record's value, or a copy of it
 * (len bytes from pyioc_value_ptr) */
PyObject *pyioc_value_to_python(RecordCore *rc);
PyObject *pyioc_value_from(RecordCore *rc, const char *src, size_t len);

/* A value converted for one record, ready to copy under the lock. */
typedef struct {
    union { epicsFloat64 d; epicsInt32 l; epicsEnum16 e; epicsInt64 q; char s[MAX_STRING_SIZE]; } u;
    const char *data;   /* lstring/array bytes (borrowed from a Python object) */
    size_t len;         /* bytes */
    epicsUInt32 count;  /* elements (arrays) */
    Py_buffer view;     /* arrays */
    int have_view;
} converted;

/* convert.c: Python to a record's format (GIL held, no lock; 0 or -1 with an
 * exception), pyioc_release() after; pyioc_store() copies it into the record
 * (record locked), pyioc_store_initial() keeps it for init_record. */
int pyioc_convert(RecordCore *rc, PyObject *value, converted *c);
void pyioc_release(converted *c);
void pyioc_store(RecordCore *rc, converted *c);
int pyioc_store_initial(RecordCore *rc, converted *c);
/* set()'s severity/alarm (None: 0) and timestamp (1 given, 0 None, -1 error). */
int pyioc_parse_alarm(PyObject *o, epicsEnum16 limit, epicsEnum16 *out, const char *what);
int pyioc_parse_time(PyObject *o, epicsTimeStamp *ts);

/* errors.c: raise the softioc.errors class for an EPICS status: kind
 * PYIOC_ERR_RUNTIME (a RuntimeError; RecordNotFoundError for "not found"
 * statuses) or PYIOC_ERR_VALUE (a ValueError), with a PyUnicode_FromFormat
 * message; status 0 if EPICS gave none.  Both return NULL. */
enum { PYIOC_ERR_RUNTIME, PYIOC_ERR_VALUE, PYIOC_ERR_NOT_FOUND, PYIOC_ERR_EXISTS };
int pyioc_errors_init(void);
PyObject *pyioc_raise_status(int kind, long status, const char *fmt, ...);
/* "what: <status text> (EPICS status N)", kind PYIOC_ERR_RUNTIME. */
PyObject *pyioc_epics_error(long status, const char *what);

/* record.c: the RecordCore type, readied by pyioc_record_type_ready(). */
extern PyTypeObject pyioc_RecordCoreType;
int pyioc_record_type_ready(void);

/* writeq.c: client writes queued for the dispatcher without the GIL. */
int pyioc_wake(int fd);
int pyioc_queue_write(RecordCore *rc, int busy);

#endif
