"""`Run`: the search's one writer of the run store.

Every write of a search goes through here: the run's status and summary, a candidate's
registration (with its lineage), an evaluation's start and outcome, per-example and test scores,
the usage ledger, and the events (typed ones from `events`, plain ones for what is only shown).
Reads stay on `run.store`. Each method writes at once and blocks: the evaluator and the phases
call them in a worker thread, so a slow database does not hold up the evaluations in flight.
"""

from __future__ import annotations

__all__ = ["Run"]

from collections.abc import Mapping, Sequence
from typing import Any

from ..graph.spec import GraphSpec
from ..status import Status
from ..store import CandidateRow, RunStore
from .archive import graph_hash
from ..store.events import E, Event, typed
from .unit import UnitResult


class Run:
    """A search run over its store (see the module docstring)."""

    def __init__(self, store: RunStore):
        self.store = store

    # --------------------------------------------------------------------------- the run

    def begin(self, config: Mapping[str, Any]) -> None:
        """Starts the run, or continues the stored one with this config (see `RunStore.ensure_run`)."""
        self.store.ensure_run(config)

    def set_status(self, status: str) -> None:
        self.store.set_status(status)

    def set_summary(self, summary: Mapping[str, Any]) -> None:
        self.store.set_summary(summary)

    def record_ledger(self, ledger: Any) -> None:
        """Stores this session's usage so far (the client's ledger)."""
        self.store.record_ledger(ledger)

    def close(self) -> None:
        self.store.close()

    # --------------------------------------------------------------------------- candidates

    def register(
        self, spec: GraphSpec, *, parents: Sequence[str] = (), origin: str = "seed", mutation: str | None = None, generation: int = 0
    ) -> CandidateRow:
        """Adds the graph to the store (idempotent by canonical hash) and returns its row."""
        return self.store.add_candidate(
            spec.model_dump(mode="json"), graph_hash(spec), parents=list(parents), origin=origin,
            mutation=mutation, generation=generation, name=spec.name,
        )

    def start(self, candidate_id: str) -> None:
        """Marks an evaluation running."""
        self.store.start_evaluation(candidate_id)

    def tell(self, candidate_id: str, outcome: UnitResult) -> None:
        """Stores a unit's outcome: a score for done or partial work, a reason for a failure (and
        an `evaluation_failed` event). A done unit with no validation score is recorded, and
        left in `outcome`, as failed."""
        result = outcome.result
        if outcome.status == Status.done and (result is None or result.get("best_val") is None):
            outcome.status, outcome.reason = Status.failed, "the inner loop returned no validation score"
        if outcome.status == Status.failed or result is None:
            status = Status.partial if outcome.status == Status.partial else Status.failed
            self.store.fail_evaluation(candidate_id, outcome.reason or "no result", usage=outcome.usage, status=status)
        else:
            self._finish(candidate_id, outcome, outcome.status, outcome.reason or None)
        if outcome.status == Status.failed:
            self.note("evaluation_failed", {"candidate": candidate_id, "reason": outcome.reason})

    def screened_out(self, candidate_id: str, outcome: UnitResult, note: str) -> None:
        """Stores the screen of a graph that lost its race (status "screened")."""
        self._finish(candidate_id, outcome, Status.screened, note)

    def not_started(self, candidate_id: str, reason: str) -> None:
        """Records a graph the budget left no room for: partial, with no score (a resume with
        more budget evaluates it)."""
        self.store.fail_evaluation(candidate_id, reason, status=Status.partial)

    def _finish(self, candidate_id: str, outcome: UnitResult, status: Status, note: str | None) -> None:
        result = outcome.result or {}
        self.store.finish_evaluation(
            candidate_id, val_score=result.get("best_val"), val_stderr=result.get("best_val_stderr"),
            val_scores=result.get("val_scores") or None, program=result.get("best_program"),
            history=result.get("history", []), usage=outcome.usage, status=status, note=note,
        )

    def set_example_scores(self, candidate_id: str, split: str, scores: Mapping[str, float]) -> None:
        self.store.set_example_scores(candidate_id, split, scores)

    def set_test_score(self, candidate_id: str, score: float, stderr: float | None = None) -> None:
        self.store.set_test_score(candidate_id, score, stderr)

    # --------------------------------------------------------------------------- events

    def add(self, event: Event) -> None:
        """Stores a typed event (its payload is what `from_payload` reads back)."""
        self.store.add_event(event.event, event.to_payload())

    def note(self, kind: str, payload: Any = None) -> None:
        """Stores an event that is only shown (a winner's reason, a stop, a bug...), never read back."""
        self.store.add_event(kind, payload)

    def events(self, *types: type[E]) -> list[E]:
        """The stored events of these types, oldest first, typed (a payload that is not one is skipped)."""
        return typed(self.store.events(types[0].event if len(types) == 1 else None), *types)
