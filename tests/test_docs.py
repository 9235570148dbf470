"""Every code block of the documentation (docs/) is run here.

How each kind of block is run:

* ``.. literalinclude:: ../snippets/NAME.py``: a whole IOC.  SNIPPETS below
  says how to start it (an IOCProcess: a subprocess on private loopback
  ports) and what to check with real clients; a snippet's console and pycon
  blocks (below) are replayed against it first.  Other included files (a .db
  file, an ACF) must be used by a snippet.
* ``.. code-block:: console`` (``$ command`` lines, each followed by the
  output it prints) and ``.. code-block:: pycon`` (``>>>`` lines typed into
  the IOC's shell): replayed against the IOC of the snippet named by the
  nearest ``.. ioc-session: NAME.py`` comment above them on the same page.
  Each command's output is compared with the page (doctest rules: ``...``
  matches anything, runs of blanks are equal, time stamps match any time);
  a read (caget, pvget) is retried for a few seconds, since the IOC updates
  records in its own time.  Expected pycon output must appear in what the
  IOC printed.
* ``.. code-block:: python`` (and literal blocks in the docstrings the
  reference pages are generated from): run as a script in a fresh
  subprocess, in a temporary directory, on private loopback ports.  Inside
  an ``ioc-session`` it is a client of that IOC (its environment points at
  the IOC).  A block that starts a long-running IOC needs an entry in
  WHOLE_IOCS (the founding page's examples, the PandA use case).

* ``.. code-block:: text``: a diagram (the architecture page's), nothing to
  run; the site build checks it like any page.

A block of any other kind fails the test, as does a snippet without checks,
so a new example cannot go untested.  The last test builds the site with
warnings as errors (skipped when Sphinx is not installed: the ``docs`` extra).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from softioc import testing
from softioc.testing import IOCProcess, client_env, epics_tool, free_port, monitor

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPET_DIR = DOCS / "snippets"
# The founding page, outside the repository: beside it (shared/ next to a clone), or where
# PYTHONIOC_SEED_PAGE says (.ci/run sets it: its tests run in a copy of the tree elsewhere).
SEED = Path(os.environ.get("PYTHONIOC_SEED_PAGE")
            or ROOT.parent / "shared" / "seed" / "why-use-pythonioc.rst")


# ---- collecting the blocks -------------------------------------------------

@dataclass
class Block:
    page: str                   # where it is shown, relative to the repository
    line: int
    kind: str                   # python, console, pycon, include, other
    text: str
    lang: str = ""
    session: str | None = None  # the snippet of the nearest ioc-session comment
    restart: bool = False       # that comment says "restart": a new IOC from here on

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+(code-block|code|sourcecode|literalinclude|include)"
                        r"::\s*(.*?)\s*$")
_SESSION = re.compile(r"^\.\.\s+ioc-session:\s*(\S+)\s*(restart)?\s*$")
_LANG_KIND = {"": "python", "python": "python", "python3": "python", "py": "python",
              "console": "console", "shell-session": "console", "pycon": "pycon",
              "text": "diagram"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body(lines: list[str], start: int, parent_indent: int) -> tuple[str, int]:
    """The block indented deeper than parent_indent from start (after the
    directive's ``:option:`` lines); returns it dedented, and the next line."""
    i = start
    while i < len(lines) and lines[i].strip().startswith(":") and \
            _indent(lines[i]) > parent_indent:
        i += 1
    body = []
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > parent_indent):
        body.append(lines[i])
        i += 1
    return textwrap.dedent("\n".join(body)).strip("\n") + "\n", i


def rst_blocks(path: Path, text: str | None = None, page: str | None = None) -> list[Block]:
    """Code blocks of an rst file (following ``.. include::``), or of a docstring."""
    lines = (path.read_text() if text is None else text).splitlines()
    page = page or str(path.relative_to(ROOT))
    blocks: list[Block] = []
    session = None
    restart = False
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _SESSION.match(line.strip())
        if m:
            session, restart = m.group(1), bool(m.group(2))
            i += 1
            continue
        m = _DIRECTIVE.match(line)
        if m:
            indent, name, arg = len(m.group(1)), m.group(2), m.group(3)
            if name == "include":
                blocks += rst_blocks((path.parent / arg).resolve())
                i += 1
                continue
            if name == "literalinclude":
                target = (path.parent / arg).resolve()
                blocks.append(Block(page, i + 1, "include", str(target), session=session))
                _, i = _body(lines, i + 1, indent)
                continue
            body, end = _body(lines, i + 1, indent)
            lang = arg.lower()
            blocks.append(Block(page, i + 1, _LANG_KIND.get(lang, "other"), body, lang,
                                session, restart))
            restart = False
            i = end
            continue
        stripped = line.rstrip()
        if stripped.endswith("::") and not stripped.lstrip().startswith(".."):
            body, end = _body(lines, i + 1, _indent(line))
            if body.strip():
                blocks.append(Block(page, i + 1, "python", body, "", session))
            i = end
            continue
        i += 1
    return blocks


