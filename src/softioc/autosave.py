"""Save chosen record fields to disk and restore them at the next start.

::

    from softioc import autosave, builder
    autosave.configure("/var/lib/myioc", name="myioc", save_period=10)
    sp = builder.aOut("SETPOINT", 0.0, autosave=True)          # VAL
    lim = builder.aOut("LIMITED", 0.0, autosave=["VAL", "DRVH"])
    with autosave.Autosave(["VAL", "EGU"]):                      # everything built here
        builder.aOut("OFFSET", 0.0, autosave=["DRVH"])           # VAL, EGU and DRVH

Values are restored when ``LoadDatabase()`` runs, before iocInit, so clients
never see the defaults.  While the IOC runs, a thread checks every
``save_period`` seconds and writes the file only if something changed (and
once more at exit).  Each write goes to a temporary file that is fsynced and
renamed over the old one, so a crash at any moment leaves the previous file
whole.  At start the file found is kept as ``NAME.softsav.<time>`` (the
newest few), or as ``NAME.softsav.bu`` with ``timestamped_backups=False``.

The file is pythonSoftIOC's: YAML, one line per saved field, the record name
for VAL (in its Python type; arrays as lists) and ``NAME.FIELD`` for other
fields (as text), e.g. ``OVEN:SETPOINT: 180.0``, ``OVEN:LIMIT.DRVH: '250'``,
``OVEN:WAVE: [1.0, 2.0]``; so a file saved by pythonSoftIOC is restored
here and the other way round.  The JSON files of pythonIOC 0.1
(``{"RECORD": {"VAL": value}}``) are read too.  A file that cannot be read
is never overwritten: it is kept as ``NAME.softsav.unreadable-<time>`` with a
warning, and the IOC starts from its built-in values.  A value that no
longer fits its record gives a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from . import _ext, _lifecycle

__all__ = ["configure", "Autosave", "add", "save_now", "KEEP_BACKUPS"]

log = logging.getLogger("softioc.autosave")

KEEP_BACKUPS = 3


class _Config:
    directory: Path | None = None
    name: str = "autosave"
    save_period: float = 30.0
    timestamped_backups: bool = True
    enabled: bool = True


_config = _Config()
_tracked: dict[str, tuple[Any, list[str]]] = {}     # record name -> (record, fields)
_context: list[list[str]] = []
_lock = threading.Lock()
_last_saved: dict[str, Any] | None = None           # key (NAME or NAME.FIELD) -> value
_thread: threading.Thread | None = None
_stop = threading.Event()
_unwritable: Path | None = None     # an unreadable file we could not keep: never overwrite it


def configure(directory: str | os.PathLike[str], name: str = "autosave",
              save_period: float = 30.0, timestamped_backups: bool = True,
              enabled: bool = True) -> None:
    """Where and how often to save: ``DIRECTORY/NAME.softsav`` every ``save_period`` s."""
    if save_period <= 0:
        raise ValueError("save_period must be positive")
    _config.directory = Path(directory)
    _config.name = name
    _config.save_period = save_period
    _config.timestamped_backups = timestamped_backups
    _config.enabled = enabled
    _config.directory.mkdir(parents=True, exist_ok=True)


def _path() -> Path:
    assert _config.directory is not None
    return _config.directory / f"{_config.name}.softsav"


def _fields(spec: bool | str | Sequence[str]) -> list[str]:
    if spec is True:
        return ["VAL"]
    if isinstance(spec, str):
        return [spec]
    fields = list(spec) if spec else []
    bad = [f for f in fields if not (isinstance(f, str) and f.isupper())]
    if bad:
        raise ValueError(f"autosave fields must be upper-case field names, got {bad}")
    return fields


def add(record: Any, spec: bool | str | Sequence[str] = True) -> None:
    """Autosave ``record``'s fields (True means VAL)."""
    fields = _fields(spec)
    if fields:
        old = _tracked.get(record.name, (record, []))[1]
        _tracked[record.name] = (record, old + [f for f in fields if f not in old])


def track(record: Any, spec: bool | str | Sequence[str] | None) -> None:
    """The builder's ``autosave=`` keyword: its fields and those of the
    enclosing ``with Autosave(...)`` combined, as in pythonSoftIOC;
    ``autosave=False`` saves nothing, even inside the block."""
    if spec is False:
        return
    add(record, (_fields(spec) if spec is not None else []) + context_fields())


@contextlib.contextmanager
def Autosave(fields: bool | str | Sequence[str] = True) -> Iterator[None]:  # noqa: N802
    """Autosave ``fields`` of every record built inside the ``with`` block
    (added to those of a record's own ``autosave=``)."""
    _context.append(_fields(fields))
    try:
        yield
    finally:
        _context.pop()


def in_context() -> bool:
    """Whether a ``with Autosave(...)`` block is open."""
    return bool(_context)


def context_fields() -> list[str]:
    """Fields the innermost ``with Autosave(...)`` asks for (builder uses this)."""
    return list(_context[-1]) if _context else []


def _key(name: str, field: str) -> str:
    return name if field == "VAL" else f"{name}.{field}"


