/* PV Access PVs beside the records, on the IOC's own PV Access server.
 *
 * QSRV2 serves the records from pvxs::ioc::server(); PVXS lets any PV be
 * added to that running server and removed again (Server::addPV/removePV,
 * one pvxs::server::SharedPV each), next to QSRV2's sources, on the same
 * port.  This module is that and no more: a SharedPV that Python opens,
 * posts to and closes, added under a name and removed, and a client's put
 * handed to a Python callable with an operation to complete.
 *
 * Values cross as p4p Values, through p4p's C API (the capsules its Cython
 * module exports in __pyx_capi__: pvxs_extract, pvxs_pack), so p4p builds
 * the Normative Types and converts Python and numpy values; p4p and this
 * module share the one libpvxs of the pvxslibs wheel.  Calls into PVXS are
 * made without the GIL; a client's put, which PVXS hands over in its network
 * thread, waits in a queue for a thread of ours to take the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <asLib.h>

#include <pvxs/data.h>
#include <pvxs/iochooks.h>
#include <pvxs/server.h>
#include <pvxs/sharedpv.h>
#include <pvxs/source.h>

namespace {

using pvxs::Value;
using pvxs::server::ExecOp;
using pvxs::server::SharedPV;

Value (*extract)(PyObject *);           /* p4p Value -> pvxs::Value (invalid if not one) */
PyObject *(*pack)(const Value&);        /* pvxs::Value -> new p4p Value */

struct Gil {
    PyGILState_STATE state;
    Gil() :state(PyGILState_Ensure()) {}
    ~Gil() { PyGILState_Release(state); }
};

/* A reference to a Python object that PVXS may drop from any thread. */
struct PyRef {
    PyObject *obj;
    explicit PyRef(PyObject *o) :obj(o) { Py_INCREF(o); }
    ~PyRef()
    {
        if (Py_IsInitialized()) {
            Gil gil;
            Py_DECREF(obj);
        }
    }
};

/* Run f without the GIL; a C++ exception becomes a Python RuntimeError. */
template<typename F>
bool without_gil(F f)
{
    std::string error;
    Py_BEGIN_ALLOW_THREADS
    try {
        f();
    } catch (std::exception& e) {
        error = e.what();
    }
    Py_END_ALLOW_THREADS
    if (!error.empty()) {
        PyErr_SetString(PyExc_RuntimeError, error.c_str());
        return false;
    }
    return true;
}

/* ---- a client's put, to be completed once --------------------------------- */

/* A Python object's own lock (a critical section) where there is no GIL. */
#ifdef Py_GIL_DISABLED
#define BEGIN_OBJECT(o) Py_BEGIN_CRITICAL_SECTION(o)
#define END_OBJECT() Py_END_CRITICAL_SECTION()
#else
#define BEGIN_OBJECT(o) {
#define END_OBJECT() }
#endif

struct OpObject {
    PyObject_HEAD
    ExecOp *op;                         /* owned; nullptr once completed */
};

/* The put's operation, taken to complete it: once, whichever thread asks. */
ExecOp *take_op(OpObject *self)
{
    ExecOp *op;
    BEGIN_OBJECT((PyObject *)self);
    op = self->op;
    self->op = nullptr;
    END_OBJECT();
    return op;
}

PyObject *op_done(OpObject *self, PyObject *args, PyObject *kwds)
{
    static const char *kwlist[] = {"error", nullptr};
    const char *error = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|z", (char **)kwlist, &error))
        return nullptr;
    ExecOp *op = take_op(self);
    if (!op) {
        PyErr_SetString(PyExc_RuntimeError, "this put was already completed");
        return nullptr;
    }
    std::string text(error ? error : "");
    bool ok = without_gil([op, error, &text]() {
        std::unique_ptr<ExecOp> owned(op);
        if (error)
            owned->error(text);
        else
            owned->reply();
    });
    if (!ok)
        return nullptr;
    Py_RETURN_NONE;
}

