"""Drawing mutations: `mutate` tries weighted random mutations until one gives a new valid child;
`Mutate` is the structure search's mutation proposer."""

from __future__ import annotations

__all__ = ["default_mutations", "Mutate", "mutate"]

import random
from collections.abc import Collection, Sequence

from ...errors import GraphoptError
from ...graph.spec import GraphSpec
from ...operators.registry import operator_names
from ..archive import graph_hash
from ..graph_edit import spec_problems
from ..proposal import Proposed, Slot
from .base import UNTRIED, Mutation
from .branches import AddParallelBranch, ChangeParams, Rewire
from .nodes import DeleteOperator, InsertOperator, SwapOperator


def default_mutations() -> list[Mutation]:
    """One of each structural mutation."""
    return [InsertOperator(), DeleteOperator(), SwapOperator(), AddParallelBranch(), Rewire(), ChangeParams()]


class Mutate:
    """The mutation proposer: a child of the slot's one parent by `mutate`, avoiding `slot.taken`.

    Args:
        mutations: the strategies to draw from.
        used_ops: operators some graph of the run has used (grows with the children made here).
        max_tries: mutations tried per proposal.
    """

    def __init__(self, mutations: Sequence[Mutation], used_ops: set[str], max_tries: int = 20):
        self.mutations, self.used_ops, self.max_tries = list(mutations), used_ops, max_tries

    async def propose(self, slot: Slot) -> Proposed:
        (parent,) = slot.parents
        untried = set(operator_names()) - self.used_ops
        child, failed = mutate(parent.spec, self.mutations, slot.rng, max_tries=self.max_tries, avoid=slot.taken, untried=untried)
        if child is not None:
            slot.taken.add(graph_hash(child))
            self.used_ops |= {node.op for node in child.nodes}
        mutation = child.provenance.mutation if child is not None else None
        parents = (parent.candidate_id,) if parent.candidate_id else ()
        return Proposed("mutation", child, parents, mutation, tuple(f"{name}: {why}" for name, why in failed))


def mutate(
    parent: GraphSpec,
    mutations: Sequence[Mutation],
    rng: random.Random,
    max_tries: int = 10,
    avoid: Collection[str] = (),
    untried: Collection[str] = (),
) -> tuple[GraphSpec | None, list[tuple[str, str]]]:
    """Tries random mutations until one gives a valid child that differs from `parent`.

    Args:
        parent: the graph to mutate.
        mutations: the strategies to draw from, each with its `weight`.
        rng: the random source (the same seed gives the same child).
        max_tries: mutations tried before giving up.
        avoid: graph hashes already tried: such a child counts as a failed try, so the
            neighbourhood of a parent is sampled without repeats.
        untried: operators no graph of the run has used: an edit that brings one in (insert,
            swap, a parallel branch's join) is tried before the others of its mutation.

    Returns:
        (child or None, the failed tries as (mutation name, reason)). A child a custom mutation
        returns invalid or unchanged counts as a failed try.
    """
    if not mutations:
        raise ValueError("mutate needs at least one mutation")
    failed: list[tuple[str, str]] = []
    parent_hash = graph_hash(parent)
    pool = list(mutations)
    weights = [max(float(getattr(m, "weight", 1.0)), 0.0) for m in pool]
    for _ in range(max_tries):
        mutation = rng.choices(pool, weights=weights, k=1)[0]
        token = UNTRIED.set(frozenset(untried))
        try:
            child, reason = mutation.propose_explained(parent, rng)
        except GraphoptError as exc:
            child, reason = None, f"error: {exc}"
        finally:
            UNTRIED.reset(token)
        if child is not None:
            problems = spec_problems(child)
            if problems:
                child, reason = None, f"invalid: {problems[0]}"
            elif graph_hash(child) == parent_hash:
                child, reason = None, "no change"
            elif graph_hash(child) in avoid:
                child, reason = None, "already tried"
        if child is not None:
            return child, failed
        failed.append((mutation.name, reason))
    return None, failed
