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
served.  A value the PV's type cannot hold exactly (a fraction into an
integer, a string into a number, an index with no choice, a wrong shape) is
refused, from a client or from Python, never changed.

The live view (``softioc._watch``) sees them through `observe`: each observer
is called with the PV and ``False`` when it is served or posts a value, and
with ``True`` when it is closed, and reads it with `_SharedPV.watch_row`.
With no observer, posting costs one test of an empty list.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _database, _lazy, _lifecycle
from ._ioc import IOC, ioc

__all__ = ["PV", "Image", "Table", "served", "observe", "served_pvs"]

OnPut = Callable[[Any], Any]
# Called with a PV and whether it was removed (see the module's description).
Observer = Callable[["_SharedPV", bool], None]

# p4p type codes of numpy dtypes (kind, itemsize) -> code
_CODES = {("b", 1): "?", ("i", 1): "b", ("u", 1): "B", ("i", 2): "h", ("u", 2): "H",
          ("i", 4): "i", ("u", 4): "I", ("i", 8): "l", ("u", 8): "L", ("f", 4): "f",
          ("f", 8): "d"}
IMAGE_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64")
_COLUMN_TYPES: dict[Any, str] = {str: "s", float: "d", int: "l", bool: "?"}


class _PVs:
    """The PVA-only PVs of this IOC: served ones by name, and those made
    before ``iocInit`` waiting to be served."""

    def __init__(self, owner: IOC) -> None:
        self.lock = threading.Lock()
        self.served: dict[str, _SharedPV] = {}
        self.waiting: list[_SharedPV] = []
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
        if self.waiting and not _lifecycle.pva_enabled():
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


def served_pvs() -> list[_SharedPV]:
    """The PVA-only PVs this IOC serves now."""
    pvs = _pvs()
    with pvs.lock:
        return list(pvs.served.values())


def observe(observer: Observer) -> Callable[[], None]:
    """Call ``observer(pv, removed)`` from now on when a PV is served, posts
    or is closed (in the thread doing it; it must be quick and must not make
    or close PVs); returns the function that stops it."""
    pvs = _pvs()
    with pvs.lock:
        pvs.observers.append(observer)

    def stop() -> None:
        with pvs.lock:
            if observer in pvs.observers:
                pvs.observers.remove(observer)
    return stop


def _items(values: Sequence[Any], total: int) -> str:
    """An array as the live view shows one: its first 8 elements, and its size."""
    shown = ", ".join(map(str, values[:8]))
    return shown + (f" \u2026 ({total})" if total > 8 else "")


def _server() -> Any:
    """The C++ module (imports p4p): after a clear check that PVA is on."""
    if not _lifecycle.pva_enabled():
        raise RuntimeError("PV Access is off in this IOC (PYTHONIOC_PVA=NO, pva.disable() or "
                           "iocInit(enable_pva=False)): PVA-only PVs need it")
    try:
        import p4p  # noqa: F401
    except ImportError as e:
        raise ImportError(f"PVA-only PVs need p4p: pip install 'epics-pythonioc[pva]' ({e})") \
            from e
    _lifecycle.ensure_dbd()             # PVXS's IOC library, process-wide
    from . import _pvaserver

    return _pvaserver


def _stamp(timestamp: float | None) -> dict[str, int]:
    """A time_t structure: timestamp (seconds since 1970), or now."""
    seconds = time.time() if timestamp is None else float(timestamp)
    whole = math.floor(seconds)
    return {"secondsPastEpoch": int(whole), "nanoseconds": int((seconds - whole) * 1e9)}


