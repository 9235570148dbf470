"""The order in which a client takes several servers' PVs, round after round."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TypeVar

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
