"""`graphopt.app.evaluate`: a request in, a report out, with the scripted fake model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graphopt.app import EvalRequest, ModelRequest, TaskRequest, evaluate
from graphopt.errors import ConfigError, RunError
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel

PREFIX = "Sort the following words alphabetically: List: "
TASK = TaskRequest("word_sorting", difficulty="easy", split_sizes="4,4,6")


def sorting(messages: list[dict[str, str]], request: Any) -> str:
    return " ".join(sorted(messages[-1]["content"].removeprefix(PREFIX).split()))


def connect_to(fn: Any, seen: list[dict[str, Any]] | None = None):
    def connect(models: ModelRequest, **kwargs: Any) -> LM:
        if seen is not None:
            seen.append({"models": models, **kwargs})
        return LM(LMConfig().with_models(program="fake/program"), transport=FakeModel(fn=fn), cache_dir=None)

    return connect


def test_evaluate_scores_the_split_and_returns_the_report_with_the_usage():
    events: list[tuple[str, Any]] = []
    report = evaluate(EvalRequest(TASK, limit=5), connect=connect_to(sorting), on_event=lambda k, d: events.append((k, d)))
    assert report.task.name == "word_sorting" and len(report.result.traces) == 5
    assert report.result.accuracy == 1.0 and report.result.errors == 0
    assert report.lm.ledger.to_dict()["levels"]["program"]["calls"] == 5
    assert [kind for kind, _ in events] == ["task"] and events[0][1] is report.task


def test_evaluate_asks_for_the_program_level_and_writes_the_out_file(tmp_path):
    seen: list[dict[str, Any]] = []
    out = tmp_path / "eval.json"
    models = ModelRequest(program="fake/program", no_cache=True)
    report = evaluate(EvalRequest(TASK, models, split="val", out=out), connect=connect_to(lambda m, r: "wrong", seen))
    assert seen == [{"models": models, "levels": ("program",)}]
    data = json.loads(out.read_text())
    assert data["task"] == "word_sorting" and data["split"] == "val" and data["accuracy"] == report.result.accuracy == 0.0
    assert "baseline" not in data and data["usage"]["total"]["calls"] == 4


def test_a_baseline_runs_from_the_cot_shape_and_its_options_are_in_the_file(tmp_path):
    out = tmp_path / "eval.json"
    request = EvalRequest(TASK, limit=2, out=out, baseline="zero_shot_cot")
    report = evaluate(request, connect=connect_to(lambda m, r: "Thinking.\nAnswer: x"))
    data = json.loads(out.read_text())
    assert data["baseline"] == "zero_shot_cot" and data["samples"] == 5 and len(report.result.traces) == 2


def test_too_many_failed_calls_stop_with_a_run_error_and_no_file(tmp_path):
    def failing(messages: list[dict[str, str]], request: Any) -> str:
        raise TimeoutError("provider timed out")

    out = tmp_path / "eval.json"
    with pytest.raises(RunError, match="failed after retries"):
        evaluate(EvalRequest(TASK, limit=3, out=out), connect=connect_to(failing))
    assert not out.exists()


def test_a_bad_baseline_is_refused_before_any_model_is_opened():
    seen: list[dict[str, Any]] = []
    with pytest.raises(ConfigError, match="unknown baseline"):
        evaluate(EvalRequest(TASK, baseline="no_such_baseline"), connect=connect_to(sorting, seen))
    assert seen == []