def md_blocks(path: Path) -> list[Block]:
    """Fenced and indented code blocks of a Markdown page."""
    lines = path.read_text().splitlines()
    page = str(path.relative_to(ROOT))
    blocks = []
    i = 0
    previous_blank = True
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(```+|~~~+)\s*(\S*)", line)
        if fence:
            end = i + 1
            while end < len(lines) and not lines[end].startswith(fence.group(1)):
                end += 1
            lang = fence.group(2).lower()
            blocks.append(Block(page, i + 1, _LANG_KIND.get(lang, "other"),
                                "\n".join(lines[i + 1:end]) + "\n", lang))
            i, previous_blank = end + 1, False
            continue
        if previous_blank and line.startswith("    ") and line.strip():
            end = i
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            blocks.append(Block(page, i + 1, "other",
                                textwrap.dedent("\n".join(lines[i:end])).strip() + "\n", "text"))
            i, previous_blank = end, True
            continue
        previous_blank = not line.strip()
        i += 1
    return blocks


# Reference pages: which objects' docstrings autodoc shows.
_AUTO = re.compile(r"^\.\.\s+(currentmodule|automodule|autoclass|autofunction|autodata|"
                   r"automethod|autoattribute)::\s*(\S+)")


def _object(dotted: str) -> Any:
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ImportError:
            continue
        for part in parts[n:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def _documented(page: Path) -> list[tuple[str, Any]]:
    """(name, object) for each object an auto* directive of page shows,
    with the members its ``:members:`` option lists (and their methods)."""
    lines = page.read_text().splitlines()
    module = None
    shown: list[tuple[str, Any]] = []
    for i, line in enumerate(lines):
        m = _AUTO.match(line.strip())
        if not m:
            continue
        kind, name = m.groups()
        if kind in ("currentmodule", "automodule"):
            module = name
            if kind == "currentmodule":
                continue
        try:
            obj = _object(name)
        except (ImportError, AttributeError):
            name = f"{module}.{name}"
            obj = _object(name)
        shown.append((name, obj))
        options = []
        for follow in lines[i + 1:]:
            if not follow.strip() or not follow.startswith(" "):
                break
            options.append(follow.strip())
        members = " ".join(options).partition(":members:")[2].partition(":")[0]
        for member in filter(None, (x.strip() for x in members.split(","))):
            value = getattr(obj, member)
            shown.append((f"{name}.{member}", value))
            if inspect.isclass(value):
                shown += [(f"{name}.{member}.{k}", v) for k, v in vars(value).items()
                          if not k.startswith("_")]
    return shown


def docstring_blocks() -> list[Block]:
    """Literal blocks in the docstrings the reference pages show."""
    blocks: list[Block] = []
    seen: set[str] = set()
    for page in sorted((DOCS / "reference").glob("*.rst")):
        for name, obj in _documented(page):
            doc = getattr(obj, "__doc__", None)
            if not isinstance(doc, str) or doc in seen:
                continue
            seen.add(doc)
            blocks += rst_blocks(page, inspect.cleandoc(doc), page=f"docstring of {name}")
    return blocks


def all_blocks() -> list[Block]:
    blocks = []
    for path in sorted(DOCS.rglob("*")):
        if "_build" in path.parts or "snippets" in path.parts:
            continue
        if path.suffix == ".rst":
            blocks += rst_blocks(path)
        elif path.suffix == ".md":
            blocks += md_blocks(path)
    return blocks + docstring_blocks()


BLOCKS = all_blocks()


# ---- running things ----------------------------------------------------------

_STAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?")
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def matches(want: str, got: str) -> bool:
    """Doctest comparison; a time stamp on the page matches any time stamp
    (and terminal colours in the output are ignored)."""
    return _CHECKER.check_output(_STAMP.sub("...", want), _COLOUR.sub("", got), _FLAGS)


def fresh_env(**extra: str) -> dict[str, str]:
    """This process's environment on private loopback ports."""
    env = dict(os.environ)
    env.update(client_env(free_port(), free_port(), free_port()))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_script(text: str, cwd: Path, env: dict[str, str], name: str = "block.py",
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    script = cwd / name
    script.write_text(text)
    result = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert result.returncode == 0, f"{name} failed ({result.returncode}):\n{result.stdout}"
    return result


_READS = {"caget", "cainfo", "pvget", "pvinfo"}
_TOOLS = _READS | {"caput", "pvput"}


def command_argv(command: str) -> list[str]:
    argv = shlex.split(command)
    if argv[0] in _TOOLS:
        return [epics_tool(argv[0]), *argv[1:]]
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    if argv[0] == "pythonioc":
        return [sys.executable, "-m", "softioc", *argv[1:]]
    raise AssertionError(f"the docs' console blocks cannot run {argv[0]!r}: {command}")


def console_steps(text: str) -> list[tuple[str, str]]:
    """``$ command`` lines, each with the output shown after it."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"a console block starts with '$ ': {text!r}"
            steps[-1][1].append(line)
    return [(command, "\n".join(out).strip("\n") + "\n" if out else "")
            for command, out in steps]


def pycon_steps(text: str) -> tuple[list[str], list[str]]:
    """The statements typed at ``>>>`` (with their ``...`` lines), and the
    output shown for them."""
    statements: list[str] = []
    outputs: list[str] = []
    for line in text.splitlines():
        if line.startswith(">>> "):
            statements.append(line[4:])
        elif line.startswith("... ") or line == "...":
            statements[-1] += "\n" + line[4:]
        elif line.strip():
            outputs.append(line)
    return statements, outputs


@dataclass
class Snippet:
    """How to run one docs/snippets file and what to check."""

    wait_for: str | None = None                  # a PV that answers once it is up
    check: Callable[[Session], None] | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()                  # modules it imports (skipped without)
    ioc: bool = True                             # False: not an IOC (a test file...)
    stop: Callable[[IOCProcess], None] | None = None   # how it is ended (default: EOF)
    runner: tuple[str, ...] = ()                 # Python's arguments before the file


class Session:
    """A snippet's IOC (or directory), and the console/pycon blocks run against it."""

    def __init__(self, name: str, spec: Snippet, tmp: Path) -> None:
        self.name, self.spec, self.cwd = name, spec, tmp
        for path in SNIPPET_DIR.iterdir():
            if path.is_file():
                shutil.copy(path, tmp / path.name)
        self.typed_outputs: list[str] = []
        self.iocs: list[IOCProcess] = []
        self.ioc: IOCProcess | None = self.start() if spec.ioc else None
        self.env = self.ioc.env if self.ioc else fresh_env()

    def start(self) -> IOCProcess:
        """Start the snippet's IOC (again: checks use this to restart it)."""
        ioc = IOCProcess([*self.spec.runner, str(self.cwd / self.name), *self.spec.args],
                         cwd=str(self.cwd),
                         env=self.spec.env, wait_for=self.spec.wait_for)
        self.iocs.append(ioc)
        return ioc

    def stop(self, ioc: IOCProcess) -> int:
        if self.spec.stop and ioc.proc.poll() is None:
            self.spec.stop(ioc)
        return ioc.stop()

    def run(self, command: str) -> str:
        """Run a console command here; its output."""
        result = subprocess.run(command_argv(command), env=self.env, cwd=self.cwd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=120)
        return result.stdout

    def replay(self, block: Block) -> None:
        where = f"{block.id} ({block.kind} block)"
        if block.restart:
            assert self.ioc is not None, f"{where}: nothing to restart"
            self.check_typed(self.ioc)
            assert self.stop(self.ioc) == 0, self.ioc.output()
            self.ioc = self.start()
            self.env = self.ioc.env
        if block.kind == "console":
            for command, want in console_steps(block.text):
                got = self.run(command)
                # reads may run before what they read has landed: a monitor's
                # update, the put log written by a thread of its own
                argv = shlex.split(command)
                retry = argv[0] in _READS or (
                    argv[:2] == ["python", "-c"] and argv[2].startswith("print(open("))
                deadline = time.monotonic() + 5
                while retry and not matches(want, got) and time.monotonic() < deadline:
                    time.sleep(0.1)
                    got = self.run(command)
                assert matches(want, got), f"{where}: $ {command}\nwanted:\n{want}got:\n{got}"
        elif block.kind == "pycon":
            assert self.ioc is not None, f"{where}: no IOC shell to type into"
            statements, outputs = pycon_steps(block.text)
            for statement in statements:
                self.ioc.send(statement)
                if "\n" in statement:
                    self.ioc.send("")
            self.typed_outputs += outputs
        elif block.kind == "python":
            run_script(block.text, self.cwd, self.env, name="client.py")
        else:
            raise AssertionError(f"{where}: cannot be run in a session")

    def check_typed(self, ioc: IOCProcess) -> None:
        """What the pycon blocks show was printed by the IOC (once it stopped)."""
        self.stop(ioc)
        output = ioc.output()
        for want in self.typed_outputs:
            assert any(matches(want, line) for line in output.splitlines()), \
                f"{self.name}: {want!r} not printed by the IOC:\n{output}"
        self.typed_outputs = []

    def close(self) -> None:
        if self.ioc is not None:
            self.check_typed(self.ioc)
        codes = [self.stop(ioc) for ioc in self.iocs]
        assert all(code == 0 for code in codes), \
            f"{self.name} exited with {codes}:\n" + "\n".join(i.output() for i in self.iocs)


# ---- what each snippet must do -------------------------------------------------

def check_first_ioc(s: Session) -> None:
    ioc = s.ioc
    assert ioc.caget("FIRST:TEMPERATURE.EGU") == "degC"
    assert ioc.caget("FIRST:HEATER.DRVH") == "100"
    ioc.caput("FIRST:HEATER", "10")
    ioc.wait_value("FIRST:TEMPERATURE", "21.5")


def _counts_up(ioc: IOCProcess, pv: str) -> None:
    first = int(ioc.caget(pv))
    ioc.wait_value(pv, lambda v: int(v) > first, timeout=10)


def check_blocking_moves(prefix: str) -> Callable[[Session], None]:
    def check(s: Session) -> None:
        ioc = s.ioc
        _counts_up(ioc, f"{prefix}:UPTIME")          # the loop of the snippet runs
        start = time.monotonic()
        result = ioc.caput(f"{prefix}:DEMAND", "7.5")  # caput -c: waits for move()
        assert time.monotonic() - start >= 0.45, "the put did not wait for on_update"
        assert "rror" not in result.stdout
        assert ioc.caget(f"{prefix}:POSITION") == "7.5"
    return check


def check_asyncio_main(s: Session) -> None:
    _counts_up(s.ioc, "MAIN:UPTIME")
    assert "rror" not in s.ioc.caput("MAIN:GAIN", "2.5").stdout
    s.ioc.proc.send_signal(signal.SIGTERM)
    assert s.ioc.proc.wait(10) == 0
    assert "gain 2.5" in s.ioc.output()


def check_calc(s: Session) -> None:
    ioc = s.ioc
    ioc.send("a.set(4)")
    ioc.wait_value("CALC:SUM", "6")
    assert ioc.caget("CALC:MEAN") == "3"
    assert ioc.caget("CALC:HIGH") == "No"
    # The .db file reading PVs of another IOC, over Channel Access links.
    other = s.cwd / "other_ioc.py"
    other.write_text(
        "from softioc import builder, softioc\n"
        "builder.aOut('OTHER:B', 10.0)\n"
        "softioc.dbLoadDatabase('average.db', '.', 'P=OTHER:,IN1=CALC:A,IN2=OTHER:B')\n"
        "builder.LoadDatabase()\nsoftioc.iocInit()\nsoftioc.interactive_ioc(globals())\n")
    env = {"EPICS_CA_ADDR_LIST": f"127.0.0.1 127.0.0.1:{ioc.ca_port}"}
    with IOCProcess([str(other)], cwd=str(s.cwd), env=env, wait_for="OTHER:MEAN") as o:
        o.wait_value("OTHER:MEAN", "7")
        ioc.caput("CALC:A", "20")
        o.wait_value("OTHER:MEAN", "15")
        assert o.stop() == 0
    s.stop(ioc)
    out = ioc.output()
    assert out.index("sum above 10") < out.index("sum back to 10 or less")


def check_aliases(s: Session) -> None:
    ioc = s.ioc
    # One record behind the names: a put through an alias is seen under every name
    # (the page's caput BL01:SP 25; input records refuse client puts).
    assert {ioc.caget(n) for n in ("BL01:SETPOINT", "BL01:SP")} == {"25"}
    ioc.send("temp.set(31.5)")
    for name in ("BL01:TEMP", "BL01:T", "OLD-BL01:TEMPERATURE"):
        ioc.wait_value(name, "31.5")
    assert ioc.caget("OLD-BL01:PUMP-RPM.EGU") == "rpm"
    # A clashing alias is refused; a new one works after iocInit.
    ioc.send("builder.Alias(setpoint, 'BL01:TEMP')")
    ioc.send("builder.Alias(setpoint, 'NEW-BL01:SETPOINT')")
    ioc.wait_for_pv("NEW-BL01:SETPOINT", timeout=10)
    assert ioc.caget("NEW-BL01:SETPOINT") == "25"
    s.stop(ioc)
    assert "RecordExistsError" in ioc.output()          # a ValueError


def check_health(s: Session) -> None:
    ioc = s.ioc
    first = int(ioc.caget("BL01-IOC-01:HEALTH:HEARTBEAT"))
    ioc.wait_value("BL01-IOC-01:HEALTH:HEARTBEAT", lambda v: int(v) >= first + 2, timeout=10)
    # The record count includes the health records themselves and SETPOINT.
    assert int(ioc.caget("BL01-IOC-01:HEALTH:RECORDS")) >= 15
    assert float(ioc.caget("BL01-IOC-01:HEALTH:MEM_RSS")) > 10
    # A camonitor is a CA client while it runs (the count follows within a period).
    with monitor(ioc, "BL01-IOC-01:HEALTH:HEARTBEAT", settle=0):
        ioc.wait_value("BL01-IOC-01:HEALTH:CA_CLIENTS", lambda v: int(v) >= 1, timeout=5)


def check_iocstats(s: Session) -> None:
    ioc = s.ioc
    uptime = ioc.caget("BL01-IOC-01:UPTIME")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", uptime), uptime
    ioc.wait_value("BL01-IOC-01:UPTIME", lambda v: v != uptime, timeout=5)
    assert ioc.caget("BL01-IOC-01:SETPOINT") == "1"
    # The test's user is not in UAG admins: SYSRESET refuses the write.
    result = ioc.caput("BL01-IOC-01:SYSRESET", "1")
    assert "no write access" in result.stdout.lower() or result.returncode != 0, result.stdout
    time.sleep(1.5)
    assert ioc.proc.poll() is None, ioc.output()
    assert ioc.caget("BL01-IOC-01:SYSRESET.ASG") == "IOCADMIN"


def check_dynamic_before(s: Session) -> None:
    assert s.ioc.caget("PLANT:TEMP2.EGU") == "degC"
    assert s.ioc.caget("PLANT:TEMP1.PREC") == "1"


def check_dynamic_after(s: Session) -> None:
    ioc = s.ioc
    for name in ("PROBE2", "PROBE3"):
        ioc.caput("LAB:ADD", name)
    ioc.wait_value("LAB:COUNT", "3")
    assert ioc.run_tool("caget", "LAB:PROBE3").returncode == 0
    assert "3" in ioc.pvget("LAB:PROBE3", "-v")                  # PREC over PV Access
    assert ioc.caget("LAB:PROBE1.NAME") == "LAB:SPARE_aIn_1"    # as the page says
    # Reusing a name fails in on_update: logged, and LAB:ADD shows the alarm.
    ioc.caput("LAB:ADD", "PROBE1")
    ioc.wait_value("LAB:ADD.SEVR", "INVALID")
    assert ioc.caget("LAB:ADD.STAT") == "WRITE"
    s.stop(ioc)
    assert "already exists" in ioc.output()


def check_autosave(s: Session) -> None:
    saved = (s.cwd / "state" / "oven.softsav").read_text()
    assert "OVEN:SETPOINT: 180.0" in saved and "OVEN:LIMIT.DRVH: '250'" in saved
    assert "OVEN:STATUS" not in saved
    assert list((s.cwd / "state").glob("oven.softsav.*")), "no backup of the file found"


def check_access(s: Session) -> None:
    ioc = s.ioc
    assert "Write access denied" in ioc.caput("SAFE:SERIAL", "x").stdout
    assert ioc.caget("SAFE:SERIAL") == "SN-0042"
    assert "read, no write" in ioc.run_tool("cainfo", "SAFE:TARGET").stdout
    ioc.send("target.set(3.0)")                      # Python is not a client
    ioc.wait_value("SAFE:TARGET", "3")
    s.stop(ioc)
    assert "HEATER.DRVH is now 50" in ioc.output()


def check_access_hosts(s: Session) -> None:
    # 127.0.0.1 is not a console: the page's caput was refused, and Python was not told.
    ioc = s.ioc
    assert "read, no write" in ioc.run_tool("cainfo", "RF:PHASE").stdout
    assert ioc.caget("RF:PHASE") == "0"
    s.stop(ioc)
    assert "phase set to" not in ioc.output()


def check_putlog(s: Session) -> None:
    # the page's puts, in the file, the log and the PV
    ioc = s.ioc
    puts = [json.loads(line) for line in (s.cwd / "puts.jsonl").read_text().splitlines()]
    assert [(p["record"], p["old"], p["new"], p["refused"]) for p in puts] == [
        ("OVEN:SETPOINT", "20", "180", False), ("OVEN:SETPOINT", "180", "180", True),
        ("OVEN:MODE", "Off", "Heat", False)]
    assert puts[0]["protocol"] == "ca" and puts[1]["protocol"] == "pva"
    s.stop(ioc)
    assert "WARNING " in ioc.output() and "OVEN:SETPOINT.VAL '180' -> '180' REFUSED" in ioc.output()


def check_pva(s: Session) -> None:
    ioc = s.ioc
    # the p4p block of the page wrote the table
    assert ioc.caget("STAGE:POINTS:X").split()[:3] == ["100", "5", "6"]
    assert ioc.caget("STAGE:POINTS:Y.NORD") == "2"
    ioc.send("move(3.0, 4.0)")
    testing.wait_until(lambda: "value 4" in ioc.pvget("STAGE:POSITION", "-r", "y.value"),
                       what="STAGE:POSITION's y.value 4 over PVA")
    assert "value 3" in ioc.pvget("STAGE:POSITION", "-r", "x.value")
    s.stop(ioc)
    assert "x column: [5.0, 6.0]" in ioc.output()


def check_pvs(s: Session) -> None:
    ioc = s.ioc
    # the p4p block of the page replaced the samples: C3's PV came, A1's went
    assert "7.25" in ioc.pvget("LAB:SAMPLE:C3:X")
    gone = ioc.run_tool("pvget", "-w", "1", "LAB:SAMPLE:A1:X", check=False)
    assert gone.returncode != 0, gone.stdout
    assert "mode -> 1" in ioc.output()
    ioc.send("temperature.post(22.5, severity=1, message='warm')")
    testing.wait_until(lambda: "22.5" in ioc.pvget("LAB:TEMPERATURE"),
                       what="LAB:TEMPERATURE posted from the shell")
    assert "MINOR" in ioc.pvget("LAB:TEMPERATURE")
    s.stop(ioc)


def check_http(s: Session) -> None:
    # the page's client block asked /healthz, /readyz and /metrics; here the rest
    import urllib.request

    base = "http://" + s.ioc.env["PYTHONIOC_HTTP"]
    with urllib.request.urlopen(base + "/metrics") as answer:
        text = answer.read().decode()
    assert 'pythonioc_records{type="ao"} 1.0' in text and "pythonioc_ready 1.0" in text
    with urllib.request.urlopen(base + "/") as answer:
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    s.ioc.caput("OVEN:SETPOINT", "180")
    s.ioc.wait_value("OVEN:TEMPERATURE", "180")
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    assert 'pythonioc_puts_accepted_total{protocol="ca"} 1.0' in text, text


def check_main(s: Session) -> None:
    ioc = s.ioc
    # pythonioc run: the health records under IOC_PREFIX (the page's probes read them)
    assert ioc.caget("BL01-EA-OVEN-01:UPTIME").isdigit()
    assert "New : BL01-EA-OVEN-01:TARGET" in ioc.caput("BL01-EA-OVEN-01:TARGET", "180").stdout
    assert ioc.caget("BL01-EA-OVEN-01:TEMPERATURE") == "180"
    assert s.stop(ioc) == 0, ioc.output()
    # ... and autosave into PYTHONIOC_AUTOSAVE_DIR (in a container: /autosave)
    assert "BL01-EA-OVEN-01:TARGET: 180.0" in (s.cwd / "autosave" / "autosave.softsav").read_text()


def check_thermostat_tests(s: Session) -> None:
    pass        # the page's console block ran the tests and checked "3 passed"


SNIPPETS: dict[str, Snippet] = {
    "first_ioc.py": Snippet("FIRST:TEMPERATURE", check_first_ioc),
    "asyncio_ioc.py": Snippet("ASYNC:UPTIME", check_blocking_moves("ASYNC")),
    "asyncio_main.py": Snippet("MAIN:UPTIME", check_asyncio_main),
    "cothread_ioc.py": Snippet("COTHREAD:UPTIME", check_blocking_moves("COTHREAD"),
                               needs=("cothread",)),
    "calc_ioc.py": Snippet("CALC:SUM", check_calc),
    "dynamic_before.py": Snippet("PLANT:FLOW", check_dynamic_before),
    "dynamic_after.py": Snippet("LAB:COUNT", check_dynamic_after),
    "autosave_ioc.py": Snippet("OVEN:SETPOINT", check_autosave),
    "access_ioc.py": Snippet("SAFE:TARGET", check_access),
    "access_hosts_ioc.py": Snippet("RF:PHASE", check_access_hosts),
    "putlog_ioc.py": Snippet("OVEN:SETPOINT", check_putlog),
    "pva_ioc.py": Snippet("STAGE:X", check_pva, needs=("p4p",)),
    "pvs_ioc.py": Snippet("LAB:EXPOSURE", check_pvs, needs=("p4p",)),
    "alias_ioc.py": Snippet("BL01:PUMP:SPEED", check_aliases),
    "health_ioc.py": Snippet("BL01-IOC-01:HEALTH:HEARTBEAT", check_health),
    "iocstats_ioc.py": Snippet("BL01-IOC-01:UPTIME", check_iocstats),
    "http_ioc.py": Snippet("OVEN:TEMPERATURE", check_http, needs=("h11", "prometheus_client"),
                           env={"PYTHONIOC_HTTP": f"127.0.0.1:{free_port()}"}),
    "test_thermostat_ioc.py": Snippet(check=check_thermostat_tests, ioc=False, needs=("p4p",)),
    # as the image runs it: pythonioc run, with the chart's IOC_PREFIX
    "main.py": Snippet("BL01-EA-OVEN-01:SETPOINT", check_main, runner=("-m", "softioc", "run"),
                       env={"IOC_PREFIX": "BL01-EA-OVEN-01",
                            "PYTHONIOC_AUTOSAVE_DIR": "autosave"}),
}

# Files the snippets read (shown with literalinclude): file -> the snippet using it.
DATA: dict[str, str] = {
    "average.db": "calc_ioc.py",
    "channels.json": "dynamic_before.py",
    "pump.db": "alias_ioc.py",
    "oven-ioc.service": "autosave_ioc.py",   # the unit runs it: tests/network/test_service.py
    "oven-ioc.procserv": "autosave_ioc.py",  # procServ runs it: tests/test_procserv.py
    "Containerfile": "main.py",       # the image runs it: tests/test_container.py
    "values.yaml": "main.py",         # the chart runs it: tests/test_container.py
    "thermostat_ioc.py": "test_thermostat_ioc.py",
}


# ---- the tests -------------------------------------------------------------------

def _session_blocks(name: str) -> list[Block]:
    return [b for b in BLOCKS if b.session == name and b.kind != "include"]


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet(name: str, tmp_path: Path) -> None:
    """Start the snippet, replay the docs' sessions against it, check it."""
    spec = SNIPPETS[name]
    for module in spec.needs:
        pytest.importorskip(module, reason=f"pip install {module} (in the test extra)")
    session = Session(name, spec, tmp_path)
    try:
        for block in _session_blocks(name):
            session.replay(block)
        assert spec.check is not None
        spec.check(session)
    finally:
        session.close()


FRAGMENTS = [b for b in BLOCKS if b.kind == "python" and b.session is None]


@pytest.mark.parametrize("block", FRAGMENTS, ids=[b.id for b in FRAGMENTS])
def test_python_block(block: Block, tmp_path: Path) -> None:
    """Python blocks run as scripts (whole IOCs by their entry in WHOLE_IOCS)."""
    for marker, run in WHOLE_IOCS.items():
        if marker in block.text:
            run(block, tmp_path)
            return
    assert "interactive_ioc(" not in block.text, \
        f"{block.id} serves until stopped: give it an entry in WHOLE_IOCS"
    run_script(PRELUDE + block.text, tmp_path, fresh_env())


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "other"],
                         ids=[b.id for b in BLOCKS if b.kind == "other"])
def test_shell_block(block: Block, tmp_path: Path) -> None:
    """Blocks that are neither Python nor console sessions: each has a runner."""
    assert block.text in SHELL_BLOCKS, f"{block.id}: no way to run this {block.lang!r} block"
    SHELL_BLOCKS[block.text](tmp_path)


def test_every_block_is_run() -> None:
    problems = []
    for b in BLOCKS:
        if b.kind in ("console", "pycon") and b.session is None:
            problems.append(f"{b.id}: {b.kind} block without an '.. ioc-session:' comment")
        if b.session is not None and b.session not in SNIPPETS:
            problems.append(f"{b.id}: session {b.session} is not in SNIPPETS")
        if b.kind == "diagram" and re.search(r"^\s*(\$ |>>> )", b.text, re.M):
            problems.append(f"{b.id}: a 'text' block is a diagram; commands go in console")
        if b.kind == "include":
            target = Path(b.text)
            if not target.exists():
                problems.append(f"{b.id}: {target} does not exist")
            elif target.parent != SNIPPET_DIR:
                problems.append(f"{b.id}: include examples from docs/snippets")
            elif target.name not in SNIPPETS and target.name not in DATA:
                problems.append(f"{b.id}: {target.name} is in neither SNIPPETS nor DATA")
    for name, user in DATA.items():
        if name not in (SNIPPET_DIR / user).read_text():
            problems.append(f"DATA: {user} does not use {name}")
    assert not problems, "\n".join(problems)


def test_every_snippet_is_shown() -> None:
    shown = {Path(b.text).name for b in BLOCKS if b.kind == "include"}
    files = {p.name for p in SNIPPET_DIR.iterdir() if p.is_file()}
    assert files - shown == set(), "snippets no page shows"
    assert files == set(SNIPPETS) | set(DATA)


def test_reference_names_every_public_name() -> None:
    """Each reference page documents every name in its modules' __all__."""
    text = "\n".join(p.read_text() for p in (DOCS / "reference").glob("*.rst"))
    # Names in ``:members:`` lists (which may go on over indented lines).
    lists = re.findall(r"^(\s+):members:(.*(?:\n\1\s+\S.*)*)", text, re.M)
    listed = {name.strip() for _, names in lists for name in names.split(",")}
    missing = []
    for module in sorted(set(re.findall(r"^\.\.\s+automodule::\s*(\S+)", text, re.M))):
        for name in getattr(importlib.import_module(module), "__all__", []):
            if name not in listed and not re.search(rf"(::|\.|``)\s*{re.escape(name)}\b", text):
                missing.append(f"{module}.{name}")
    assert not missing, f"not in docs/reference: {missing}"


@pytest.mark.skipif(not SEED.exists(), reason=f"the founding page is not at {SEED}: run "
                    "from a clone with shared/ beside it, or set PYTHONIOC_SEED_PAGE to the page")
def test_why_page_keeps_the_founding_text() -> None:
    """explanations/why.rst is the founding page: its text and code, verbatim."""
    page = (DOCS / "explanations" / "why.rst").read_text().splitlines()
    seed = SEED.read_text().splitlines()
    placeholders = [i for i, line in enumerate(seed) if line.startswith("ADD ")]
    kept = [line for i, line in enumerate(seed) if i not in placeholders]
    it = iter(page)
    assert all(any(line == p for p in it) for line in kept), "a founding line changed"


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="pip install 'epics-pythonioc[docs]' (sphinx)")
    pytest.importorskip("myst_parser", reason="pip install 'epics-pythonioc[docs]' (myst-parser)")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "html" / "index.html").exists()


# ---- blocks that are whole IOCs, or shell commands ---------------------------------

# Fragments import what they need; this only keeps the directories they name
# (autosave.configure("/var/lib/myioc")) inside the test's directory.
PRELUDE = """\
import pathlib as _pathlib
import softioc.autosave as _autosave
_configure = _autosave.configure
_autosave.configure = lambda directory, *args, **kwargs: _configure(
    _pathlib.Path.cwd() / str(directory).lstrip("/"), *args, **kwargs)
"""

UPSTREAM_DB = "".join(
    f'record(ai, "DEVICE{i}:CURRENT") {{ field(VAL, "{i}") field(PINI, "YES") }}\n'
    for i in range(100))

# The device of the founding page's second example: parameters that change.
MY_DEVICE_LIB = """
import cothread


class Param:
    def __init__(self, name, value):
        self.name, self.value = name, value


class Device:
    def __init__(self, hostname):
        self.params = [Param("DEVICE:COUNT", 0.0), Param("DEVICE:GAIN", 2.5)]

    def connect(self):
        pass

    def get_params(self):
        return list(self.params)

    def poll_changed_params(self):
        cothread.Sleep(0.1)
        self.params[0].value += 1
        return [self.params[0]]
"""


def run_average(block: Block, tmp: Path) -> None:
    """Averages 100 PVs of another IOC (EPICS's softIoc) with cothread.catools."""
    pytest.importorskip("cothread", reason="pip install cothread (in the test extra)")
    (tmp / "devices.db").write_text(UPSTREAM_DB)
    (tmp / "average.py").write_text(block.text)
    upstream = IOCProcess([epics_tool("softIoc"), "-S", "-d", str(tmp / "devices.db")],
                          python=False, wait_for="DEVICE99:CURRENT")
    try:
        # Clients of this IOC find it (no port) and the upstream IOC (its port).
        env = {"EPICS_CA_ADDR_LIST": f"127.0.0.1 127.0.0.1:{upstream.ca_port}"}
        with IOCProcess([str(tmp / "average.py")], env=env, cwd=str(tmp),
                        wait_for="AVERAGE:CURRENT") as ioc:
            assert float(ioc.caget("AVERAGE:CURRENT")) == pytest.approx(49.5)
            upstream.caput("DEVICE0:CURRENT", "100")
            ioc.wait_value("AVERAGE:CURRENT", lambda v: float(v) == pytest.approx(50.5))
            assert ioc.stop() == 0
    finally:
        upstream.proc.terminate()           # softIoc -S has no shell to end
        upstream.stop()


def run_device(block: Block, tmp: Path) -> None:
    """Makes a record per device parameter, polled by a cothread."""
    pytest.importorskip("cothread", reason="pip install cothread (in the test extra)")
    (tmp / "my_device_lib.py").write_text(MY_DEVICE_LIB)
    (tmp / "device_ioc.py").write_text(block.text)
    with IOCProcess([str(tmp / "device_ioc.py")], cwd=str(tmp),
                    wait_for="DEVICE:COUNT") as ioc:
        assert ioc.caget("DEVICE:GAIN") == "2.5"
        first = float(ioc.caget("DEVICE:COUNT"))
        ioc.wait_value("DEVICE:COUNT", lambda v: float(v) >= first + 5)
        assert ioc.stop() == 0


PANDA = ROOT / "examples" / "panda"


def run_panda(block: Block, tmp: Path) -> None:
    """The condensed PandA IOC, against examples/panda's simulated PandA."""
    pytest.importorskip("pandablocks", reason="pip install pandablocks (in the test extra)")
    port = free_port()
    sim = subprocess.Popen([sys.executable, str(PANDA / "sim_server.py"), str(port),
                            "--exit-after", "60"], stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([sim.stdout], [], [], 10)
        assert ready and "127.0.0.1" in sim.stdout.readline(), "simulator did not start"
        # "my-panda", 8888 in the page: this machine's simulator here.
        prelude = (f"import sys\nsys.path.insert(0, {str(PANDA)!r})\n"
                   "import panda_ioc\n"
                   "def PandaClient(host, port): "
                   f"return panda_ioc.PandaClient('127.0.0.1', {port})\n"
                   f"def AsyncPandaClient(host, port): "
                   f"return panda_ioc.AsyncPandaClient('127.0.0.1', {port})\n")
        (tmp / "panda_condensed.py").write_text(prelude + block.text)
        with IOCProcess([str(tmp / "panda_condensed.py")], cwd=str(tmp),
                        wait_for="PANDA:PULSE1:DELAY") as ioc:
            assert ioc.caget("PANDA:PULSE1:TRIG_EDGE") == "Rising"
            assert "rror" not in ioc.caput("PANDA:PULSE1:TRIG_EDGE", "Falling").stdout
            assert _ask(port, "PULSE1.TRIG_EDGE?") == "OK =Falling"
            refused = ioc.caput("PANDA:PULSE1:DELAY", "-1").stdout     # the box says ERR
            assert "failed" in refused, refused
            assert float(ioc.caget("PANDA:PULSE1:DELAY")) == 0
            assert _ask(port, "PULSE1.WIDTH=0.5") == "OK"              # behind its back
            ioc.wait_value("PANDA:PULSE1:WIDTH", "0.5")
            assert ioc.stop() == 0
    finally:
        sim.terminate()
        sim.wait(5)
        sim.stdout.close()


def run_monitor(block: Block, tmp: Path) -> None:
    """The condensed monitoring IOC, with examples/monitor's checks: its "/data"
    disk is this machine's "/", its "archiver" a TCP port this test opens and closes."""
    service = socket.socket()
    service.bind(("127.0.0.1", 0))
    service.listen()
    port = service.getsockname()[1]
    prelude = (f"import sys\nsys.path.insert(0, {str(ROOT / 'examples' / 'monitor')!r})\n"
               "import checks\n"
               "_disk, _probe = checks.disk, checks.probe\n"
               "checks.disk = lambda path: _disk('/')\n"
               f"checks.probe = lambda host, port, timeout: _probe('127.0.0.1', {port}, timeout)\n")
    (tmp / "monitor_condensed.py").write_text(prelude + block.text)
    try:
        with IOCProcess([str(tmp / "monitor_condensed.py")], cwd=str(tmp),
                        wait_for="BL:FURKA:SVC:ARCHIVER") as ioc:
            ioc.wait_value("BL:FURKA:SVC:ARCHIVER", "Up")
            assert 0 < float(ioc.caget("BL:FURKA:DISK:DATA")) <= 100
            service.close()                         # the service goes down
            ioc.wait_value("BL:FURKA:SVC:ARCHIVER", "Down")
            alarm = ioc.run_tool("caget", "-a", "BL:FURKA:SVC:ARCHIVER").stdout
            assert "MAJOR" in alarm, alarm
            beat = int(ioc.caget("BL:FURKA:IOC:HEARTBEAT"))
            ioc.wait_value("BL:FURKA:IOC:HEARTBEAT", lambda v: int(v) > beat)
            assert ioc.stop() == 0
    finally:
        service.close()


def _ask(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s, \
            s.makefile("rw", newline="\n") as stream:
        stream.write(line + "\n")
        stream.flush()
        return stream.readline().rstrip("\n")


MY_IOC = """\
from softioc import builder, softioc
builder.longIn("MY:PV", 42)
builder.aOut("MY:SETPOINT", 0.0, on_update=print)
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
"""


def run_as_tests(block: Block, tmp: Path) -> None:
    """A test module (the docstrings of softioc.testing and the pytest plugin):
    run it with pytest, against an IOC serving the PVs it names."""
    (tmp / "my_ioc.py").write_text(MY_IOC)
    (tmp / "test_example.py").write_text(block.text)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp, env=fresh_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=120)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout


# Python blocks that serve until stopped: a distinctive text -> how to run and check it.
WHOLE_IOCS: dict[str, Callable[[Block, Path], None]] = {
    '"AVERAGE:CURRENT"': run_average,
    "from my_device_lib import Device": run_device,
    "PandaClient(": run_panda,
    "import checks": run_monitor,
    "def test_my_ioc(": run_as_tests,
}


def strict_off(tmp: Path) -> None:
    """``PYTHONIOC_STRICT_PUTS=NO python my_ioc.py``: EPICS's lenient puts."""
    (tmp / "my_ioc.py").write_text(
        "from softioc import builder, softioc\n"
        "builder.longOut('STRICT:LO', 8)\n"
        "builder.LoadDatabase()\nsoftioc.iocInit()\nsoftioc.interactive_ioc(globals())\n")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = ["sh", "-c", "PYTHONIOC_STRICT_PUTS=NO exec python my_ioc.py"]
    with IOCProcess(command, python=False, env=env, cwd=str(tmp),
                    wait_for="STRICT:LO") as ioc:
        ioc.caput("STRICT:LO", "12abc")
        assert ioc.caget("STRICT:LO") == "12"       # EPICS's conversion, accepted
    with IOCProcess([str(tmp / "my_ioc.py")], cwd=str(tmp), wait_for="STRICT:LO") as ioc:
        assert "failed" in ioc.caput("STRICT:LO", "12abc").stdout
        assert ioc.caget("STRICT:LO") == "8"        # strict by default: refused


# Blocks that are neither Python nor console sessions: exact text -> runner.
SHELL_BLOCKS: dict[str, Callable[[Path], None]] = {
    "PYTHONIOC_STRICT_PUTS=NO python my_ioc.py\n": strict_off,
}
