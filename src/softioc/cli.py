"""The ``pythonioc`` command."""

from __future__ import annotations

import argparse
import os
import runpy
import sys


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``pythonioc`` and ``python -m softioc``."""
    parser = argparse.ArgumentParser(
        prog="pythonioc",
        description="Run EPICS IOCs written in Python (Channel Access and PV Access).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a demo IOC with a few records to caget/caput")
    demo.add_argument("--prefix", default="DEMO", help="record name prefix (default DEMO)")
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
    run.add_argument("script", help="the Python file that builds and starts the IOC")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.dispatcher:
            os.environ["PYTHONIOC_DISPATCHER"] = args.dispatcher
        if args.non_interactive:
            os.environ["PYTHONIOC_INTERACTIVE"] = "NO"
        if args.no_pva:
            os.environ["PYTHONIOC_PVA"] = "NO"

    if args.command == "demo":
        from . import demo as demo_ioc

        demo_ioc.main(args.prefix, interactive=not args.non_interactive)
    elif args.command == "run":
        sys.argv = [args.script, *args.args]
        runpy.run_path(args.script, run_name="__main__")


if __name__ == "__main__":
    main()
