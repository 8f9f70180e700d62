"""The search engine: the state every phase of a search shares, and the run's identity.

The engine holds the task, the client, the store, the evaluator (which hands evaluations to an
executor) and what the phases have found so far: the seed graphs' fitness and the pool of every
finished evaluation. Phases (`phases.py`) read and write it in turn. The winner is chosen from
the store, so a resumed search picks among everything any of its sessions finished.
"""

from __future__ import annotations

__all__ = ["SearchEngine", "run_identity", "data_fingerprint", "carried_usage"]

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunError
from ..graph.spec import GraphSpec
from ..lm import LM, Ledger, Usage, levels_shown
from ..store import RunStore
from ..program.run import evaluate
from ..tasks.base import Task
from ..program.model import Program
from ..status import Status
from .archive import graph_hash
from .budgets import SearchBudget
from .fitness import Evaluator, Fitness
from .policy import Choice, Entry, choose_winner, tie_key

# Budget fields that may change between sessions of one run (caps, and how long to go on);
# every other field shapes the scores and must match for a resume.
_FREE_BUDGET_FIELDS = {"name", "calls", "tokens", "dollars", "levels", "wall_time", "generations", "patience"}
_LEVEL_FIELDS = {"model", "temperature", "max_tokens", "seed", "api_base", "extra"}


def data_fingerprint(task: Task) -> str:
    """A hash of the task's examples (every split, inputs and targets) and its seed program."""
    digest = hashlib.sha256()
    for split in (task.train, task.val, task.test):
        for ex in split:
            digest.update(json.dumps([ex.id, ex.input, ex.target], ensure_ascii=False).encode())
        digest.update(b"|")
    digest.update(task.seed_program.model_dump_json().encode())
    # How answers are read and scored: another metric or extractor gives other scores.
    rules = [getattr(task, "extract_rule", None), getattr(task, "metric_rule", None), getattr(task, "rubric", "")]
    if any(rules):
        digest.update(json.dumps(rules, default=str).encode())
    return digest.hexdigest()[:16]


def run_identity(task: Task, lm: LM, budget: SearchBudget, seed: int, seed_graphs: Sequence[GraphSpec]) -> dict[str, Any]:
    """What must be equal for a stored run to be continued: data, seed, loop sizes, seeds, models."""
    levels = {}
    for level in levels_shown(task.metric_levels):  # the judge only when the metric calls it
        cfg = lm.config.level(level)
        levels[level] = {k: v for k, v in cfg.model_dump(mode="json").items() if k in _LEVEL_FIELDS and v not in (None, {}, "")}
    return {
        "data": data_fingerprint(task),
        "seed": seed,
        "loops": {k: v for k, v in budget.model_dump(mode="json").items() if k not in _FREE_BUDGET_FIELDS},
        "seed_graphs": [graph_hash(g) for g in seed_graphs],
        "levels": levels,
    }