class _SharedPV:
    """What every PVA-only PV has: a name, a p4p type, a served value."""

    def __init__(self, name: str, on_put: OnPut | None, writeable: bool | None,
                 asg: str = "DEFAULT") -> None:
        self._server = _server()
        if not isinstance(asg, str) or not asg:
            raise ValueError(f"asg must be an access security group's name, got {asg!r}")
        self.asg = asg
        self.name = _database.full_name(name)
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
        _database.check_new(full)
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
            if not _lifecycle.is_running():
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
        _lifecycle.dispatcher()(self._run_on_put, (value, put, client))

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
        from . import _pvaserver

        peer, method, account, roles = put.client()
        self.name, self.old, self.time = name, old, time.time()
        self.host = peer[1:].split("]")[0] if peer.startswith("[") else peer.rsplit(":", 1)[0]
        if self.host.startswith("::ffff:") and "." in self.host:
            self.host = self.host[7:]
        first = account.rsplit("/", 1)[-1] if method == "ca" else f"{method}/{account}"
        self.user = first
        self.may_write = self.trap = False
        for user in [first, *(f"role/{role}" for role in roles)]:
            self.may_write, self.trap = _pvaserver.access(asg, user, self.host)
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


def _alarm(severity: int | None, message: str | None) -> dict[str, Any]:
    alarm: dict[str, Any] = {}
    if severity is not None:
        if severity not in (0, 1, 2, 3):
            raise ValueError(f"severity must be 0 (none), 1 (minor), 2 (major) or 3 (invalid), "
                             f"got {severity!r}")
        alarm["severity"] = int(severity)
        alarm["status"] = 0 if severity == 0 else 1
    if message is not None:
        alarm["message"] = str(message)
    return alarm


def _exact_int(value: Any, what: str, lo: int, hi: int) -> int:
    """value as an int if it is one exactly and fits [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what}: an integer is needed, got {value!r}")
    if isinstance(value, numbers.Integral):
        number = int(value)
    else:
        real = float(value)
        if not real.is_integer():
            raise ValueError(f"{what}: {value!r} is not a whole number")
        number = int(real)
    if not lo <= number <= hi:
        raise ValueError(f"{what}: {number} is out of range ({lo} to {hi})")
    return number


def _array(value: Any, code: str, what: str) -> Any:
    """A numpy array of the p4p type code, if value converts to it exactly."""
    np = _lazy.numpy
    if code == "s":
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"{what}: a sequence of str is needed")
        return list(value)
    dtype = np.dtype({"?": "bool", "b": "int8", "B": "uint8", "h": "int16", "H": "uint16",
                      "i": "int32", "I": "uint32", "l": "int64", "L": "uint64",
                      "f": "float32", "d": "float64"}[code])
    given = np.asarray(value)
    if given.dtype.kind not in "biuf":
        raise TypeError(f"{what}: numbers are needed, got {given.dtype} values")
    if given.ndim != 1:
        raise ValueError(f"{what}: a 1-D array is needed, got shape {given.shape}")
    exact = _exact_into(np, given, dtype)
    if not exact:
        raise ValueError(f"{what}: the values do not fit {dtype} exactly")
    return np.array(given, dtype=dtype)            # a copy: later changes to value stay out


def _exact_into(np: Any, given: Any, dtype: Any) -> bool:
    """Do all of given's values convert to dtype exactly (no wrap, no rounding)?"""
    if given.size == 0 or given.dtype == dtype:
        return True
    kind = given.dtype.kind
    if dtype.kind in "iu":
        if kind == "f" and not bool(np.all(np.isfinite(given) & (given == np.floor(given)))):
            return False
        if kind == "b":
            return True
        info = np.iinfo(dtype)
        low, high = given.min(), given.max()
        # as Python numbers: int64 and uint64 bounds compare exactly
        low, high = (int(low), int(high)) if kind in "iub" else (float(low), float(high))
        return bool(info.min <= low and high <= info.max)
    if dtype.kind == "b":
        return bool(np.all((given == 0) | (given == 1)))
    # into floating point: back again unchanged (NaN stays NaN), and integers of
    # more than the mantissa's bits checked one by one as Python numbers
    with np.errstate(all="ignore"):
        cast = given.astype(dtype)
    if kind in "iu":
        if not bool(np.all(np.isfinite(cast))):
            return False
        big = np.abs(given.astype(np.float64)) >= 2.0 ** (np.finfo(dtype).nmant + 1)
        return all(int(c) == int(v) for c, v in zip(cast[big].tolist(), given[big].tolist()))
    if kind == "b":
        return True
    same = (cast.astype(given.dtype) == given) | (np.isnan(given) & np.isnan(cast))
    return bool(np.all(same))


