"""The meta structure optimizer: evolutionary search over optimizer graphs.

Each generation proposes children of the current population, by structural mutation, by
crossover, or by the meta model (LLM-guided proposal); the children are raced by the `Evaluator`
(successive halving: a screen on a few validation examples, then the full evaluation for the
best of them; the run store doubles as its fitness cache) and the next population keeps the
elites plus the choice of the selection strategy. Strategies are objects: swap any of them without flags.
"""

from __future__ import annotations

__all__ = ["StructureSearch", "SearchOutcome", "meta_record"]

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExceeded, LLMError, RunError
from ..lm import sample_place, usage_scope
from ..operators import operator_names
from ..status import Status
from .archive import Archive, Scored, graph_hash
from .crossover import Crossover
from .evaluator import Evaluator
from .events import GenerationDone, ProposalMade
from .fitness import EvalRequest, Fitness
from .journal import keyed_rng
from .llm_mutation import LLMProposal
from .mutations import Mutation, default_mutations, mutate
from .policy import MetaInvestment, yields
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
        meta_share: the most the meta level may have of the run's tokens (all levels, cache hits
            counted as work) when a generation starts for its children to include meta-model
            proposals; above it those slots are mutations. None: no fixed share (the default:
            `investment` decides from what the meta proposals gained).
        investment: when meta proposals go on, from their measured gain per token.
        meta_patience: meta-model proposals a family (the graphs descended from one seed) gets
            without any gain over their parents before its slots go to mutations instead.
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
        meta_share: float | None = None,
        meta_patience: int = 2,
        investment: MetaInvestment | None = None,
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
        self.meta_share = meta_share
        self.meta_patience = meta_patience
        self.investment = investment or MetaInvestment()
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
            requests, budget_stop = await self._proposals(population, archive, evaluator, base, generation, outcome, meta_ok)
            children: list[Scored] = []
            for fitness in await evaluator.evaluate_many(requests, race=True, key=f"gen{generation}"):
                if fitness.status == Status.screened:
                    outcome.screened.add(fitness.graph_hash)
                if not fitness.ok:
                    outcome.rejected += fitness.status == Status.failed
                    continue
                results[fitness.graph_hash] = fitness
                scored = fitness.scored(generation)
                archive.add(scored)
                children.append(scored)
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
            if budget_stop or evaluator.exhausted:
                outcome.stop_reason = budget_stop or evaluator.exhausted
                break
        outcome.generations = state.generation
        best = min(archive.items, key=Scored.rank_key)
        outcome.best = results.get(best.graph_hash, outcome.best)
        outcome.results = results
        return outcome

    async def _proposals(
        self,
        population: list[Scored],
        archive: Archive,
        evaluator: Evaluator,
        base: int,
        generation: int,
        outcome: SearchOutcome,
        meta_ok: bool = True,
    ) -> tuple[list[EvalRequest], str]:
        """The generation's children as requests (registered, in slot order) and a budget message."""
        keys = [f"gen{generation}/child{i}" for i in range(self.children)]
        # Mutations and crossovers are made here, in slot order, each avoiding every graph tried
        # so far and this generation's earlier children; the meta model's proposals run together.
        taken = {s.graph_hash for s in archive} | outcome.screened
        used_ops = {node.op for s in archive for node in s.spec.nodes}  # grows with this generation's children
        planned: dict[str, Any] = {}
        for key in keys:
            if evaluator.journal.get(key) is None:
                planned[key] = self._plan(population, archive, keyed_rng(base, key), taken, meta_ok, key, used_ops)

        async def slot(key: str) -> Any:
            plan = planned.get(key)
            if plan is None or not callable(plan):
                return plan
            return await plan()

        made = await asyncio.gather(*(slot(k) for k in keys), return_exceptions=True)
        # Registering and journaling write the store: in a worker thread, off the event loop.
        return await asyncio.to_thread(self._register_children, keys, made, evaluator, generation, outcome)

    @staticmethod
    def _register_children(
        keys: list[str], made: list[Any], evaluator: Evaluator, generation: int, outcome: SearchOutcome
    ) -> tuple[list[EvalRequest], str]:
        """The proposals as registered requests, in slot order, each journaled; a budget message."""
        requests: list[EvalRequest] = []
        budget_stop = ""
        for key, proposal in zip(keys, made):
            if isinstance(proposal, BudgetExceeded):
                budget_stop = budget_stop or str(proposal)  # not journaled: a resume proposes again
                continue
            if isinstance(proposal, BaseException):
                raise proposal
            entry = evaluator.journal.get(key)
            if entry is not None:  # made before a resume: the store has its outcome
                if isinstance(entry, ProposalMade):
                    requests.append(evaluator.request_of(entry))
                else:
                    outcome.rejected += 1
                continue
            kind, spec, parents, mutation, reasons, *spent = proposal
            if spec is None:
                outcome.rejected += 1
                evaluator.journal.rejected(key, kind, reasons)
                continue
            usage = spent[0] if spent else None  # a meta-model proposal's calls: charged to its graph
            request = EvalRequest(spec, tuple(p.candidate_id for p in parents if p.candidate_id), kind, mutation, generation, charged=usage)
            row = evaluator.run.register(spec, parents=request.parents, origin=kind, mutation=mutation, generation=generation)
            evaluator.journal.accepted(key, row.id, kind, usage)
            requests.append(request)
        return requests, budget_stop

    def _plan(
        self, population: list[Scored], archive: Archive, rng: random.Random, taken: set[str], meta_ok: bool = True,
        key: str = "", used_ops: set[str] | None = None,
    ) -> Any:
        """One child: a tuple (origin, spec or None, parents, mutation name, rejection reasons), or
        for a meta-model proposal a coroutine function that makes it."""
        roll = rng.random()
        if roll < self.llm_share and not meta_ok:
            roll = self.llm_share + rng.random() * (1.0 - self.llm_share)  # the slot goes to the others
        parents = select_distinct(self.selection, population, 2, rng) if roll < self.llm_share else []
        if parents and all(self._families.get(p.candidate_id) in self._barren for p in parents):
            # The parents' families gave the meta model's proposals no gain: a mutation instead.
            roll = self.llm_share + rng.random() * (1.0 - self.llm_share)
        if roll < self.llm_share:

            async def ask() -> tuple:
                with usage_scope() as spent, sample_place(key):
                    try:
                        proposal = await self.proposer.propose(parents, archive, rng)
                    except LLMError as exc:
                        if exc.fatal:
                            raise
                        return "llm", None, parents, None, [f"meta call failed: {exc}"]
                return "llm", proposal.spec, parents, "llm_proposal", proposal.rejected_reasons, spent.to_dict()

            return ask
        if roll < self.llm_share + self.crossover_share and len(population) >= 2:
            a, b = select_distinct(self.selection, population, 2, rng)
            child = self.crossover.cross(a.spec, b.spec, rng)
            if child is not None and graph_hash(child) in taken:
                child = None
            if child is not None:
                taken.add(graph_hash(child))
            return "crossover", child, [a, b], self.crossover.name, ["no new graph from these cut points"]
        (parent,) = select_distinct(self.selection, population, 1, rng)
        used_ops = set() if used_ops is None else used_ops
        untried = set(operator_names()) - used_ops
        child, failed = mutate(parent.spec, self.mutations, rng, max_tries=20, avoid=taken, untried=untried)
        mutation = child.provenance.mutation if child is not None else None
        if child is not None:
            taken.add(graph_hash(child))
            used_ops |= {node.op for node in child.nodes}
        return "mutation", child, [parent], mutation, [f"{name}: {why}" for name, why in failed]

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
