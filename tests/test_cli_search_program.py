"""`graphopt search --program`: the search starts every inner loop from the user's program."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphopt.cli import main, search_cmd
from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records the task the search is started with, and stops there."""
    import graphopt.search.pipeline as pipeline

    tasks: list[Any] = []

    async def run_search(task: Any, *args: Any, **kwargs: Any) -> Any:
        tasks.append(task)
        raise ConfigError("stopped by the test")

    def make_lm(*args: Any, **kwargs: Any) -> LM:
        return LM(LMConfig().with_models(program="fake/p", optimizer="fake/o", meta="fake/m"),
                  transport=FakeModel(default="x"), cache_dir=None)

    monkeypatch.setattr(pipeline, "run_search", run_search)
    monkeypatch.setattr(search_cmd, "make_lm", make_lm)
    return tasks


def search(tmp_path: Path, *extra: str) -> int:
    return main(["search", "--task", "word_sorting", "--difficulty", "easy", "--out", str(tmp_path / "run"), *extra])


def test_search_program_file_becomes_the_seed_program(tmp_path, started):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"program": {"instruction": "My own sorting instruction.", "schema_version": 1}}))
    assert search(tmp_path, "--program", str(path)) == 2
    assert started[0].seed_program.instruction == "My own sorting instruction."


def test_search_program_shape_builds_on_the_task_seed(tmp_path, started):
    assert search(tmp_path, "--program", "cot") == 2
    assert started[0].seed_program.answer_marker == "Answer:" and started[0].name == "word_sorting"


def test_search_without_program_keeps_the_task_seed(tmp_path, started):
    assert search(tmp_path) == 2
    assert started[0].seed_program.instruction == "Sort the given words alphabetically."


def test_search_with_a_missing_program_is_one_line_before_anything_starts(tmp_path, started, capsys):
    assert search(tmp_path, "--program", str(tmp_path / "nope.json")) == 2
    assert "error: program file not found:" in capsys.readouterr().err and started == []


def test_search_table_shows_cached_tokens_apart_when_there_are_any(tmp_path, monkeypatch, capsys):
    import graphopt.search.pipeline as pipeline
    from graphopt.search.phases import ReportRow
    from graphopt.search.pipeline import SearchReport

    def make_lm(*args: Any, **kwargs: Any) -> LM:
        return LM(LMConfig().with_models(program="fake/p", optimizer="fake/o", meta="fake/m"),
                  transport=FakeModel(default="x"), cache_dir=None)

    def report(cached: int) -> SearchReport:
        row = ReportRow("best", "c1", "fewshot", 0.5, 0.25, {"program": 1200, "optimizer": 0, "meta": 0, "cached": cached})
        return SearchReport(best=None, rows=[row])  # type: ignore[arg-type]

    monkeypatch.setattr(search_cmd, "make_lm", make_lm)
    for cached, shown in ((345, True), (0, False)):
        async def run_search(*args: Any, cached: int = cached, **kwargs: Any) -> SearchReport:
            return report(cached)

        monkeypatch.setattr(pipeline, "run_search", run_search)
        assert search(tmp_path / str(cached)) == 0
        out = capsys.readouterr().out
        assert ("cached tok" in out and "345" in out) is shown, out
        assert "1,200" in out
