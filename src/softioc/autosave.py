"""Save chosen record fields to disk and restore them at the next start.

::

    from softioc import autosave, builder
    autosave.configure("/var/lib/myioc", name="myioc", save_period=10)
    sp = builder.aOut("SETPOINT", 0.0, autosave=True)          # VAL
    lim = builder.aOut("LIMITED", 0.0, autosave=["VAL", "DRVH"])
    with autosave.Autosave(["VAL", "EGU"]):                      # everything built here
        ...

Values are restored when ``LoadDatabase()`` runs, before iocInit, so clients
never see the defaults.  While the IOC runs, a thread checks every
``save_period`` seconds and writes the file only if something changed (and
once more at exit).  Each write goes to a temporary file that is fsynced and
renamed over the old one, so a crash at any moment leaves the previous file
whole; with ``timestamped_backups`` the file found at start is kept as
``NAME.softsav.<time>`` (the newest few).  A corrupt or mismatched file gives a
warning and the IOC starts with its built-in values.

The file is JSON: ``{"RECORD": {"VAL": value, "EGU": "mA"}}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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
_last_saved: dict[str, dict[str, Any]] | None = None
_thread: threading.Thread | None = None
_stop = threading.Event()


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


@contextlib.contextmanager
def Autosave(fields: bool | str | Sequence[str] = True) -> Iterator[None]:  # noqa: N802
    """Autosave ``fields`` of every record built inside the ``with`` block."""
    _context.append(_fields(fields))
    try:
        yield
    finally:
        _context.pop()


def context_fields() -> list[str]:
    """Fields the innermost ``with Autosave(...)`` asks for (builder uses this)."""
    return _context[-1] if _context else []


def _read() -> dict[str, dict[str, Any]]:
    path = _path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ValueError("not a mapping of record -> {field: value}")
        return data
    except (OSError, ValueError, RecursionError) as e:    # RecursionError: nested too deep
        log.warning("autosave file %s is unreadable (%s): starting from built-in values",
                    path, e)
        return {}


def restore(pending: dict[str, Any]) -> None:
    """Apply saved values to records about to be loaded (builder calls this)."""
    global _last_saved
    if _config.directory is None or not _config.enabled or not _tracked:
        return
    saved = _read()
    for name, (record, fields) in _tracked.items():
        values = saved.get(name, {})
        if name not in pending:
            continue
        for field in fields:
            if field not in values:
                continue
            try:
                if field == "VAL":
                    record.set(values[field])
                else:
                    record.set_field(field, values[field])
            except Exception as e:  # a mismatched file must not stop the IOC
                log.warning("autosave: cannot restore %s.%s = %r: %s",
                            name, field, values[field], e)
    if saved and _config.timestamped_backups:
        _backup()
    _last_saved = saved or None


def _backup() -> None:
    path = _path()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.{stamp}")
    with contextlib.suppress(OSError):
        backup.write_bytes(path.read_bytes())
        olds = sorted(path.parent.glob(f"{path.name}.*"))
        for old in olds[:-KEEP_BACKUPS]:
            old.unlink()


def _snapshot() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = {}
    for name, (record, fields) in _tracked.items():
        values: dict[str, Any] = {}
        for field in fields:
            try:
                if field == "VAL":
                    value = record.get()
                    values[field] = value.tolist() if hasattr(value, "tolist") else value
                else:
                    values[field] = _ext.get_field(f"{name}.{field}")
            except Exception as e:
                log.warning("autosave: cannot read %s.%s: %s", name, field, e)
        data[name] = values
    return data


def _write(data: dict[str, dict[str, Any]]) -> None:
    path = _path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
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
    if not _lifecycle.is_running():
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
