"""Test operators and seed graphs for the structure-search tests.

The operators mimic the built-ins' ports under `s_` names, so the search code is exercised on a
registry it has never seen (nothing in it may depend on operator names). They are registered only
inside `registered_test_operators()`, which removes them again, so other test modules see the real registry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graphopt.graph.io import builtin_graph_names, load_graph
from graphopt.graph.spec import EdgeSpec, GraphSpec, NodeSpec
from graphopt.operators.base import Operator, Port
from graphopt.operators.registry import OPERATORS, get_operator, operator_names, register_operator

class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _TestOperator(Operator):
    async def run(self, ctx: Any, inputs: dict[str, Any]) -> dict[str, Any]:  # never run by these tests
        raise NotImplementedError


class TCritique(_TestOperator):
    name = "s_critique"
    description = "Critiques a program's failures."
    inputs = {"candidates": Port("Candidates"), "traces": Port("Traces")}
    outputs = {"feedback": Port("Feedback")}


class TRewrite(_TestOperator):
    name = "s_rewrite"
    description = "Rewrites a program from feedback and history."
    inputs = {
        "candidates": Port("Candidates"),
        "feedback": Port("Feedback", required=False),
        "history": Port("History", required=False),
    }
    outputs = {"candidates": Port("Candidates")}

    class Params(_Params):
        k: int = Field(1, ge=1, le=5)
        temperature: float = Field(0.7, ge=0.0, le=1.2)


class TEnsemble(_TestOperator):
    name = "s_ensemble"
    kind = "merge"
    description = "Union of its incoming candidates."
    inputs = {"candidates": Port("Candidates", many=True)}
    outputs = {"candidates": Port("Candidates")}

    class Params(_Params):
        mode: Literal["union", "combine"] = "union"


class TSelect(_TestOperator):
    name = "s_select"
    kind = "score"
    description = "Keeps the best k candidates."
    inputs = {"candidates": Port("Candidates")}
    outputs = {"candidates": Port("Candidates")}

    class Params(_Params):
        k: int = Field(1, ge=1, le=5)


class TParaphrase(_TestOperator):
    name = "s_paraphrase"
    description = "Rewordings of a program."
    inputs = {"candidates": Port("Candidates")}
    outputs = {"candidates": Port("Candidates")}

    class Params(_Params):
        n: int = Field(3, ge=1, le=5)


class TFewshot(_TestOperator):
    name = "s_fewshot"
    kind = "data"
    description = "Adds demos from correct traces."
    inputs = {"candidates": Port("Candidates"), "traces": Port("Traces")}
    outputs = {"candidates": Port("Candidates")}


class THistory(_TestOperator):
    name = "s_history"
    kind = "data"
    description = "Keeps the best earlier attempts."
    inputs = {"history": Port("History")}
    outputs = {"history": Port("History")}


TEST_OPERATORS = (TCritique, TRewrite, TEnsemble, TSelect, TParaphrase, TFewshot, THistory)
TEST_OPERATOR_NAMES = [op.name for op in TEST_OPERATORS]


@contextlib.contextmanager
def registered_test_operators() -> Iterator[list[str]]:
    """Registers the test operators for the duration of the block; yields their names."""
    operator_names()  # load the built-ins first, so restoring cannot drop them
    saved = {name: OPERATORS.get(name) for name in TEST_OPERATOR_NAMES}
    for op in TEST_OPERATORS:
        register_operator(op)
    try:
        yield list(TEST_OPERATOR_NAMES)
    finally:
        for name, old in saved.items():
            if old is None:
                OPERATORS.pop(name, None)
            else:
                OPERATORS[name] = old


def builtin_operator_names() -> list[str]:
    """The registered operators that ship with graphopt (not those of any test module)."""
    return [name for name in operator_names() if get_operator(name).__module__.startswith("graphopt.operators.")]


def graph(name: str, nodes: dict[str, str | tuple[str, dict]], edges: list[str]) -> GraphSpec:
    """A spec from {id: op or (op, params)} and ["a.p -> b.q", ...]."""
    specs = []
    for nid, op in nodes.items():
        op, params = (op, {}) if isinstance(op, str) else op
        specs.append(NodeSpec(id=nid, op=op, params=params))
    pairs = [e.split("->") for e in edges]
    return GraphSpec(name=name, nodes=specs, edges=[EdgeSpec(source=s.strip(), target=t.strip()) for s, t in pairs])


def seed_graphs() -> list[GraphSpec]:
    """Small valid graphs over the test operators, shaped like the built-in graphs."""
    tgd = graph(
        "s_tgd",
        {"critique": "s_critique", "rewrite": "s_rewrite"},
        ["input.program -> critique.candidates", "input.traces -> critique.traces",
         "input.program -> rewrite.candidates", "critique.feedback -> rewrite.feedback"],
    )
    tgd_select = graph(
        "s_tgd_select",
        {"critique": "s_critique", "rewrite": ("s_rewrite", {"k": 3}), "select": ("s_select", {"k": 2})},
        ["input.program -> critique.candidates", "input.traces -> critique.traces",
         "input.program -> rewrite.candidates", "critique.feedback -> rewrite.feedback",
         "rewrite.candidates -> select.candidates"],
    )
    ensemble = graph(
        "s_ensemble",
        {"critique_a": "s_critique", "rewrite_a": "s_rewrite", "critique_b": "s_critique",
         "rewrite_b": ("s_rewrite", {"temperature": 1.0}), "join": "s_ensemble", "select": "s_select"},
        ["input.program -> critique_a.candidates", "input.traces -> critique_a.traces",
         "input.program -> rewrite_a.candidates", "critique_a.feedback -> rewrite_a.feedback",
         "input.program -> critique_b.candidates", "input.traces -> critique_b.traces",
         "input.program -> rewrite_b.candidates", "critique_b.feedback -> rewrite_b.feedback",
         "rewrite_a.candidates -> join.candidates", "rewrite_b.candidates -> join.candidates",
         "input.program -> join.candidates", "join.candidates -> select.candidates"],
    )
    opro = graph(
        "s_opro",
        {"history": "s_history", "rewrite": ("s_rewrite", {"k": 3}), "select": "s_select"},
        ["input.history -> history.history", "input.program -> rewrite.candidates",
         "history.history -> rewrite.history", "rewrite.candidates -> select.candidates"],
    )
    diamond = graph(
        "s_diamond",
        {"para": "s_paraphrase", "rewrite": "s_rewrite", "join": "s_ensemble", "shots": "s_fewshot"},
        ["input.program -> para.candidates", "para.candidates -> rewrite.candidates",
         "para.candidates -> join.candidates", "rewrite.candidates -> join.candidates",
         "join.candidates -> shots.candidates", "input.traces -> shots.traces"],
    )
    single = graph("s_single", {"para": "s_paraphrase"}, ["input.program -> para.candidates"])
    return [tgd, tgd_select, ensemble, opro, diamond, single]


def builtin_graphs() -> list[GraphSpec]:
    """Every shipped graph; one that does not load fails the test using it (it is never skipped)."""
    return [load_graph(name) for name in builtin_graph_names()]
