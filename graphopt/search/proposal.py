"""Proposers: whatever makes a new graph for a proposal slot, behind one protocol.

Structural mutation (`mutations.Mutate`), crossover (`crossover.Crossover`), the meta model's
graphs (`llm_mutation.LLMProposal`) and its prompt edits (`prompt_opt.MetaPromptOptimizer`) each
implement `Proposer.propose(slot) -> Proposed`; `generation.run_generation` journals, registers
and evaluates what they make, the same way for the structure and the prompt phases.
"""

from __future__ import annotations

__all__ = ["Slot", "Proposed", "Proposer"]

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .journal import keyed_rng

if TYPE_CHECKING:
    from ..graph.spec import GraphSpec
    from ..tasks.base import Task
    from .archive import Archive


@dataclass
class Slot:
    """One proposal slot and what its proposer may build on.

    Attributes:
        key: the slot's journal key, e.g. "gen2/child1".
        seed: the base of the slot's keyed generators; `rng` is `keyed_rng(seed, key)`.
        parents: the graphs to build on (`Scored` or `Fitness`), chosen for the slot.
        archive: every graph scored so far (the meta model's graph proposals show it).
        taken: graph hashes not to propose again, shared by a generation's slots (grows with them).
        task: the task (prompt edits show its examples).
    """

    key: str
    seed: int
    parents: list[Any] = field(default_factory=list)
    archive: Archive | None = None
    taken: set[str] = field(default_factory=set)
    task: Task | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = keyed_rng(self.seed, self.key)


@dataclass(frozen=True)
class Proposed:
    """What a slot's proposer made: a graph with its lineage, or none and why.

    Attributes:
        origin: "mutation", "crossover", "llm" or "prompt_opt" (the store's origin).
        spec: the new graph, or None when the proposal gave no usable one.
        parents: the candidate ids it was made from.
        mutation: the name of the edit that made it.
        reasons: why earlier attempts (or the proposal) were rejected.
        usage: what its model calls cost (`Ledger.to_dict()`), charged to the graph.
        edits: the prompt edits proposed for it, kept or dropped (prompt edits only).
    """

    origin: str
    spec: GraphSpec | None
    parents: tuple[str, ...] = ()
    mutation: str | None = None
    reasons: tuple[str, ...] = ()
    usage: dict[str, Any] | None = None
    edits: tuple[Any, ...] = ()


class Proposer(Protocol):
    """Makes one proposal for a slot. A proposer without model calls returns before its first
    await, so the proposals of a generation that share `slot.taken` are made in slot order."""

    async def propose(self, slot: Slot) -> Proposed: ...
