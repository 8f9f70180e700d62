"""The winner of a search, chosen from the store on evidence (the rules are `policy.choose_winner`).

The choice reads every finished evaluation of the run, so a resumed search picks among everything
any of its sessions finished. A derived graph that would win is first confirmed on held-out
validation examples when the task has them; the choice and its reason are recorded.
"""

from __future__ import annotations

__all__ = ["choose", "best_partial", "entries"]

import asyncio
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, RunError
from ..program.model import Program
from ..program.run import evaluate
from ..status import Status
from ..store import RunStore
from .policy import Choice, Entry, choose_winner, tie_key

if TYPE_CHECKING:
    from .evaluator import Evaluator
    from .fitness import Fitness


def entries(store: RunStore, seed_id: str) -> list[tuple[Entry, Any]]:
    """Every finished evaluation of the run as the winner's choice sees it, with its row
    (`seed_id`: the program the inner loops started from)."""
    matrix = store.example_scores("val")
    held_out = store.example_scores("confirm")
    out = []
    for order, row in enumerate(store.candidates()):
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


async def choose(evaluator: Evaluator) -> tuple[Fitness, str]:
    """The winner and why it won (one line), confirming a derived graph on held-out validation
    examples when the task has them; records the choice.

    Raises:
        RunError: no graph has a validation score.
    """
    task, run, val_limit = evaluator.task, evaluator.run, evaluator.budget.val_limit
    found = await asyncio.to_thread(entries, run.store, task.seed_program.id)
    if not found:
        return best_partial(evaluator), ""  # partial ones only: the old rule (nothing finished)
    choice = choose_winner([e for e, _ in found])
    held_out = task.val[val_limit: 2 * val_limit]
    if _needs_confirm(choice) and held_out:
        rows = {e.id: row for e, row in found}
        incumbent = min((e for e, _ in found if e.seed), key=tie_key)
        await asyncio.gather(*(_confirm(evaluator, rows[e.id], held_out) for e in (incumbent, choice.challenger)))
        found = await asyncio.to_thread(entries, run.store, task.seed_program.id)
        choice = choose_winner([e for e, _ in found])
    row = next(row for e, row in found if e.id == choice.winner.id)
    await asyncio.to_thread(run.note, "winner", {"candidate": row.id, "why": choice.reason})
    return evaluator.fitness_of(row, row.evaluation, from_store=True), choice.reason


def _needs_confirm(choice: Choice) -> bool:
    """True when the choice is a derived graph not yet checked on held-out examples."""
    return choice.challenger is not None and choice.winner is choice.challenger and choice.winner.confirm is None


async def _confirm(evaluator: Evaluator, row: Any, examples: list) -> None:
    """Scores a candidate's program on held-out validation examples (split "confirm")."""
    run, task = evaluator.run, evaluator.task
    if (await asyncio.to_thread(run.store.example_scores, "confirm", row.id)).get(row.id):
        return
    program = Program.model_validate(row.evaluation.program) if row.evaluation.program else task.seed_program
    try:
        result = await evaluate(program, examples, task, evaluator.lm)
    except BudgetExceeded:  # no spend left to confirm: the choice rests on validation alone
        return
    if not getattr(result, "errors", 0):
        scores = {t.example.id: t.score for t in result.traces}
        await asyncio.to_thread(run.set_example_scores, row.id, "confirm", scores)


def best_partial(evaluator: Evaluator) -> Fitness:
    """The best evaluation in the store by (finished first, score, age), for when no evaluation
    finished (see `choose`).

    Raises:
        RunError: no graph has a validation score.
    """
    store = evaluator.run.store
    best = None
    for order, row in enumerate(store.candidates()):
        evaluation = row.evaluation
        if evaluation is None or evaluation.val_score is None or evaluation.status not in (Status.done, Status.partial):
            continue
        key = (evaluation.status == Status.done, evaluation.val_score, -order)
        if best is None or key > best[0]:
            best = (key, row)
    if best is None:
        raise RunError(f"no graph of the run in {store.location} has a validation score: nothing to export")
    row = best[1]
    return evaluator.fitness_of(row, row.evaluation, from_store=True)
