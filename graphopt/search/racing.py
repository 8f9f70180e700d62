"""Racing the graphs of a batch: the evaluator's side of `policy.Race`.

The rules (who leaves a race, when the screen grows) are `policy.Race`'s; this module runs them:
each graph's screen (its first inner-loop step scored on validation examples drawn for the race,
seeded by the run seed and the race's key), the screen's growth, the `race` event that lets a
resumed race decide as the first one did, the full evaluation of the graphs that go on
(continuing from their screens) and the record of the ones cut ("screened").
"""

from __future__ import annotations

__all__ = ["Racing"]

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..program.run import scorable_by_likelihood, target_logprobs
from ..status import Status
from .journal import keyed_rng
from .policy import Race, screen_sizes
from .unit import merged_usage

if TYPE_CHECKING:
    from .fitness import Fitness


class Racing:
    """The racing part of `fitness.Evaluator` (a mixin: it uses the evaluator's store, budget,
    units and records)."""

    def _races(self, rows: Sequence[Any]) -> bool:
        """True when the budget races: a screen smaller than the validation set and an inner loop
        of two or more steps (with one step the screen is the whole loop: nothing to save). A
        batch of one graph is raced too, so a resumed batch decides as the first session did."""
        budget = self.budget
        return bool(budget.screen) and budget.screen < budget.val_limit and budget.inner_steps > 1 and bool(rows)

    def _race_examples(self, key: str) -> list[str]:
        """The validation example ids in the order this race's screen takes them (seeded by key)."""
        ids = [ex.id for ex in self.task.val[: self.budget.val_limit]]
        keyed_rng(self.seed, f"race/{key}").shuffle(ids)
        return ids

    async def _race(self, rows: Sequence[Any], key: str) -> list[Fitness]:
        """A race over a batch (see the module docstring and `policy.Race`).

        Finished or screened graphs (a resumed run) keep their stored outcome and enter the
        decision with their recorded screen scores; a graph whose screen failed or was cut by a
        budget is recorded as such and leaves the race."""
        order = self._race_examples(key)
        sizes = screen_sizes(self.budget.screen, len(order))
        recorded = {
            g["candidate"]: g.get("scores") or {}
            for e in await asyncio.to_thread(self.store.events, "race") for g in (e.payload or {}).get("graphs", [])
        }
        first = order[: sizes[0]]
        out = await self._in_waves(rows, lambda row: self._screen(row, first), lambda row: self._estimate(row, screen=True), strict=True)
        policy = Race(promote=self.budget.promote)
        for rung, size in enumerate(sizes):
            shown = set(order[:size])
            entered = {
                i: (recorded.get(rows[i].id) or f.val_scores) if f.status in (Status.done, Status.screened) else f.val_scores
                for i, f in enumerate(out) if f.status in (Status.done, Status.screen, Status.screened)
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
        await asyncio.to_thread(self.store.add_event, "race", {
            "key": key,
            "screen": len(shown),
            "by": "likelihood" if dense else "metric",
            "leader": decision.leader,
            "graphs": [
                {
                    "candidate": rows[i].id, "score": sum(scores[rows[i].id].values()) / max(1, len(scores[rows[i].id])),
                    "scores": entered[i], "promoted": rows[i].id in decision.go_on,
                    "why": decision.why.get(rows[i].id, ""),
                }
                for i in entered
            ],
        })
        promoted = [i for i in entered if out[i].status == Status.screen and rows[i].id in decision.go_on]
        finished = await self._in_waves([rows[i] for i in promoted], self._fitness, self._estimate)
        for i, fitness in zip(promoted, finished):
            out[i] = fitness
        for i, fitness in enumerate(out):
            if fitness.status == Status.screen:
                why = decision.why.get(rows[i].id, "")
                out[i] = await asyncio.to_thread(self._screened_out, rows[i], fitness, why)
        return out

    async def _dense(self, programs: dict[str, Any], example_ids: Sequence[str]) -> dict[str, dict[str, float]] | None:
        """Each racer's log-probability of each shown example's target (`screen_by: likelihood`),
        or None for the metric: not asked for, a program of several calls, or a program model that
        cannot score answers. Deterministic, so a resumed race computes the same (from the cache)."""
        if self.budget.screen_by != "likelihood" or not scorable_by_likelihood(list(programs.values()), self.lm):
            return None
        examples = [ex for ex in self.task.val if ex.id in set(example_ids)]
        found = await asyncio.gather(*(target_logprobs(p, examples, self.lm) for p in programs.values()))
        return dict(zip(programs, found))

    async def _screen(self, row: Any, examples: Sequence[str]) -> Fitness:
        """A graph's screen: its stored outcome when it has one, else its first step, run now and
        scored on `examples` (status "screen": held in memory, with the unit's result, until the
        race decides)."""
        stored = await asyncio.to_thread(self.store.evaluation, row.id)
        if stored is not None and stored.status in (Status.done, Status.screened):
            self.reused += 1
            return self._report(await asyncio.to_thread(self.fitness_of, row, stored, from_store=True))
        unit = self._unit(row, steps=1, final_ids=tuple(examples))
        return await self._once(("screen", row.graph_hash), lambda: self._run(row, unit, screen=True))

    async def _grow(self, row: Any, examples: Sequence[str]) -> Fitness:
        """A screen scored on more validation examples: the same first step, continued with no
        new step (the examples it was scored on before come from the cache)."""
        earlier = self._screens.pop(row.id)
        unit = self._unit(row, steps=1, final_ids=tuple(examples), resume=earlier.result)
        return await self._run(row, unit, screen=True, earlier=earlier)

    def _screened_out(self, row: Any, screen: Fitness, why: str = "") -> Fitness:
        """Records a graph that lost its race (status "screened") and reads it back (in a thread)."""
        outcome = self._screens.pop(row.id)
        outcome.usage = merged_usage(outcome.usage, self._charged.pop(row.id, {}))
        result = outcome.result or {}
        self.store.finish_evaluation(
            row.id, val_score=result.get("best_val"), val_stderr=result.get("best_val_stderr"),
            val_scores=result.get("val_scores") or None, program=result.get("best_program"),
            history=result.get("history", []), usage=outcome.usage, status=Status.screened,
            note=f"screened out: {screen.val_score:.3f} on {len(screen.val_scores)} validation examples" + (f", {why}" if why else ""),
        )
        self.store.record_ledger(self.lm.ledger)
        return self._report(self.fitness_of(row, self.store.evaluation(row.id), from_store=False))
