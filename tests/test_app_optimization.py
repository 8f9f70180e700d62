"""`graphopt.app.optimize`: a request in, a report and two files out, with the scripted fake models."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graphopt.app import ModelRequest, OptimizeRequest, TaskRequest, optimize
from graphopt.sizes import LoopSizes
from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.lm.budget import Caps
from graphopt.testing import FakeModel

MAGIC = "Use MAGIC: sort the words alphabetically."
PREFIX = "Sort the following words alphabetically: List: "
TASK = TaskRequest("word_sorting", difficulty="easy")


def reply(messages: list[dict[str, str]], request: Any) -> str:
    """The program sorts backwards until its instruction says MAGIC; the optimizer rewrites to MAGIC."""
    if request.model == "fake/program":
        words = messages[-1]["content"].removeprefix(PREFIX).split()
        return " ".join(sorted(words, reverse="MAGIC" not in messages[0]["content"]))
    if "Do not write the new instruction" in messages[-1]["content"]:
        return "Say the magic word."
    return json.dumps({"instruction": MAGIC})


def connect(models: ModelRequest, **kwargs: Any) -> LM:
    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    return LM(config, transport=FakeModel(fn=reply), budget=kwargs.get("budget"), cache_dir=None)


def request(tmp_path, **changes: Any) -> OptimizeRequest:
    loop = LoopSizes(steps=2, minibatch=4, val_limit=5)
    return OptimizeRequest("tgd", TASK, loop=loop, test_limit=5, out=tmp_path / "out", **changes)


def test_optimize_finds_the_better_program_and_writes_it_with_the_scores(tmp_path):
    events: list[str] = []
    report = optimize(request(tmp_path), connect=connect, on_event=lambda kind, data: events.append(kind))
    assert report.result.initial_val == 0.0 and report.result.best_val == 1.0
    assert (report.test_before, report.test_after) == (0.0, 1.0)
    assert MAGIC in report.result.best_program.render()
    assert events[:2] == ["task", "start"] and events.count("step") == 2
    saved = json.loads((tmp_path / "out" / "program.json").read_text())
    assert saved["graph"] == "tgd" and saved["scores"]["val_after"] == 1.0 and saved["scores"]["test_after"] == 1.0
    assert saved["models"] == {"program": "fake/program", "optimizer": "fake/optimizer"}
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert history["task"] == "word_sorting" and history["usage_total"]["total"]["calls"] > 0


def test_the_caps_reach_the_lm_budget(tmp_path):
    seen: list[Any] = []

    def recording(models: ModelRequest, **kwargs: Any) -> LM:
        seen.append(kwargs)
        return connect(models, **kwargs)

    optimize(request(tmp_path, caps=Caps(calls=1000, dollars=5.0)), connect=recording)
    assert seen[0]["budget"].total == Caps(calls=1000, dollars=5.0)
    assert seen[0]["levels"] == ("program", "optimizer")


def test_an_existing_program_file_is_refused_without_force_before_any_model_is_opened(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "program.json").write_text("{}")
    opened: list[Any] = []
    with pytest.raises(ConfigError, match="add --force to overwrite it"):
        optimize(request(tmp_path), connect=lambda *a, **k: opened.append(a))
    assert opened == [] and (tmp_path / "out" / "program.json").read_text() == "{}"
    report = optimize(request(tmp_path, force=True), connect=connect)
    assert json.loads((tmp_path / "out" / "program.json").read_text())["scores"]["val_after"] == report.result.best_val
