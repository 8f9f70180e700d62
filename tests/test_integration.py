"""End to end on the real embedded model (SmolLM2-135M in llama.cpp), through the CLI as a user runs it.

These assert that every stage runs and writes what it promises; the tiny model's answers are
mostly wrong, so accuracy is checked against the traces (each answer re-scored by the task's metric,
the printed accuracy their mean), not for a value.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def graphopt(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRAPHOPT_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "graphopt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _accuracy(stdout: str) -> float:
    match = re.search(r"accuracy (\d\.\d+) ± (\d\.\d+)", stdout)
    assert match, stdout
    return float(match.group(1))


def _check_accuracy(stdout: str, data: dict, task_name: str) -> None:
    """The printed and saved accuracy is the mean of the traces' scores, each the task's metric of its answer."""
    from graphopt.tasks import get_task
    from graphopt.types import Example

    task = get_task(task_name)
    scores = [t["score"] for t in data["traces"]]
    for t in data["traces"]:
        assert t["score"] == float(task.metric(t["answer"], Example.model_validate(t["example"])))
    assert data["accuracy"] == pytest.approx(sum(scores) / len(scores))
    assert _accuracy(stdout) == round(data["accuracy"], 3)


def test_eval_on_the_embedded_model_prints_accuracy_and_usage(tmp_path):
    result = graphopt("eval", "--task", "word_sorting", "--limit", "3", "--out", "eval.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Model usage" in result.stdout and "local/smollm2" in result.stdout
    data = json.loads((tmp_path / "eval.json").read_text())
    _check_accuracy(result.stdout, data, "word_sorting")
    assert data["n"] == 3 and len(data["traces"]) == 3
    assert all(t["output"] for t in data["traces"])  # the model really answered
    assert data["usage"]["levels"]["program"]["calls"] == 3


def test_bad_input_exits_2_with_one_line(tmp_path):
    result = graphopt("eval", "--task", "word_sortng", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'word_sorting'" in lines[0]
    assert "Traceback" not in result.stderr


def test_eval_cot_program_on_the_embedded_model_reasons_and_reads_its_answer_line(tmp_path):
    result = graphopt(
        "eval", "--task", "word_sorting", "--difficulty", "easy", "--program", "cot", "--limit", "3",
        "--out", "cot.json", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "cot.json").read_text())
    _check_accuracy(result.stdout, data, "word_sorting")
    assert data["program"]["answer_marker"] == "Answer:" and len(data["traces"]) == 3
    assert all(t["output"] for t in data["traces"])
    # The answer is what follows the last "Answer:" when the model wrote one.
    for t in data["traces"]:
        if "answer:" in t["output"].lower():
            assert t["answer"] in t["output"].split("nswer:")[-1]


def test_predict_with_a_saved_program_on_the_embedded_model_writes_one_answer_per_input(tmp_path):
    from graphopt.tasks import get_task

    program = get_task("word_sorting", difficulty="easy", sizes=(3, 3, 3)).seed_program
    (tmp_path / "best.program.json").write_text(program.model_dump_json())
    (tmp_path / "new.jsonl").write_text(
        "".join(json.dumps({"input": f"Sort the following words alphabetically: List: {w}"}) + "\n"
                for w in ("pear apple", "zebra cat dog", "moon sun"))
    )
    result = graphopt("predict", "--program", "best.program.json", "--input", "new.jsonl", "--out", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["output"] and isinstance(r["answer"], str) for r in rows)
    assert rows[0]["input"].endswith("pear apple") and "3/3 inputs" in result.stderr
