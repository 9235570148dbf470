"""The line protocol of the benchmark's Python servers, shared by them all
(each runs as a script in its implementation's venv: imported from beside it).

The server prints ``READY`` once it serves; then each JSON command on stdin
(``{"cmd": NAME, ...}``) is answered with one line ``RESULT {json}``: what the
command returned, or ``{"error": ...}``.  End of stdin ends the process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any


def timed(work: Callable[[], Any]) -> dict[str, Any]:
    """Run work(); wall and process CPU time (all threads) around it, and
    what it returned (a dict, or None)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = work()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall": wall, "cpu": cpu, **(out or {})}


def serve(commands: Mapping[str, Callable[[dict[str, Any]], Any]]) -> None:
    """Answer commands from stdin until its end, then exit the process at once
    (no interpreter teardown: a server's threads may still be running)."""
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            result = commands[cmd["cmd"]](cmd)
        except Exception as e:  # reported to the benchmark, which records the failure
            result = {"error": f"{type(e).__name__}: {e}"}
        print("RESULT " + json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)
