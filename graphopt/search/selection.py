"""Parent selection for the structure search: tournament, Pareto (score vs. cost) and elitism.

Every selection object has one method, `select(population, n, rng)`; the objectives are the
validation score (higher is better) and the token cost (lower is better).

Example:
    >>> import random
    >>> from graphopt.search.archive import Scored
    >>> pop = [Scored(None, "a", 0.6, 100), Scored(None, "b", 0.6, 50), Scored(None, "c", 0.2, 10)]
    >>> [s.graph_hash for s in elite(pop, 2)]  # a tie in score never goes to the cheaper graph
    ['a', 'b']
    >>> [s.graph_hash for s in pareto_front(pop)]
    ['c', 'b']
"""

from __future__ import annotations

__all__ = ["Selection", "Tournament", "ParetoSelection", "Elitism", "pareto_front", "pareto_ranks", "elite", "select_distinct"]

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence

from .archive import Scored


def _dominates(a: Scored, b: Scored) -> bool:
    return (
        a.val_score >= b.val_score
        and a.cost_tokens <= b.cost_tokens
        and (a.val_score > b.val_score or a.cost_tokens < b.cost_tokens)
    )


def pareto_ranks(items: Sequence[Scored]) -> list[list[Scored]]:
    """Non-dominated sorting: front 0 is the Pareto front, front 1 what is left after removing it, ..."""
    remaining = list(items)
    fronts: list[list[Scored]] = []
    while remaining:
        front = [a for a in remaining if not any(_dominates(b, a) for b in remaining if b is not a)]
        fronts.append(front)
        ids = {id(a) for a in front}
        remaining = [a for a in remaining if id(a) not in ids]
    return fronts


def pareto_front(items: Sequence[Scored]) -> list[Scored]:
    """The items no other item beats on both score (max) and cost (min), cheapest first."""
    front = pareto_ranks(items)[0] if items else []
    return sorted(front, key=lambda s: (s.cost_tokens, -s.val_score))


def _crowding(front: Sequence[Scored]) -> dict[int, float]:
    """Crowding distance of each item (by id()): boundary items get infinity."""
    distance = {id(s): 0.0 for s in front}
    for key in (lambda s: s.val_score, lambda s: s.cost_tokens):
        ordered = sorted(front, key=key)
        span = key(ordered[-1]) - key(ordered[0])
        distance[id(ordered[0])] = distance[id(ordered[-1])] = math.inf
        if span <= 0:
            continue
        for prev, cur, nxt in zip(ordered, ordered[1:], ordered[2:]):
            distance[id(cur)] += (key(nxt) - key(prev)) / span
    return distance


def elite(population: Sequence[Scored], n: int) -> list[Scored]:
    """The `n` best distinct graphs by score, ties broken by lower cost (one entry per graph hash)."""
    seen: set[str] = set()
    out: list[Scored] = []
    for item in sorted(population, key=Scored.rank_key):
        if item.graph_hash not in seen:
            seen.add(item.graph_hash)
            out.append(item)
        if len(out) >= n:
            break
    return out


def select_distinct(selection: Selection, population: Sequence[Scored], n: int, rng: random.Random) -> list[Scored]:
    """`n` picks of `selection` from `population`, no graph twice (fewer if there are fewer graphs).

    One pick at a time from what is left, so a selection that may repeat an item (a tournament)
    never gives one graph two places: not two survivor slots, not both parents of a crossover.
    """
    best: dict[str, Scored] = {}
    for item in population:
        known = best.get(item.graph_hash)
        if known is None or item.rank_key() < known.rank_key():
            best[item.graph_hash] = item
    rest = list(best.values())
    chosen: list[Scored] = []
    while rest and len(chosen) < n:
        (pick,) = selection.select(rest, 1, rng)
        chosen.append(pick)
        rest = [item for item in rest if item.graph_hash != pick.graph_hash]
    return chosen


class Selection(ABC):
    """Picks `n` parents from a scored population."""

    @abstractmethod
    def select(self, population: list[Scored], n: int, rng: random.Random) -> list[Scored]:
        """Returns the chosen parents (a selection may pick the same item more than once)."""

    def survivors(self, candidates: list[Scored], n: int, rng: random.Random) -> list[Scored]:
        """`n` distinct graphs to keep for the next generation (default: `n` distinct picks)."""
        return select_distinct(self, candidates, n, rng)


class Tournament(Selection):
    """Each pick is the best of `size` items drawn at random (ties: lower cost wins).

    Args:
        size: contestants per tournament; larger means stronger selection pressure.
    """

    def __init__(self, size: int = 3):
        if size < 1:
            raise ValueError("Tournament size must be >= 1")
        self.size = size

    def select(self, population: list[Scored], n: int, rng: random.Random) -> list[Scored]:
        if not population:
            return []
        k = min(self.size, len(population))
        return [min(rng.sample(population, k), key=Scored.rank_key) for _ in range(n)]

    def __repr__(self) -> str:
        return f"Tournament(size={self.size})"


class ParetoSelection(Selection):
    """NSGA-II style: whole Pareto fronts in rank order, the last one cut by crowding distance.

    Picks at most `len(population)` items, each at most once.
    """

    def select(self, population: list[Scored], n: int, rng: random.Random) -> list[Scored]:
        chosen: list[Scored] = []
        for front in pareto_ranks(population):
            room = n - len(chosen)
            if room <= 0:
                break
            if len(front) <= room:
                chosen.extend(sorted(front, key=Scored.rank_key))
                continue
            crowd = _crowding(front)
            # Random tie-break among equal crowding keeps selection from favouring list order.
            jitter = {id(s): rng.random() for s in front}
            ranked = sorted(front, key=lambda s: (-crowd[id(s)], s.rank_key(), jitter[id(s)]))
            chosen.extend(ranked[:room])
        return chosen

    def __repr__(self) -> str:
        return "ParetoSelection()"


class Elitism(Selection):
    """Deterministic: the `n` best distinct graphs (see `elite`)."""

    def select(self, population: list[Scored], n: int, rng: random.Random) -> list[Scored]:
        return elite(population, n)

    def __repr__(self) -> str:
        return "Elitism()"