PyObject *op_client(OpObject *self, PyObject *)
{
    std::shared_ptr<const pvxs::server::ClientCredentials> cred;
    std::string peer;
    bool completed;
    /* what is read of the put, read before another thread may complete it */
    bool failed = false;
    BEGIN_OBJECT((PyObject *)self);
    completed = !self->op;
    /* (review fix) no C++ exception (bad_alloc copying the name) may leave
     * the critical section without its END */
    try {
        if (!completed) {
            cred = self->op->credentials();
            peer = self->op->peerName();
        }
    } catch (std::exception&) {
        failed = true;
    }
    END_OBJECT();
    if (failed)
        return PyErr_NoMemory();
    if (completed) {
        PyErr_SetString(PyExc_RuntimeError, "this put was already completed");
        return nullptr;
    }
    std::vector<std::string> roles;
    try {
        if (cred)
            for (const auto& role : cred->roles())  /* (looks the account up) */
                roles.push_back(role);
    } catch (std::exception&) {
    }
    PyObject *names = PyTuple_New((Py_ssize_t)roles.size());
    for (size_t i = 0; names && i < roles.size(); i++)
        PyTuple_SET_ITEM(names, (Py_ssize_t)i, PyUnicode_FromString(roles[i].c_str()));
    if (!names)
        return nullptr;
    return Py_BuildValue("(sssN)", cred ? cred->peer.c_str() : peer.c_str(),
                         cred ? cred->method.c_str() : "", cred ? cred->account.c_str() : "",
                         names);
}