def _code_of(initial: Any) -> str:
    """The p4p type code of the value field for this initial value."""
    np = _lazy.numpy
    if isinstance(initial, (bool, np.bool_)):
        return "?"
    if isinstance(initial, numbers.Integral):
        return "l"
    if isinstance(initial, numbers.Real):
        return "d"
    if isinstance(initial, str):
        return "s"
    if isinstance(initial, np.ndarray) or isinstance(initial, (list, tuple)):
        if isinstance(initial, (list, tuple)) and initial and all(
                isinstance(v, str) for v in initial):
            return "as"
        array = np.asarray(initial)
        if array.ndim != 1:
            raise ValueError(f"a 1-D array is needed, got shape {array.shape}")
        code = _CODES.get((array.dtype.kind, array.dtype.itemsize))
        if code is None:
            raise TypeError(f"no PV Access type for arrays of {array.dtype}")
        return "a" + code
    raise TypeError(f"no PV Access type for {initial!r}: give a number, bool, str, "
                    "a 1-D array, or choices=[...]")


_RANGES = {"b": (-2**7, 2**7 - 1), "B": (0, 2**8 - 1), "h": (-2**15, 2**15 - 1),
           "H": (0, 2**16 - 1), "i": (-2**31, 2**31 - 1), "I": (0, 2**32 - 1),
           "l": (-2**63, 2**63 - 1), "L": (0, 2**64 - 1)}


