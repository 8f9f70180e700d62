"""Using a program outside graphopt: `graphopt.load_program`, `graphopt predict` and `graphopt export`."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

import graphopt
from graphopt.cli import main, predict_cmd
from graphopt.program import export_messages, export_program
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.program import make_shape
from graphopt.tasks import get_task
from graphopt.program import Program, ProgramIO


def fake_lm(record: list[Any] | None = None) -> LM:
    def reply(messages: list[dict[str, str]], request: Any) -> str:
        if record is not None:
            record.append((messages, request))
        question = messages[-1]["content"]
        return f"Thinking about {question!r}.\nAnswer: {len(question)}."

    return LM(LMConfig().with_models(program="fake/program"), transport=FakeModel(fn=reply), cache_dir=None)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    program = Program(
        instruction="Count the characters.", answer_marker="Answer:",
        io=ProgramIO(input_template="Q: {question}", extract="bbh", stop=("\n\n\n",), max_tokens=77),
    )
    path = tmp_path / "best.program.json"
    path.write_text(json.dumps({"task": "file", "program": program.model_dump(mode="json")}))
    return path


def test_load_program_answers_by_the_saved_rule_sync_and_async(saved):
    record: list[Any] = []
    runner = graphopt.load_program(saved, lm=fake_lm(record))
    prediction = runner({"question": "abc"})
    assert prediction.answer == "6" and prediction.output.startswith("Thinking")  # "Q: abc" has 6 characters
    messages, request = record[0]
    assert messages[-1]["content"] == "Q: abc" and request.max_tokens == 77 and request.stop == ["\n\n\n"]
    assert asyncio.run(runner.acall("plain text")).answer == "10"


def test_the_python_api_works_inside_a_running_event_loop_as_in_a_notebook(saved):
    record: list[Any] = []

    async def notebook_cell():
        with graphopt.load_program(saved, lm=fake_lm(record)) as runner:
            synchronous = runner({"question": "abc"}).answer  # was: asyncio.run() cannot be called ...
            awaited = (await runner.acall("plain text")).answer
        return synchronous, awaited

    assert asyncio.run(notebook_cell()) == ("6", "10")

    async def cell_with_a_coroutine():
        async def work():
            return 42

        return graphopt.run_sync(work())

    assert asyncio.run(cell_with_a_coroutine()) == 42


def test_a_runner_closes_the_client_it_made_and_not_one_it_was_given(saved):
    given = fake_lm([])
    closed: list[str] = []
    given.close = lambda: closed.append("given")  # type: ignore[method-assign]
    with graphopt.load_program(saved, lm=given):
        pass
    assert closed == []
    runner = graphopt.load_program(saved)
    runner.lm.close = lambda: closed.append("own")  # type: ignore[method-assign]

    async def use():
        async with runner:
            pass

    asyncio.run(use())
    assert closed == ["own"]


def test_predict_reads_jsonl_and_writes_each_input_with_its_answer(saved, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(predict_cmd, "make_lm", lambda *a, **k: fake_lm())
    inputs = tmp_path / "new.jsonl"
    inputs.write_text('{"question": "a", "id": 1}\n\n{"question": "hello"}\n"free text"\n')
    out = tmp_path / "answers.jsonl"
    assert main(["predict", "--program", str(saved), "--input", str(inputs), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r.get("id"), r["answer"]) for r in rows] == [(1, "4"), (None, "8"), (None, "9")]
    assert rows[2]["input"] == "free text"
    assert "3/3 inputs" in capsys.readouterr().err


def test_predict_never_overwrites_an_input_field_it_would_write(saved, tmp_path, monkeypatch, capsys):
    called = []
    monkeypatch.setattr(predict_cmd, "make_lm", lambda *a, **k: called.append(1) or fake_lm())
    inputs = tmp_path / "gold.jsonl"
    inputs.write_text('{"question": "a", "answer": "gold"}\n')
    assert main(["predict", "--program", str(saved), "--input", str(inputs)]) == 2
    err = capsys.readouterr().err
    assert "input 1 already has a field 'answer'" in err and "--answer-field" in err and not called
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--program", str(saved), "--input", str(inputs), "--out", str(out),
                 "--answer-field", "prediction"]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["answer"] == "gold" and row["prediction"] == "4" and row["prediction_output"].startswith("Thinking")


def test_predict_from_standard_input_to_standard_output(saved, monkeypatch, capsys):
    monkeypatch.setattr(predict_cmd, "make_lm", lambda *a, **k: fake_lm())
    monkeypatch.setattr("sys.stdin", io.StringIO('{"question": "xy"}\n'))
    assert main(["predict", "--program", str(saved), "--input", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == {"question": "xy", "answer": "5", "output": "Thinking about 'Q: xy'.\nAnswer: 5."}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"question": "a"}\nnot json\n', "line 2 is not JSON"),
        ('{"query": "a"}\n', "input 1: input has no field 'question' (the program reads 'Q: {question}'); fields are: query"),
        ("", "has no inputs"),
    ],
)
def test_bad_inputs_are_one_line_exit_2_before_any_call(saved, tmp_path, monkeypatch, capsys, lines, message):
    called = []
    monkeypatch.setattr(predict_cmd, "make_lm", lambda *a, **k: called.append(1))
    path = tmp_path / "in.jsonl"
    path.write_text(lines)
    assert main(["predict", "--program", str(saved), "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not called


def test_a_schema_1_best_program_file_still_predicts(tmp_path, monkeypatch):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"instruction": "Sort.", "demos": [], "output_format": "", "schema_version": 1}))
    runner = graphopt.load_program(path, lm=fake_lm())
    assert runner("ab").answer == "Thinking about 'ab'.\nAnswer: 2."  # no rule saved: the whole output


def test_export_messages_carries_every_step_and_the_answer_rule():
    task = get_task("word_sorting", difficulty="easy", sizes=(3, 3, 3))
    data = export_messages(make_shape("reason_then_answer", task.seed_program))
    assert [s["name"] for s in data["steps"]] == ["reason", "answer"]
    assert data["steps"][1]["messages"][-1] == {"role": "user", "content": "{input}\n\nReasoning:\n{steps.reason}"}
    assert data["answer"]["extract"] == "bbh_spaced" and data["answer"]["max_tokens"] == 96


def test_export_text_and_markdown_name_the_marker_the_rule_and_the_stops(saved, capsys):
    assert main(["export", "--program", str(saved), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "**System:**" in text and "Count the characters." in text and "Q: {question}" in text
    assert "after the last 'Answer:'" in text and "bbh:" in text and '["\\n\\n\\n"]' in text
    plain = export_program(graphopt.load_program(saved, lm=fake_lm()).program, "text")
    assert "[System]" in plain and "up to 77 tokens" in plain


def test_export_with_an_unknown_format_names_the_close_one(saved, capsys):
    assert main(["export", "--program", str(saved), "--format", "mesages"]) == 2
    assert "unknown export format 'mesages' (did you mean 'messages'?)" in capsys.readouterr().err


def test_export_of_a_pipeline_program_names_its_function():
    program = Program(steps=[{"name": "notes", "instruction": "Take notes."}, {"name": "answer", "instruction": "Answer."}],
                      pipeline="my_pipes:run")
    assert export_messages(program)["pipeline"] == "my_pipes:run"
    assert "components of the pipeline my_pipes:run" in export_program(program, "text")
