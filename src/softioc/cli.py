"""The ``pythonioc`` command."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from typing import Any

from ._core import ioc
from ._version import __version__

COMMANDS = ("demo", "run", "screen", "migrate-check", "probe")


def _exec_python(args: list[str]) -> None:
    """Become ``python ARGS...`` (pythonSoftIOC's ``python -m softioc``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *args])


def module_main(argv: list[str] | None = None) -> None:
    """``python -m softioc``: as pythonSoftIOC's, ``python -m softioc SCRIPT
    ARGS...`` runs ``python SCRIPT ARGS...`` (no shell is added: the script
    decides), and with no arguments gives Python's own prompt; the
    ``pythonioc`` subcommands and ``--version`` work too."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        _exec_python([])
    main(args)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``pythonioc``: a subcommand, or a script to run."""
    words = sys.argv[1:] if argv is None else list(argv)
    if words and words[0] not in COMMANDS and not words[0].startswith("-"):
        _exec_python(words)     # `pythonioc my_ioc.py ARGS` is `python my_ioc.py ARGS`
    parser = argparse.ArgumentParser(
        prog="pythonioc",
        description="Run EPICS IOCs written in Python (Channel Access and PV Access). "
                    "`pythonioc SCRIPT [ARGS]` (and `python -m softioc SCRIPT [ARGS]`) "
                    "run SCRIPT with Python, as `python SCRIPT [ARGS]` would.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a demo IOC with a few records to caget/caput")
    demo.add_argument("--prefix", default=None,
                      help="record name prefix (default: $IOC_PREFIX if set, else DEMO)")
    demo.add_argument("--non-interactive", action="store_true",
                      help="no shell: serve until SIGINT/SIGTERM")
    run = sub.add_parser(
        "run", help="run an IOC script (as `python SCRIPT`)",
        description="Run a Python IOC script.  Options here apply when the script "
                    "leaves them to pythonIOC (iocInit() without a dispatcher; "
                    "interactive_ioc()).")
    run.add_argument("--dispatcher", choices=["asyncio", "cothread", "thread"],
                     help="what runs on_update callbacks (default: cothread's if the "
                          "script imports cothread, else a worker thread)")
    run.add_argument("--non-interactive", action="store_true",
                     help="no shell: interactive_ioc() serves until SIGINT/SIGTERM")
    run.add_argument("--no-pva", action="store_true", help="serve Channel Access only")
    run.add_argument("--http", metavar="HOST:PORT",
                     help="serve the HTTP endpoints (/healthz, /readyz, /metrics, the live "
                          "page /) on HOST:PORT (:PORT is 127.0.0.1:PORT), as PYTHONIOC_HTTP "
                          "does; needs the web extra")
    _script_arguments(run, "the Python file that builds and starts the IOC (default: "
                      f"$MAIN_PYTHON, else {CONTAINER_SCRIPT}, as in epics-containers)",
                      nargs="?")
    screen = sub.add_parser(
        "screen", help="write a Phoebus screen (.bob) for an IOC script's records",
        description="Run an IOC script in describe mode: it builds its records, and at "
                    "iocInit() the screen is written and the script ends, serving nothing. "
                    "Every builder record gets a widget: a write widget and read-back for "
                    "output records, a read widget for input records, grouped by the part "
                    "of the name before its last ':'.  Needs pvi.")
    screen.add_argument("-o", "--output", default=None,
                        help="the .bob file to write (default: SCRIPT's name with .bob, in "
                             "$PYTHONIOC_OPI_DIR or /epics/opi if there is one, else here)")
    screen.add_argument("--title", default=None, help="screen title (default: SCRIPT's name)")
    _script_arguments(screen, "the Python file that builds the IOC")
    check = sub.add_parser(
        "migrate-check", help="find pythonSoftIOC code that acts differently on pythonIOC",
        description="Read Python files (nothing is run or imported) and print FILE:LINE: "
                    "message for each construct whose meaning or behaviour differs from "
                    "pythonSoftIOC 4.7.2, with what to write instead.  Exit status: 0 none "
                    "found, 1 some found, 2 some input could not be read.")
    check.add_argument("paths", nargs="+", metavar="PATH",
                       help="a Python file, or a directory searched for *.py")
    probe = sub.add_parser(
        "probe", help="exit 0 if the IOC on this host is live (or ready), else 1: "
                      "Kubernetes' liveness and readiness probes",
        description="Ask the IOC on this host whether it is live (serving, its dispatcher "
                    "running callbacks) or ready (live and fully started): read its "
                    "softioc.health records PREFIX:LIVE or PREFIX:READY over Channel Access "
                    "at 127.0.0.1 (or the first address of EPICS_CAS_INTF_ADDR_LIST) and "
                    "the IOC's port (EPICS_CAS_SERVER_PORT, EPICS_CA_SERVER_PORT or 5064), "
                    "over TCP: no broadcast.  Exit status 0 if so, else 1 with one line "
                    "saying what failed.")
    probe.add_argument("kind", choices=["live", "ready"],
                       help="live: for a liveness probe; ready: for a readiness probe")
    probe.add_argument("--prefix", default=None,
                       help="the health records' prefix (default: $IOC_PREFIX)")
    probe.add_argument("--timeout", type=float, default=None,
                       help="seconds to wait for the IOC's answer (default 3)")
    probe.add_argument("--max-age", type=float, default=None,
                       help="seconds the record's time stamp may lag before the IOC counts "
                            "as hung (default 10)")
    probe.add_argument("--address", default=None, metavar="HOST[:PORT]",
                       help="the IOC's Channel Access server, if not found as above")
    args = parser.parse_args(words)
    if args.command == "run":
        # Settings of the one IOC, which the script's iocInit() and
        # interactive_ioc() read (they win over the environment).
        settings = ioc.settings
        if args.dispatcher:
            settings.dispatcher = args.dispatcher
        if args.non_interactive:
            settings.interactive = False
        if args.no_pva:
            settings.pva = False

    if args.command == "demo":
        from . import demo as demo_ioc

        prefix = args.prefix or os.environ.get("IOC_PREFIX", "").strip() or "DEMO"
        demo_ioc.main(prefix, interactive=not args.non_interactive)
    elif args.command == "run":
        if args.http:
            _serve_http(parser, args.http)
        script = args.script or _container_script()
        _container_defaults()
        _run_script(script, args.args)
    elif args.command == "screen":
        _screen(args.script, args.args, args.output, args.title)
    elif args.command == "probe":
        from . import probe as probe_ioc

        raise SystemExit(probe_ioc.main(args.kind, args.prefix, args.timeout, args.max_age,
                                        args.address))
    elif args.command == "migrate-check":
        from ._migrate import main as migrate_check

        raise SystemExit(migrate_check(args.paths))


def _script_arguments(parser: argparse.ArgumentParser, what: str, **script: Any) -> None:
    """A subcommand's script to run (``what`` it is, and ``script``: more of
    its argument's settings) and the arguments given to it."""
    parser.add_argument("script", help=what, **script)
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")


def _run_script(script: str, args: list[str]) -> None:
    """Run ``script`` as ``python SCRIPT ARGS...`` would, in this process."""
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


# epics-containers' ioc-instance chart mounts the instance's config folder here;
# its generic Python IOC image runs main.py in it (or $MAIN_PYTHON).
CONTAINER_SCRIPT = "/epics/ioc/config/main.py"


def _container_script() -> str:
    """The script `pythonioc run` runs when given none: ``$MAIN_PYTHON``, else
    epics-containers' ``/epics/ioc/config/main.py``."""
    main_python = os.environ.get("MAIN_PYTHON", "").strip()
    if main_python:
        if not os.path.isfile(main_python):
            raise SystemExit(f"pythonioc run: MAIN_PYTHON={main_python}: no such file")
        return main_python
    if os.path.isfile(CONTAINER_SCRIPT):
        return CONTAINER_SCRIPT
    raise SystemExit(f"pythonioc run: no SCRIPT given, MAIN_PYTHON is not set and there is "
                     f"no {CONTAINER_SCRIPT}")


def _container_defaults() -> None:
    """What `pythonioc run` adds for a container (epics-containers' contract):
    autosave into ``/autosave`` (or ``$PYTHONIOC_AUTOSAVE_DIR``) unless the
    script configures it, and the health records under ``$IOC_PREFIX``, which
    ``pythonioc probe`` reads, unless the script makes them."""
    from . import autosave

    autosave.use_default_directory()
    prefix = os.environ.get("IOC_PREFIX", "").strip().rstrip(":")
    if prefix:
        from . import health

        health.create_at_init(prefix)


def _serve_http(parser: argparse.ArgumentParser, address: str) -> None:
    """`run --http`: the endpoints from now on (softioc.http); a malformed
    address or a missing extra ends the command."""
    try:
        from . import http

        http.serve(address)
    except (ImportError, ValueError) as e:
        parser.error(f"--http {address}: {e}")


def _screen(script: str, script_args: list[str], output: str | None,
            title: str | None) -> None:
    from . import screen

    stem = os.path.splitext(os.path.basename(script))[0]
    path = output or os.path.join(screen.default_directory() or "", f"{stem}.bob")
    written = screen.describe_at_init(path, title or stem)
    ioc.settings.interactive = False
    try:
        _run_script(script, script_args)
    except screen.DescribeDone:
        pass
    count = written()
    if count is None:
        raise SystemExit(f"{script} ended without calling softioc.iocInit(): no screen written")
    print(f"wrote {path}: {count} records")


if __name__ == "__main__":
    main()
