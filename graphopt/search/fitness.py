"""The records of an evaluated graph: what was asked (`EvalRequest`) and what came of it (`Fitness`).

`Evaluator` (in `evaluator`) makes them; `fitness_of` reads one back from the store's rows.
"""

from __future__ import annotations

__all__ = ["Fitness", "EvalRequest", "fitness_of"]

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..graph.spec import GraphSpec
from ..program.model import Program
from ..status import Status
from .archive import Scored
from .unit import work_tokens


@dataclass(frozen=True)
class Fitness:
    """One graph's evaluation.

    Attributes:
        status: "done", "partial" (cut by a budget cap), "failed" (see `reason`), "screened"
            (lost its race: scored on the screen's examples only) or, inside a race, "screen".
        val_score: the validation score (None when there is none: failed, or cut before it).
        cost_tokens: tokens of every model call the evaluation needed, answered from the response
            cache or not, so graphs scored later are not made to look cheaper by earlier ones.
        history: the inner loop's step records (each a dict), read by the meta prompt optimizer.
        val_scores: the score on each validation example (the store's score matrix row).
        from_store: True when a finished evaluation in the store was reused.
        changed: False when the program is the one the inner loop started from.
    """

    spec: GraphSpec
    candidate_id: str
    graph_hash: str
    val_score: float | None
    val_stderr: float
    cost_tokens: float
    program: Program | None
    history: list[dict[str, Any]] = field(default_factory=list)
    from_store: bool = False
    status: Status = Status.done
    reason: str = ""
    val_scores: dict[str, float] = field(default_factory=dict)
    changed: bool = True

    @property
    def ok(self) -> bool:
        """True for a finished evaluation: the only kind the search builds on."""
        return self.status == Status.done and self.val_score is not None

    def scored(self, generation: int = 0) -> Scored:
        return Scored(
            self.spec, self.graph_hash, self.val_score or 0.0, self.cost_tokens, self.candidate_id, generation,
            per_example=self.val_scores or None, changed=self.changed,
        )


@dataclass(frozen=True)
class EvalRequest:
    """A graph to evaluate and where it came from (its store lineage)."""

    spec: GraphSpec
    parents: tuple[str, ...] = ()
    origin: str = "seed"
    mutation: str | None = None
    generation: int = 0
    charged: dict[str, Any] | None = None  # usage of the proposal that made it (meta calls)


def fitness_of(
    row: Any, evaluation: Any, val_scores: Mapping[str, float], *, seed_id: str, from_store: bool, spec: GraphSpec | None = None
) -> Fitness:
    """The Fitness of a stored candidate row, its evaluation row (None: never recorded) and its
    score matrix row; `seed_id` is the id of the program the inner loop started from."""
    program = getattr(evaluation, "program", None)
    return Fitness(
        spec=spec or GraphSpec.model_validate(row.spec),
        candidate_id=row.id,
        graph_hash=row.graph_hash,
        val_score=getattr(evaluation, "val_score", None),
        val_stderr=getattr(evaluation, "val_stderr", None) or 0.0,
        cost_tokens=work_tokens(getattr(evaluation, "usage", None) or {}),
        program=Program.model_validate(program) if program else None,
        history=list(getattr(evaluation, "history", None) or []),
        from_store=from_store,
        status=Status(getattr(evaluation, "status", Status.failed)),
        reason=getattr(evaluation, "error", None) or "",
        val_scores=dict(val_scores),
        changed=bool(program) and Program.model_validate(program).id != seed_id,
    )
