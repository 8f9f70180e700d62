"""Every file under examples/ runs as its docstring says, on the embedded model at smoke size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)  # the `graphopt` script of this environment
    full = {**os.environ, "GRAPHOPT_CACHE_DIR": str(cwd / "cache"), "PATH": bin_dir + os.pathsep + os.environ["PATH"],
            "PYTHONPATH": str(EXAMPLES), **(env or {})}
    return subprocess.run(list(args), cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)


def test_the_yaml_graph_validates_and_runs_one_step(tmp_path):
    assert run("graphopt", "validate", str(EXAMPLES / "critique_fewshot.graph.yaml"), cwd=tmp_path).returncode == 0
    result = run("graphopt", "optimize", "--graph", str(EXAMPLES / "critique_fewshot.graph.yaml"), "--task", "word_sorting",
                 "--difficulty", "easy", "--steps", "1", "--minibatch", "2", "--val-limit", "2", "--test-limit", "2",
                 "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "program.json").read_text())["graph"] == "critique_fewshot"


def test_reuse_on_csv_optimizes_on_the_csv_then_predicts_a_new_question(tmp_path):
    result = run("bash", str(EXAMPLES / "reuse_on_csv.sh"), cwd=tmp_path, env={"OUT": "capitals", "GRAPH": "tgd"})
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((tmp_path / "capitals" / "program.json").read_text())
    assert saved["program"]["io"]["input_template"] == "Question: {question}\nChoices: {choices}"
    (row,) = [json.loads(line) for line in (tmp_path / "capitals" / "answers.jsonl").read_text().splitlines()]
    assert row["question"].endswith("Portugal?") and row["output"]


def test_the_user_pipeline_evaluates_with_both_components_traced(tmp_path):
    result = run("graphopt", "eval", "--task", "word_sorting", "--difficulty", "easy", "--limit", "2",
                 "--pipeline", "two_prompt_pipeline:run", "--out", "e.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "e.json").read_text())
    assert [s["name"] for s in data["traces"][0]["steps"]] == ["notes", "answer"]
    assert all(s["output"] for t in data["traces"] for s in t["steps"])


def test_the_python_builder_example_runs_on_the_embedded_model(tmp_path):
    result = run(sys.executable, str(EXAMPLES / "build_graph.py"), "--local", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "validation:" in result.stdout


def test_search_and_draw_writes_the_winner_its_drawing_and_the_report_and_the_winner_runs_on_another_task(tmp_path):
    """The tiny search on the real model end to end (the README's main job at smoke size), then its
    winner reused on another task as the script says. Two of the preset's seeds (one with optimizer
    calls, one with demos; the README's main job in CI runs all four) keep it to about two minutes."""
    result = run("bash", str(EXAMPLES / "search_and_draw.sh"), "--seed-graph", "tgd", "--seed-graph", "fewshot",
                 cwd=tmp_path, env={"OUT": "ws", "VAL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "ws"
    for name in ("best.graph.json", "best.program.json", "best.dot", "report.html", "run.sqlite"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "best.dot").read_text().startswith("digraph")
    assert "Search result" in result.stdout and "best graph:" in result.stdout
    best = json.loads((run_dir / "best.graph.json").read_text())
    assert best["provenance"]["task"] == "word_sorting" and set(best["provenance"]["scores"]) >= {"val", "test"}

    reuse = run("graphopt", "optimize", "--graph", str(run_dir / "best.graph.json"), "--task", "dyck_languages",
                "--difficulty", "easy", "--steps", "1", "--minibatch", "2", "--val-limit", "3", "--test-limit", "3",
                "--out", "reuse", cwd=tmp_path)
    assert reuse.returncode == 0, reuse.stderr[-2000:]
    assert json.loads((tmp_path / "reuse" / "program.json").read_text())["program"]["instruction"]


def test_the_python_api_example_searches_loads_the_winner_and_predicts(tmp_path):
    result = run(sys.executable, str(EXAMPLES / "python_api.py"), "api", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best graph:" in result.stdout and "'pear apple' -> " in result.stdout
    assert "# graphopt program" in result.stdout and (tmp_path / "api" / "best.program.json").is_file()
