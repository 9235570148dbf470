"""The line protocol of the benchmark's Python servers, shared by them all
(each runs as a script in its implementation's venv: imported from beside it).

The server prints ``READY`` once it serves; then each JSON command on stdin
(``{"cmd": NAME, ...}``) is answered with one line ``RESULT {json}``: what the
command returned, or ``{"error": ...}``.  End of stdin ends the process.

The timed loops of the commands every server has (``set_loop``,
``wave_loop``, ``image_loop``) are here too, so each implementation is timed
by the same loop and differs only in the call it makes to set a value.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def timed(work: Callable[[], Any]) -> dict[str, Any]:
    """Run work(); wall and process CPU time (all threads) around it, and
    what it returned (a dict, or None)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = work()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall": wall, "cpu": cpu, **(out or {})}


def set_loop(cmd: Mapping[str, Any], set_value: Callable[[float], object]) -> dict[str, Any]:
    """S1: ``set_value(base + n)`` as fast as possible, for ``max_sets`` sets
    at most and ``seconds`` (checked every 500 sets); then ``drain`` seconds
    asleep, the CPU time spent meanwhile (processing sets still queued) apart."""
    deadline = time.perf_counter() + cmd["seconds"]
    base, limit = float(cmd["base"]), int(cmd["max_sets"])

    def work() -> dict[str, Any]:
        n = 0
        while n < limit:
            for _ in range(500):
                n += 1
                set_value(base + n)
            if time.perf_counter() > deadline:
                break
        return {"sets": n, "last": base + n}

    result = timed(work)
    result["t_end"] = time.time()
    c0 = time.process_time()
    time.sleep(cmd.get("drain", 0.5))
    result["cpu_drain"] = time.process_time() - c0
    return result


def _repeat(cmd: Mapping[str, Any], limit: int, step: Callable[[int], object],
            counted: str) -> dict[str, Any]:
    """``step(n)`` for n = 0, 1... while n < limit and ``seconds`` have not
    passed: timed, with the number of steps as ``counted``."""
    deadline = time.perf_counter() + cmd["seconds"]

    def work() -> dict[str, Any]:
        n = 0
        while n < limit and time.perf_counter() < deadline:
            step(n)
            n += 1
        return {counted: n}

    return timed(work)


def wave_loop(cmd: Mapping[str, Any], length: int,
              set_array: Callable[[Any], object]) -> dict[str, Any]:
    """S5: ``set_array`` a float64 array of ``length`` elements as fast as
    possible (``max_sets``, ``seconds``), each different from the last: two
    arrays made once, in turn, one element changed before each set; with
    ``fresh`` a new array made for each set (``np.full``: allocated and
    filled, the least a program computing new data per set pays)."""
    import numpy as np  # only here: importing it would slow every server's start

    arrays = [np.full(length, float(k)) for k in range(2)]

    def step(n: int) -> None:
        arr = arrays[n % 2]
        arr[0] = n
        set_array(arr)

    def fresh_step(n: int) -> None:
        set_array(np.full(length, float(n)))

    if cmd.get("fresh"):
        return _repeat(cmd, cmd["max_sets"], fresh_step, "sets")

    return _repeat(cmd, cmd["max_sets"], step, "sets")


def image_loop(cmd: Mapping[str, Any], shape: Sequence[int],
               post: Callable[[Any], object]) -> dict[str, Any]:
    """S8: ``post`` uint16 frames of ``shape`` as fast as possible
    (``max_frames``, ``seconds``), each different from the last."""
    import numpy as np

    frames = [np.full(shape, k, np.uint16) for k in range(2)]

    def step(n: int) -> None:
        frame = frames[n % 2]
        frame[0, 0] = n % 65536
        post(frame)

    return _repeat(cmd, cmd["max_frames"], step, "frames")


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
