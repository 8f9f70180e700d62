"""Answer format constraints: a JSON Schema for the answer, enforced where the model takes one."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from graphopt.program import AnswerFormat
from graphopt.program.answer_format import infer_format
from graphopt.program import export_messages, export_program
from graphopt.graph.io import load_graph
from graphopt.lm import LM, LMConfig
from graphopt.operators import StepContext, get_operator
from graphopt.program import evaluate
from graphopt.search.budgets import get_budget
from graphopt.search.executor import LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.store import RunStore
from graphopt.tasks.base import Task
from graphopt.testing import FakeModel
from graphopt.program import Demo, Program, Step
from graphopt.types import Example

LABELS = ("alpha", "beta", "gamma")


def label_task(extract_rule: str = "") -> Task:
    def examples(prefix: str, n: int) -> list[Example]:
        return [Example(id=f"{prefix}{i}", input=f"Item {prefix}{i}: which label?", target=LABELS[i % 3]) for i in range(n)]

    return Task(name="labels", train=examples("t", 12), val=examples("v", 12), test=examples("x", 6),
                seed_program=Program(instruction="Name the label."), extract=str.strip, extract_rule=extract_rule)


def test_the_train_targets_choose_the_tightest_format_that_fits() -> None:
    assert infer_format(["True", "False", "True", "False"]) == AnswerFormat(kind="choices", choices=("False", "True"))
    seen_once = infer_format([") ]", ") )", "] >", "> >"])  # 4 labels, each seen once: not a label set
    assert seen_once.kind == "charset" and seen_once.chars == " )>]" and (seen_once.max_word, seen_once.max_words) == (1, 4)
    assert seen_once.answer_schema()["pattern"] == r"^[)>\]]{1,1}( [)>\]]{1,1}){0,3}$"
    assert infer_format(['say "hi" to the ' + "x" * 30]).kind == "free"  # a quote: no charset
    assert infer_format(["a", "b"], "choices") == AnswerFormat(kind="choices", choices=("a", "b"))
    assert infer_format(["ab"] * 3 + ['"'], "charset") is None and infer_format([]) is None


def test_schemas_hold_the_answer_and_nothing_else() -> None:
    choices = AnswerFormat(kind="choices", choices=("(A)", "(B)")).schema()
    assert choices["properties"]["answer"] == {"type": "string", "enum": ["(A)", "(B)"]}
    assert choices["required"] == ["answer"] and choices["additionalProperties"] is False
    charset = AnswerFormat(kind="charset", chars="] )", max_length=12).answer_schema()
    assert charset == {"type": "string", "pattern": r"^[)\]]+( [)\]]+)*$"}  # words, single spaces
    assert AnswerFormat(kind="charset", chars="-^[").answer_schema()["pattern"] == r"^[\[^-]+$"
    assert AnswerFormat(max_length=30).answer_schema() == {"type": "string", "maxLength": 30}
    with pytest.raises(ValidationError, match="charset"):
        AnswerFormat(kind="charset", chars='a"')
    with pytest.raises(ValidationError, match="choice"):
        AnswerFormat(kind="choices")


def test_replies_are_read_whole_cut_short_or_plain() -> None:
    fmt = AnswerFormat()
    assert fmt.read('{"answer": "] )"}') == "] )"
    assert fmt.read('Sure: {"answer": "x"} and {"answer": "y"}') == "y"
    assert fmt.read('{"answer": "a \\"b') == 'a "b'  # out of tokens mid-answer
    assert fmt.read("a plain reply") == "a plain reply"  # a provider that ignored the constraint
    assert fmt.render("] )") == '{"answer": "] )"}' and fmt.render('{"answer": "x"}') == '{"answer": "x"}'


def test_a_constrained_program_asks_for_its_format_shows_demos_in_it_and_reads_the_answer() -> None:
    fmt = AnswerFormat(kind="choices", choices=LABELS)
    program = Program(instruction="Name the label.").with_demos([Demo(input="Item q", output="beta")])
    constrained = program.with_step(None, answer_format=fmt)
    fake = FakeModel(default='{"answer": "alpha"}')
    task = label_task()
    evaluation = asyncio.run(evaluate(constrained, task.val[:3], task, LM(LMConfig(), transport=fake, cache_dir=None)))
    request = fake.requests[0]
    assert request.response_format == fmt.response_format()
    assert request.messages[0]["content"].endswith('The answer is one of: "alpha", "beta", "gamma".')
    assert request.messages[2] == {"role": "assistant", "content": '{"answer": "beta"}'}
    assert [t.answer for t in evaluation.traces] == ["alpha"] * 3 and evaluation.accuracy == pytest.approx(1 / 3)
    # Unconstrained, the same program sends no response_format and reads the raw reply.
    plain = FakeModel(default='{"answer": "alpha"}')
    asyncio.run(evaluate(program, task.val[:1], task, LM(LMConfig(), transport=plain, cache_dir=None)))
    assert plain.requests[0].response_format is None


def test_a_constrained_program_is_saved_loaded_and_exported_with_its_format() -> None:
    fmt = AnswerFormat(kind="charset", chars=")]", max_length=10)
    program = Program(instruction="Close them.").with_step(None, answer_format=fmt)
    assert not program.is_flat and program.id != Program(instruction="Close them.").id
    assert Program.model_validate_json(program.model_dump_json()) == program
    two = Program(steps=[Step(name="reason", instruction="Think."), Step(instruction="Answer.", input="{input}\n{steps.reason}")])
    assert all("answer_format" not in step for step in two.model_dump()["steps"])  # absent when unused: ids unchanged
    assert "answer_format" in two.with_step(None, answer_format=fmt).model_dump()["steps"][1]
    assert export_messages(program)["steps"][0]["response_format"] == fmt.response_format()
    assert json.dumps(fmt.schema()) in export_program(program, "text")
    assert "Reply format" in program.render()
    with pytest.raises(ValidationError, match="only the answering step"):
        Program(steps=[Step(name="reason", instruction="Think.", answer_format=fmt),
                       Step(instruction="Answer.", input="{input}\n{steps.reason}")])


def test_the_format_operator_constrains_and_cuts_demos_to_their_answers() -> None:
    task = label_task()
    ctx = StepContext(lm=LM(LMConfig(), transport=FakeModel(default="x"), cache_dir=None), task=task, minibatch=task.train[:2])
    program = Program(instruction="Name the label.").with_demos([Demo(input="Item q", output="  gamma  ")])
    out = asyncio.run(get_operator("format")("format", {}).run(ctx, {"candidates": [program]}))["candidates"]
    assert out[0].answer_step.answer_format == AnswerFormat(kind="choices", choices=LABELS)
    assert out[0].demos == (Demo(input="Item q", output="gamma"),)
    # Left alone, each with its reason: a reasoning program, a vote, a task read as JSON.
    reasoning = program.model_copy(update={"answer_marker": "Answer:"})
    vote = program.model_copy(update={"vote": (Program(instruction="b"),)})
    op = get_operator("format")("format", {"parents": 2})
    assert asyncio.run(op.run(ctx, {"candidates": [reasoning, vote]}))["candidates"] == []
    assert [d.reason.split(":")[0] for d in ctx.dropped] == ["the program reasons before its answer marker", "a vote"]
    json_ctx = StepContext(lm=ctx.lm, task=label_task("json:answer"), minibatch=[])
    assert asyncio.run(op.run(json_ctx, {"candidates": [program]}))["candidates"] == []


def _format_follower(messages, request) -> str:
    """A program model that rambles unless held to a format: then it writes the right label."""
    if request.model != "fake/program":
        return "The answer is wrong; be more precise."
    if request.response_format is None:
        return "Well, it depends on the item."
    item = messages[-1]["content"].split("Item ", 1)[1].split(":", 1)[0]
    return json.dumps({"answer": LABELS[int(item[1:]) % 3]})


def test_only_a_format_constraint_reaches_the_top_and_the_search_brings_it_in(tmp_path) -> None:
    """Seeds without a format (tgd, fewshot) score 0; the structure search must insert `format`."""
    found = []
    for seed in range(5):
        task = label_task()
        config = LMConfig(cache_dir=None).with_models(program="fake/program", optimizer="fake/opt", meta="fake/meta")
        lm = LM(config, transport=FakeModel(fn=_format_follower))
        plan = get_budget("tiny", val_limit=12, test_limit=6, minibatch=4, inner_steps=1, seeds=("tgd", "fewshot"),
                          generations=4, children=6, population=4, prompt_iterations=0, llm_share=0.0, patience=4)
        report = asyncio.run(run_search(task, lm, plan, tmp_path / str(seed), [load_graph(n) for n in plan.seeds],
                                        executor=LocalExecutor(task, lm, 4), seed=seed))
        with RunStore.open(tmp_path / str(seed), read_only=True) as store:
            assert [c.evaluation.val_score for c in store.candidates() if c.origin == "seed"] == [0.0, 0.0]
        if report.best.val_score == 1.0:
            assert any(n.op == "format" for n in report.best.spec.nodes)
            found.append(seed)
    assert len(found) >= 4, f"found in seeds {found}"


@pytest.mark.integration
def test_the_embedded_model_writes_only_what_the_format_allows(local_lm) -> None:
    """Held by a grammar, the 135M model answers every input in the format: a label of the set,
    or a string of the allowed characters; free, it mostly does not."""
    from graphopt.tasks import get_task

    task = get_task("dyck_languages", difficulty="medium", sizes=(40, 6, 6))
    charset = infer_format([ex.target for ex in task.train], "charset")
    labels = AnswerFormat(kind="choices", choices=(")", "]", "}", ">"))
    for fmt in (charset, labels):
        program = task.seed_program.with_step(None, answer_format=fmt)
        traces = asyncio.run(evaluate(program, task.val, task, local_lm)).traces
        for trace in traces:
            reply = json.loads(trace.output)
            assert set(reply) == {"answer"}, trace.output
            if fmt.kind == "choices":
                assert reply["answer"] in fmt.choices
            else:
                assert reply["answer"] and set(reply["answer"]) <= set(fmt.chars), trace.output