@dataclass
class SearchEngine:
    """The shared state of one search.

    Attributes:
        seeds: the seed graphs' fitness, in the order given.
        pool: every evaluation this search built on, by graph hash (finished ones only).
        rejected: proposals that gave no usable graph (or whose evaluation failed).
        search_stop: why the structure search ended (its stop condition).
        best, rows: the winner and the rows of the result table, once the test phase ran;
        why: why the winner won (one line).
    """

    task: Task
    lm: LM
    store: RunStore
    budget: SearchBudget
    evaluator: Evaluator
    seed: int = 0
    emit: Callable[[str, dict[str, Any]], None] = lambda kind, data: None
    seeds: list[Fitness] = field(default_factory=list)
    pool: dict[str, Fitness] = field(default_factory=dict)
    rejected: int = 0
    search_stop: str = ""
    best: Fitness | None = None
    why: str = ""
    rows: list[Any] = field(default_factory=list)

    def add(self, results: Sequence[Fitness]) -> None:
        """Puts the finished evaluations among `results` into the pool."""
        for fitness in results:
            if fitness.ok:
                self.pool[fitness.graph_hash] = fitness

    @property
    def stopped(self) -> str:
        """Why no more work should start (a budget cap cut an evaluation), or ""."""
        return self.evaluator.exhausted

    def usage(self) -> dict[str, dict[str, float]]:
        """The run's spend per level so far: earlier sessions (from the store) plus this one."""
        total = Ledger()
        for (level, model), usage in self.lm.ledger.rows.items():
            total.record(level, model, usage)
        for (level, model), usage in self.lm.carried.rows.items():
            total.record(level, model, usage)
        return {level: data for level, data in total.to_dict()["levels"].items()}

    def task_context(self, examples: int = 3, failures: int = 3) -> str:
        """What the meta model is shown of the task: description, examples, the best program so
        far and validation examples it gets wrong (inputs and targets cut to 200 characters)."""
        task = self.task
        lines = [f"The task: {task.name}. {task.description}".strip()]
        lines += ["Training examples (input -> answer):"]
        lines += [f"- {ex.input[:200]!r} -> {ex.target[:200]!r}" for ex in task.train[:examples]]
        usable = [f for f in self.pool.values() if f.ok]
        if usable:
            best = max(usable, key=lambda f: (f.val_score, -f.cost_tokens))
            program = best.program or task.seed_program
            lines.append(
                f"The best program so far ({best.spec.name}, validation {best.val_score:.2f}): instruction "
                f"{program.instruction[:300]!r}, {len(program.demos)} demos."
            )
            wrong = [ex for ex in task.val if best.val_scores.get(ex.id, 1.0) == 0.0][:failures]
            if wrong:
                lines.append("It gets these validation examples wrong (input -> answer):")
                lines += [f"- {ex.input[:200]!r} -> {ex.target[:200]!r}" for ex in wrong]
        return "\n".join(lines)

    def entries(self) -> list[tuple[Entry, Any]]:
        """Every finished evaluation of the run as the winner's choice sees it, with its row."""
        matrix = self.store.example_scores("val")
        held_out = self.store.example_scores("confirm")
        seed_id = self.task.seed_program.id
        out = []
        for order, row in enumerate(self.store.candidates()):
            evaluation = row.evaluation
            if evaluation is None or evaluation.val_score is None or evaluation.status != Status.done:
                continue
            program = evaluation.program or {}
            changed = bool(program) and Program.model_validate(program).id != seed_id
            entry = Entry(
                row.id, row.name or "", matrix.get(row.id, {}), row.origin == "seed", changed,
                len((row.spec or {}).get("nodes", [])), order, held_out.get(row.id),
            )
            out.append((entry, row))
        return out

    async def choose(self) -> Fitness:
        """Chooses the winner on evidence (`policy.choose_winner`), confirming a derived graph on
        held-out validation examples when the task has them; records the choice and its reason.

        Raises:
            RunError: no graph has a validation score.
        """
        entries = await asyncio.to_thread(self.entries)
        if not entries:
            return self.winner()  # partial ones only: the old rule (nothing finished)
        choice = choose_winner([e for e, _ in entries])
        if _needs_confirm(choice):
            held_out = self.task.val[self.budget.val_limit: 2 * self.budget.val_limit]
            if held_out:
                rows = {e.id: row for e, row in entries}
                incumbent = min((e for e, _ in entries if e.seed), key=tie_key)
                await asyncio.gather(*(self._confirm(rows[e.id], held_out) for e in (incumbent, choice.challenger)))
                entries = await asyncio.to_thread(self.entries)
                choice = choose_winner([e for e, _ in entries])
        self.why = choice.reason
        row = next(row for e, row in entries if e.id == choice.winner.id)
        await asyncio.to_thread(self.store.add_event, "winner", {"candidate": row.id, "why": choice.reason})
        return self.evaluator.fitness_of(row, row.evaluation, from_store=True)

    async def _confirm(self, row: Any, examples: list) -> None:
        """Scores a candidate's program on held-out validation examples (split "confirm")."""
        if (await asyncio.to_thread(self.store.example_scores, "confirm", row.id)).get(row.id):
            return
        program = Program.model_validate(row.evaluation.program) if row.evaluation.program else self.task.seed_program
        result = await evaluate(program, examples, self.task, self.lm)
        if not getattr(result, "errors", 0):
            scores = {t.example.id: t.score for t in result.traces}
            await asyncio.to_thread(self.store.set_example_scores, row.id, "confirm", scores)

    def winner(self) -> Fitness:
        """The best partial evaluation in the store, when no evaluation finished (see `choose`).

        Raises:
            RunError: no graph has a validation score.
        """
        best = None
        for order, row in enumerate(self.store.candidates()):
            evaluation = row.evaluation
            if evaluation is None or evaluation.val_score is None or evaluation.status not in (Status.done, Status.partial):
                continue
            key = (evaluation.status == Status.done, evaluation.val_score, -order)
            if best is None or key > best[0]:
                best = (key, row)
        if best is None:
            raise RunError(f"no graph of the run in {self.store.location} has a validation score: nothing to export")
        row = best[1]
        return self.evaluator.fitness_of(row, row.evaluation, from_store=True)


def _needs_confirm(choice: Choice) -> bool:
    """True when the choice is a derived graph not yet checked on held-out examples."""
    return choice.challenger is not None and choice.winner is choice.challenger and choice.winner.confirm is None


def _tokens(evaluation: Any) -> float:
    # Work tokens (spent or served from the cache/in flight): which of two evaluations paid for
    # a shared call depends on timing, the work each needed does not.
    levels = (evaluation.usage or {}).get("levels", {})
    return float(sum(u.get("tokens", 0) + u.get("cached_tokens", 0) for u in levels.values()))


def carried_usage(store: RunStore) -> Ledger:
    """The usage the store holds for the run (every earlier session), as a ledger for the caps."""
    ledger = Ledger()
    for level, data in (store.usage_totals().get("levels") or {}).items():
        fields = {k: data[k] for k in Usage.__dataclass_fields__ if k in data}
        if any(fields.values()):
            ledger.rows[(level, "earlier sessions")] = Usage(**fields)
    return ledger
