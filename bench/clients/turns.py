"""The order in which a client takes several servers' PVs, round after round,
and the timed rounds of puts of S2's clients (CA and PVA alike)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def turns(items: Sequence[T], rounds: int, seed: int = 1) -> Iterator[list[T]]:
    """``rounds`` orders of items: shuffled afresh each round (a fixed seed, so
    runs repeat), so that no position or predecessor favours one server, and
    never the same item twice in a row across rounds."""
    rng = random.Random(seed)
    last = None
    for _ in range(rounds):
        order = list(items)
        rng.shuffle(order)
        if len(order) > 1 and order[0] == last:
            order.append(order.pop(0))
        last = order[-1]
        yield order


def put_rounds(pvs: Sequence[str], count: int, put: Callable[[str, float], tuple[float, bool]],
               budget: float) -> dict[str, Any]:
    """``count`` rounds of ``put(pv, value)`` to each PV, one at a time, in
    turn (:func:`turns`), or fewer if ``budget`` seconds pass; ``put`` returns
    the seconds the put took and whether it completed (False: timed out).
    Each round puts a value no earlier round did (the servers skip on_update
    for an unchanged value).  The rounds, and by PV the times and timeouts."""
    times: dict[str, list[float]] = {pv: [] for pv in pvs}
    timeouts = dict.fromkeys(pvs, 0)
    base = time.time() % 1000
    deadline = time.monotonic() + budget
    rounds = 0
    for order in turns(list(pvs), count):
        rounds += 1
        for pv in order:
            took, completed = put(pv, base + rounds)
            times[pv].append(took)
            if not completed:
                timeouts[pv] += 1
        if time.monotonic() > deadline:
            break
    return {"count": rounds, "timeouts": timeouts, "times": times}
