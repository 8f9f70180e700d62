"""A user pipeline `module:function(components, example)` as a program: runs, traces, per-component optimizing, errors."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from graphopt.cli import eval_cmd, main, optimize_cmd
from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.program import pipeline_program
from graphopt.program import error_tally, run_program
from graphopt.tasks import get_task

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PREFIX = "Sort the following words alphabetically: List: "
BETTER_NOTES = "List the words, then write them in alphabetical order."


def program_reply(messages: list[dict[str, str]]) -> str:
    """Notes sort the words A to Z only when their instruction says so (else Z to A); the answer repeats the notes' last line."""
    system, user = messages[0]["content"], messages[-1]["content"]
    words = user.split("\n")[0].removeprefix(PREFIX).split()
    if system.startswith("List the"):
        return " ".join(sorted(words, reverse="alphabetical" not in system))
    return user.strip().split("\n")[-1]


@pytest.fixture(autouse=True)
def examples_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("two_prompt_pipeline", "user_pipes"):
        sys.modules.pop(name, None)


def fake_lm(record: list | None = None) -> LM:
    def reply(messages: list[dict[str, str]], request: Any) -> str:
        if record is not None:
            record.append(request.model)
        if request.model == "fake/program":
            return program_reply(messages)
        if "Begin your reply" in messages[-1]["content"]:
            return "Step: notes\nThe notes must put the words in alphabetical order."
        assert "Write the new instruction of step notes only." in messages[-1]["content"]
        return json.dumps({"instruction": BETTER_NOTES})

    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    return LM(config, transport=FakeModel(fn=reply), cache_dir=None)


def task():
    return get_task("word_sorting", difficulty="easy", sizes=(6, 4, 4))


def test_the_example_pipeline_runs_both_components_and_records_each_call():
    program = pipeline_program("two_prompt_pipeline:run")
    assert [s.name for s in program.steps] == ["notes", "answer"] and program.pipeline == "two_prompt_pipeline:run"
    traces = asyncio.run(run_program(program, task().val, task(), fake_lm()))
    assert [t.score for t in traces] == [0.0] * 4  # the notes sort Z to A
    assert [s.name for s in traces[0].steps] == ["notes", "answer"]
    assert traces[0].steps[1].input.endswith("Notes:\n" + traces[0].steps[0].output)
    better = program.with_instruction(BETTER_NOTES, "notes")
    assert all(t.score == 1.0 for t in asyncio.run(run_program(better, task().val, task(), fake_lm())))


def test_a_pipeline_program_round_trips_and_keeps_its_function():
    program = pipeline_program("two_prompt_pipeline:run")
    again = type(program).model_validate(json.loads(json.dumps(program.model_dump(mode="json"))))
    assert again == program and again.id == program.id


def test_a_pipeline_that_raises_scores_that_example_0_keeps_the_error_and_goes_on(tmp_path):
    (tmp_path / "user_pipes.py").write_text(
        "COMPONENTS = {'answer': 'Sort the words.'}\n"
        "def flaky(components, example):\n"
        "    if example.id.endswith('-0'):\n        raise ValueError('bad example')\n"
        "    return ' '.join(sorted(example.input.removeprefix('" + PREFIX + "').split()))\n"
        "async def async_run(components, example):\n"
        "    return await components.acall('answer', example.input)\n"
    )
    program = pipeline_program("user_pipes:flaky")
    examples = task().train
    with error_tally() as tally:
        traces = asyncio.run(run_program(program, examples, task(), fake_lm()))
    failed = [t for t in traces if t.raised]
    assert len(failed) == 1 and failed[0].score == 0.0 and "raised ValueError: bad example" in failed[0].raised
    assert all(t.score == 1.0 for t in traces if not t.raised)
    assert tally.errors == 0  # not a model failure: --max-error-rate does not stop the run
    record: list = []
    traces = asyncio.run(run_program(pipeline_program("user_pipes:async_run"), examples[:2], task(), fake_lm(record)))
    assert record == ["fake/program"] * 2 and traces[0].steps[0].name == "answer"


