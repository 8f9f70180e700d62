"""Demos retrieved per input (BM25 over a step's pool) and the `retrieve` operator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from graphopt.program import export_messages, export_program
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.program import run_program
from graphopt.program.retrieval import nearest
from graphopt.tasks.base import Task
from graphopt.program import Demo, Program, Retrieval, Step
from graphopt.types import Example, Trace

POOL = (
    Demo(input="sort: pear apple fig", output="apple fig pear"),
    Demo(input="close: ( [ {", output="} ] )"),
    Demo(input="add: 2 + 3", output="5"),
    Demo(input="close: < (", output=") >"),
)


def test_nearest_picks_by_shared_tokens_including_punctuation_nearest_last() -> None:
    got = nearest(POOL, "close: [ { (", 2)
    assert [d.output for d in got] == [") >", "} ] )"]  # both bracket demos, the closer one last
    assert [d.output for d in nearest(POOL, "sort: kiwi apple", 1)] == ["apple fig pear"]


def test_an_input_is_never_shown_its_own_example() -> None:
    got = nearest(POOL, "close: ( [ {", 3)
    assert "close: ( [ {" not in [d.input for d in got] and len(got) == 3


def test_a_step_with_retrieval_shows_each_input_its_own_nearest_demos() -> None:
    program = Program(instruction="Do it.").with_step(None, retrieve=Retrieval(pool=POOL, k=1))
    sort_msgs = program.messages("sort: kiwi apple")
    close_msgs = program.messages("close: { (")
    assert sort_msgs[1] == {"role": "user", "content": "sort: pear apple fig"}
    assert close_msgs[2]["role"] == "assistant" and close_msgs[2]["content"] in ("} ] )", ") >")
    assert sort_msgs[-1]["content"] == "sort: kiwi apple" and len(sort_msgs) == 4


def test_retrieval_saves_loads_and_keeps_old_program_ids() -> None:
    plain = Program(instruction="Do it.")
    assert "retrieve" not in json.dumps(plain.model_dump())  # unused: ids of older programs unchanged
    assert plain.id == "076a68b07cf5"  # pinned: resume matches programs by id
    two = Program(steps=[Step(name="reason", instruction="Think."), Step(instruction="Answer.", input="{input}\n{steps.reason}")])
    assert two.id == "cb0198f8d717"
    program = plain.with_step(None, retrieve=Retrieval(pool=POOL, k=2))
    again = Program.model_validate_json(program.model_dump_json())
    assert again == program and again.id == program.id != plain.id
    assert "4 worked examples" in program.render()


def test_export_carries_the_pool_and_how_to_retrieve_not_demos_for_the_template() -> None:
    program = Program(instruction="Do it.").with_step(None, retrieve=Retrieval(pool=POOL, k=2))
    data = export_messages(program)
    step = data["steps"][0]
    assert len(step["messages"]) == 2 and step["messages"][-1]["content"] == "{input}"
    assert step["retrieve"]["k"] == 2 and len(step["retrieve"]["pool"]) == 4 and "BM25" in step["retrieve"]["how"]
    assert "Retrieved demos" in export_program(program, "text")


def test_a_retrieving_program_runs_with_the_retrieved_demos_in_its_prompt() -> None:
    train = [Example(id=f"t{i}", input=d.input, target=d.output) for i, d in enumerate(POOL)]
    task = Task(name="toy", train=train, val=train, test=train, seed_program=Program(instruction="x"), extract=str.strip)
    fake = FakeModel(default="ok")
    program = Program(instruction="x").with_step(None, retrieve=Retrieval(pool=POOL, k=1))
    [trace] = asyncio.run(run_program(program, [Example(id="q", input="sort: plum apple", target="apple plum")],
                                      task, LM(LMConfig(), transport=fake, cache_dir=None)))
    sent = fake.requests[0].messages
    assert sent[1]["content"] == "sort: pear apple fig" and sent[-1]["content"] == "sort: plum apple"
    assert trace.output == "ok"


TRAIN = [Example(id=f"e{i}", input=f"case {i} words", target=f"t{i}") for i in range(10)]
MINIBATCH = TRAIN[:4]


def run_op(inputs: dict[str, Any], **params: Any) -> tuple[list[Program], StepContext, FakeModel]:
    seed = Program(instruction="Sort.", demos=(Demo(input="fixed", output="demo"),))
    task = Task(name="toy", train=TRAIN, val=TRAIN, test=TRAIN, seed_program=seed, extract=str.strip)
    fake = FakeModel()
    ctx = StepContext(lm=LM(LMConfig(), transport=fake, cache_dir=None), task=task, minibatch=MINIBATCH, step=0)
    out = asyncio.run(get_operator("retrieve")("retrieve", params).run(ctx, inputs))
    return out["candidates"], ctx, fake


def test_retrieve_pools_the_programs_correct_outputs_first_then_every_train_example() -> None:
    parent = Program(instruction="Sort.", demos=(Demo(input="fixed", output="demo"),))
    traces = [Trace(example=MINIBATCH[0], output="own answer", answer="t0", score=1.0)]
    [program], _, fake = run_op({"candidates": [parent], "traces": traces}, k=2)
    retrieval = program.answer_step.retrieve
    assert fake.calls == 0 and retrieval is not None and retrieval.k == 2
    by_input = {d.input: d.output for d in retrieval.pool}
    assert len(retrieval.pool) == 10 and by_input["case 0 words"] == "own answer"  # bootstrapped wins
    assert by_input["case 1 words"] == "t1"  # minibatch examples are in the pool: never shown to themselves
    assert program.demos == ()  # retrieved demos replace the fixed ones by default
    [kept], _, _ = run_op({"candidates": [parent]}, keep_demos=True)
    assert kept.demos == parent.demos


def test_retrieve_bounds_the_pool_reproducibly_and_drops_with_a_reason_when_empty() -> None:
    parent = Program(instruction="Sort.")
    [a], _, _ = run_op({"candidates": [parent]}, pool=4)
    [b], _, _ = run_op({"candidates": [parent]}, pool=4)
    assert len(a.answer_step.retrieve.pool) == 4 and a == b
    out, ctx, _ = run_op({"candidates": [parent], "traces": []}, source="traces")
    assert out == [] and "fewer than 2 demos" in ctx.dropped[0].reason
