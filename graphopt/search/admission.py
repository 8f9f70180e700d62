"""Admission under a cap: which evaluations of a batch to start now, so a cap cuts as few as possible.

Started together, the evaluations of a batch share whatever budget is left: under a tight cap
every one of them is cut half-way and none finishes, which is worse than finishing some. So when
the client has a call or token cap, a batch runs in waves: each wave admits the evaluations whose
estimated spend fits in what is left (the cheapest first, so as many graphs as possible get a
score; at least one per wave, so the search always moves), and the next wave is chosen when it
has finished and the budget left is known again. Without caps a batch is one wave. `in_waves`
runs a batch so.

The estimate counts an inner loop's calls from its sizes and the graph's model-calling nodes,
with the prompt length of the start program; it only orders and packs a batch.
"""

from __future__ import annotations

__all__ = ["UnitEstimate", "estimate_unit", "headroom", "waves", "fits", "cap_text", "in_waves"]

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..graph.spec import GraphSpec
from ..lm import LM, Usage
from ..loop import MIN_TRAIN_FOR_DEV
from .budgets import SearchBudget
from .cost import OPTIMIZER_CALL_TOKENS, loop_calls, step_shape



@dataclass(frozen=True)
class UnitEstimate:
    """Estimated spend of one evaluation: calls and tokens at the program and optimizer levels."""

    program_calls: int
    optimizer_calls: int
    program_tokens: int
    optimizer_tokens: int

    @property
    def calls(self) -> int:
        return self.program_calls + self.optimizer_calls

    @property
    def tokens(self) -> int:
        return self.program_tokens + self.optimizer_tokens


