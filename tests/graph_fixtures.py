"""Test-local operators and a reference graph for the graph tests.

The operators are named `t_*` so they never clash with the built-ins, and their prompts are fixed
here, so the DOT snapshot does not change when someone edits a built-in operator's prompt. They
are registered only while a test module that imports `graph_test_operators` runs, so suites that
go over every registered operator (contracts, structure search) never see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from graphopt.graph.spec import EdgeSpec, GraphSpec, NodeSpec
from graphopt.operators.base import Operator, Port, Prompt, StepContext
from graphopt.operators.registry import OPERATORS, register_operator


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TCritique(Operator):
    name = "t_critique"
    kind = "llm"
    inputs = {"candidates": Port("Candidates"), "traces": Port("Traces", required=False)}
    outputs = {"feedback": Port("Feedback")}
    prompts = {"critique": Prompt("Critique the program:\n{program}\n\nIt failed on:\n{failures}\nBe {style}.")}

    class Params(_Params):
        max_failures: int = Field(3, ge=1)
        style: str = "short"

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"feedback": []}


class TRewrite(Operator):
    name = "t_rewrite"
    kind = "llm"
    inputs = {
        "candidates": Port("Candidates"),
        "feedback": Port("Feedback", required=False, many=True),
        "history": Port("History", required=False),
    }
    outputs = {"candidates": Port("Candidates")}
    prompts = {
        "rewrite": Prompt("Improve this instruction:\n{program}\n\nFeedback:\n{feedback}"),
        "history": Prompt("Earlier attempts: {attempts}"),
    }

    class Params(_Params):
        k: int = Field(1, ge=1, le=8)
        temperature: float | None = None

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"candidates": inputs["candidates"]}


class TMerge(Operator):
    name = "t_merge"
    kind = "merge"
    inputs = {"candidates": Port("Candidates", many=True)}
    outputs = {"candidates": Port("Candidates")}

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"candidates": inputs["candidates"]}


class TSelect(Operator):
    name = "t_select"
    kind = "score"
    inputs = {"candidates": Port("Candidates", many=True)}
    outputs = {"candidates": Port("Candidates")}

    class Params(_Params):
        k: int = Field(1, ge=1)

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"candidates": inputs["candidates"][: self.params.k]}


class THistory(Operator):
    name = "t_history"
    kind = "data"
    inputs = {"history": Port("History")}
    outputs = {"history": Port("History")}

    class Params(_Params):
        n: int = Field(8, ge=1)

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"history": inputs["history"][-self.params.n :]}


TEST_OPERATORS = (TCritique, TRewrite, TMerge, TSelect, THistory)
TEST_OPS = tuple(cls.name for cls in TEST_OPERATORS)


@pytest.fixture(scope="module", autouse=True)
def graph_test_operators() -> Iterator[None]:
    """Registers the t_* operators for the importing test module, and removes them after it."""
    previous = {cls.name: OPERATORS.get(cls.name) for cls in TEST_OPERATORS}
    for cls in TEST_OPERATORS:
        register_operator(cls)
    yield
    for name, cls in previous.items():
        if cls is None:
            OPERATORS.pop(name, None)
        else:
            OPERATORS[name] = cls


def edge(source: str, target: str) -> EdgeSpec:
    return EdgeSpec(source=source, target=target)


def reference_dict() -> dict[str, Any]:
    """The reference graph as file data: critique -> rewrite -> select, with history and an override."""
    return {
        "name": "reference",
        "description": "critique then rewrite; keep the best of old and new",
        "schema_version": 1,
        "nodes": [
            {"id": "crit", "op": "t_critique", "params": {"max_failures": 2}},
            {
                "id": "rw",
                "op": "t_rewrite",
                "params": {"k": 2},
                "prompts": {"rewrite": "Rewrite {program}.\nUse \"{feedback}\" \\ carefully."},
            },
            {"id": "hist", "op": "t_history"},
            {"id": "sel", "op": "t_select", "params": {"k": 1}},
        ],
        "edges": [
            {"source": "input.program", "target": "crit.candidates"},
            {"source": "input.traces", "target": "crit.traces"},
            {"source": "crit.feedback", "target": "rw.feedback"},
            {"source": "input.program", "target": "rw.candidates"},
            {"source": "input.history", "target": "hist.history"},
            {"source": "hist.history", "target": "rw.history"},
            {"source": "rw.candidates", "target": "sel.candidates"},
            {"source": "input.program", "target": "sel.candidates"},
        ],
    }


def reference_spec() -> GraphSpec:
    return GraphSpec.model_validate(reference_dict())


def chain_spec(*ops: str, name: str = "chain") -> GraphSpec:
    """input.program -> op1 -> op2 -> ... along `candidates` ports (ids n1, n2, ...)."""
    nodes = [NodeSpec(id=f"n{i}", op=op) for i, op in enumerate(ops, 1)]
    edges = [edge("input.program", "n1.candidates")]
    edges += [edge(f"n{i}.candidates", f"n{i + 1}.candidates") for i in range(1, len(ops))]
    return GraphSpec(name=name, nodes=nodes, edges=edges)
