"""PV Access PVs beside the records: values, images and tables that are no
record, served by the IOC's own PV Access server (QSRV2's, on its port), made
and closed at any time, before or after ``iocInit``.

Each is a PVXS ``SharedPV`` added to the running server (``softioc._pvaserver``,
a small C++ module); p4p builds their Normative Types and converts values, so
p4p is needed (``pip install 'epics-pythonioc[pva]'``).  The PVs of this
process are the IOC's ``pvs`` feature (``softioc._ioc``): made before
``iocInit`` they are served from ``iocInit``; ``close()`` removes one and its
name can be used again.

A client's put runs ``on_put(value)`` in the IOC's dispatcher, as a record's
``on_update``; it may be a coroutine function.  Raising, or returning
``False``, refuses the put and the client is told why; otherwise the value is
served.  The kinds of PV (``PV``, ``Image``, ``Table``) are ``softioc._ntpvs``'s.

The live view (``softioc._watch``) sees them through `observe`: each observer
is called with the PV and ``False`` when it is served or posts a value, and
with ``True`` when it is closed, and reads it with `SharedPV.watch_row`.
With no observer, posting costs one test of an empty list.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from . import _core, _lazy
from ._core import IOC, ioc

__all__ = ["SharedPV", "OnPut", "Observer", "exists", "served", "observe", "served_pvs"]

OnPut = Callable[[Any], Any]
# Called with a PV and whether it was removed (see the module's description).
Observer = Callable[["SharedPV", bool], None]


class _PVs:
    """The PVA-only PVs of this IOC: served ones by name, and those made
    before ``iocInit`` waiting to be served."""

    def __init__(self, owner: IOC) -> None:
        self.lock = threading.Lock()
        self.served: dict[str, SharedPV] = {}
        self.waiting: list[SharedPV] = []
        self.observers: list[Observer] = []     # changed in place: PVs hold this list
        owner.hooks.before_init.append(self.check)
        owner.hooks.after_init.append(self.start)
        owner.hooks.at_shutdown.append(self.stop)

    def has(self, name: str) -> bool:
        """Is name a PVA-only PV of this IOC, served or waiting for iocInit?"""
        with self.lock:
            return name in self.served or any(pv.name == name for pv in self.waiting)

    def check(self) -> None:
        """At iocInit: PVs made before it need PV Access served."""
        if self.waiting and not _core.pva_enabled():
            names = ", ".join(pv.name for pv in self.waiting)
            raise RuntimeError(f"iocInit(): PV Access is off, but PVA-only PVs were made: {names}")

    def start(self) -> None:
        with self.lock:
            waiting, self.waiting = self.waiting, []
        for pv in waiting:
            pv.serve()

    def stop(self) -> None:
        with self.lock:
            pvs = list(self.served.values()) + self.waiting
        for pv in pvs:
            with contextlib.suppress(Exception):     # the server may already be gone
                pv.close()
        server = sys.modules.get("softioc._pvaserver")
        if server is not None:
            server.stop()


def _pvs() -> _PVs:
    return ioc.plug("pvs", _PVs)


def exists(name: str) -> bool:
    """Is name a PVA-only PV of this IOC (served, or waiting for iocInit)?"""
    pvs = ioc.features.get("pvs")
    return pvs is not None and bool(pvs.has(name))


def served() -> list[str]:
    """The names of the PVA-only PVs this IOC serves now."""
    return sorted(_pvs().served)


def served_pvs() -> list[SharedPV]:
    """The PVA-only PVs this IOC serves now."""
    pvs = _pvs()
    with pvs.lock:
        return list(pvs.served.values())


def observe(observer: Observer) -> Callable[[], None]:
    """Call ``observer(pv, removed)`` from now on when a PV is served, posts
    or is closed (in the thread doing it; it must be quick and must not make
    or close PVs); returns the function that stops it."""
    pvs = _pvs()
    return _core.listen(pvs.observers, observer, pvs.lock)


def _server() -> Any:
    """The C++ module (imports p4p): after a clear check that PVA is on."""
    if not _core.pva_enabled():
        raise RuntimeError("PV Access is off in this IOC (PYTHONIOC_PVA=NO, pva.disable() or "
                           "iocInit(enable_pva=False)): PVA-only PVs need it")
    try:
        import p4p  # noqa: F401
    except ImportError as e:
        raise ImportError(f"PVA-only PVs need p4p: pip install 'epics-pythonioc[pva]' ({e})") \
            from e
    return _core.pva_server()


class SharedPV:
    """What every PVA-only PV has: a name, a p4p type, a served value."""

    def __init__(self, name: str, on_put: OnPut | None, writeable: bool | None,
                 asg: str = "DEFAULT") -> None:
        self._server = _server()
        if not isinstance(asg, str) or not asg:
            raise ValueError(f"asg must be an access security group's name, got {asg!r}")
        self.asg = asg
        self.name = _core.full_name(name)
        self._check_name(self.name)
        if on_put is not None and not callable(on_put):
            raise TypeError(f"{self.name}: on_put must be callable, got {on_put!r}")
        self._on_put = on_put
        self.writeable = bool(on_put is not None if writeable is None else writeable)
        self._lock = threading.Lock()
        self._pv: Any = None            # the C++ SharedPV, made once the value is checked
        self._closed = False
        self._value: Any = None
        # alarm and time as last posted (for the live view)
        self._severity, self._message, self._time = 0, "", time.time()
        self._observers = _pvs().observers

    @staticmethod
    def _check_name(full: str) -> None:
        _core.check_new(full)
        groups = ioc.features.get("pva")         # softioc.pva's groups, if any
        if groups is not None and full in groups.names:
            raise ValueError(f"{full!r} is already a PV Access group")

    def _open(self, value: Any, raw: Any) -> None:
        """Serve the first value: at once if the IOC runs, else from iocInit."""
        self._value = value
        self._pv = self._server.SharedPV(self._client_put if self.writeable else None)
        self._pv.open(raw)
        pvs = _pvs()
        with pvs.lock:
            if not _core.is_running():
                pvs.waiting.append(self)
                return
        try:
            self.serve()
        except Exception:
            self.close()                # (another thread took the name meanwhile)
            raise

    def serve(self) -> None:
        """Add it to the IOC's PV Access server (from iocInit, or at once)."""
        pvs = _pvs()
        with pvs.lock:                  # against close() and another PV of the name
            if self._closed:
                return
            if self.name in pvs.served:
                raise ValueError(f"{self.name!r} is already a PV Access PV of this IOC")
            self._pv.add(self.name)
            pvs.served[self.name] = self
            for observer in self._observers:
                observer(self, False)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name}: the PV was closed")

    def get(self) -> Any:
        """The value served now (as last posted or written by a client)."""
        return self._value

    def close(self) -> None:
        """Stop serving it (clients see a disconnect); its name is free again.
        Closing a closed PV does nothing."""
        pvs = _pvs()
        with pvs.lock:
            if self._closed:
                return
            self._closed = True
            if pvs.served.get(self.name) is self:
                self._server.remove(self.name)
                del pvs.served[self.name]
                for observer in self._observers:
                    observer(self, True)
            if self in pvs.waiting:
                pvs.waiting.remove(self)
        with self._lock:
            if self._pv is not None:
                self._pv.close()
            # The C++ SharedPV holds our on_put (a bound method of self):
            # dropping it breaks that cycle, which the garbage collector cannot see.
            self._pv = None

    def _send(self, raw: Any, severity: int | None, message: str | None,
              timestamp: float | None) -> None:
        """Post raw (a p4p Value) to the SharedPV and note its alarm (what
        raw changes: severity and message if given) and time; call with
        self._lock held."""
        if self._pv is None:
            raise RuntimeError(f"{self.name}: the PV was closed")
        self._pv.post(raw)
        if severity is not None:
            self._severity = severity
        if message is not None:
            self._message = message
        self._time = time.time() if timestamp is None else float(timestamp)

    def _notify(self) -> None:
        """Tell the observers (the live view) of a new value."""
        for observer in self._observers:
            observer(self, False)

    def watch_row(self) -> dict[str, Any]:
        """Its row in the live view (``softioc._watch``): name, kind "pva",
        the value as text, units, alarm severity and message, time."""
        value, units = self._display()
        return {"name": self.name, "kind": "pva", "value": value, "units": units,
                "severity": self._severity, "status": self._message, "time": self._time}

    def _display(self) -> tuple[str, str]:
        """The value as the live view shows it, and its units."""
        raise NotImplementedError

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.name} {state}>"

    # ---- client puts ---------------------------------------------------------

    def _client_put(self, raw: Any, put: Any) -> None:
        """From a PVXS thread: access security, then the dispatcher."""
        client = _Client(self.name, self.asg, put, self._value)
        if not client.may_write:
            put.done(error="Put not permitted")       # QSRV2's words for a record
            return
        try:
            value = self._from_client(raw)
        except (TypeError, ValueError) as e:
            client.complete(put, e, None)
            return
        _core.dispatcher()(self._run_on_put, (value, put, client))

    def _run_on_put(self, value: Any, put: Any, client: _Client) -> Any:
        if self._closed:
            client.complete(put, RuntimeError(f"{self.name}: the PV was closed"), None)
            return None
        try:
            result = self._on_put(value) if self._on_put is not None else None
        except Exception as e:
            client.complete(put, e, None)
            return None
        if inspect.isawaitable(result):
            return self._finish_later(value, put, client, result)
        self._finish(value, put, client, result)
        return None

    async def _finish_later(self, value: Any, put: Any, client: _Client, pending: Any) -> None:
        try:
            result = await pending
        except Exception as e:
            client.complete(put, e, None)
            return
        self._finish(value, put, client, result)

    def _finish(self, value: Any, put: Any, client: _Client, result: Any) -> None:
        if result is False:
            client.complete(put, ValueError(f"{self.name}: the put was refused by on_put"), None)
            return
        try:
            self._check_open()              # (closed while on_put ran)
            self._post_checked(value, None, None, None)
        except Exception as e:
            client.complete(put, e, None)
            return
        client.complete(put, None, value)

    # ---- posting ---------------------------------------------------------------

    def post(self, value: Any, *, severity: int | None = None, message: str | None = None,
             timestamp: float | None = None) -> None:
        """Serve a new value (monitors get it), with an alarm ``severity``
        (0-3) and ``message`` if given, time-stamped now unless ``timestamp``
        (seconds since 1970) is given.  A value the type cannot hold exactly
        raises TypeError or ValueError and nothing changes."""
        self._check_open()
        self._post_checked(self._checked(value), severity, message, timestamp)

    def _post_checked(self, value: Any, severity: int | None, message: str | None,
                      timestamp: float | None) -> None:
        raw = self._raw(value, severity, message, timestamp)
        with self._lock:
            self._send(raw, severity, message, timestamp)
            self._value = value
        if self._observers:
            self._notify()

    # ---- for each kind --------------------------------------------------------

    def _checked(self, value: Any) -> Any:
        """value as served, if the type holds it exactly (else TypeError/ValueError)."""
        raise NotImplementedError

    def _raw(self, value: Any, severity: int | None, message: str | None,
             timestamp: float | None) -> Any:
        """The p4p Value that serves value."""
        raise NotImplementedError

    def _from_client(self, raw: Any) -> Any:
        """The value a client's put writes, checked."""
        raise NotImplementedError


