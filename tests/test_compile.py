"""Compiling specs into LangGraph graphs: typed state, fan-in reducers, concurrency, errors."""

from __future__ import annotations

import asyncio
import json
import typing
from typing import Any

import pytest
from langgraph.graph.state import CompiledStateGraph

from graphopt.errors import BudgetExceeded, RunError, SpecError
from graphopt.graph.compile import CompiledOptimizer, compile_graph
from graphopt.graph.io import builtin_graph_names, load_graph
from graphopt.graph.spec import EdgeSpec, GraphSpec, NodeSpec
from graphopt.graph.state import OUTPUTS_KEY, merge_candidates, merge_feedback, state_schema
from graphopt.lm import LM, Budget, Caps, LMConfig
from graphopt.testing import FakeModel
from graphopt.lm.wire import Request, Response
from graphopt.operators import Operator, Port, StepContext, register_operator
from graphopt.operators.registry import OPERATORS
from graphopt.tasks.base import Task
from graphopt.types import Example, Feedback, Trace
from graphopt.program import Program

SEED = Program(instruction="Answer the question.")


def graph(nodes: list[tuple[str, str, dict]], edges: list[tuple[str, str]], name: str = "g") -> GraphSpec:
    return GraphSpec(
        name=name,
        nodes=[NodeSpec(id=i, op=op, params=params) for i, op, params in nodes],
        edges=[EdgeSpec(source=s, target=t) for s, t in edges],
    )


def toy_task() -> Task:
    examples = [Example(id=f"e{i}", input=f"q{i}", target=f"a{i}") for i in range(4)]
    return Task(name="toy", train=examples, val=examples, test=examples, seed_program=SEED, extract=str.strip)


def reply(messages: list[dict[str, str]], request: Any) -> str:
    if request.model == "fake/program":
        return "a" + messages[-1]["content"][1:] if "MAGIC" in messages[0]["content"] else "nope"
    prompt = messages[-1]["content"]
    if "Do not write the new instruction" in prompt:
        return "Mention the magic word."
    return json.dumps({"instruction": "Use MAGIC to answer the question."})


def make_lm(transport: Any = None, budget: Budget | None = None) -> LM:
    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    return LM(config, transport=transport or FakeModel(fn=reply), budget=budget, cache_dir=None)


def step(compiled: CompiledOptimizer, lm: LM | None = None) -> tuple[Any, StepContext]:
    task = toy_task()
    ctx = StepContext(lm=lm or make_lm(), task=task, minibatch=task.train)
    traces = [Trace(example=ex, output="nope", answer="nope", score=0.0) for ex in task.train]
    return asyncio.run(compiled.step(ctx, SEED, traces, [])), ctx


def test_every_builtin_graph_compiles_to_a_langgraph_compiled_state_graph() -> None:
    assert {"tgd", "tgd_select", "ensemble", "opro", "fewshot", "fewshot_rs", "knn", "vote", "fewshot_format", "bootstrap"} <= set(builtin_graph_names())
    for name in builtin_graph_names():
        compiled = compile_graph(load_graph(name))
        assert isinstance(compiled.graph, CompiledStateGraph)
        assert load_graph(name).description


def test_fan_in_ports_are_declared_with_named_reducers_in_the_state() -> None:
    hints = typing.get_type_hints(state_schema(load_graph("tgd_select")), include_extras=True)
    assert typing.get_args(hints["select.candidates"]) == (list[Program], merge_candidates)
    assert typing.get_args(hints["rewrite.feedback"]) == (list[Feedback], merge_feedback)
    assert hints["critique.traces"] == list[Trace]


def test_a_tgd_step_critiques_then_rewrites() -> None:
    result, _ = step(compile_graph(load_graph("tgd")))
    assert [p.instruction for p in result.candidates] == ["Use MAGIC to answer the question."]
    assert result.node_outputs["critique"]["feedback"][0]["text"] == "Mention the magic word."
    assert result.dropped == []


def test_select_sees_the_current_program_and_the_rewrites_merged() -> None:
    result, ctx = step(compile_graph(load_graph("tgd_select")))
    assert [p.instruction for p in result.candidates] == ["Use MAGIC to answer the question."]
    assert ctx.scores[SEED.id] == 0.0 and ctx.scores[result.candidates[0].id] == 1.0
    assert result.node_outputs["select"]["candidates"][0]["minibatch_score"] == 1.0


def test_the_compiled_graph_is_usable_on_its_own_by_langgraph_users() -> None:
    compiled = compile_graph(load_graph("tgd"))
    task = toy_task()
    ctx = StepContext(lm=make_lm(), task=task, minibatch=task.train)
    traces = [Trace(example=ex, output="nope", answer="nope", score=0.0) for ex in task.train]
    final = asyncio.run(compiled.graph.ainvoke(compiled.initial_state(SEED, traces, []), config=compiled.config(ctx)))
    assert final[OUTPUTS_KEY]["rewrite"]["candidates"][0].instruction.startswith("Use MAGIC")


def test_garbage_rewrites_leave_no_candidate_and_say_why() -> None:
    lm = make_lm(FakeModel(fn=lambda m, r: "nope" if r.model == "fake/program" else '{"oops": 1}'))
    result, _ = step(compile_graph(load_graph("tgd")), lm)
    assert result.candidates == []
    assert [(d.node, d.reason) for d in result.dropped] == [("rewrite", "unparseable reply (no 'instruction' field)")]