class PV(_SharedPV):
    """A PV Access PV of one value (no record): NTScalar, NTScalarArray or NTEnum.

    Its type follows ``initial``: a bool, int (int64), float (double), str,
    a 1-D numpy array or sequence (its dtype; a sequence of str is a string
    array), or with ``choices`` an NTEnum whose ``initial`` is an index or a
    choice.  Numbers carry ``display`` (``units``, ``precision``,
    ``display_limits``, ``description``) and ``control`` (``control_limits``)
    metadata.  ``on_put`` makes it writeable by clients (``writeable=True``
    without one just stores what they write).
    """

    def __init__(self, name: str, initial: Any, *, on_put: OnPut | None = None,
                 writeable: bool | None = None, choices: Sequence[str] | None = None,
                 units: str = "", precision: int | None = None,
                 display_limits: tuple[float, float] | None = None,
                 control_limits: tuple[float, float] | None = None,
                 description: str = "", asg: str = "DEFAULT") -> None:
        from p4p.nt import NTEnum, NTScalar

        super().__init__(name, on_put, writeable, asg)
        self._choices = None if choices is None else [str(c) for c in choices]
        if self._choices is not None:
            if not self._choices:
                raise ValueError(f"{self.name}: choices must not be empty")
            self._code = "enum"
            self._nt = NTEnum(display=True)
        else:
            self._code = _code_of(initial)
            self._nt = NTScalar(self._code, display=True, control=True, form=True)
        self._template = self._nt.type
        self._units, self._precision = "", None
        meta: dict[str, Any] = {"display": {"description": str(description)}}
        if self._code not in ("?", "s", "as", "enum"):
            self._units = str(units)
            meta["display"].update(units=self._units)
            if precision is not None:
                self._precision = _exact_int(precision, "precision", 0, 17)
                meta["display"]["precision"] = self._precision
            if display_limits is not None:
                meta["display"].update(limitLow=display_limits[0], limitHigh=display_limits[1])
            if control_limits is not None:
                meta["control"] = {"limitLow": control_limits[0],
                                   "limitHigh": control_limits[1]}
        elif self._code == "enum":
            meta["value"] = {"choices": self._choices}
        value = self._checked(initial)
        self._open(value, self._raw(value, 0, "", None, meta))

    def _display(self) -> tuple[str, str]:
        value, code = self._value, self._code
        if code == "enum":
            assert self._choices is not None
            return self._choices[value], ""
        if code.startswith("a"):
            return _items(list(value[:8]) if code == "as" else value[:8].tolist(),
                          len(value)), self._units
        if code == "d" and self._precision is not None:
            return f"{value:.{self._precision}f}", self._units
        return str(value), self._units

    def _checked(self, value: Any) -> Any:
        what = self.name
        code = self._code
        if code == "enum":
            assert self._choices is not None
            if isinstance(value, str):
                if value not in self._choices:
                    raise ValueError(f"{what}: {value!r} is not one of {self._choices}")
                return self._choices.index(value)
            return _exact_int(value, what, 0, len(self._choices) - 1)
        if code == "?":
            if isinstance(value, (bool, _lazy.numpy.bool_)) or (
                    isinstance(value, numbers.Integral) and int(value) in (0, 1)):
                return bool(value)
            raise TypeError(f"{what}: a bool (or 0/1) is needed, got {value!r}")
        if code == "s":
            if not isinstance(value, str):
                raise TypeError(f"{what}: a str is needed, got {value!r}")
            return value
        if code == "d":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{what}: a number is needed, got {value!r}")
            try:
                number = float(value)
            except OverflowError:
                raise ValueError(f"{what}: {value!r} is out of range for a double") from None
            if isinstance(value, numbers.Integral) and int(number) != int(value):
                raise ValueError(f"{what}: {value!r} has no exact double")
            return number
        if code in _RANGES:
            return _exact_int(value, what, *_RANGES[code])
        return _array(value, code[1:], what)

    def _raw(self, value: Any, severity: int | None, message: str | None,
             timestamp: float | None, meta: dict[str, Any] | None = None) -> Any:
        """meta: the display, control and choices fields (the first value only)."""
        from p4p import Value

        fields: dict[str, Any] = dict(meta or {})
        if self._code == "enum":
            fields["value"] = dict(fields.get("value", {}), index=value)
        else:
            fields["value"] = value
        fields["alarm"] = _alarm(severity, message)
        fields["timeStamp"] = _stamp(timestamp)
        return Value(self._template, fields)

    def _from_client(self, raw: Any) -> Any:
        changed = raw.changedSet()
        if self._code == "enum":
            if "value.choices" in changed:
                raise ValueError(f"{self.name}: the choices are read-only")
            if "value.index" not in changed and "value" not in changed:
                raise ValueError(f"{self.name}: a put must write value.index")
            return self._checked(raw["value.index"])
        if not any(f == "value" for f in changed):
            raise ValueError(f"{self.name}: a put must write the value field")
        return self._checked(raw["value"])


