"""`--metric judge` on the command line: the judge level's usage row, and a judge with no model refused up front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphopt.app import evaluation
from graphopt.cli import eval_cmd, main
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel

ROWS = [("Capital of France?", "Paris"), ("Capital of Italy?", "Rome"), ("Capital of Spain?", "Madrid"),
        ("Capital of Peru?", "Lima"), ("Capital of Chile?", "Santiago"), ("Capital of Japan?", "Tokyo")]


@pytest.fixture
def qa_csv(tmp_path: Path) -> Path:
    path = tmp_path / "qa.csv"
    path.write_text("question,answer\n" + "".join(f"{q},{a}\n" for q, a in ROWS))
    return path


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The program model answers "The capital is X."; the judge gives 9 when X is the target. Records make_lm's arguments."""
    answers = dict(ROWS)
    calls: list[dict[str, Any]] = []

    def reply(messages: list[dict[str, str]], request: Any) -> str:
        prompt = messages[-1]["content"]
        if request.model == "fake/judge":
            answer = prompt.split("Answer to grade:\n", 1)[1].split("\n", 1)[0]
            target = prompt.split("Reference answer:\n", 1)[1].split("\n", 1)[0]
            return f"Reasons.\nScore: {9 if target in answer else 0}"
        return f"The capital is {answers.get(prompt, '?')}."

    def make_lm(*args: Any, **kwargs: Any) -> LM:
        calls.append(kwargs)
        config = LMConfig().with_models(program="fake/program", judge="fake/judge")
        return LM(config, transport=FakeModel(fn=reply), cache_dir=None)

    monkeypatch.setattr(eval_cmd, "make_lm", make_lm)
    return calls


def test_eval_with_the_judge_metric_scores_on_the_judge_level_and_prints_its_usage_row(qa_csv, tmp_path, made, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--task", "file", "--source", str(qa_csv), "--split", "train", "--metric", "judge",
                 "--extract", "whole", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["accuracy"] == pytest.approx(0.9)  # "The capital is Paris." is no exact match; the judge gives 9/10
    assert data["usage"]["levels"]["judge"]["calls"] == data["usage"]["levels"]["program"]["calls"] == data["n"]
    assert all(t["metric_note"].startswith("Reasons.") for t in data["traces"])
    assert made[0]["levels"] == ("program", "judge")  # the judge's price is checked like the program's
    table = capsys.readouterr().out
    rows = [[cell.strip() for cell in line.split("│")[1:4]] for line in table.splitlines() if "│" in line]
    n = str(data["n"])
    assert ["judge", "fake/judge", n] in rows and ["program", "fake/program", n] in rows


def test_eval_without_the_judge_metric_does_not_check_the_judge_level(qa_csv, made):
    assert main(["eval", "--task", "file", "--source", str(qa_csv), "--split", "train", "--metric", "contains"]) == 0
    assert made[0]["levels"] == ("program",)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--judge-model", ""], {}, "error: flag --judge-model: judge.model = '': empty: name a model"),
        (["--judge-model", "openai/"], {}, "error: flag --judge-model: judge.model = 'openai/': 'openai/' names a provider but no model"),
        (["--set", "judge.model=none"], {}, "error: flag --set: judge.model = None: no model: name one"),
        ([], {"GRAPHOPT_JUDGE_MODEL": " "}, "error: env GRAPHOPT_JUDGE_MODEL: judge.model = ' ': empty: name a model"),
    ],
)
def test_a_judge_level_with_no_model_is_one_line_and_exit_2_before_anything_runs(
    qa_csv, monkeypatch, capsys, args, env, message
):
    ran: list[Any] = []
    monkeypatch.setattr(evaluation, "score", lambda *a, **k: ran.append(a))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["eval", "--task", "file", "--source", str(qa_csv), "--metric", "judge", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and len(captured.err.splitlines()) == 1
    assert captured.out == "" and ran == []


def test_a_missing_rubric_file_is_one_line_and_exit_2(qa_csv, tmp_path, made, capsys):
    assert main(["eval", "--task", "file", "--source", str(qa_csv), "--metric", f"judge:{tmp_path / 'rubric.md'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: rubric file not found:") and len(err.splitlines()) == 1 and made == []