class _Client:
    """Who makes a put, what access security says of it (asked as QSRV2 asks
    it of a record: the peer's address, the account, then its roles), and
    its entry in the put log under a TRAPWRITE rule."""

    def __init__(self, name: str, asg: str, put: Any, old: Any) -> None:
        access = _core.pva_server().access
        peer, method, account, roles = put.client()
        self.name, self.old, self.time = name, old, time.time()
        self.host = peer[1:].split("]")[0] if peer.startswith("[") else peer.rsplit(":", 1)[0]
        if self.host.startswith("::ffff:") and "." in self.host:
            self.host = self.host[7:]
        first = account.rsplit("/", 1)[-1] if method == "ca" else f"{method}/{account}"
        self.user = first
        self.may_write = self.trap = False
        for user in [first, *(f"role/{role}" for role in roles)]:
            self.may_write, self.trap = access(asg, user, self.host)
            if self.may_write:
                self.user = user
                break

    def complete(self, put: Any, error: Exception | None, value: Any) -> None:
        """Record it in the put log (TRAPWRITE), then tell the client (the
        error's text names the PV)."""
        put_log = ioc.features.get("putlog")
        if self.trap and put_log is not None:
            new = self.old if error is not None else value
            put_log.add(self.time, "pva", self.host, self.user, self.name, "value",
                        _text(self.old), _text(new), error is not None)
        if error is None:
            put.done()
        else:
            text = str(error)           # ours name the PV; on_put's own get its type
            put.done(error=text if text.startswith(self.name)
                     else f"{self.name}: {type(error).__name__}: {text}")


def _text(value: Any) -> str:
    """A value as the put log shows one: arrays by their first 8 elements."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) or hasattr(value, "ravel"):     # numpy arrays
        flat = _lazy.numpy.asarray(value).ravel()
        shown = ", ".join(map(str, flat[:8].tolist()))
        return f"[{shown}{', ...' if flat.size > 8 else ''}]"
    return str(value)


