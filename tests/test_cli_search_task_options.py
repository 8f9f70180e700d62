"""`graphopt search` takes optimize's task options (--metric, --extract, --input-template, --pipeline, ...), the judge too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphopt.cli import main, search_cmd
from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.testing.search_model import scripted_search

ROWS = [(f"What is {i} + {i}?", f"{i}; {i + 1}", str(2 * i)) for i in range(1, 10)]


@pytest.fixture
def qa_csv(tmp_path: Path) -> Path:
    path = tmp_path / "qa.csv"
    path.write_text("question,choices,answer\n" + "".join(f'"{q}","{c}",{a}\n' for q, c, a in ROWS))
    return path


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records the task the search is started with (and make_lm's arguments), and stops there."""
    import graphopt.search.pipeline as pipeline

    seen: list[Any] = []

    async def run_search(task: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(task)
        raise ConfigError("stopped by the test")

    def make_lm(*args: Any, **kwargs: Any) -> LM:
        seen.append(kwargs)
        return LM(LMConfig().with_models(program="fake/p", optimizer="fake/o", meta="fake/m"),
                  transport=FakeModel(default="x"), cache_dir=None)

    monkeypatch.setattr(pipeline, "run_search", run_search)
    monkeypatch.setattr(search_cmd, "make_lm", make_lm)
    return seen


def search(tmp_path: Path, qa_csv: Path, *extra: str) -> int:
    return main(["search", "--task", "file", "--source", str(qa_csv), "--out", str(tmp_path / "run"), *extra])


def test_search_builds_its_task_from_the_same_options_as_optimize(tmp_path, qa_csv, started):
    code = search(tmp_path, qa_csv, "--metric", "contains", "--extract", "last_line", "--answer-tokens", "40",
                  "--input-template", "Question: {question}\\nChoices: {choices}", "--instruction", "Add the numbers.")
    assert code == 2  # stopped by the test, after the task was built
    make_lm_args, task = started
    assert task.metric_rule == "contains" and task.extract_rule == "last_line" and task.max_tokens == 40
    assert all(ex.input.startswith("Question: What is ") and "\nChoices: " in ex.input for ex in task.train)
    assert task.seed_program.instruction == "Add the numbers."
    assert task.metric("The sum is 4.", task.train[0].model_copy(update={"target": "4"})) == 1.0
    assert make_lm_args["levels"] == ("program", "optimizer", "meta")


def test_search_runs_a_pipeline_of_the_users_as_the_seed_program(tmp_path, qa_csv, started, monkeypatch):
    (tmp_path / "my_pipe.py").write_text(
        "COMPONENTS = {'answer': 'Add the numbers.'}\n\n"
        "def run(components, example):\n    return components.call('answer', example.input)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert search(tmp_path, qa_csv, "--pipeline", "my_pipe:run") == 2
    task = started[-1]
    assert task.seed_program.pipeline == "my_pipe:run" and task.seed_program.answer_step.instruction == "Add the numbers."


def test_a_wrong_metric_on_search_is_one_line_with_the_close_name_before_anything_starts(tmp_path, qa_csv, started, capsys):
    assert search(tmp_path, qa_csv, "--metric", "contans") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown metric 'contans' (did you mean 'contains'?)") and len(err.splitlines()) == 1
    assert started == [] and not (tmp_path / "run").exists()


def test_search_with_the_judge_metric_checks_the_judge_level_and_its_dry_run_shows_it(tmp_path, qa_csv, started, capsys):
    assert search(tmp_path, qa_csv, "--metric", "judge") == 2
    assert started[0]["levels"] == ("program", "optimizer", "meta", "judge")
    capsys.readouterr()
    assert search(tmp_path, qa_csv, "--metric", "judge", "--dry-run") == 0
    rows = {line.split("│")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.count("│") == 7}
    assert {"program", "optimizer", "meta", "judge"} <= set(rows)
    assert search(tmp_path, qa_csv, "--dry-run") == 0
    assert "judge" not in capsys.readouterr().out  # no judge metric, no judge row


def test_a_judge_cap_stops_a_real_search_in_one_line_with_the_judges_spend_at_the_cap(tmp_path, monkeypatch, capsys):
    made: list[LM] = []

    def reply(messages: list[dict[str, str]], request: Any) -> str:
        return "Sorted.\nScore: 10" if request.model == "fake/judge" else scripted_search(messages, request)

    def make_lm(*args: Any, **kwargs: Any) -> LM:
        config = LMConfig().with_models(program="fake/p", optimizer="fake/o", meta="fake/m", judge="fake/judge")
        made.append(LM(config, transport=FakeModel(fn=reply), budget=kwargs["budget"], cache_dir=None))
        return made[-1]

    monkeypatch.setattr(search_cmd, "make_lm", make_lm)
    code = main(["search", "--task", "word_sorting", "--difficulty", "easy", "--metric", "judge", "--level-cap", "judge.calls=5",
                 "--seed-graph", "fewshot", "--val-limit", "3", "--test-limit", "2", "--generations", "0", "--out", str(tmp_path / "run")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(err) == 1 and "judge cap of 5 calls" in err[0]
    levels = made[0].ledger.to_dict()["levels"]
    assert levels["judge"]["calls"] == 5 and levels["program"]["calls"] >= 5
