/* Client writes handed to Python without the GIL.
 *
 * An output record with on_update, processed by a client's put (or any
 * processing), copies its new value into this queue and wakes the
 * dispatcher by writing a byte to its pipe; the EPICS thread never waits
 * for the GIL, so a busy Python thread cannot hold up the put (it did, by
 * up to the GIL's 5 ms switch interval), and a put-callback to a
 * non-blocking record completes as in a C IOC.  A blocking record is left
 * busy (PACT) until Python completes it.  The dispatcher's thread takes the
 * queue (take_writes) when woken, GIL held.
 *
 * Only the dispatchers of this package serve the queue (they call
 * write_queue(fd) at iocInit); with another one, or when the queue is full
 * (Python far behind), devsup.c calls Python directly as before.
 */
#include "pythonioc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <epicsMutex.h>
#include <errlog.h>

#define WQ_MAX 100000               /* items waiting; then back-pressure */

typedef struct wq_item {
    struct wq_item *next;
    RecordCore *rc;
    int busy;                       /* the record waits for _complete() */
    size_t len;
    char data[];
} wq_item;

static epicsMutexId lock;          /* of the queue, wake_fd and signalled */
static wq_item *head, **tailp = &head;
static size_t n_items;
static int wake_fd = -1;
static int signalled;

/* Write one byte to the non-blocking pipe fd: 0, or -1 with errno.  A full
 * pipe is not an error: a wake is pending already. */
int pyioc_wake(int fd)
{
    static const char byte = 1;
    if (write(fd, &byte, 1) < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    return 0;
}

/* Record locked, any thread, no GIL needed: 0 if queued, -1 if the caller
 * must hand the write to Python itself. */
int pyioc_queue_write(RecordCore *rc, int busy)
{
    epicsUInt32 nord = 0;
    size_t len;
    wq_item *item;
    int wake, fd;

    if (wake_fd < 0 || !lock)
        return -1;
    len = pyioc_value_bytes(rc, &nord);
    item = malloc(sizeof *item + len);
    if (!item)
        return -1;
    item->next = NULL;
    item->rc = rc;
    item->busy = busy;
    item->len = len;
    memcpy(item->data, pyioc_value_ptr(rc), len);

    epicsMutexMustLock(lock);
    if (n_items >= WQ_MAX) {
        epicsMutexUnlock(lock);
        free(item);
        return -1;
    }
    *tailp = item;
    tailp = &item->next;
    n_items++;
    wake = !signalled;
    signalled = 1;
    fd = wake_fd;                   /* (write_queue(-1) may come in between) */
    epicsMutexUnlock(lock);
    if (wake && fd >= 0 && pyioc_wake(fd) < 0)
        errlogPrintf("pythonIOC: cannot wake the dispatcher: %s\n", strerror(errno));
    return 0;
}

/* write_queue(fd): serve the queue by waking fd (-1: stop queueing). */
PyObject *m_write_queue(PyObject *mod, PyObject *args)
{
    int fd;
    if (!PyArg_ParseTuple(args, "i", &fd))
        return NULL;
    if (!lock) {                    /* made once, whichever thread comes first */
        PYIOC_LOCK_WITH_GIL(pyioc_setup_mutex);
        if (!lock)
            lock = epicsMutexCreate();
        epicsMutexUnlock(pyioc_setup_mutex);
        if (!lock)
            return PyErr_NoMemory();
    }
    epicsMutexMustLock(lock);
    wake_fd = fd;
    signalled = 0;
    epicsMutexUnlock(lock);
    Py_RETURN_NONE;
}

/* queued_writes() -> the writes waiting for the dispatcher to take them. */
PyObject *m_queued_writes(PyObject *mod, PyObject *unused)
{
    size_t n = 0;
    if (lock) {
        epicsMutexMustLock(lock);   /* held briefly, never while waiting for the GIL */
        n = n_items;
        epicsMutexUnlock(lock);
    }
    return PyLong_FromSize_t(n);
}

/* take_writes() -> [(record, raw value, busy)], oldest first.  The next
 * write after this wakes the dispatcher again. */
PyObject *m_take_writes(PyObject *mod, PyObject *unused)
{
    wq_item *item, *next;
    PyObject *list = PyList_New(0);
    if (!list || !lock)
        return list;
    epicsMutexMustLock(lock);
    item = head;
    head = NULL;
    tailp = &head;
    n_items = 0;
    signalled = 0;
    epicsMutexUnlock(lock);
    for (; item; item = next) {
        PyObject *raw, *entry = NULL;
        next = item->next;
        raw = list ? pyioc_value_from(item->rc, item->data, item->len) : NULL;
        if (raw)
            entry = Py_BuildValue("(ONi)", (PyObject *)item->rc, raw, item->busy);
        if (!entry || PyList_Append(list, entry) < 0)
            Py_CLEAR(list);         /* keep freeing the rest */
        Py_XDECREF(entry);
        free(item);
    }
    return list;
}

/* ---- waking a dispatcher -------------------------------------------------- */

/* wake(fd): write one byte to a non-blocking pipe, keeping the GIL.
 * os.write() releases the GIL around the write and takes it back at once,
 * while the thread it woke wants it too: from an EPICS thread handing a
 * client's put to a dispatcher, that wait cost the put ~40 us. */
PyObject *m_wake(PyObject *mod, PyObject *arg)
{
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0)
        return NULL;
    if (pyioc_wake(fd) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}
