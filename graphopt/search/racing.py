"""Racing the graphs of a batch (successive halving): `Racer` runs the rules of `policy.Race`.

Racing (`race=True` with a budget `screen`, for loops of two or more steps): the seeds and each
generation's children are first scored on a screen (the first inner-loop step, its program
scored on `screen` validation examples drawn for the race, seeded by the run's seed and the
race's key). A graph leaves the race only when the paired sign test says it is worse than the
leader (`policy.Race`); when too few can be cut, the screen grows (the same screen programs
scored on more validation examples) until it separates them or is the whole validation set. The
graphs that go on continue from their screen to the full inner loop and validation set; the ones
cut are stored as "screened". Both rungs are in the evaluation's usage and the run's ledger; the
`race` event (`events.RaceRun`) records each graph's per-example screen scores and the decision,
so a resumed race decides as the first one did.
"""

from __future__ import annotations

__all__ = ["Racer"]

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..program.model import Program
from ..program.run import scorable_by_likelihood, target_logprobs
from ..status import Status
from ..store.events import RaceGraph, RaceRun
from .fitness import Fitness
from .journal import keyed_rng
from .policy import Race, RaceDecision, screen_sizes
from .unit import UnitResult, work_tokens

if TYPE_CHECKING:
    from .evaluator import Evaluator

_ENTERS = (Status.done, Status.screen, Status.screened)