void op_dealloc(OpObject *self)
{
    if (ExecOp *op = self->op) {
        self->op = nullptr;
        without_gil([op]() {
            std::unique_ptr<ExecOp> owned(op);
            owned->error("the IOC dropped this put");
        });
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyMethodDef op_methods[] = {
    {"done", (PyCFunction)(void (*)(void))op_done, METH_VARARGS | METH_KEYWORDS,
     "done(error=None): tell the client the put succeeded, or failed with error."},
    {"client", (PyCFunction)op_client, METH_NOARGS,
     "client() -> (peer address, authentication method, account, roles)."},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject OpType = {PyVarObject_HEAD_INIT(nullptr, 0) "softioc._pvaserver.Put"};

/* ---- client puts, handed to Python ------------------------------------------ */

/* A client's put reaches onPut in PVXS's network thread, which serves every
 * PV of the IOC, records included: it must not wait there for the GIL.  So
 * puts wait in this queue, and one thread of ours takes the GIL for each. */
struct Put {
    std::shared_ptr<PyRef> handler;
    std::unique_ptr<ExecOp> op;
    Value value;
};

void deliver(Put& item);

class PutQueue {
    std::mutex lock;
    std::condition_variable wake;
    std::deque<Put> items;
    bool started = false;
public:
    std::atomic<bool> stopping{false};

    void push(Put&& item)
    {
        {
            std::lock_guard<std::mutex> guard(lock);
            items.push_back(std::move(item));
            if (!started) {
                started = true;
                std::thread([this]() { run(); }).detach();
            }
        }
        wake.notify_one();
    }

    void run()
    {
        for (;;) {
            Put item;
            {
                std::unique_lock<std::mutex> guard(lock);
                wake.wait(guard, [this]() { return !items.empty(); });
                item = std::move(items.front());
                items.pop_front();
            }
            deliver(item);
        }
    }
};

PutQueue& puts()
{
    static PutQueue *queue = new PutQueue;  /* never destroyed: its thread outlives exit */
    return *queue;
}

/* on_put(value, put) with the GIL; a put Python did not take is refused. */
void deliver(Put& item)
{
    if (puts().stopping || !Py_IsInitialized()) {
        item.op->error("the IOC is stopping");
        /* Dropping on_put would take the GIL while Python may be finalizing:
         * keep the reference (the process is ending). */
        (void)new std::shared_ptr<PyRef>(std::move(item.handler));
        return;
    }
    Gil gil;
    PyObject *packed = pack(item.value);
    OpObject *put = PyObject_New(OpObject, &OpType);
    if (put)
        put->op = nullptr;
    if (!packed || !put) {
        Py_XDECREF(packed);
        Py_XDECREF(put);
        PyErr_PrintEx(0);
        item.op->error("the IOC could not take this put");
        return;
    }
    put->op = item.op.release();
    PyObject *result = PyObject_CallFunctionObjArgs(item.handler->obj, packed, put, nullptr);
    if (!result) {
        PyErr_PrintEx(0);                   /* (0: the traceback keeps no put alive) */
        if (ExecOp *pending = take_op(put)) {
            std::unique_ptr<ExecOp> owned(pending);
            owned->error("the IOC could not take this put (see its log)");
        }
    }
    Py_XDECREF(result);
    Py_DECREF(packed);
    Py_DECREF(put);                         /* not completed: the client is told */
    item.handler.reset();                   /* (with the GIL) */
}

/* ---- a PV ----------------------------------------------------------------- */

struct PVObject {
    PyObject_HEAD
    SharedPV *pv;
};

/* PV(on_put): on_put(value, put) is called, from a PVXS thread with the GIL,
 * for each client put; None: clients may not write. */
int pv_init(PVObject *self, PyObject *args, PyObject *)
{
    PyObject *on_put;
    if (!PyArg_ParseTuple(args, "O", &on_put))
        return -1;
    if (on_put != Py_None && !PyCallable_Check(on_put)) {
        PyErr_SetString(PyExc_TypeError, "on_put must be callable or None");
        return -1;
    }
    SharedPV *pv = new SharedPV(SharedPV::buildReadonly());
    if (on_put != Py_None) {
        auto handler(std::make_shared<PyRef>(on_put));
        pv->onPut([handler](SharedPV&, std::unique_ptr<ExecOp>&& op, Value&& value) {
            puts().push(Put{handler, std::move(op), std::move(value)});
        });
    }
    /* once: the PV is used without the GIL (post, open...), never replaced */
    bool again;
    BEGIN_OBJECT((PyObject *)self);
    again = self->pv != nullptr;
    if (!again)
        self->pv = pv;
    END_OBJECT();
    if (again) {
        without_gil([pv]() { delete pv; });
        PyErr_SetString(PyExc_RuntimeError, "a SharedPV is initialised once");
        return -1;
    }
    return 0;
}

void pv_dealloc(PVObject *self)
{
    if (SharedPV *pv = self->pv) {
        self->pv = nullptr;
        without_gil([pv]() { delete pv; });
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

SharedPV *the_pv(PVObject *self)
{
    if (!self->pv)
        PyErr_SetString(PyExc_RuntimeError, "SharedPV not initialised");
    return self->pv;
}

bool value_of(PyObject *obj, Value& value)
{
    value = extract(obj);
    if (!value) {
        PyErr_Format(PyExc_TypeError, "a p4p Value is needed, not %.100s", Py_TYPE(obj)->tp_name);
        return false;
    }
    return true;
}

PyObject *pv_open(PVObject *self, PyObject *obj)
{
    Value value;
    SharedPV *pv = the_pv(self);
    if (!pv || !value_of(obj, value))
        return nullptr;
    if (!without_gil([pv, &value]() { pv->open(value); }))
        return nullptr;
    Py_RETURN_NONE;
}

PyObject *pv_post(PVObject *self, PyObject *obj)
{
    Value value;
    SharedPV *pv = the_pv(self);
    if (!pv || !value_of(obj, value))
        return nullptr;
    if (!without_gil([pv, &value]() { pv->post(value); }))
        return nullptr;
    Py_RETURN_NONE;
}

PyObject *pv_close(PVObject *self, PyObject *)
{
    SharedPV *pv = the_pv(self);
    if (!pv || !without_gil([pv]() { pv->close(); }))
        return nullptr;
    Py_RETURN_NONE;
}

/* Serve it as name on the IOC's server, or stop serving name. */
PyObject *pv_add(PVObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name))
        return nullptr;
    std::string pvname(name);
    SharedPV *pv = the_pv(self);
    if (!pv || !without_gil([pv, &pvname]() { pvxs::ioc::server().addPV(pvname, *pv); }))
        return nullptr;
    Py_RETURN_NONE;
}

PyMethodDef pv_methods[] = {
    {"open", (PyCFunction)pv_open, METH_O, "open(value): its type and first value."},
    {"post", (PyCFunction)pv_post, METH_O, "post(value): a new value (changed fields)."},
    {"close", (PyCFunction)pv_close, METH_NOARGS, "close(): disconnect its clients."},
    {"add", (PyCFunction)pv_add, METH_VARARGS, "add(name): serve it under name."},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject PVType = {PyVarObject_HEAD_INIT(nullptr, 0) "softioc._pvaserver.SharedPV"};

PyObject *remove_pv(PyObject *, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name))
        return nullptr;
    std::string pvname(name);
    if (!without_gil([&pvname]() { pvxs::ioc::server().removePV(pvname); }))
        return nullptr;
    Py_RETURN_NONE;
}

/* access(asg, user, host) -> (may write, TRAPWRITE): what the IOC's access
 * security rules say of a put by user at host to a member of asg, asked as
 * rsrv and QSRV2 ask it of a record's VAL (access level 0). */
PyObject *access(PyObject *, PyObject *args)
{
    const char *asg, *user, *host;
    if (!PyArg_ParseTuple(args, "sss", &asg, &user, &host))
        return nullptr;
    if (!asActive)
        return Py_BuildValue("(OO)", Py_True, Py_False);
    std::vector<char> hostname(host, host + strlen(host) + 1);
    ASMEMBERPVT member = nullptr;
    ASCLIENTPVT client = nullptr;
    bool may = false, trap = false;
    if (asAddMember(&member, asg) == 0 && member) {
        if (asAddClient(&client, member, 0, user, hostname.data()) == 0 && client) {
            may = asCheckPut(client);
            trap = may && client->trapMask;
            asRemoveClient(&client);
        }
        asRemoveMember(&member);
    }
    return Py_BuildValue("(OO)", may ? Py_True : Py_False, trap ? Py_True : Py_False);
}

PyObject *stop(PyObject *, PyObject *)
{
    puts().stopping = true;
    Py_RETURN_NONE;
}

PyMethodDef module_methods[] = {
    {"remove", remove_pv, METH_VARARGS, "remove(name): stop serving the PV name."},
    {"stop", stop, METH_NOARGS, "stop(): refuse client puts from now on (the IOC stops)."},
    {"access", access, METH_VARARGS,
     "access(asg, user, host) -> (may write, TRAPWRITE), from the IOC's access security."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "softioc._pvaserver",
                          "PVXS SharedPVs on the IOC's PV Access server.", -1, module_methods};

/* p4p's C API: a capsule of its Cython module's __pyx_capi__. */
void *p4p_api(PyObject *capi, const char *name)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *capsule = nullptr;            /* a strong reference (3.13 on) */
    if (PyDict_GetItemStringRef(capi, name, &capsule) < 0)
        return nullptr;
#else
    PyObject *capsule = PyDict_GetItemString(capi, name);
    Py_XINCREF(capsule);
#endif
    if (!capsule) {
        PyErr_Format(PyExc_ImportError, "p4p._p4p has no %s in its C API", name);
        return nullptr;
    }
    void *api = PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule));
    Py_DECREF(capsule);                     /* (the function lives in p4p's library) */
    return api;
}

} // namespace