class Image(_SharedPV):
    """An NTNDArray PV (a camera image, as areaDetector's PVA plugin serves one).

    ``dtype`` (int8 to uint32, float32, float64) and ``shape`` ((height,
    width) for mono, (height, width, 3) for RGB) fix what ``post`` takes; a
    client that writes is refused unless ``on_put`` is given.  ``post``
    fills ``dimension`` (innermost first), ``uniqueId`` (counting from 1),
    ``dataTimeStamp``, ``codec`` (none), the sizes and ``attribute``
    (``ColorMode`` 0 mono, 2 RGB1, and the ``attributes`` given).
    """

    def __init__(self, name: str, *, dtype: str, shape: Sequence[int],
                 on_put: OnPut | None = None, writeable: bool | None = None,
                 asg: str = "DEFAULT") -> None:
        from p4p.nt import NTNDArray

        np = _lazy.numpy
        super().__init__(name, on_put, writeable, asg)
        if str(np.dtype(dtype)) not in IMAGE_DTYPES:
            raise TypeError(f"{self.name}: dtype must be one of {', '.join(IMAGE_DTYPES)}")
        self.dtype = np.dtype(dtype)
        self.shape = tuple(_exact_int(n, f"{self.name}: shape", 1, 2**31 - 1) for n in shape)
        if len(self.shape) not in (2, 3) or (len(self.shape) == 3 and self.shape[2] != 3):
            raise ValueError(f"{self.name}: shape must be (height, width) or "
                             f"(height, width, 3), got {tuple(shape)}")
        self._nt = NTNDArray()
        self._unique_id = 0
        frame = np.zeros(self.shape, self.dtype)
        self._open(frame, self._raw(frame, None, None, None))

    def _display(self) -> tuple[str, str]:
        """E.g. "640x480 mono8", "64x48 rgb16", "640x480 mono float32"."""
        height, width = self.shape[:2]
        mode = "rgb" if len(self.shape) == 3 else "mono"
        depth = self.dtype.itemsize * 8
        kind = str(depth) if self.dtype.kind == "u" else f" {self.dtype}"
        return f"{width}x{height} {mode}{kind}", ""

    def _checked(self, frame: Any) -> Any:
        np = _lazy.numpy
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"{self.name}: a numpy array is needed, got {type(frame).__name__}")
        if frame.shape != self.shape:
            raise ValueError(f"{self.name}: shape {frame.shape}, this image is {self.shape}")
        if frame.dtype != self.dtype:
            raise TypeError(f"{self.name}: dtype {frame.dtype}, this image is {self.dtype}")
        return frame

    def _raw(self, frame: Any, severity: int | None, message: str | None,
             timestamp: float | None, attributes: Mapping[str, Any] | None = None) -> Any:
        attrib = {"ColorMode": 0 if frame.ndim == 2 else 2, **(attributes or {})}
        raw = self._nt.wrap(frame, attrib=attrib)
        stamp = _stamp(timestamp)
        raw["uniqueId"] = self._unique_id
        raw["timeStamp"] = stamp
        raw["dataTimeStamp"] = stamp
        raw["codec.name"] = ""
        alarm = _alarm(severity, message)
        if alarm:
            raw["alarm"] = alarm
        return raw

    def post(self, frame: Any, *, attributes: Mapping[str, Any] | None = None,
             severity: int | None = None, message: str | None = None,
             timestamp: float | None = None) -> None:
        """Serve a new frame: a numpy array of this image's dtype and shape
        (C order: rows first).  ``attributes`` become NTAttributes (name to a
        number or str).  A wrong frame raises and nothing changes."""
        self._check_open()
        attrs = dict(attributes or {})
        for key, value in attrs.items():
            if not isinstance(key, str) or not isinstance(value, (numbers.Real, str)):
                raise TypeError(f"{self.name}: attributes map str to a number or str, "
                                f"got {key!r}: {value!r}")
        self._post_checked(self._checked(frame), severity, message, timestamp, attrs)

    def _post_checked(self, value: Any, severity: int | None, message: str | None,
                      timestamp: float | None, attributes: Mapping[str, Any] | None = None,
                      ) -> None:
        with self._lock:                # each frame its own uniqueId, in order
            self._unique_id = self._unique_id % (2**31 - 1) + 1
            self._send(self._raw(value, severity, message, timestamp, attributes),
                       severity, message, timestamp)
            self._value = value
        if self._observers:
            self._notify()

    def _from_client(self, raw: Any) -> Any:
        np = _lazy.numpy
        data = raw["value"]
        if data is None:
            raise ValueError(f"{self.name}: a put must write the value")
        dims = [d["size"] for d in raw["dimension"]] if raw.changed("dimension") else []
        frame = np.asarray(data)
        shape = tuple(reversed(dims)) if dims else self.shape
        if frame.size != math.prod(shape):
            raise ValueError(f"{self.name}: {frame.size} values for shape {shape}")
        return self._checked(frame.reshape(shape))


