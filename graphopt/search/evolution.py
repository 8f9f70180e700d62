"""The meta structure optimizer: evolutionary search over optimizer graphs.

Each generation proposes children of the current population, by structural mutation, by
crossover, or by the meta model (LLM-guided proposal), each a `Proposer`; `run_generation`
journals, registers and races them (successive halving: a screen on a few validation examples,
then the full evaluation for the best of them; the run store doubles as its fitness cache) and
the next population keeps the elites plus the choice of the selection strategy. Strategies are
objects: swap any of them without flags.
"""

from __future__ import annotations

__all__ = ["StructureSearch", "ProposalMix", "SearchOutcome", "meta_record"]

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunError
from ..status import Status
from .archive import Archive, Scored
from .crossover import Crossover
from .evaluator import Evaluator
from ..store.events import GenerationDone
from .fitness import Fitness
from .generation import Generation, run_generation
from .journal import keyed_rng
from .llm_mutation import LLMProposal
from .mutations import Mutate, Mutation, default_mutations
from .policy import MetaInvestment, yields
from .proposal import Proposer, Slot
from .selection import Selection, Tournament, elite, select_distinct
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
    screened: set[str] = field(default_factory=set)  # graph hashes of children that lost their race


def meta_record(candidates: Sequence[Any], patience: int) -> tuple[dict[str, str], set[str]]:
    """({candidate id: its family}, the families whose meta proposals gained nothing).

    A family is the seed graph a candidate descends from (through first parents). A family is
    barren once `patience` of its meta-model children were scored (fully or on a screen) and
    none beat the best of its parents on validation. Read from the store's candidate rows, so a
    resumed search decides as the first session did.
    """
    rows = {c.id: c for c in candidates}
    families: dict[str, str] = {}

    def family(cid: str) -> str:
        chain = []
        while cid not in families:
            row = rows.get(cid)
            if row is None or not row.parents:
                families[cid] = row.name if row is not None else cid
                break
            chain.append(cid)
            cid = row.parents[0]
        for link in chain:
            families[link] = families[cid]
        return families[cid]

    tried: dict[str, list[bool]] = {}
    for row in rows.values():
        family(row.id)
        e = row.evaluation
        if row.origin != "llm" or e is None or e.val_score is None or e.status not in (Status.done, Status.screened):
            continue
        parents = [rows[p].evaluation.val_score for p in row.parents if p in rows and rows[p].evaluation is not None]
        best_parent = max((v for v in parents if v is not None), default=0.0)
        tried.setdefault(families[row.id], []).append(e.status == Status.done and e.val_score > best_parent)
    barren = {f for f, gains in tried.items() if len(gains) >= patience and not any(gains)}
    return families, barren


