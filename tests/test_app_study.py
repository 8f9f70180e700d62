"""`graphopt.app.study`: a study file in, its cells, rows and files out, with the scripted search model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graphopt.app import ModelRequest, StudyRequest, study
from graphopt.app.study_run import estimate
from graphopt.errors import ConfigError
from graphopt.lm import LM
from graphopt.testing import FakeModel
from graphopt.testing.scripted_study import scripted_config
from graphopt.testing.search_model import scripted_search

STUDY = {
    "name": "small",
    "tasks": [{"name": "word_sorting", "difficulty": "easy", "sizes": [6, 4, 4]}],
    "methods": [{"name": "zero-shot", "kind": "zero-shot"}, {"name": "tgd", "kind": "graph", "graph": "tgd"}],
    "seeds": [0],
    "baseline": "zero-shot",
    "loop": {"steps": 1, "minibatch": 2, "val_limit": 4, "test_limit": 4},
}


def connect(models: ModelRequest, **kwargs: Any) -> LM:
    return LM(scripted_config(), transport=FakeModel(fn=scripted_search), cache_dir=None)


@pytest.fixture
def study_file(tmp_path):
    path = tmp_path / "small.json"
    path.write_text(json.dumps(STUDY))
    return path


def test_a_study_runs_every_cell_and_writes_its_tables(study_file, tmp_path):
    events: list[str] = []
    out = tmp_path / "study"
    outcome = study(StudyRequest(study_file, out=out), connect=connect, on_event=lambda kind, data: events.append(kind))
    assert len(outcome.records) == 2 and all(r.status == "done" and r.result["test"] is not None for r in outcome.records)
    assert {row.method for row in outcome.rows} == {"zero-shot", "tgd"}
    assert all(path.is_file() and path.parent == out for path in outcome.paths.values())
    assert events[:2] == ["cells", "start"] and events.count("cell") == 2 and events[-1] == "end"


def test_a_study_already_in_the_store_needs_resume(study_file, tmp_path):
    out = tmp_path / "study"
    study(StudyRequest(study_file, out=out), connect=connect)
    opened: list[Any] = []
    with pytest.raises(ConfigError, match="add --resume to finish it"):
        study(StudyRequest(study_file, out=out), connect=lambda *a, **k: opened.append(a))
    assert opened == []
    again = study(StudyRequest(study_file, out=out, resume=True), connect=connect)
    assert len(again.records) == 2 and all(r.status == "done" for r in again.records)


def test_the_estimate_covers_every_cell_and_spends_nothing(study_file):
    spec, rows, total = estimate(study_file)
    assert spec.name == "small" and len(rows) == 2 and total["program"]["calls"] > 0


def test_an_unknown_executor_is_refused_before_any_model_is_opened(study_file, tmp_path):
    opened: list[Any] = []
    with pytest.raises(ConfigError, match="unknown --executor 'dask': use local or ray"):
        study(StudyRequest(study_file, out=tmp_path / "s", executor=("dask", None)), connect=lambda *a, **k: opened.append(a))
    assert opened == []