def test_optimize_tgd_on_the_pipeline_rewrites_the_component_the_critique_blames(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(optimize_cmd, "make_lm", lambda *a, **k: fake_lm())
    out = tmp_path / "out"
    code = main(["optimize", "--graph", "tgd", "--task", "word_sorting", "--difficulty", "easy", "--steps", "1",
                 "--minibatch", "4", "--val-limit", "4", "--test-limit", "4", "--out", str(out),
                 "--pipeline", "two_prompt_pipeline:run"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "program.json").read_text())
    steps = {s["name"]: s["instruction"] for s in saved["program"]["steps"]}
    assert steps["notes"] == BETTER_NOTES and saved["program"]["pipeline"] == "two_prompt_pipeline:run"
    assert saved["scores"]["val_before"] == 0.0 and saved["scores"]["val_after"] == 1.0


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_pipes_mod:run", "error: pipeline 'no_such_pipes_mod:run': cannot import 'no_such_pipes_mod'"),
        ("user_pipes:one_arg", "error: pipeline 'user_pipes:one_arg' has the signature (example): it must be (components, example) -> str"),
        ("user_pipes:nothing", "error: pipeline 'user_pipes:nothing': user_pipes has no 'nothing'"),
    ],
)
def test_bad_pipelines_are_one_line_exit_2_before_any_call(tmp_path, monkeypatch, capsys, ref, message):
    (tmp_path / "user_pipes.py").write_text("def one_arg(example):\n    return ''\n")
    called = []
    monkeypatch.setattr(eval_cmd, "make_lm", lambda *a, **k: called.append(1))
    assert main(["eval", "--task", "word_sorting", "--pipeline", ref]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and not called


def test_a_pipeline_without_components_says_how_to_give_them(tmp_path):
    (tmp_path / "user_pipes.py").write_text("def run(components, example):\n    return ''\n")
    with pytest.raises(ConfigError, match="has no components to start from: define COMPONENTS"):
        pipeline_program("user_pipes:run")


class ThreadedFake:
    """A transport that answers in the default executor's threads, as the embedded model does."""

    def __init__(self, fake: FakeModel):
        self.fake = fake

    async def send(self, request):
        return await asyncio.to_thread(lambda: asyncio.run(self.fake.send(request)))


def test_many_sync_pipelines_at_once_do_not_starve_a_model_that_answers_in_threads():
    config = LMConfig().with_models(program="fake/program")
    fake = FakeModel(fn=lambda messages, request: program_reply(messages))
    lm = LM(config, transport=ThreadedFake(fake), cache_dir=None)
    many = get_task("word_sorting", difficulty="medium", sizes=(40, 2, 2)).train
    program = pipeline_program("two_prompt_pipeline:run").with_instruction(BETTER_NOTES, "notes")
    traces = asyncio.run(asyncio.wait_for(run_program(program, many, task(), lm), timeout=60))
    assert len(traces) == 40 and all(len(t.steps) == 2 for t in traces)


def test_a_budget_cap_reached_inside_a_pipeline_is_a_partial_evaluation_not_a_score_of_0():
    from graphopt.errors import BudgetExceeded
    from graphopt.graph.io import load_graph
    from graphopt.lm import Budget, Caps
    from graphopt.loop import LoopSizes, optimize

    lm = fake_lm()
    lm.budget = Budget(total=Caps(calls=3))
    program = pipeline_program("two_prompt_pipeline:run")
    with pytest.raises(BudgetExceeded):
        asyncio.run(run_program(program, task().val, task(), lm))
    result = asyncio.run(optimize(program, load_graph("tgd"), task(), fake_lm().with_budget(Budget(total=Caps(calls=3))), LoopSizes(steps=1, minibatch=2)))
    assert result.stopped == "budget" and result.best_val is None  # cut, not scored 0
