"""Per-example Pareto selection: a graph stays in the running while it is the best on some example.

Selecting on mean validation score lets one family take the population: its children all sit a
little above everyone else, and a graph that solves examples nobody else solves, but fewer of
them, is dropped. Here the objectives are the validation examples themselves (GEPA's idea). For
each example, the graphs with its highest score (above 0) win it; a graph dominated on every
example by another is out; the rest form the frontier, and a pick draws from it with weights
equal to the examples each one wins. Cost only breaks ties between graphs with the same score on
every example, so a cheap graph that solves nothing never outranks one that solves something.

Graphs without per-example scores (from a store written before the score matrix) fall back to
the mean score and cost.

Example:
    >>> import random
    >>> from graphopt.search.archive import Scored
    >>> a = Scored(None, "a", 0.5, 10, per_example={"x": 1.0, "y": 0.0})
    >>> b = Scored(None, "b", 0.5, 99, per_example={"x": 0.0, "y": 1.0})
    >>> c = Scored(None, "c", 0.5, 1, per_example={"x": 1.0, "y": 0.0})
    >>> [s.graph_hash for s in frontier([a, b, c])]  # c ties a on every example, and is cheaper
    ['c', 'b']
"""

from __future__ import annotations

__all__ = ["Frontier", "Niched", "frontier", "example_wins", "shape", "get_selection"]

import random
from collections.abc import Sequence

from ..errors import ConfigError, did_you_mean
from .archive import Scored
from .selection import ParetoSelection, Selection, Tournament, select_distinct


def _vector(item: Scored) -> dict[str, float]:
    return dict(item.per_example or {})


def _dominated(a: dict[str, float], b: dict[str, float]) -> bool:
    """True when b is at least as good as a on every example of either, and better on one."""
    keys = set(a) | set(b)
    at_least = all(b.get(k, 0.0) >= a.get(k, 0.0) for k in keys)
    return at_least and any(b.get(k, 0.0) > a.get(k, 0.0) for k in keys)


def _distinct_vectors(items: Sequence[Scored]) -> list[Scored]:
    """One graph per per-example score vector: the cheapest (then the earliest)."""
    best: dict[tuple, Scored] = {}
    for item in items:
        key = tuple(sorted(_vector(item).items()))
        known = best.get(key)
        if known is None or item.cost_tokens < known.cost_tokens:
            best[key] = item
    return list(best.values())


def example_wins(items: Sequence[Scored]) -> dict[str, int]:
    """graph hash -> number of examples on which it has the highest score (ties all win; 0s do not)."""
    wins = {item.graph_hash: 0 for item in items}
    examples = {k for item in items for k in _vector(item)}
    for key in examples:
        top = max(_vector(item).get(key, 0.0) for item in items)
        if top <= 0:
            continue
        for item in items:
            if _vector(item).get(key, 0.0) == top:
                wins[item.graph_hash] += 1
    return wins


def frontier(items: Sequence[Scored]) -> list[Scored]:
    """The graphs that win some example and are not dominated, best mean first.

    Falls back to the best by (score, cost) when nobody wins an example (all zero, or no
    per-example scores).
    """
    pool = _distinct_vectors(items)
    wins = example_wins(pool)
    winners = [item for item in pool if wins[item.graph_hash] > 0]
    front = [a for a in winners if not any(_dominated(_vector(a), _vector(b)) for b in winners if b is not a)]
    if not front:
        return sorted(items, key=Scored.rank_key)[:1]
    return sorted(front, key=Scored.rank_key)


class Frontier(Selection):
    """Picks from the per-example Pareto frontier, weighted by the examples each graph wins."""

    def select(self, population: list[Scored], n: int, rng: random.Random) -> list[Scored]:
        if not population:
            return []
        front = frontier(population)
        wins = example_wins(front)
        weights = [max(wins.get(item.graph_hash, 0), 1) for item in front]
        return [rng.choices(front, weights=weights, k=1)[0] for _ in range(n)]

    def __repr__(self) -> str:
        return "Frontier()"


def shape(item: Scored) -> tuple[str, ...]:
    """A graph's niche: the multiset of its operators (wiring and params aside)."""
    spec = item.spec
    return tuple(sorted(n.op for n in spec.nodes)) if spec is not None else (item.graph_hash,)


class Niched(Selection):
    """Niching by graph shape around another selection: each pick first draws a niche.

    A family whose children all score a little higher cannot crowd out a graph of another shape
    that scores nothing yet but is one edit away from what pays: every shape in the population
    keeps a share of the parents, and survivors keep the best graph of each shape before any
    shape gets a second place. Niches are drawn with weight 1 + the examples their best graph
    wins against the whole population, so productive shapes get more children while none gets
    none. Within a niche, `inner` picks.
    """

    def __init__(self, inner: Selection):
        self.inner = inner

    @staticmethod
    def _niches(population: Sequence[Scored]) -> dict[tuple[str, ...], list[Scored]]:
        niches: dict[tuple[str, ...], list[Scored]] = {}
        for item in population:
            niches.setdefault(shape(item), []).append(item)
        return niches

    def select(self, population: list[Scored], n: int, rng: random.Random) -> list[Scored]:
        if not population:
            return []
        niches = self._niches(population)
        keys = sorted(niches)
        wins = example_wins(population)
        weights = [1 + max(wins[item.graph_hash] for item in niches[key]) for key in keys]
        picks = []
        for _ in range(n):
            key = rng.choices(keys, weights=weights, k=1)[0]
            picks.append(self.inner.select(niches[key], 1, rng)[0])
        return picks

    def survivors(self, candidates: list[Scored], n: int, rng: random.Random) -> list[Scored]:
        """The best graph of each shape first (higher score first; at equal scores the older, not
        the cheaper: a cheap graph that scores no better has shown nothing), then the rest."""
        niches = self._niches(candidates)

        def key(s: Scored) -> tuple:
            return (-s.val_score, s.candidate_id or "")

        bests = sorted((min(members, key=key) for members in niches.values()), key=key)
        kept = bests[:n]
        taken = {k.graph_hash for k in kept}
        rest = [c for c in candidates if c.graph_hash not in taken]
        return kept + select_distinct(self, rest, n - len(kept), rng)

    def __repr__(self) -> str:
        return f"Niched({self.inner!r})"


def get_selection(name: str) -> Selection:
    """A selection strategy by name: "frontier" (per-example Pareto within shape niches),
    "tournament" (of 3, by mean score then cost) or "pareto" (score against cost).

    Raises:
        ConfigError: unknown name (with the close matches).
    """
    strategies = {
        "frontier": lambda: Niched(Frontier()),
        "tournament": lambda: Tournament(size=3),
        "pareto": ParetoSelection,
    }
    factory = strategies.get(name)
    if factory is None:
        raise ConfigError(f"unknown selection {name!r}{did_you_mean(name, strategies)}: use {', '.join(strategies)}")
    return factory()
