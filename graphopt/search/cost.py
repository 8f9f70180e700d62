"""One cost model: the model calls an inner loop of a graph makes, before the cache saves any.

Every estimate of the search (the dry run, the admission of evaluations under caps) and of a
study reads it, so they agree. A step of the loop (see `graphopt.loop`) runs the current program
on the minibatch, runs the graph (its model-calling nodes call the optimizer model; a `select`
scores what it is given on the minibatch), then scores each distinct candidate the graph returns
on the acceptance split; the loop scores its start on that split first, and the start and the
best program on validation at the end.

Example:
    >>> from graphopt.graph.io import load_graph
    >>> step_shape(load_graph("fewshot_rs"))
    StepShape(made=8, scored_on_minibatch=9, returned=1, optimizer_calls=0, demos=4)
    >>> loop_calls(step_shape(load_graph("fewshot_rs")), steps=1, minibatch=4, dev=8, final=8)
    (68, 0)
"""

from __future__ import annotations

__all__ = ["StepShape", "step_shape", "loop_calls", "OPTIMIZER_CALL_TOKENS", "META_CALL_TOKENS", "GENERIC"]

from dataclasses import dataclass

from ..graph.spec import GraphSpec
from ..operators.registry import get_operator

OPTIMIZER_CALL_TOKENS = 800  # one optimizer call: a prompt of about 600 tokens and a reply of 200
META_CALL_TOKENS = 1600  # one meta call (a prompt edit, a graph proposal): about 1,200 and 400


@dataclass(frozen=True)
class StepShape:
    """What one step of a graph does: candidates made, programs scored on the minibatch (the
    current one included), candidates returned (each scored on the acceptance split), optimizer
    calls, and the most demos a program it makes shows per input (each lengthens its prompt by
    about one example)."""

    made: int
    scored_on_minibatch: int
    returned: int
    optimizer_calls: int
    demos: int = 0


GENERIC = StepShape(made=3, scored_on_minibatch=4, returned=3, optimizer_calls=4, demos=0)
"""A graph not known yet (a child of the structure search): three rewrites after a critique."""


def step_shape(spec: GraphSpec | None) -> StepShape:
    """The shape of one step of `spec` (None, or a graph whose nodes cannot be built: `GENERIC`)."""
    if spec is None:
        return GENERIC
    made, optimizer, selects = 0, 0, []
    try:
        ops = [get_operator(node.op)(node.id, node.params, node.prompts) for node in spec.nodes]
    except Exception:  # noqa: BLE001  (an invalid graph fails before it spends anything)
        return GENERIC
    for op in ops:
        if op.name == "select":
            selects.append(op.made())
            continue
        if op.kind == "llm":
            optimizer += op.optimizer_calls()
        if "candidates" in op.outputs:
            made += op.made()
    made = max(made, 1)
    scored = 1 + made if selects else 1
    returned = min(selects[-1], made + 1) if selects else made
    demos = max((op.demos_shown() for op in ops), default=0)
    return StepShape(made=made, scored_on_minibatch=scored, returned=returned, optimizer_calls=optimizer, demos=demos)


def loop_calls(shape: StepShape, *, steps: int, minibatch: int, dev: int, final: int) -> tuple[int, int]:
    """(program calls, optimizer calls) of a loop of `steps` steps: `dev` acceptance examples,
    `final` validation examples for the start and the best program."""
    per_step = shape.scored_on_minibatch * minibatch + shape.returned * dev
    return dev + steps * per_step + 2 * final, steps * shape.optimizer_calls
