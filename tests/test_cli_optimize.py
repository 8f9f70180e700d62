"""`graphopt optimize`: loads a graph, runs the inner loop, reports and writes the program."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphopt.cli import main
from graphopt.cli import optimize_cmd
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.loop import OptimizeResult

MAGIC = "Use MAGIC: sort the words alphabetically."
PREFIX = "Sort the following words alphabetically: List: "


def reply(messages: list[dict[str, str]], request: Any) -> str:
    if request.model == "fake/program":
        words = messages[-1]["content"].removeprefix(PREFIX).split()
        return " ".join(sorted(words, reverse="MAGIC" not in messages[0]["content"]))
    if "Do not write the new instruction" in messages[-1]["content"]:
        return "Say the magic word."
    return json.dumps({"instruction": MAGIC})


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> FakeModel:
    fake = FakeModel(fn=reply)

    def make_lm(program_model: Any = None, optimizer_model: Any = None, meta_model: Any = None, **kwargs: Any) -> LM:
        config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
        return LM(config, transport=fake, budget=kwargs.get("budget"), cache_dir=None)

    monkeypatch.setattr(optimize_cmd, "make_lm", make_lm)
    return fake


def optimize(tmp_path: Path, *extra: str, graph: str = "tgd") -> int:
    return main([
        "optimize", "--graph", graph, "--task", "word_sorting", "--difficulty", "easy", "--steps", "2",
        "--minibatch", "4", "--val-limit", "5", "--test-limit", "5", "--out", str(tmp_path / "out"), *extra,
    ])


def test_optimize_reports_before_and_after_and_writes_program_and_history(tmp_path: Path, fake_models, capsys) -> None:
    assert optimize(tmp_path) == 0
    printed = capsys.readouterr().out
    assert "before" in printed and "after" in printed and "optimizer" in printed and "step 1:" in printed
    saved = json.loads((tmp_path / "out" / "program.json").read_text())
    assert saved["program"]["instruction"] == MAGIC and saved["graph"] == "tgd"
    assert saved["scores"]["val_before"] == 0.0 and saved["scores"]["val_after"] == 1.0
    assert saved["scores"]["test_before"] == 0.0 and saved["scores"]["test_after"] == 1.0
    history = OptimizeResult.from_dict(json.loads((tmp_path / "out" / "history.json").read_text()))
    assert len(history.history) == 2 and history.best_val == 1.0


def test_the_written_program_can_start_the_next_run(tmp_path: Path, fake_models, capsys) -> None:
    assert optimize(tmp_path) == 0
    capsys.readouterr()
    # The next run into the same --out would overwrite the program it starts from: refused...
    assert optimize(tmp_path, "--program", str(tmp_path / "out" / "program.json")) == 2
    assert "program.json exists: add --force" in capsys.readouterr().err
    # ...unless asked for.
    assert optimize(tmp_path, "--program", str(tmp_path / "out" / "program.json"), "--force") == 0
    saved = json.loads((tmp_path / "out" / "program.json").read_text())
    assert saved["scores"]["val_before"] == 1.0


def test_a_graph_file_is_accepted(tmp_path: Path, fake_models, capsys) -> None:
    graph = {
        "name": "just_rewrite",
        "nodes": [{"id": "rw", "op": "rewrite"}],
        "edges": [{"source": "input.program", "target": "rw.candidates"}],
    }
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph))
    assert optimize(tmp_path, graph=str(path)) == 0
    assert json.loads((tmp_path / "out" / "program.json").read_text())["graph"] == "just_rewrite"


def test_an_invalid_graph_is_one_error_line_and_exit_2(tmp_path: Path, fake_models, capsys) -> None:
    graph = {"name": "bad", "nodes": [{"id": "s", "op": "select"}],
             "edges": [{"source": "input.traces", "target": "s.candidates"}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(graph))
    assert optimize(tmp_path, graph=str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "expects Candidates, got Traces" in err and len(err.strip().splitlines()) == 1
    assert fake_models.calls == 0


@pytest.mark.parametrize(("extra", "graph", "message"), [
    ((), "tdg", "did you mean 'tgd'"),
    (("--accept", "bettr"), "tgd", "did you mean 'better'"),
])
def test_bad_input_exits_2_with_a_hint(tmp_path: Path, fake_models, capsys, extra, graph, message) -> None:
    assert optimize(tmp_path, *extra, graph=graph) == 2
    assert message in capsys.readouterr().err


def test_a_call_cap_stops_early_and_still_writes_the_best_so_far(tmp_path: Path, fake_models, capsys) -> None:
    # 5 (seed on val) + 4 (minibatch) + 2 (critique, rewrite) + 5 (candidate on val) = 16 calls in step 1
    assert optimize(tmp_path, "--max-calls", "18", "--steps", "5") == 0
    assert "stopped early: budget reached" in capsys.readouterr().out
    saved = json.loads((tmp_path / "out" / "program.json").read_text())
    assert saved["stopped"] == "budget" and saved["program"]["instruction"] == MAGIC
    assert saved["scores"]["test_after"] is None
