"""Upper estimates of a study's model calls and tokens per level, cell by cell, before anything runs.

Graph and transfer cells use the inner loop's sizes and the cost model of `graphopt.search.cost`,
search cells their preset (`graphopt.search.budgets.estimate`); every cell adds its test examples. Like `search --dry-run`,
these are bounds before the response cache saves anything.
"""

from __future__ import annotations

__all__ = ["estimate_cell", "estimate_study"]

from ..errors import GraphoptError
from ..graph.io import load_graph
from ..lm import LEVELS
from ..search.cost import GENERIC, OPTIMIZER_CALL_TOKENS, loop_calls, step_shape
from .spec import Cell, StudySpec



def estimate_cell(study: StudySpec, cell: Cell, prompt_tokens: int, answer_tokens: int = 20) -> dict[str, dict[str, int]]:
    """{level: {"calls", "tokens"}} for one cell."""
    from ..search.budgets import estimate, get_budget

    loop = study.loop
    calls = {level: 0 for level in LEVELS}
    calls["program"] = loop.test_limit
    kind = "graph" if cell.source is not None else study.method(cell.method).kind
    shape = GENERIC  # a transfer cell applies a graph the search has not found yet
    if kind == "graph" and cell.source is None:
        try:
            shape = step_shape(load_graph(study.method(cell.method).graph or ""))
        except GraphoptError:  # a graph that does not load: the study refuses it before spending
            pass
    if kind == "graph":
        program, optimizer = loop_calls(shape, steps=loop.steps, minibatch=loop.minibatch, dev=loop.val_limit, final=loop.val_limit)
        calls["program"] += program
        calls["optimizer"] += optimizer
    per_call = {"program": prompt_tokens * (1 + shape.demos) + answer_tokens, "optimizer": OPTIMIZER_CALL_TOKENS}
    out = {level: {"calls": calls[level], "tokens": calls[level] * per_call.get(level, 0)} for level in LEVELS}
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