PyMODINIT_FUNC PyInit__pvaserver(void)
{
    PyObject *p4p = PyImport_ImportModule("p4p._p4p");
    if (!p4p)
        return nullptr;
    PyObject *capi = PyObject_GetAttrString(p4p, "__pyx_capi__");
    Py_DECREF(p4p);
    if (!capi)
        return nullptr;
    extract = (Value (*)(PyObject *))p4p_api(capi, "pvxs_extract");
    pack = (PyObject * (*)(const Value&))(extract ? p4p_api(capi, "pvxs_pack") : nullptr);
    Py_DECREF(capi);
    if (!extract || !pack)
        return nullptr;

    OpType.tp_basicsize = sizeof(OpObject);
    OpType.tp_flags = Py_TPFLAGS_DEFAULT;
    OpType.tp_doc = "A client's put to a SharedPV: done() completes it once.";
    OpType.tp_dealloc = (destructor)op_dealloc;
    OpType.tp_methods = op_methods;
    PVType.tp_basicsize = sizeof(PVObject);
    PVType.tp_flags = Py_TPFLAGS_DEFAULT;
    PVType.tp_doc = "SharedPV(on_put): a PVXS SharedPV (read-only unless on_put).";
    PVType.tp_new = PyType_GenericNew;
    PVType.tp_init = (initproc)pv_init;
    PVType.tp_dealloc = (destructor)pv_dealloc;
    PVType.tp_methods = pv_methods;
    if (PyType_Ready(&OpType) < 0 || PyType_Ready(&PVType) < 0)
        return nullptr;
    PyObject *module = PyModule_Create(&module_def);
    if (!module)
        return nullptr;
#ifdef Py_GIL_DISABLED
    /* Free-threaded CPython: what Python threads share here has a lock of
     * its own (a put's operation, a PV once made; the put queue's mutex). */
    if (PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED) < 0) {
        Py_DECREF(module);
        return nullptr;
    }
#endif
    Py_INCREF(&PVType);
    if (PyModule_AddObject(module, "SharedPV", (PyObject *)&PVType) < 0) {
        Py_DECREF(&PVType);
        Py_DECREF(module);
        return nullptr;
    }
    return module;
}