class OverlapCounter(FakeModel):
    """A fake model that counts how many calls are in flight at once."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.in_flight = self.most_in_flight = 0

    async def send(self, request: Request) -> Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super().send(request)
        finally:
            self.in_flight -= 1


def test_independent_branches_run_concurrently() -> None:
    fake = OverlapCounter(fn=reply, latency=0.05)
    step(compile_graph(load_graph("ensemble")), make_lm(fake))
    critiques = [r for r in fake.requests if "Do not write" in r.messages[-1]["content"]]
    assert len(critiques) == 2
    assert fake.most_in_flight >= 2


def join_reply(messages: list[dict[str, str]], request: Any) -> str:
    prompt = messages[-1]["content"]
    if request.model == "fake/program":
        return "nope"
    if "Do not write the new instruction" in prompt:
        return "advice"
    if "Reword" in prompt:
        return json.dumps({"instruction": "Reworded: use MAGIC to answer."})
    return json.dumps({"instruction": "Use MAGIC to answer."})


def test_a_join_waits_for_branches_of_different_depths_and_runs_once() -> None:
    # join <- rewrite (depth 2, after critique) and <- para (depth 1)
    spec = graph(
        [("critique", "critique", {}), ("rewrite", "rewrite", {}), ("para", "paraphrase", {"n": 1}),
         ("join", "ensemble", {})],
        [("input.program", "critique.candidates"), ("input.traces", "critique.traces"),
         ("input.program", "rewrite.candidates"), ("critique.feedback", "rewrite.feedback"),
         ("input.program", "para.candidates"), ("rewrite.candidates", "join.candidates"),
         ("para.candidates", "join.candidates")],
    )
    compiled = compile_graph(spec)
    join = compiled.operators["join"]
    runs = []
    original = join.run

    async def counted(ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        runs.append(len(inputs["candidates"]))
        return await original(ctx, inputs)

    join.run = counted  # type: ignore[method-assign]
    result, _ = step(compiled, make_lm(FakeModel(fn=join_reply)))
    assert runs == [2]
    assert sorted(p.instruction for p in result.candidates) == ["Reworded: use MAGIC to answer.", "Use MAGIC to answer."]


def test_nodes_get_their_params_and_prompt_overrides() -> None:
    spec = GraphSpec(
        name="g",
        nodes=[NodeSpec(id="rw", op="rewrite", params={"k": 2}, prompts={"rewrite": "OVERRIDE {program} {{\"instruction\"}}"})],
        edges=[EdgeSpec(source="input.program", target="rw.candidates")],
    )
    fake = FakeModel(fn=reply)
    compiled = compile_graph(spec)
    assert compiled.operators["rw"].params.k == 2
    step(compiled, make_lm(fake))
    assert fake.calls == 2 and fake.requests[0].messages[-1]["content"].startswith("OVERRIDE Instruction:")


def test_compiling_an_invalid_spec_raises_spec_error_naming_the_port() -> None:
    spec = graph(
        [("critique", "critique", {}), ("select", "select", {})],
        [("input.program", "critique.candidates"), ("critique.feedback", "select.candidates")],
    )
    with pytest.raises(SpecError, match="select.candidates: port 'candidates' of select expects Candidates, got Feedback"):
        compile_graph(spec)


def test_a_budget_cap_inside_a_node_propagates_unchanged() -> None:
    lm = make_lm(budget=Budget(levels={"optimizer": Caps(calls=0)}))
    with pytest.raises(BudgetExceeded):
        step(compile_graph(load_graph("tgd")), lm)


@pytest.fixture
def wrong_type_op():
    @register_operator
    class WrongType(Operator):
        name = "wrong_type_test_op"
        kind = "data"
        inputs = {"candidates": Port("Candidates")}
        outputs = {"candidates": Port("Candidates")}

        async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
            return {"candidates": "not a list of programs"}

    yield WrongType
    OPERATORS.pop(WrongType.name, None)


def test_a_node_returning_the_wrong_type_is_a_run_error_naming_it(wrong_type_op: type) -> None:
    spec = graph([("bad", "wrong_type_test_op", {})], [("input.program", "bad.candidates")])
    with pytest.raises(RunError, match="node bad .*candidates.*Candidates"):
        step(compile_graph(spec))


def test_the_context_travels_in_the_config_so_two_steps_can_run_at_once() -> None:
    compiled = compile_graph(load_graph("tgd"))
    task = toy_task()
    traces = [Trace(example=ex, output="nope", answer="nope", score=0.0) for ex in task.train]
    ctx_a = StepContext(lm=make_lm(), task=task, minibatch=task.train[:2])
    ctx_b = StepContext(lm=make_lm(FakeModel(fn=lambda m, r: "nope" if r.model == "fake/program" else "{}")),
                        task=task, minibatch=task.train)

    async def both():
        return await asyncio.gather(compiled.step(ctx_a, SEED, traces, []), compiled.step(ctx_b, SEED, traces, []))

    a, b = asyncio.run(both())
    assert len(a.candidates) == 1 and b.candidates == []
    assert ctx_a.dropped == [] and len(ctx_b.dropped) == 1