def _parse(text: str) -> dict[str, Any]:
    """The saved values, by key, from pythonSoftIOC's YAML or pythonIOC 0.1's JSON."""
    data: Any
    try:
        data = json.loads(text)
    except ValueError:
        data = yaml.safe_load(text)
    if not isinstance(data, dict) or not data or not all(isinstance(k, str) for k in data):
        raise ValueError("not a mapping of record names to saved values")
    if all(isinstance(v, dict) for v in data.values()):       # {"REC": {"VAL": 1}}
        return {_key(name, str(f)): v for name, fields in data.items()
                for f, v in fields.items()}
    return data


def _read() -> dict[str, Any]:
    global _unwritable
    path = _path()
    if not path.exists():
        return {}
    try:
        return _parse(path.read_text())
    except Exception as e:      # noqa: BLE001 - any bad file: YAML, JSON, encoding, depth
        kept = _keep_unreadable(path)
        if kept is None:
            _unwritable = path
        log.warning("autosave file %s is unreadable (%s): starting from built-in values; %s",
                    path, str(e).splitlines()[0] if str(e) else type(e).__name__,
                    f"it is kept as {kept.name}" if kept else
                    "it could not be copied, so autosave will not overwrite it")
        return {}


def _keep_unreadable(path: Path) -> Path | None:
    """Copy an unreadable file aside (its name returned), None if impossible."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        kept = path.with_name(f"{path.name}.unreadable-{stamp}" + (f"-{n}" if n else ""))
        try:
            with open(kept, "xb") as f:
                f.write(path.read_bytes())
            return kept
        except FileExistsError:
            continue
        except OSError:
            return None
    return None


def restore(pending: dict[str, Any]) -> None:
    """Apply saved values to records about to be loaded (builder calls this)."""
    global _last_saved
    if _config.directory is None or not _config.enabled or not _tracked:
        return
    saved = _read()
    for name, (record, fields) in _tracked.items():
        if name not in pending:
            continue
        for field in fields:
            key = _key(name, field)
            if key not in saved:
                continue
            try:
                if field == "VAL":
                    record.set(saved[key])
                else:
                    record.set_field(field, saved[key])
            except Exception as e:  # a mismatched file must not stop the IOC
                log.warning("autosave: cannot restore %s.%s = %r: %s",
                            name, field, saved[key], e)
    if saved:
        _backup()
    _last_saved = saved or None


def _backup() -> None:
    path = _path()
    if not _config.timestamped_backups:
        with contextlib.suppress(OSError):
            path.with_name(f"{path.name}.bu").write_bytes(path.read_bytes())
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.{stamp}")
    with contextlib.suppress(OSError):
        backup.write_bytes(path.read_bytes())
        # Only our own timestamped copies: never pythonSoftIOC's
        # (NAME.softsav_yymmdd-HHMMSS, .bu) nor kept unreadable files.
        ours = re.compile(re.escape(path.name) + r"\.\d{8}-\d{6}")
        olds = sorted(p for p in path.parent.iterdir() if ours.fullmatch(p.name))
        for old in olds[:-KEEP_BACKUPS]:
            old.unlink()


def _plain(value: Any) -> Any:
    """A value YAML can write without Python tags (numpy arrays and scalars)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _snapshot() -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, (record, fields) in _tracked.items():
        for field in fields:
            try:
                if field == "VAL":
                    data[name] = _plain(record.get())
                else:
                    data[_key(name, field)] = str(_ext.get_field(f"{name}.{field}"))
            except Exception as e:
                log.warning("autosave: cannot read %s.%s: %s", name, field, e)
    return data


class _Dumper(yaml.SafeDumper):
    """pythonSoftIOC's layout: one key per line, arrays as [a, b, c]."""


_Dumper.add_representer(
    list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _write(data: dict[str, Any]) -> None:
    path = _path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.dump(data, f, Dumper=_Dumper, default_flow_style=False, sort_keys=True,
                      allow_unicode=True, width=1 << 30)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dirfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_now() -> bool:
    """Write the file now if anything changed; True if it wrote."""
    global _last_saved
    if _config.directory is None or not _config.enabled or not _tracked:
        return False
    if not _lifecycle.is_running() or _unwritable == _path():
        return False
    with _lock:
        data = _snapshot()
        if data == _last_saved:
            return False
        _write(data)
        _last_saved = data
        return True


def _run() -> None:
    while not _stop.wait(_config.save_period):
        try:
            save_now()
        except Exception:
            log.exception("autosave failed")


def start() -> None:
    """Start the periodic saver (runs after iocInit)."""
    global _thread
    if _thread is None and _config.directory is not None and _tracked and _config.enabled:
        _thread = threading.Thread(target=_run, name="softioc-autosave", daemon=True)
        _thread.start()
        _lifecycle.at_shutdown(stop)


def stop() -> None:
    """Save once more and stop the saver (at exit)."""
    _stop.set()
    try:
        save_now()
    except Exception:
        log.exception("autosave at exit failed")


_lifecycle.after_init(start)
