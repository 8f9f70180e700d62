"""`graphopt eval` on a custom CSV: input templates over columns, --metric, --extract, --answer-tokens, and their errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphopt.cli import eval_cmd, main
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel

ROWS = [
    ("What is 2+2?", "3; 4; 5", "4"),
    ("Capital of France?", "Paris; Rome", "Paris"),
    ("Colour of the sky?", "blue; red", "blue"),
    ("What is 1+1?", "2; 3", "2"),
    ("Largest planet?", "Jupiter; Mars", "Jupiter"),
    ("Opposite of hot?", "cold; warm", "cold"),
]
ANSWERS = {q: a for q, _, a in ROWS}


@pytest.fixture
def qa_csv(tmp_path: Path) -> Path:
    path = tmp_path / "qa.csv"
    lines = ["question,choices,answer"] + [f'"{q}","{c}",{a}' for q, c, a in ROWS]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The fake program model answers in a sentence; every request is recorded."""
    requests: list[dict[str, Any]] = []

    def reply(messages: list[dict[str, str]], request: Any) -> str:
        requests.append({"messages": messages, "max_tokens": request.max_tokens})
        question = messages[-1]["content"].split("\n")[0].removeprefix("Question: ")
        return f"Let me think.\nThe answer is {ANSWERS.get(question, '?')}, I am sure."

    def make_lm(*args: Any, **kwargs: Any) -> LM:
        return LM(LMConfig().with_models(program="fake/program"), transport=FakeModel(fn=reply), cache_dir=None)

    monkeypatch.setattr(eval_cmd, "make_lm", make_lm)
    return requests


def run_eval(qa_csv: Path, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "eval.json"
    code = main(["eval", "--task", "file", "--source", str(qa_csv), "--split", "train",
                 "--input-template", "Question: {question}\\nChoices: {choices}", "--out", str(out), *extra])
    assert code == 0
    return json.loads(out.read_text())


def test_an_input_template_over_two_columns_builds_each_input_with_a_line_break(qa_csv, tmp_path, seen):
    data = run_eval(qa_csv, tmp_path, "--metric", "contains", "--extract", "last_line")
    inputs = [t["example"]["input"] for t in data["traces"]]
    assert all(i.startswith("Question: ") and "\nChoices: " in i for i in inputs)
    assert seen[0]["messages"][-1]["content"] in inputs


def test_contains_scores_a_sentence_answer_that_exact_match_scores_zero(qa_csv, tmp_path, seen):
    assert run_eval(qa_csv, tmp_path, "--metric", "contains", "--extract", "last_line")["accuracy"] == 1.0
    assert run_eval(qa_csv, tmp_path, "--extract", "last_line")["accuracy"] == 0.0


def test_answer_tokens_reach_the_model(qa_csv, tmp_path, seen):
    run_eval(qa_csv, tmp_path, "--answer-tokens", "321", "--metric", "contains")
    assert {r["max_tokens"] for r in seen} == {321}


def test_the_seed_program_takes_the_instruction_and_output_format_given(qa_csv, tmp_path, seen):
    run_eval(qa_csv, tmp_path, "--instruction", "Answer the quiz.", "--output-format", "One word.\\nNo dot.")
    assert seen[0]["messages"][0]["content"] == "Answer the quiz.\n\nOne word.\nNo dot."


def test_multi_line_targets_are_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "poems.jsonl"
    path.write_text("".join(json.dumps({"input": f"poem {i}", "target": f"line a{i}\nline b{i}"}) + "\n" for i in range(4)))

    def make_lm(*args: Any, **kwargs: Any) -> LM:
        fake = FakeModel(fn=lambda messages, request: "line a{0}\nline b{0}\n".format(messages[-1]["content"][-1]))
        return LM(LMConfig().with_models(program="fake/program"), transport=fake, cache_dir=None)

    monkeypatch.setattr(eval_cmd, "make_lm", make_lm)
    out = tmp_path / "e.json"
    assert main(["eval", "--task", "file", "--source", str(path), "--split", "train", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["accuracy"] == 1.0 and "\n" in data["traces"][0]["answer"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "containz"], "error: unknown metric 'containz' (did you mean 'contains'?)"),
        (["--extract", "lst_line"], "error: unknown extractor 'lst_line' (did you mean 'last_line' or 'first_line'?)"),
        (["--metric", "no_such_mod_xyz:score"], "error: metric 'no_such_mod_xyz:score': cannot import"),
        (["--input-template", "Q: {questoin}"], "error: --input-template names column 'questoin' (did you mean 'question'?)"),
        (["--input-template", "Q: {question"], "error: --input-template 'Q: {question' is malformed"),
    ],
)
def test_bad_answer_options_are_one_line_exit_2_before_any_model_call(qa_csv, seen, capsys, extra, message):
    code = main(["eval", "--task", "file", "--source", str(qa_csv), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(message) and err.count("\n") == 1
    assert seen == []
