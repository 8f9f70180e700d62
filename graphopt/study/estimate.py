"""Upper estimates of a study's model calls and tokens per level, cell by cell, before anything runs.

Graph and transfer cells use the inner loop's sizes, search cells their preset
(`graphopt.search.budgets.estimate`); every cell adds its test examples. Like `search --dry-run`,
these are bounds before the response cache saves anything.
"""

from __future__ import annotations

__all__ = ["estimate_cell", "estimate_study"]

from ..lm import LEVELS
from .spec import Cell, StudySpec

OPTIMIZER_TOKENS = 800  # one optimizer call: prompt and answer (as budgets.estimate assumes)
REWRITES = 3  # candidates a rewrite-like node makes per step


def estimate_cell(study: StudySpec, cell: Cell, prompt_tokens: int, answer_tokens: int = 20) -> dict[str, dict[str, int]]:
    """{level: {"calls", "tokens"}} for one cell."""
    from ..search.budgets import estimate, get_budget

    loop = study.loop
    per_program_call = prompt_tokens + answer_tokens
    calls = {level: 0 for level in LEVELS}
    calls["program"] = loop.test_limit
    kind = "graph" if cell.source is not None else study.method(cell.method).kind
    if kind == "graph":
        calls["program"] += loop.val_limit + loop.steps * (loop.minibatch * (1 + REWRITES) + loop.val_limit)
        calls["optimizer"] += loop.steps * (1 + REWRITES)
    out = {level: {"calls": calls[level], "tokens": calls[level] * (per_program_call if level == "program" else OPTIMIZER_TOKENS)} for level in LEVELS}
    if kind == "search":
        method = study.method(cell.method)
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in method.settings.items()}
        figures = estimate(get_budget(method.budget, **settings), prompt_tokens=prompt_tokens, answer_tokens=answer_tokens)
        for level in LEVELS:
            out[level]["calls"] += figures.get(level, {}).get("calls", 0)
            out[level]["tokens"] += figures.get(level, {}).get("tokens", 0)
    return out


def estimate_study(study: StudySpec, prompt_tokens: dict[str, int]) -> tuple[list[tuple[Cell, dict]], dict[str, dict[str, int]]]:
    """Each cell's estimate and the study's total; `prompt_tokens` per task name."""
    rows, total = [], {level: {"calls": 0, "tokens": 0} for level in LEVELS}
    for cell in study.cells():
        figures = estimate_cell(study, cell, prompt_tokens.get(cell.task, 100))
        rows.append((cell, figures))
        for level in LEVELS:
            total[level]["calls"] += figures[level]["calls"]
            total[level]["tokens"] += figures[level]["tokens"]
    return rows, total
