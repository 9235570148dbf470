"""The values of PVA-only PVs (``softioc._ntpvs``) as p4p takes them:
numbers, arrays and type codes converted only when exact, alarms and time
stamps as structures, arrays shown as the live view shows them."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from typing import Any

from . import _lazy

__all__ = ["CODES", "RANGES", "shown_items", "time_stamp", "alarm_fields", "exact_int",
           "exact_array", "code_of"]

# p4p type codes of numpy dtypes (kind, itemsize) -> code
CODES = {("b", 1): "?", ("i", 1): "b", ("u", 1): "B", ("i", 2): "h", ("u", 2): "H",
         ("i", 4): "i", ("u", 4): "I", ("i", 8): "l", ("u", 8): "L", ("f", 4): "f",
         ("f", 8): "d"}


def shown_items(values: Sequence[Any], total: int) -> str:
    """An array as the live view shows one: its first 8 elements, and its size."""
    shown = ", ".join(map(str, values[:8]))
    return shown + (f" \u2026 ({total})" if total > 8 else "")


def time_stamp(timestamp: float | None) -> dict[str, int]:
    """A time_t structure: timestamp (seconds since 1970), or now."""
    seconds = time.time() if timestamp is None else float(timestamp)
    whole = math.floor(seconds)
    return {"secondsPastEpoch": int(whole), "nanoseconds": int((seconds - whole) * 1e9)}


def alarm_fields(severity: int | None, message: str | None) -> dict[str, Any]:
    """An alarm structure's fields: ``severity`` (0-3) and ``message``, if given."""
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


def exact_int(value: Any, what: str, lo: int, hi: int) -> int:
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


def exact_array(value: Any, code: str, what: str) -> Any:
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


def code_of(initial: Any) -> str:
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
        code = CODES.get((array.dtype.kind, array.dtype.itemsize))
        if code is None:
            raise TypeError(f"no PV Access type for arrays of {array.dtype}")
        return "a" + code
    raise TypeError(f"no PV Access type for {initial!r}: give a number, bool, str, "
                    "a 1-D array, or choices=[...]")


RANGES = {"b": (-2**7, 2**7 - 1), "B": (0, 2**8 - 1), "h": (-2**15, 2**15 - 1),
           "H": (0, 2**16 - 1), "i": (-2**31, 2**31 - 1), "I": (0, 2**32 - 1),
           "l": (-2**63, 2**63 - 1), "L": (0, 2**64 - 1)}
