"""What every structural mutation is: `Mutation` (propose a child or None) and `StructuralMutation`
(candidate edits of a working copy, the first valid and changed one wins)."""

from __future__ import annotations

__all__ = ["Mutation", "StructuralMutation", "shuffled", "untried_first", "UNTRIED"]

import contextvars
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import ClassVar

from ...errors import GraphoptError
from ...graph.spec import GraphSpec
from ...operators.base import Operator
from ...operators.registry import get_operator, operator_names
from ..archive import graph_hash
from ..graph_edit import EditableGraph, spec_problems


def shuffled(items, rng: random.Random) -> list:
    items = list(items)
    rng.shuffle(items)
    return items


# Operators no graph of the run has used yet (set by `mutate(untried=...)`): the edits that bring
# one in are tried before the others, so the search covers the catalogue before it exploits it.
UNTRIED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("graphopt_untried_ops", default=frozenset())


def untried_first(options, rng: random.Random, op_of) -> list:
    """`options` shuffled, those whose operator (`op_of(option)`) is untried first."""
    untried = UNTRIED.get()
    return sorted(shuffled(options, rng), key=lambda option: op_of(option) not in untried)


class Mutation(ABC):
    """A structural edit of a graph spec. Implement `propose`; return None when it does not apply.

    `weight` is how often `mutate` draws it relative to the others (1.0 by default).
    """

    name: ClassVar[str] = "mutation"
    weight: ClassVar[float] = 1.0

    @abstractmethod
    def propose(self, parent: GraphSpec, rng: random.Random) -> GraphSpec | None:
        """A valid, different child of `parent`, or None when this mutation cannot apply."""

    def propose_explained(self, parent: GraphSpec, rng: random.Random) -> tuple[GraphSpec | None, str]:
        """Like `propose`, plus the reason when there is no child."""
        child = self.propose(parent, rng)
        return child, "" if child is not None else "not applicable"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StructuralMutation(Mutation):
    """A mutation that lists candidate edits in random order; the first valid, changed one wins.

    Subclasses implement `edits`, a generator of (edited working copy, description) pairs.

    Args:
        operators: registry names this mutation may introduce (default: every registered operator).
        max_candidates: candidate edits checked before giving up.
    """

    def __init__(self, operators: Sequence[str] | None = None, max_candidates: int = 24):
        self.operators = list(operators) if operators is not None else None
        self.max_candidates = max_candidates

    def catalog(self) -> list[tuple[str, type[Operator]]]:
        return [(name, get_operator(name)) for name in (self.operators or operator_names())]

    @abstractmethod
    def edits(self, g: EditableGraph, rng: random.Random) -> Iterator[tuple[EditableGraph, str]]:
        """Candidate edits of `g` (never modify `g` itself; edit `g.copy()`)."""

    def propose(self, parent: GraphSpec, rng: random.Random) -> GraphSpec | None:
        return self.propose_explained(parent, rng)[0]

    def propose_explained(self, parent: GraphSpec, rng: random.Random) -> tuple[GraphSpec | None, str]:
        try:
            base = EditableGraph(parent)
            parent_hash = graph_hash(parent)
        except GraphoptError as exc:
            return None, f"parent is not usable: {exc}"
        tried, first = 0, ""
        for g, detail in self.edits(base, rng):
            try:
                child = g.to_spec(parent, self.name, detail)
            except ValueError as exc:  # pydantic rejected the edited data
                problems = [str(exc).splitlines()[0]]
            else:
                problems = spec_problems(child) or (["no change"] if graph_hash(child) == parent_hash else [])
                if not problems:
                    return child, ""
            tried += 1
            first = first or problems[0]
            if tried >= self.max_candidates:
                break
        if not tried:
            return None, "no applicable site"
        return None, f"{tried} candidate edit(s) invalid, e.g. {first}"
