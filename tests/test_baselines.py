"""The paper's baselines: zero-shot CoT, few-shot CoT, self-consistency and best-of-N, in Python and from `graphopt eval`."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from graphopt.baselines import majority_vote, run_baseline
from graphopt.cli import eval_cmd, main
from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.program import make_shape
from graphopt.tasks.base import Task
from graphopt.types import Example, Trace
from graphopt.program import Program


def task() -> Task:
    examples = [Example(id=f"e{i}", input=f"What is {i} + {i}?", target=str(2 * i)) for i in range(6)]
    return Task(name="sums", train=examples[:4], val=examples[4:], test=examples[4:],
                seed_program=Program(instruction="Add the numbers.", output_format="Only the number."),
                extract=str.strip)


def sampling_lm(answers: list[str], record: list[Any] | None = None) -> LM:
    """Each sample of one question gets the next reply of `answers` (cycling), at any temperature."""
    counts: dict[str, int] = {}

    def reply(messages: list[dict[str, str]], request: Any) -> str:
        if record is not None:
            record.append(request)
        if request.model == "fake/judge":  # the judge picks candidate 2
            return json.dumps({"best": 2})
        question = messages[-1]["content"]
        n = counts.get(question, 0)
        counts[question] = n + 1
        i = int(re.findall(r"(\d+) \+", question)[0])
        text = answers[n % len(answers)].format(right=2 * i, wrong=2 * i + 1)
        return f"Thinking.\nAnswer: {text}"

    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer", judge="fake/judge")
    return LM(config, transport=FakeModel(fn=reply), cache_dir=None)


def trace(answer: str, error: str = "") -> Trace:
    return Trace(example=Example(id="x", input="i", target="t"), output=answer, answer=answer, score=0.0, error=error)


def test_majority_vote_takes_the_most_common_answer_and_the_first_on_ties():
    assert majority_vote([trace("a"), trace("b"), trace("b")]).answer == "b"
    assert majority_vote([trace("b"), trace("a")]).answer == "b"
    assert majority_vote([trace("a", error="x"), trace("c")]).answer == "c"
    assert majority_vote([trace("", error="x")]) is None


def test_self_consistency_outvotes_a_wrong_first_sample_at_the_temperature_given():
    record: list[Any] = []
    lm = sampling_lm(["{wrong}", "{right}", "{right}"], record)
    single = asyncio.run(run_baseline("zero_shot_cot", task(), task().test, sampling_lm(["{wrong}", "{right}", "{right}"])))
    voted = asyncio.run(run_baseline("self_consistency", task(), task().test, lm, samples=3, temperature=0.9))
    assert single.accuracy == 0.0 and voted.accuracy == 1.0
    assert len(record) == 6 and {r.temperature for r in record} == {0.9}


def test_best_of_n_scores_the_sample_the_judge_picks_on_the_judge_level():
    lm = sampling_lm(["{wrong}", "{right}", "{wrong}"])
    result = asyncio.run(run_baseline("best_of_n", task(), task().test, lm, samples=3))
    assert result.accuracy == 1.0  # the judge picked candidate 2, the only right one
    levels = lm.ledger.to_dict()["levels"]
    assert levels["judge"]["calls"] == 2 and "optimizer" not in levels


def test_few_shot_cot_bootstraps_k_correct_train_reasonings_as_demos():
    lm = sampling_lm(["{right}"])
    result = asyncio.run(run_baseline("few_shot_cot", task(), task().test, lm, demos=2))
    assert len(result.program.demos) == 2 and result.program.answer_marker == "Answer:"
    assert all(d.output.startswith("Thinking.\nAnswer: ") for d in result.program.demos)
    assert result.program.instruction == make_shape("cot", task().seed_program).instruction


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("self_consistensy", {}, "unknown baseline 'self_consistensy' (did you mean 'self_consistency'?)"),
        ("self_consistency", {"temperature": 0.0}, "it needs --temperature above 0"),
    ],
)
def test_bad_baselines_are_config_errors(name, options, message):
    with pytest.raises(ConfigError) as info:
        asyncio.run(run_baseline(name, task(), task().test, sampling_lm(["x"]), **options))
    assert message in str(info.value)


def test_eval_baseline_reports_its_accuracy_and_writes_its_options(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(eval_cmd, "make_lm", lambda *a, **k: sampling_lm(["{wrong}", "{right}", "{right}"]))
    path = tmp_path / "sums.jsonl"
    path.write_text("".join(json.dumps({"question": f"What is {i} + {i}?", "answer": 2 * i}) + "\n" for i in range(9)))
    out = tmp_path / "e.json"
    code = main(["eval", "--task", "file", "--source", str(path), "--baseline", "self_consistency", "--samples", "3",
                 "--metric", "numeric", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "self_consistency [test]" in printed and "accuracy 1.000" in printed and "Model usage" in printed
    data = json.loads(out.read_text())
    assert (data["baseline"], data["samples"], data["accuracy"]) == ("self_consistency", 3, 1.0)


def test_eval_with_an_unknown_baseline_is_one_line_before_any_call(monkeypatch, capsys):
    called = []
    monkeypatch.setattr(eval_cmd, "make_lm", lambda *a, **k: called.append(1))
    assert main(["eval", "--task", "word_sorting", "--baseline", "best_of_m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown baseline 'best_of_m' (did you mean 'best_of_n'?)") and not called
