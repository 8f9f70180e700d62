"""`graphopt.app.search`: a search request in, its outcome out, with the scripted search model."""

from __future__ import annotations

from typing import Any

import pytest

from graphopt.app import ModelRequest, PlanRequest, SearchRequest, SearchSizes, TaskRequest, search
from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.lm.budget import Caps
from graphopt.testing import FakeModel
from graphopt.testing.search_model import scripted_search

TASK = TaskRequest("word_sorting", difficulty="easy")
PLAN = PlanRequest(sizes=SearchSizes(generations=0, val_limit=3, test_limit=2, screen=0), seed_graphs=("fewshot",))


def connect(models: ModelRequest, **kwargs: Any) -> LM:
    config = LMConfig().with_models(program="fake/p", optimizer="fake/o", meta="fake/m")
    return LM(config, transport=FakeModel(fn=scripted_search), budget=kwargs.get("budget"), cache_dir=None)


def test_the_plan_request_replaces_the_presets_sizes_and_caps():
    plan = PlanRequest("tiny", Caps(calls=500), ("program.tokens=2000",), SearchSizes(generations=1), ("tgd",)).build()
    assert plan.name == "tiny" and plan.generations == 1 and plan.seeds == ("tgd",)
    assert plan.lm_budget().total.calls == 500 and plan.lm_budget().levels["program"].tokens == 2000


def test_a_dry_run_estimates_without_writing_anything(tmp_path):
    outcome = search(SearchRequest(TASK, plan=PLAN, out=tmp_path / "run", dry_run=True), connect=connect)
    assert outcome.report is None and outcome.estimate["program"]["calls"] > 0
    assert outcome.lm.ledger.to_dict()["total"]["calls"] == 0 and not (tmp_path / "run").exists()


def test_a_search_runs_the_seed_and_reports_the_winner(tmp_path):
    events: list[str] = []
    out = tmp_path / "run"
    outcome = search(SearchRequest(TASK, plan=PLAN, out=out), connect=connect, on_event=lambda kind, data: events.append(kind))
    report = outcome.report
    assert report is not None and report.best_path == out / "best.graph.json" and report.best_path.is_file()
    assert [row.role for row in report.rows if row.role == "best"] == ["best"]
    assert events[:2] == ["task", "start"] and "candidate" in events
    assert (out / "report.html").is_file()


def test_resume_needs_a_run_directory():
    with pytest.raises(ConfigError, match="--resume needs --out RUN_DIR"):
        search(SearchRequest(TASK, resume=True), connect=connect)