def estimate_unit(
    spec: GraphSpec, budget: SearchBudget, program_call_tokens: int, *, screen: bool = False, train: int | None = None
) -> UnitEstimate:
    """The spend of one inner loop of `spec` with the search's loop sizes (`screen`: of its
    screen, the first step scored on `budget.screen` validation examples; `train`: the task's
    train size, which bounds the dev split), by the cost model of `graphopt.search.cost`."""
    dev = budget.val_limit if train is None or train < MIN_TRAIN_FOR_DEV else min(train // 3, max(budget.val_limit, 4))
    steps = min(1, budget.inner_steps) if screen else budget.inner_steps
    final = budget.screen if screen and budget.screen else budget.val_limit
    program, optimizer = loop_calls(step_shape(spec), steps=steps, minibatch=budget.minibatch, dev=dev, final=final)
    return UnitEstimate(program, optimizer, program * program_call_tokens, optimizer * OPTIMIZER_CALL_TOKENS)


def headroom(lm: LM) -> dict[str, float]:
    """What the client's caps leave, as {"calls": n, "tokens": n, "program_calls": ..., ...}; {} uncapped."""
    spent, program = Usage(), Usage()
    spent.add(lm.ledger.total())
    spent.add(lm.carried.total())
    program.add(lm.ledger.level("program"))
    program.add(lm.carried.level("program"))
    room: dict[str, float] = {}
    total = lm.budget.total
    if total.calls is not None:
        room["calls"] = total.calls - spent.calls
    if total.tokens is not None:
        room["tokens"] = total.tokens - spent.tokens
    caps = lm.budget.levels.get("program")
    if caps is not None and caps.calls is not None:
        room["program_calls"] = caps.calls - program.calls
    if caps is not None and caps.tokens is not None:
        room["program_tokens"] = caps.tokens - program.tokens
    return room


def _need(estimate: UnitEstimate) -> dict[str, float]:
    return {
        "calls": estimate.calls,
        "tokens": estimate.tokens,
        "program_calls": estimate.program_calls,
        "program_tokens": estimate.program_tokens,
    }


def waves(estimates: Sequence[UnitEstimate | None], room: dict[str, float]) -> list[int]:
    """Indices of the next wave: cheapest first while the cumulative estimate fits in `room`.

    None estimates (nothing to run: reused from the store) always join. Without caps (`room`
    empty) everything joins. At least one index is returned when any is given.
    """
    free = [i for i, e in enumerate(estimates) if e is None]
    costed = sorted((i for i, e in enumerate(estimates) if e is not None), key=lambda i: (estimates[i].tokens, i))
    if not room:
        return free + costed
    chosen: list[int] = []
    used = dict.fromkeys(room, 0.0)
    for i in costed:
        need = _need(estimates[i])
        if chosen and any(used[k] + need[k] > room[k] for k in room):
            continue
        chosen.append(i)
        for k in room:
            used[k] += need[k]
    return sorted(free + chosen)


def fits(estimates: Sequence[UnitEstimate | None], room: dict[str, float]) -> bool:
    """True when the estimates together fit in `room` (always without caps)."""
    used = dict.fromkeys(room, 0.0)
    for estimate in estimates:
        if estimate is not None:
            for k, v in _need(estimate).items():
                if k in used:
                    used[k] += v
    return all(used[k] <= room[k] for k in room)


def cap_text(lm: LM) -> str:
    """The client's caps in words, e.g. "run cap of 40 calls; program cap of 9000 tokens"."""

    def words(caps: Any) -> str:
        return " and ".join(f"{v:g} {name}" for name in ("calls", "tokens", "dollars") if (v := getattr(caps, name)) is not None)

    parts = [f"run cap of {words(lm.budget.total)}"] if lm.budget.total.limited else []
    parts += [f"{level} cap of {words(caps)}" for level, caps in lm.budget.levels.items() if caps.limited]
    return "; ".join(parts) or "no cap"


def _scaled(estimate: UnitEstimate | None, scale: float) -> UnitEstimate | None:
    """An estimate with its tokens scaled (calls are left as they are)."""
    if estimate is None:
        return None
    return UnitEstimate(
        estimate.program_calls, estimate.optimizer_calls, int(estimate.program_tokens * scale), int(estimate.optimizer_tokens * scale)
    )


async def in_waves(
    rows: Sequence[Any],
    run: Callable[[Any], Awaitable[Any]],
    estimate: Callable[[Any], UnitEstimate],
    *,
    lm: LM,
    finished: Callable[[Any], bool],
    cut: Callable[[Any], Awaitable[Any]] | None = None,
) -> list[Any]:
    """Runs `run(row)` for every row in waves that fit the client's caps; the results (each with
    `from_store` and `cost_tokens`) come back in the order of `rows`.

    Args:
        finished: whether a row needs no run (its evaluation is in the store: no estimate).
        cut: strict admission: once a wave ran, work whose estimate does not fit what is left is
            not started (a screen that would eat the budget its race's winner needs) but given
            to `cut`; the estimates are scaled by what the batch's finished work really spent.
    """
    results: list[Any] = [None] * len(rows)
    todo = list(range(len(rows)))
    guessed = spent = 0.0  # estimated and measured tokens of this batch's finished work
    while todo:
        room = headroom(lm)
        done = await asyncio.to_thread(lambda: {i for i in todo if finished(rows[i])})
        estimates = [None if i in done else estimate(rows[i]) for i in todo]
        chosen = waves(estimates, room)
        # Estimates are upper bounds; the work already run in this batch says by how much.
        scale = spent / guessed if cut and guessed and spent else 1.0
        if cut and len(todo) < len(rows) and not fits([_scaled(estimates[j], scale) for j in chosen], room):
            for i in todo:
                results[i] = await cut(rows[i])
            break
        wave = [todo[j] for j in chosen]
        for j, i, result in zip(chosen, wave, await asyncio.gather(*(run(rows[i]) for i in wave))):
            results[i] = result
            if estimates[j] is not None and not result.from_store:
                guessed, spent = guessed + estimates[j].tokens, spent + result.cost_tokens
        todo = [i for i in todo if i not in wave]
    return results