@dataclass(frozen=True)
class ProposalMix:
    """Which proposer fills a generation's slots.

    Attributes:
        llm, crossover: the fraction of proposals made by the meta model / by crossover (the
            rest are mutations).
        meta_share: the most the meta level may have of the run's tokens (all levels, cache hits
            counted as work) when a generation starts for its children to include meta-model
            proposals; above it those slots are mutations. None: no fixed share (the default:
            `investment` decides from what the meta proposals gained).
        meta_patience: meta-model proposals a family (the graphs descended from one seed) gets
            without any gain over their parents before its slots go to mutations instead.
        investment: when meta proposals go on, from their measured gain per token.
    """

    llm: float = 0.34
    crossover: float = 0.2
    meta_share: float | None = None
    meta_patience: int = 2
    investment: MetaInvestment = field(default_factory=MetaInvestment)


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
        mix: which proposer fills each slot (`ProposalMix`); the meta model's share is 0 without
            a `proposer`, crossover's without `crossover`.
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
        mix: ProposalMix | None = None,
    ):
        mix = mix or ProposalMix()
        self.mutations = list(mutations) if mutations is not None else default_mutations()
        self.selection = selection or Tournament(size=3)
        self.stop = stop or MaxGenerations(2)
        self.crossover = crossover
        self.proposer = proposer
        self.population = population
        self.elites = min(elites, population)
        self.children = children
        self.llm_share = mix.llm if proposer is not None else 0.0
        self.crossover_share = mix.crossover if crossover is not None else 0.0
        self.meta_share = mix.meta_share
        self.meta_patience = mix.meta_patience
        self.investment = mix.investment
        self._families: dict[str, str] = {}
        self._barren: set[str] = set()

    async def run(
        self,
        seeds: Sequence[Fitness],
        evaluator: Evaluator,
        rng: random.Random,
        *,
        usage: Callable[[], dict] | None = None,
        on_generation: Callable[[SearchState, list[Scored]], None] | None = None,
    ) -> SearchOutcome:
        """Evolves from the scored seed graphs until a stop condition holds or a budget is reached.

        A generation's proposals are made together (the meta model's calls overlap), registered
        in slot order, then evaluated together; every slot draws from its own keyed generator and
        its outcome is journaled, so a resumed search rebuilds the same generations from the store.
        """
        base = rng.getrandbits(64)
        usable = [f for f in seeds if f.ok]
        if not usable:
            raise RunError("the structure search needs at least one evaluated seed graph")
        results = {f.graph_hash: f for f in usable}
        archive = Archive(f.scored(0) for f in usable)
        population = elite(archive.items, self.population)
        state = SearchState(usage=usage() if usage else {})
        state.best_scores.append(max(s.val_score for s in population))
        outcome = SearchOutcome(best=max(usable, key=lambda f: (f.val_score, -f.cost_tokens)), archive=archive)
        run = evaluator.run
        stored = await asyncio.to_thread(run.store.candidates)
        outcome.screened = {c.graph_hash for c in stored if c.evaluation and c.evaluation.status == Status.screened}
        logged = {e.generation for e in await asyncio.to_thread(run.events, GenerationDone)}
        if 0 not in logged:
            first = GenerationDone(0, state.best_scores[-1], tuple(s.candidate_id for s in population))
            await asyncio.to_thread(run.add, first)
        while True:
            reason = self.stop.should_stop(state) or evaluator.exhausted
            if reason:
                outcome.stop_reason = reason
                break
            generation = state.generation + 1
            rows = await asyncio.to_thread(run.store.candidates)
            self._families, self._barren = meta_record(rows, self.meta_patience)
            meta_ok = self._meta_allowed(usage() if usage else {}, rows)
            made = await self._generation(population, archive, evaluator, base, generation, outcome.screened, meta_ok)
            outcome.rejected += made.rejected
            children = self._children(made, generation, results, archive, outcome)
            population = self._survivors(population, children, keyed_rng(base, f"gen{generation}/survivors"))
            state.generation = generation
            state.best_scores.append(max(s.val_score for s in archive))
            if usage:
                state.usage = usage()
            if generation not in logged:
                ids = tuple(s.candidate_id for s in population), tuple(s.candidate_id for s in children)
                await asyncio.to_thread(run.add, GenerationDone(generation, state.best_scores[-1], *ids, usage=state.usage))
            if on_generation:
                on_generation(state, population)
            if made.stop or evaluator.exhausted:
                outcome.stop_reason = made.stop or evaluator.exhausted
                break
        outcome.generations = state.generation
        best = min(archive.items, key=Scored.rank_key)
        outcome.best = results.get(best.graph_hash, outcome.best)
        outcome.results = results
        return outcome

    async def _generation(
        self, population: list[Scored], archive: Archive, evaluator: Evaluator, base: int, generation: int,
        screened: set[str], meta_ok: bool,
    ) -> Generation:
        """The generation's children: proposed, journaled, registered in slot order and raced."""
        keys = [f"gen{generation}/child{i}" for i in range(self.children)]
        # Mutations and crossovers avoid every graph tried so far and this generation's earlier
        # children; mutations prefer operators no graph has used (the set grows with the children).
        taken = {s.graph_hash for s in archive} | screened
        mutate = Mutate(self.mutations, {node.op for s in archive for node in s.spec.nodes})

        def plan(key: str) -> tuple[Proposer, Slot]:
            return self._plan(population, Slot(key, base, archive=archive, taken=taken), meta_ok, mutate)

        return await run_generation(evaluator, keys, plan, generation=generation, race=f"gen{generation}")

    @staticmethod
    def _children(
        made: Generation, generation: int, results: dict[str, Fitness], archive: Archive, outcome: SearchOutcome
    ) -> list[Scored]:
        """The generation's finished children (added to the results and the archive)."""
        children: list[Scored] = []
        for _, fitness in made.results:
            if fitness.status == Status.screened:
                outcome.screened.add(fitness.graph_hash)
            if not fitness.ok:
                outcome.rejected += fitness.status == Status.failed
                continue
            results[fitness.graph_hash] = fitness
            scored = fitness.scored(generation)
            archive.add(scored)
            children.append(scored)
        return children

    def _plan(self, population: list[Scored], slot: Slot, meta_ok: bool, mutate: Mutate) -> tuple[Proposer, Slot]:
        """A slot's proposer and parents: the meta model, a crossover or a mutation, by the slot's draws."""
        rng = slot.rng
        roll = rng.random()
        if roll < self.llm_share and not meta_ok:
            roll = self.llm_share + rng.random() * (1.0 - self.llm_share)  # the slot goes to the others
        parents = select_distinct(self.selection, population, 2, rng) if roll < self.llm_share else []
        if parents and all(self._families.get(p.candidate_id) in self._barren for p in parents):
            # The parents' families gave the meta model's proposals no gain: a mutation instead.
            roll = self.llm_share + rng.random() * (1.0 - self.llm_share)
        if roll < self.llm_share:
            slot.parents = parents
            return self.proposer, slot
        if roll < self.llm_share + self.crossover_share and len(population) >= 2:
            slot.parents = select_distinct(self.selection, population, 2, rng)
            return self.crossover, slot
        slot.parents = select_distinct(self.selection, population, 1, rng)
        return mutate, slot

    def _meta_allowed(self, usage: dict, rows: Sequence[Any]) -> bool:
        """Whether this generation's children may include meta-model proposals: while the meta
        proposals so far pay for themselves (`policy.MetaInvestment`: a first few tries, then
        gain per token), and the meta level stays under `meta_share` of the run's work tokens
        when a share is set."""
        if self.llm_share <= 0:
            return True
        allowed, _ = self.investment.allows(*yields(rows))
        if not allowed or self.meta_share is None:
            return allowed
        work = {lv: float(u.get("tokens", 0) + u.get("cached_tokens", 0)) for lv, u in usage.items()}
        total = sum(work.values())
        meta_cost = 3000.0  # about one proposal: the request with the catalogue, and a graph in JSON
        return (work.get("meta", 0.0) + meta_cost) <= self.meta_share * (total + meta_cost)

    def _survivors(self, population: list[Scored], children: list[Scored], rng: random.Random) -> list[Scored]:
        candidates = [*population, *children]
        kept = elite(candidates, self.elites)
        taken = {k.graph_hash for k in kept}
        rest = [c for c in candidates if c.graph_hash not in taken]
        return kept + self.selection.survivors(rest, self.population - len(kept), rng)
