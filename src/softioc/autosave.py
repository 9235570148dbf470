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

In a container: ``configure()`` without a directory saves into
``default_directory()``: ``$PYTHONIOC_AUTOSAVE_DIR``, else ``/autosave``
where it exists (epics-containers' ``ioc-instance`` chart mounts the IOC's
autosave volume there).  ``pythonioc run`` saves there even if the script
never calls ``configure()`` (``use_default_directory()``).
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

from . import _core
from ._core import IOC, ioc

__all__ = ["configure", "Autosave", "add", "save_now", "KEEP_BACKUPS", "DEFAULT_DIRECTORY",
           "default_directory", "use_default_directory"]

log = logging.getLogger("softioc.autosave")

KEEP_BACKUPS = 3

#: Where epics-containers' ioc-instance chart mounts an IOC's autosave volume.
DEFAULT_DIRECTORY = "/autosave"


class _Autosave:
    """Autosave plugged into the IOC (by ``configure()``): restores at
    LoadDatabase, saves from iocInit on.  Which fields of which records are
    saved is part of the database being defined (``_ioc.Database.autosave``)."""

    def __init__(self, ioc: IOC) -> None:
        self.directory: Path | None = None
        self.name = "autosave"
        self.save_period = 30.0
        self.timestamped_backups = True
        self.enabled = True
        self.lock = threading.Lock()
        self.last_saved: dict[str, Any] | None = None   # key (NAME or NAME.FIELD) -> value
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        # An unreadable file we could not keep: never overwrite it.
        self.unwritable: Path | None = None
        # For softioc.metrics: files written, writes that failed, and when
        # the last one was written (POSIX time; None: not yet).
        self.saves = 0
        self.failures = 0
        self.last_save_time: float | None = None
        self.tracked = ioc.database.autosave             # record name -> (record, fields)
        ioc.hooks.before_load.append(restore)
        ioc.hooks.after_init.append(start)


def _state() -> _Autosave:
    """Autosave's settings and saver, plugged into the IOC on first use."""
    return ioc.plug("autosave", _Autosave)


def default_directory() -> Path | None:
    """Where autosave saves if no directory is given: ``$PYTHONIOC_AUTOSAVE_DIR``
    if set, else ``/autosave`` if it is a directory (a container's autosave
    volume), else None."""
    given = os.environ.get("PYTHONIOC_AUTOSAVE_DIR", "").strip()
    if given:
        return Path(given)
    return Path(DEFAULT_DIRECTORY) if os.path.isdir(DEFAULT_DIRECTORY) else None


def configure(directory: str | os.PathLike[str] | None = None, name: str = "autosave",
              save_period: float = 30.0, timestamped_backups: bool = True,
              enabled: bool = True) -> None:
    """Where and how often to save: ``DIRECTORY/NAME.softsav`` every ``save_period`` s
    (``directory`` None: ``default_directory()``, which must then be one)."""
    if save_period <= 0:
        raise ValueError("save_period must be positive")
    if directory is None:
        directory = default_directory()
        if directory is None:
            raise ValueError(f"autosave.configure(): no directory given, and neither "
                             f"PYTHONIOC_AUTOSAVE_DIR nor {DEFAULT_DIRECTORY} is there")
    config = _state()
    config.directory = Path(directory)
    config.name = name
    config.save_period = save_period
    config.timestamped_backups = timestamped_backups
    config.enabled = enabled
    config.directory.mkdir(parents=True, exist_ok=True)


def use_default_directory() -> Path | None:
    """Save into ``default_directory()`` (with ``configure()``'s other defaults)
    unless ``configure()`` was or will be called: ``pythonioc run`` calls this
    before the script.  The directory, or None if there is none (then nothing
    changes)."""
    directory = default_directory()
    if directory is None:
        return None
    config = _state()
    if config.directory is None:
        config.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
    return config.directory


def _active() -> _Autosave | None:
    """Autosave's state if configured, enabled and with something to save."""
    state: _Autosave | None = ioc.features.get("autosave")
    if state is None or state.directory is None or not state.enabled or not state.tracked:
        return None
    return state


def _path() -> Path:
    config = _state()
    assert config.directory is not None
    return config.directory / f"{config.name}.softsav"


def add(record: Any, spec: bool | str | Sequence[str] = True) -> None:
    """Autosave ``record``'s fields (True means VAL)."""
    _core.request_autosave(record, _core.autosave_fields(spec))


@contextlib.contextmanager
def Autosave(fields: bool | str | Sequence[str] = True) -> Iterator[None]:  # noqa: N802
    """Autosave ``fields`` of every record built inside the ``with`` block
    (added to those of a record's own ``autosave=``)."""
    blocks = ioc.database.autosave_blocks
    blocks.append(_core.autosave_fields(fields))
    try:
        yield
    finally:
        blocks.pop()


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
    path = _path()
    if not path.exists():
        return {}
    try:
        return _parse(path.read_text())
    except Exception as e:      # noqa: BLE001 - any bad file: YAML, JSON, encoding, depth
        kept = _keep_unreadable(path)
        if kept is None:
            _state().unwritable = path
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
    """Apply saved values to records about to be loaded (at LoadDatabase)."""
    state = _active()
    if state is None:
        return
    saved = _read()
    for name, (record, fields) in state.tracked.items():
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
                    setattr(record, field, saved[key])      # the static field
            except Exception as e:  # a mismatched file must not stop the IOC
                log.warning("autosave: cannot restore %s.%s = %r: %s",
                            name, field, saved[key], e)
    if saved:
        _backup(state)
    state.last_saved = saved or None


def _backup(state: _Autosave) -> None:
    path = _path()
    if not state.timestamped_backups:
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


def _snapshot(state: _Autosave) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, (record, fields) in state.tracked.items():
        for field in fields:
            try:
                if field == "VAL":
                    data[name] = _plain(record.get())
                else:
                    data[_key(name, field)] = str(_core.get_field(f"{name}.{field}"))
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
    state = _active()
    if state is None:
        return False
    if not _core.is_running() or state.unwritable == _path():
        return False
    with state.lock:
        data = _snapshot(state)
        if data == state.last_saved:
            return False
        try:
            _write(data)
        except BaseException:
            state.failures += 1
            raise
        state.last_saved = data
        state.saves += 1
        state.last_save_time = time.time()
        return True


def _run(state: _Autosave) -> None:
    while not state.stopping.wait(state.save_period):
        try:
            save_now()
        except Exception:
            log.exception("autosave failed")


def start() -> None:
    """Start the periodic saver (runs after iocInit)."""
    state = _active()
    if state is not None and state.thread is None:
        state.thread = threading.Thread(target=_run, args=(state,), name="softioc-autosave",
                                        daemon=True)
        state.thread.start()
        _core.at_shutdown(stop)


def stop() -> None:
    """Save once more and stop the saver (at exit)."""
    state = ioc.features.get("autosave")
    if state is not None:
        state.stopping.set()
    try:
        save_now()
    except Exception:
        log.exception("autosave at exit failed")