class Table(_SharedPV):
    """An NTTable PV of typed columns: ``columns={"name": str, "x": float, "n": int}``
    (str, float, int (int64) or bool, or a p4p type code such as ``"i"``),
    labelled by ``labels`` (default: the column names).  ``post`` takes a
    mapping of column name to a sequence; every column, all of one length."""

    def __init__(self, name: str, columns: Mapping[str, Any], *,
                 labels: Sequence[str] | None = None, initial: Mapping[str, Any] | None = None,
                 on_put: OnPut | None = None, writeable: bool | None = None,
                 asg: str = "DEFAULT") -> None:
        from p4p.nt import NTTable

        super().__init__(name, on_put, writeable, asg)
        if not columns:
            raise ValueError(f"{self.name}: a table needs at least one column")
        self.columns: dict[str, str] = {}
        for column, kind in columns.items():
            if not isinstance(column, str) or not column.isidentifier():
                raise ValueError(f"{self.name}: column name {column!r} must be an identifier")
            code = _COLUMN_TYPES.get(kind, kind if isinstance(kind, str) else None)
            if code not in ("s", "d", "f", "?", *_RANGES):
                raise TypeError(f"{self.name}: column {column!r} type must be str, float, "
                                f"int, bool or a p4p scalar type code, got {kind!r}")
            self.columns[column] = code
        self.labels = [str(x) for x in (labels if labels is not None else self.columns)]
        if len(self.labels) != len(self.columns):
            raise ValueError(f"{self.name}: {len(self.labels)} labels for "
                             f"{len(self.columns)} columns")
        self._nt = NTTable(list(self.columns.items()))
        value = self._checked(initial if initial is not None else {c: [] for c in self.columns})
        self._open(value, self._raw(value, None, None, None, labels=True))

    def _checked(self, table: Any) -> dict[str, Any]:
        if not isinstance(table, Mapping):
            raise TypeError(f"{self.name}: a mapping of column name to values is needed")
        missing = set(self.columns) - set(table)
        extra = set(table) - set(self.columns)
        if missing or extra:
            raise ValueError(f"{self.name}: columns {sorted(self.columns)} are needed"
                             + (f"; missing {sorted(missing)}" if missing else "")
                             + (f"; unknown {sorted(extra)}" if extra else ""))
        checked = {c: _array(list(table[c]) if self.columns[c] != "s" else table[c],
                             self.columns[c], f"{self.name}: column {c!r}")
                   for c in self.columns}
        lengths = {c: len(v) for c, v in checked.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{self.name}: columns of different lengths {lengths}")
        return checked

    def _raw(self, table: dict[str, Any], severity: int | None, message: str | None,
             timestamp: float | None, labels: bool = False) -> Any:
        from p4p import Value

        fields: dict[str, Any] = {"value": table, "alarm": _alarm(severity, message),
                                  "timeStamp": _stamp(timestamp)}
        if labels:
            fields["labels"] = self.labels
        return Value(self._nt.type, fields)

    def get(self) -> dict[str, Any]:
        """The table served now: column name to values."""
        return dict(self._value)

    def _display(self) -> tuple[str, str]:
        rows = len(next(iter(self._value.values())))
        return f"{rows} row{'' if rows == 1 else 's'}", ""

    def _from_client(self, raw: Any) -> Any:
        if raw.changed("labels"):
            raise ValueError(f"{self.name}: the labels are read-only")
        if not any(raw.changed(f"value.{c}") for c in self.columns):
            raise ValueError(f"{self.name}: a put must write a column")
        current = self._value
        return self._checked({c: raw[f"value.{c}"] if raw.changed(f"value.{c}") else current[c]
                              for c in self.columns})
