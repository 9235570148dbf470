"""The kinds of PVA-only PV (``softioc.pva``'s `PV`, `Image` and `Table`):
the Normative Type each serves, what it takes from Python and from clients.
A value a PV's type cannot hold exactly (a fraction into an integer, a
string into a number, an index with no choice, a wrong shape) is refused,
from a client or from Python, never changed."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from . import _lazy
from ._pvvalues import (
    RANGES,
    alarm_fields,
    code_of,
    exact_array,
    exact_int,
    shown_items,
    time_stamp,
)
from ._sharedpvs import OnPut, SharedPV

__all__ = ["PV", "Image", "Table", "IMAGE_DTYPES"]

IMAGE_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64")
_COLUMN_TYPES: dict[Any, str] = {str: "s", float: "d", int: "l", bool: "?"}


class PV(SharedPV):
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
            self._code = code_of(initial)
            self._nt = NTScalar(self._code, display=True, control=True, form=True)
        self._template = self._nt.type
        self._units, self._precision = "", None
        meta: dict[str, Any] = {"display": {"description": str(description)}}
        if self._code not in ("?", "s", "as", "enum"):
            self._units = str(units)
            meta["display"].update(units=self._units)
            if precision is not None:
                self._precision = exact_int(precision, "precision", 0, 17)
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
            return shown_items(list(value[:8]) if code == "as" else value[:8].tolist(),
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
            return exact_int(value, what, 0, len(self._choices) - 1)
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
        if code in RANGES:
            return exact_int(value, what, *RANGES[code])
        return exact_array(value, code[1:], what)

    def _raw(self, value: Any, severity: int | None, message: str | None,
             timestamp: float | None, meta: dict[str, Any] | None = None) -> Any:
        """meta: the display, control and choices fields (the first value only)."""
        from p4p import Value

        fields: dict[str, Any] = dict(meta or {})
        if self._code == "enum":
            fields["value"] = dict(fields.get("value", {}), index=value)
        else:
            fields["value"] = value
        fields["alarm"] = alarm_fields(severity, message)
        fields["timeStamp"] = time_stamp(timestamp)
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


class Image(SharedPV):
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
        self.shape = tuple(exact_int(n, f"{self.name}: shape", 1, 2**31 - 1) for n in shape)
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
        stamp = time_stamp(timestamp)
        raw["uniqueId"] = self._unique_id
        raw["timeStamp"] = stamp
        raw["dataTimeStamp"] = stamp
        raw["codec.name"] = ""
        alarm = alarm_fields(severity, message)
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


class Table(SharedPV):
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
            if code not in ("s", "d", "f", "?", *RANGES):
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
        checked = {c: exact_array(list(table[c]) if self.columns[c] != "s" else table[c],
                             self.columns[c], f"{self.name}: column {c!r}")
                   for c in self.columns}
        lengths = {c: len(v) for c, v in checked.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{self.name}: columns of different lengths {lengths}")
        return checked

    def _raw(self, table: dict[str, Any], severity: int | None, message: str | None,
             timestamp: float | None, labels: bool = False) -> Any:
        from p4p import Value

        fields: dict[str, Any] = {"value": table, "alarm": alarm_fields(severity, message),
                                  "timeStamp": time_stamp(timestamp)}
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
