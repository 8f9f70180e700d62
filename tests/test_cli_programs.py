"""`graphopt eval --program`: built-in shapes, old program files, and one-line errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphopt.cli import eval_cmd, main
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel

PREFIX = "Sort the following words alphabetically: List: "


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, str]]]:
    """A fake program model that reasons when asked to, and sorts the words."""
    calls: list[list[dict[str, str]]] = []

    def reply(messages: list[dict[str, str]], request: Any) -> str:
        calls.append(messages)
        words = messages[-1]["content"].split("\n")[0].removeprefix(PREFIX).split()
        if "do not write the final answer" in messages[0]["content"]:
            return "The words start with different letters."
        if "Answer:" in messages[0]["content"]:
            return f"First letters decide.\nAnswer: {' '.join(sorted(words))}"
        return " ".join(sorted(words))

    def make_lm(*args: Any, **kwargs: Any) -> LM:
        return LM(LMConfig().with_models(program="fake/program"), transport=FakeModel(fn=reply), cache_dir=None)

    monkeypatch.setattr(eval_cmd, "make_lm", make_lm)
    return calls


def run_eval(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "e.json"
    code = main(["eval", "--task", "word_sorting", "--difficulty", "easy", "--limit", "3", "--out", str(out), *extra])
    assert code == 0
    return json.loads(out.read_text())


def test_eval_program_cot_reasons_then_its_answer_line_is_scored(tmp_path, seen):
    data = run_eval(tmp_path, "--program", "cot")
    assert data["accuracy"] == 1.0 and data["program"]["answer_marker"] == "Answer:"
    assert all(t["output"].startswith("First letters decide.") for t in data["traces"])


def test_eval_program_reason_then_answer_makes_two_calls_per_example(tmp_path, seen):
    data = run_eval(tmp_path, "--program", "reason_then_answer")
    assert data["accuracy"] == 1.0 and len(seen) == 6
    assert [s["name"] for s in data["traces"][0]["steps"]] == ["reason", "answer"]
    assert "Reasoning:\nThe words start" in seen[-1][-1]["content"]


def test_a_schema_1_program_file_still_evaluates(tmp_path, seen):
    old = tmp_path / "best.program.json"
    old.write_text(json.dumps({"task": "word_sorting", "program": {
        "instruction": "Sort them.", "demos": [], "output_format": "", "schema_version": 1}}))
    data = run_eval(tmp_path, "--program", str(old))
    io = data["program"].pop("io")
    assert data["program"] == {"instruction": "Sort them.", "demos": [], "output_format": "", "schema_version": 2}
    assert io["extract"] == "bbh_spaced" and io["max_tokens"] == 96  # the task's rule, kept with the program
    assert seen[0][0]["content"] == "Sort them."


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("cto", "error: program file not found: cto (did you mean 'cot'?): give a program file or a shape"),
        ("BAD_STEPS", "is not a valid program (the program: step 'answer' reads {steps.nope}, which is not an earlier step's output"),
    ],
)
def test_bad_programs_are_one_line_exit_2_before_any_call(tmp_path, seen, capsys, program, message):
    if program == "BAD_STEPS":
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"steps": [{"name": "answer", "instruction": "x", "input": "{steps.nope}"}]}))
        program = str(path)
    code = main(["eval", "--task", "word_sorting", "--program", program])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and seen == []


def test_a_saved_program_carries_its_metric_and_eval_uses_it_unless_told_otherwise(tmp_path):
    import json as _json

    from graphopt.app.task import describe_task, task_and_program
    from graphopt.tasks import get_task

    task = get_task("word_sorting", difficulty="easy", sizes=(4, 4, 4)).with_answer(metric="contains")
    saved = task.seed_program
    assert saved.io is not None and saved.io.metric == "contains"
    path = tmp_path / "program.json"
    path.write_text(_json.dumps({"program": saved.model_dump(mode="json")}))

    again, _ = task_and_program("word_sorting", program=str(path), difficulty="easy", sizes=(4, 4, 4))
    assert again.metric_rule == "contains"
    assert "metric contains" in describe_task(again) and "metric contains (from the program file)" in describe_task(again)
    told, _ = task_and_program("word_sorting", program=str(path), difficulty="easy", metric="exact")
    assert told.metric_rule == "exact" and "--metric exact (the program file says contains)" in describe_task(told)
    plain, _ = task_and_program("word_sorting", difficulty="easy", sizes=(4, 5, 6))
    assert describe_task(plain).startswith("word_sorting: 4 train / 5 val / 6 test; metric exact")


def test_split_sizes_are_checked_in_one_line(capsys):
    from graphopt.cli import main

    for bad in ("5,5", "a,b,c", "0,5,5", "5,5,99999999"):
        assert main(["eval", "--task", "word_sorting", "--split-sizes", bad]) == 2
        assert "--split-sizes" in capsys.readouterr().err


def test_a_custom_file_says_which_columns_it_reads():
    from pathlib import Path

    from graphopt.app.task import describe_task, task_and_program

    data = Path(__file__).resolve().parent.parent / "examples" / "data" / "capitals.csv"
    task, _ = task_and_program("file", source=str(data))
    line = describe_task(task)
    assert "input '{question}'" in line and "target column 'answer'" in line and "metric exact" in line
    # A file is not BBH: its reading is named for what it does, and saved programs carry that name.
    assert "answers read by answer_line (after 'So the answer is', else the first line" in line and "bbh" not in line
    assert task.seed_program.io is not None and task.seed_program.io.extract == "answer_line"
