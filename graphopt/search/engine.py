"""The search engine: the state every phase of a search shares, and the run's identity.

The engine holds the evaluator (which holds the task, the client, the run and hands evaluations
to an executor) and what the phases have found so far: the seed graphs' fitness and the pool of
every finished evaluation. Phases (`phases.py`) read and write it in turn; the winner is chosen
by `winner.choose`.
"""

from __future__ import annotations

__all__ = ["SearchEngine", "run_identity", "data_fingerprint", "carried_usage"]

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..graph.spec import GraphSpec
from ..lm import LM, Ledger, Usage, levels_shown
from ..store import RunStore
from ..tasks.base import Task
from .archive import graph_hash
from .budgets import SearchBudget
from .evaluator import Evaluator
from .fitness import Fitness
from .run import Run

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
    """The shared state of one search: what the phases found, over one evaluator (which holds the
    task, the client, the run, the loop sizes and the seed).

    Attributes:
        seeds: the seed graphs' fitness, in the order given.
        pool: every evaluation this search built on, by graph hash (finished ones only).
        rejected: proposals that gave no usable graph (or whose evaluation failed).
        search_stop: why the structure search ended (its stop condition).
        best, rows: the winner and the rows of the result table, once the test phase ran;
        why: why the winner won (one line).
    """

    evaluator: Evaluator
    emit: Callable[[str, dict[str, Any]], None] = lambda kind, data: None
    seeds: list[Fitness] = field(default_factory=list)
    pool: dict[str, Fitness] = field(default_factory=dict)
    rejected: int = 0
    search_stop: str = ""
    best: Fitness | None = None
    why: str = ""
    rows: list[Any] = field(default_factory=list)

    @property
    def task(self) -> Task:
        return self.evaluator.task

    @property
    def lm(self) -> LM:
        return self.evaluator.lm

    @property
    def run(self) -> Run:
        return self.evaluator.run

    @property
    def budget(self) -> SearchBudget:
        return self.evaluator.budget

    @property
    def seed(self) -> int:
        return self.evaluator.seed

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


def carried_usage(store: RunStore) -> Ledger:
    """The usage the store holds for the run (every earlier session), as a ledger for the caps."""
    ledger = Ledger()
    for level, data in (store.usage_totals().get("levels") or {}).items():
        fields = {k: data[k] for k in Usage.__dataclass_fields__ if k in data}
        if any(fields.values()):
            ledger.rows[(level, "earlier sessions")] = Usage(**fields)
    return ledger
