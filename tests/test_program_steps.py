"""Programs of named steps: the schema-1 migration, step wiring, shapes, and per-step operators."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.operators.base import StepContext
from graphopt.operators.critique import Critique, blamed_step
from graphopt.operators.fewshot import FewShot
from graphopt.operators.paraphrase import Paraphrase
from graphopt.operators.rewrite import Rewrite
from graphopt.program import run_program
from graphopt.program.shapes import COT_MARKER
from graphopt.program import make_shape
from graphopt.tasks.base import Task
from graphopt.program import SCHEMA_VERSION, Demo, Program, Step
from graphopt.types import Example, Feedback

V1_FILE = {
    "instruction": "Sort the given words alphabetically.",
    "demos": [{"input": "List: b a", "output": "a b"}],
    "output_format": "Answer with the sorted words only.",
    "schema_version": 1,
}


def two_steps() -> Program:
    return Program(steps=[
        Step(name="reason", instruction="Think about the words."),
        Step(instruction="Give the answer.", input="{input}\nNotes: {steps.reason}"),
    ])


def test_a_schema_1_file_loads_as_one_step_with_its_id_and_flat_form_kept():
    import hashlib

    program = Program.model_validate(V1_FILE)
    assert [s.name for s in program.steps] == ["answer"] and program.schema_version == SCHEMA_VERSION == 2
    assert (program.instruction, program.output_format) == (V1_FILE["instruction"], V1_FILE["output_format"])
    assert program.demos == (Demo(input="List: b a", output="a b"),)
    legacy = {k: V1_FILE[k] for k in ("instruction", "demos", "output_format")}
    assert program.id == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:12]
    assert program.model_dump(mode="json") == {**legacy, "schema_version": 2}


def test_a_multi_step_program_round_trips_exactly_through_json():
    program = two_steps().with_demos([Demo(input="x", output="y")])
    data = json.loads(json.dumps(program.model_dump(mode="json")))
    assert [s["name"] for s in data["steps"]] == ["reason", "answer"]
    again = Program.model_validate(data)
    assert again == program and again.id == program.id and again.demos == (Demo(input="x", output="y"),)


def test_one_step_editing_helpers_edit_the_answering_step_or_a_named_one():
    program = two_steps()
    assert program.with_instruction("New answer.").steps[1].instruction == "New answer."
    edited = program.with_instruction("Think harder.", "reason")
    assert edited.steps[0].instruction == "Think harder." and edited.steps[1] == program.steps[1]
    assert edited.id != program.id


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([Step(instruction="a", input="{steps.reason}")], "step 'answer' reads {steps.reason}, which is not an earlier step's output"),
        ([Step(name="r", instruction="a"), Step(instruction="b", input="{steps.rr}")], "did you mean '{steps.r}'?"),
        ([Step(instruction="a", input="{question}")], "reads {question}"),
        ([Step(instruction="a", input="{input")], "is malformed"),
        ([Step(name="x", instruction="a"), Step(name="x", instruction="b")], "two steps are named 'x'"),
        ([Step(name="bad name", instruction="a")], "is not an identifier"),
        ([], "at least one step"),
    ],
)
def test_bad_step_wiring_is_refused_naming_the_step(steps, message):
    with pytest.raises(ValidationError) as info:
        Program(steps=steps)
    assert message in str(info.value)


def _task() -> Task:
    examples = [Example(id=f"e{i}", input=f"List: w{i} a{i}", target=f"a{i} w{i}") for i in range(4)]
    return Task(name="toy", train=examples, val=examples, test=examples,
                seed_program=Program(instruction="Sort the words.", output_format="Only the words."),
                extract=str.strip, max_tokens=40)


def _program_lm(record: list[Any]) -> LM:
    def reply(messages: list[dict[str, str]], request: Any) -> str:
        record.append((messages, request))
        words = re.findall(r"List: (\w+) (\w+)", messages[-1]["content"])[0]
        if messages[0]["content"].startswith("Think"):
            return "NOTES " + " ".join(sorted(words))
        if "Answer:" in messages[0]["content"]:
            return f"Reasoning about {words}.\nAnswer: {' '.join(sorted(words))}"
        notes = messages[-1]["content"].split("Notes: NOTES ")[-1]
        return notes

    return LM(LMConfig().with_models(program="fake/program"), transport=FakeModel(fn=reply), cache_dir=None)


def test_a_later_step_reads_the_earlier_output_and_its_answer_is_scored():
    record: list[Any] = []
    traces = asyncio.run(run_program(two_steps(), _task().val, _task(), _program_lm(record)))
    assert [t.score for t in traces] == [1.0] * 4
    trace = traces[0]
    assert [s.name for s in trace.steps] == ["reason", "answer"]
    assert trace.steps[1].input == f"{trace.example.input}\nNotes: {trace.steps[0].output}"
    # The reasoning step gets room to reason, the answering step the task's answer length.
    by_step = {m[0]["content"]: r.max_tokens for m, r in record}
    assert by_step == {"Think about the words.": 256, "Give the answer.": 40}


def test_cot_reads_the_answer_after_its_marker_with_room_to_reason():
    record: list[Any] = []
    task = _task()
    cot = make_shape("cot", task.seed_program)
    assert cot.answer_marker == COT_MARKER and cot.instruction == "Sort the words." and len(cot.steps) == 1
    traces = asyncio.run(run_program(cot, task.val, task, _program_lm(record)))
    assert [t.score for t in traces] == [1.0] * 4 and traces[0].output.startswith("Reasoning")
    assert {r.max_tokens for _, r in record} == {384}
    assert "Only the words." in record[0][0][0]["content"]
    assert make_shape("direct", task.seed_program) == task.seed_program


def test_reason_then_answer_is_two_calls_keeping_the_answer_format():
    program = make_shape("reason_then_answer", _task().seed_program)
    assert [s.name for s in program.steps] == ["reason", "answer"]
    assert program.steps[1].output_format == "Only the words." and "{steps.reason}" in program.steps[1].input


def test_an_unknown_shape_names_the_close_one():
    with pytest.raises(ConfigError, match=r"unknown program shape 'cto' \(did you mean 'cot'\?\)") as info:
        make_shape("cto", _task().seed_program)
    assert "\n" not in str(info.value)


# --- per-step operators ------------------------------------------------------------------------


def _ctx(reply) -> tuple[StepContext, FakeModel]:
    fake = FakeModel(fn=reply)
    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    task = _task()
    return StepContext(lm=LM(config, transport=fake, cache_dir=None), task=task, minibatch=task.train), fake


def test_blamed_step_reads_the_first_line_only_when_it_names_a_step():
    assert blamed_step("Step: reason\nThe notes are wrong.", ["reason", "answer"]) == ("reason", "The notes are wrong.")
    assert blamed_step("**Step:** answer\nx", ["reason", "answer"]) == ("answer", "x")
    assert blamed_step("Step: other\nx", ["reason", "answer"]) == ("", "Step: other\nx")


def test_critique_of_a_two_step_program_names_the_step_it_blames_and_rewrite_edits_that_step():
    def reply(messages, request):
        text = messages[-1]["content"]
        if request.model == "fake/program":
            return "wrong"
        if "Begin your reply" in text:
            assert "Step reason output: wrong" in text  # the earlier step's output is shown
            return "Step: reason\nThe reasoning should list the words in order."
        assert "Write the new instruction of step reason only." in text
        return json.dumps({"instruction": "List the words in alphabetical order first."})

    ctx, _ = _ctx(reply)
    program = two_steps()
    feedback = asyncio.run(Critique("c").run(ctx, {"candidates": [program]}))["feedback"]
    assert feedback == [Feedback(program_id=program.id, text="The reasoning should list the words in order.", step="reason")]
    out = asyncio.run(Rewrite("r").run(ctx, {"candidates": [program], "feedback": feedback}))["candidates"]
    assert len(out) == 1 and out[0].steps[0].instruction == "List the words in alphabetical order first."
    assert out[0].steps[1] == program.steps[1]


def test_rewrite_of_a_one_step_program_is_unchanged_by_steps():
    def reply(messages, request):
        assert "several steps" not in messages[-1]["content"]
        return json.dumps({"instruction": "Sort the words, A to Z."})

    ctx, _ = _ctx(reply)
    out = asyncio.run(Rewrite("r").run(ctx, {"candidates": [_task().seed_program]}))["candidates"]
    assert [p.instruction for p in out] == ["Sort the words, A to Z."] and out[0].is_flat


def test_paraphrase_each_rewords_every_step_one_at_a_time():
    counter = iter(range(100))

    def reply(messages, request):
        return json.dumps({"instruction": f"Reworded instruction {next(counter)}."})

    ctx, _ = _ctx(reply)
    program = two_steps()
    out = asyncio.run(Paraphrase("p", {"n": 1, "step": "each"}).run(ctx, {"candidates": [program]}))["candidates"]
    changed = sorted(next(s.name for s, old in zip(p.steps, program.steps) if s != old) for p in out)
    assert changed == ["answer", "reason"]


def test_fewshot_gives_the_answering_step_demos_of_its_own_input():
    record: list[Any] = []
    task = _task()
    program = two_steps()
    traces = asyncio.run(run_program(program, task.train, task, _program_lm(record)))
    ctx, _ = _ctx(lambda m, r: "")
    out = asyncio.run(FewShot("f", {"max_demos": 2}).run(ctx, {"candidates": [program], "traces": traces}))["candidates"]
    demos = out[0].steps[1].demos
    assert len(demos) == 2 and all("\nNotes: NOTES " in d.input for d in demos)
    assert out[0].steps[0].demos == ()


def test_opro_history_shows_every_step_of_a_multi_step_attempt():
    from graphopt.operators.common import format_attempts
    from graphopt.types import Attempt

    text = format_attempts([Attempt(program=_task().seed_program, score=0.5), Attempt(program=two_steps(), score=0.7)])
    assert text.startswith("Instruction: Sort the words.\nScore: 0.500")
    assert "Instruction of step reason: Think about the words.\nInstruction of step answer: Give the answer.\nScore: 0.700" in text