class Racer:
    """Races batches for an `Evaluator` (its units, its records); holds the screens that may go on."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.screens: dict[str, UnitResult] = {}  # screens that may continue, by candidate id

    def races(self, rows: Sequence[Any]) -> bool:
        """True when the budget races: a screen smaller than the validation set and an inner loop
        of two or more steps (with one step the screen is the whole loop: nothing to save). A
        batch of one graph is raced too, so a resumed batch decides as the first session did."""
        budget = self.evaluator.budget
        return bool(budget.screen) and budget.screen < budget.val_limit and budget.inner_steps > 1 and bool(rows)

    def race_examples(self, key: str) -> list[str]:
        """The validation example ids in the order this race's screen takes them (seeded by key)."""
        ev = self.evaluator
        ids = [ex.id for ex in ev.task.val[: ev.budget.val_limit]]
        keyed_rng(ev.seed, f"race/{key}").shuffle(ids)
        return ids

    async def race(self, rows: Sequence[Any], key: str) -> list[Fitness]:
        """A race over a batch (see the module docstring and `policy.Race`).

        Finished or screened graphs (a resumed run) keep their stored outcome and enter the
        decision with their recorded screen scores; a graph whose screen failed or was cut by a
        budget is recorded as such and leaves the race."""
        ev = self.evaluator
        order = self.race_examples(key)
        sizes = screen_sizes(ev.budget.screen, len(order))
        recorded = {g.candidate: g.scores for e in await asyncio.to_thread(ev.run.events, RaceRun) for g in e.graphs}
        first = order[: sizes[0]]
        out = await ev.in_waves(rows, lambda row: self._screen(row, first), lambda row: ev.estimate(row, screen=True), strict=True)
        policy = Race(promote=ev.budget.promote)
        for rung, size in enumerate(sizes):
            shown = set(order[:size])
            entered = {
                i: (recorded.get(rows[i].id) or f.val_scores) if f.status in (Status.done, Status.screened) else f.val_scores
                for i, f in enumerate(out) if f.status in _ENTERS
            }
            scores = {rows[i].id: {k: v for k, v in s.items() if k in shown} for i, s in entered.items()}
            dense = await self._dense({rows[i].id: out[i].program for i in entered}, sorted(shown))
            scores = dense or scores
            live = [i for i in entered if out[i].status == Status.screen]
            decision = policy.decide(scores, can_grow=rung + 1 < len(sizes) and bool(live))
            if not decision.grow:
                break
            grown = order[: sizes[rung + 1]]
            for i, fitness in zip(live, await asyncio.gather(*(self._grow(rows[i], grown) for i in live))):
                out[i] = fitness
        event = _race_event(key, len(shown), "likelihood" if dense else "metric", decision, rows, entered, scores)
        await asyncio.to_thread(ev.run.add, event)
        return await self._finish(rows, out, entered, decision)

    async def _finish(self, rows: Sequence[Any], out: list[Fitness], entered: dict[int, Any], decision: RaceDecision) -> list[Fitness]:
        """The graphs that go on get their full evaluation (from their screens); the rest are screened out."""
        ev = self.evaluator
        promoted = [i for i in entered if out[i].status == Status.screen and rows[i].id in decision.go_on]
        finished = await ev.in_waves([rows[i] for i in promoted], self._full, ev.estimate)
        for i, fitness in zip(promoted, finished):
            out[i] = fitness
        for i, fitness in enumerate(out):
            if fitness.status == Status.screen:
                why = decision.why.get(rows[i].id, "")
                note = f"screened out: {fitness.val_score:.3f} on {len(fitness.val_scores)} validation examples" + (f", {why}" if why else "")
                out[i] = await asyncio.to_thread(ev.screened_out, rows[i], self.screens.pop(rows[i].id), note)
        return out

    async def _full(self, row: Any) -> Fitness:
        """A race's winner continues from its screen to the full evaluation."""
        return await self.evaluator.fitness(row, earlier=self.screens.pop(row.id, None))

    async def _dense(self, programs: dict[str, Any], example_ids: Sequence[str]) -> dict[str, dict[str, float]] | None:
        """Each racer's log-probability of each shown example's target (`screen_by: likelihood`),
        or None for the metric: not asked for, a program of several calls, or a program model that
        cannot score answers. Deterministic, so a resumed race computes the same (from the cache)."""
        ev = self.evaluator
        if ev.budget.screen_by != "likelihood" or not scorable_by_likelihood(list(programs.values()), ev.lm):
            return None
        examples = [ex for ex in ev.task.val if ex.id in set(example_ids)]
        found = await asyncio.gather(*(target_logprobs(p, examples, ev.lm) for p in programs.values()))
        return dict(zip(programs, found))

    async def _screen(self, row: Any, examples: Sequence[str]) -> Fitness:
        """A graph's screen: its stored outcome when it has one, else its first step, run now and
        scored on `examples` (status "screen": held in memory, with the unit's result, until the
        race decides)."""
        ev = self.evaluator
        stored = await asyncio.to_thread(ev.run.store.evaluation, row.id)
        if stored is not None and stored.status in (Status.done, Status.screened):
            ev.reused += 1
            return ev.report(await asyncio.to_thread(ev.fitness_of, row, stored, from_store=True))
        unit = ev.unit(row, steps=1, final_ids=tuple(examples))
        return await ev.once(("screen", row.graph_hash), lambda: self._run(row, unit))

    async def _grow(self, row: Any, examples: Sequence[str]) -> Fitness:
        """A screen scored on more validation examples: the same first step, continued with no
        new step (the examples it was scored on before come from the cache)."""
        earlier = self.screens.pop(row.id)
        unit = self.evaluator.unit(row, steps=1, final_ids=tuple(examples), resume=earlier.result)
        return await self._run(row, unit, earlier)

    async def _run(self, row: Any, unit: Any, earlier: UnitResult | None = None) -> Fitness:
        """Runs a screen's unit; one with a score is held (status "screen"), any other outcome is recorded."""
        ev = self.evaluator
        outcome = await ev.execute(row, unit, earlier)
        result = outcome.result or {}
        if outcome.status != Status.done or result.get("best_val") is None:
            return await ev.settle(row, outcome, unit.spec)
        self.screens[row.id] = outcome
        program = Program.model_validate(result["best_program"])
        return Fitness(
            unit.spec, row.id, row.graph_hash, result["best_val"], result.get("best_val_stderr") or 0.0,
            work_tokens(outcome.usage), program,
            status=Status.screen, val_scores=result.get("val_scores") or {}, changed=program.id != ev.seed_program.id,
        )


def _race_event(
    key: str, screen: int, by: str, decision: RaceDecision, rows: Sequence[Any], entered: dict[int, Any], scores: dict[str, dict]
) -> RaceRun:
    """The race's record: each graph's screen scores (all it was scored on) and the decision."""
    graphs = []
    for i, recorded in entered.items():
        cid = rows[i].id
        mean = sum(scores[cid].values()) / max(1, len(scores[cid]))
        graphs.append(RaceGraph(cid, mean, recorded, cid in decision.go_on, decision.why.get(cid, "")))
    return RaceRun(key, screen, by, decision.leader, tuple(graphs))
