"""The meta structure optimizer: evolutionary search over optimizer graphs.

Each generation proposes children of the current population, by structural mutation, by
crossover, or by the meta model (LLM-guided proposal); every child is scored by the `Evaluator`
(the run store doubles as its fitness cache) and the next population keeps the elites plus the
choice of the selection strategy. Strategies are objects: swap any of them without flags.
"""

from __future__ import annotations

__all__ = ["StructureSearch", "SearchOutcome"]

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import BudgetExceeded, LLMError
from .archive import Archive, Scored
from .crossover import Crossover
from .fitness import Evaluator, Fitness
from .llm_mutation import LLMProposal
from .mutations import Mutation, default_mutations, mutate
from .selection import Selection, Tournament, elite
from .stop import MaxGenerations, SearchState, StopCondition


@dataclass
class SearchOutcome:
    """What a structure search found."""

    best: Fitness
    archive: Archive
    results: dict[str, Fitness] = field(default_factory=dict)
    generations: int = 0
    rejected: int = 0
    stop_reason: str = ""


class StructureSearch:
    """Evolution over graph specs with elitism.

    Args:
        mutations: structural mutation strategies (default: one of each built-in).
        selection: picks parents and survivors (default: tournament of 3).
        stop: when to stop (compose with | and &), checked before each generation.
        crossover: exchanges subgraphs of two parents; None disables it.
        proposer: LLM-guided proposals from the meta model; None disables them.
        population: survivors per generation; elites: how many of them are kept by rank alone.
        children: proposals per generation.
        llm_share, crossover_share: the fraction of proposals made by the meta model / crossover.
    """

    def __init__(
        self,
        *,
        mutations: Sequence[Mutation] | None = None,
        selection: Selection | None = None,
        stop: StopCondition | None = None,
        crossover: Crossover | None = None,
        proposer: LLMProposal | None = None,
        population: int = 4,
        elites: int = 1,
        children: int = 3,
        llm_share: float = 0.34,
        crossover_share: float = 0.2,
    ):
        self.mutations = list(mutations) if mutations is not None else default_mutations()
        self.selection = selection or Tournament(size=3)
        self.stop = stop or MaxGenerations(2)
        self.crossover = crossover
        self.proposer = proposer
        self.population = population
        self.elites = min(elites, population)
        self.children = children
        self.llm_share = llm_share if proposer is not None else 0.0
        self.crossover_share = crossover_share if crossover is not None else 0.0

    async def run(
        self,
        seeds: Sequence[Fitness],
        evaluator: Evaluator,
        rng: random.Random,
        *,
        usage: Callable[[], dict] | None = None,
        on_generation: Callable[[SearchState, list[Scored]], None] | None = None,
    ) -> SearchOutcome:
        """Evolves from the scored seed graphs until a stop condition holds or a budget is reached."""
        results = {f.graph_hash: f for f in seeds}
        archive = Archive(f.scored(0) for f in seeds)
        population = elite(archive.items, self.population)
        state = SearchState(usage=usage() if usage else {})
        state.best_scores.append(max(s.val_score for s in population))
        outcome = SearchOutcome(best=max(seeds, key=lambda f: (f.val_score, -f.cost_tokens)), archive=archive)
        evaluator.store.add_event("generation", {"generation": 0, "best": state.best_scores[-1], "population": [s.candidate_id for s in population]})
        while True:
            reason = self.stop.should_stop(state)
            if reason:
                outcome.stop_reason = reason
                break
            generation = state.generation + 1
            children: list[Scored] = []
            try:
                for _ in range(self.children):
                    fitness = await self._child(population, archive, evaluator, rng, generation, outcome)
                    if fitness is None:
                        continue
                    results[fitness.graph_hash] = fitness
                    scored = fitness.scored(generation)
                    archive.add(scored)
                    children.append(scored)
            except BudgetExceeded as exc:
                outcome.stop_reason = str(exc)
                state.generation = generation
                break
            population = self._survivors(population, children, rng)
            state.generation = generation
            state.best_scores.append(max(s.val_score for s in archive))
            if usage:
                state.usage = usage()
            evaluator.store.add_event(
                "generation",
                {
                    "generation": generation,
                    "best": state.best_scores[-1],
                    "population": [s.candidate_id for s in population],
                    "children": [s.candidate_id for s in children],
                    "usage": state.usage,
                },
            )
            if on_generation:
                on_generation(state, population)
        outcome.generations = state.generation
        best = min(archive.items, key=Scored.rank_key)
        outcome.best = results.get(best.graph_hash, outcome.best)
        outcome.results = results
        return outcome

    def _survivors(self, population: list[Scored], children: list[Scored], rng: random.Random) -> list[Scored]:
        pool: dict[str, Scored] = {}
        for item in [*population, *children]:
            known = pool.get(item.graph_hash)
            if known is None or item.rank_key() < known.rank_key():
                pool[item.graph_hash] = item
        candidates = list(pool.values())
        kept = elite(candidates, self.elites)
        rest = [c for c in candidates if c not in kept]
        while rest and len(kept) < self.population:
            # One pick at a time from what is left: a selection that may repeat an item
            # (a tournament) must not give one graph two places in the population.
            (pick,) = self.selection.select(rest, 1, rng)
            kept.append(pick)
            rest.remove(pick)
        return kept

    async def _child(
        self,
        population: list[Scored],
        archive: Archive,
        evaluator: Evaluator,
        rng: random.Random,
        generation: int,
        outcome: SearchOutcome,
    ) -> Fitness | None:
        roll = rng.random()
        if roll < self.llm_share:
            parents = self.selection.select(population, min(2, len(population)), rng)
            try:
                proposal = await self.proposer.propose(parents, archive, rng)
            except LLMError as exc:
                return self._reject(evaluator, outcome, "llm", [f"meta call failed: {exc}"])
            if proposal.spec is None:
                return self._reject(evaluator, outcome, "llm", proposal.rejected_reasons)
            return await evaluator.evaluate(
                proposal.spec,
                parents=[p.candidate_id for p in parents if p.candidate_id],
                origin="llm",
                mutation="llm_proposal",
                generation=generation,
            )
        if roll < self.llm_share + self.crossover_share and len(population) >= 2:
            a, b = self.selection.select(population, 2, rng)
            child = self.crossover.cross(a.spec, b.spec, rng)
            if child is None:
                return self._reject(evaluator, outcome, "crossover", ["no compatible cut points"])
            return await evaluator.evaluate(
                child,
                parents=[p.candidate_id for p in (a, b) if p.candidate_id],
                origin="crossover",
                mutation=self.crossover.name,
                generation=generation,
            )
        (parent,) = self.selection.select(population, 1, rng)
        child, failed = mutate(parent.spec, self.mutations, rng)
        if child is None:
            return self._reject(evaluator, outcome, "mutation", [f"{name}: {why}" for name, why in failed])
        return await evaluator.evaluate(
            child,
            parents=[parent.candidate_id] if parent.candidate_id else [],
            origin="mutation",
            mutation=child.provenance.mutation,
            generation=generation,
        )

    @staticmethod
    def _reject(evaluator: Evaluator, outcome: SearchOutcome, kind: str, reasons: list[str]) -> None:
        outcome.rejected += 1
        evaluator.store.add_event("rejected_proposal", {"kind": kind, "reasons": reasons[:5]})
        return None
