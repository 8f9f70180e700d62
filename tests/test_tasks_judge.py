"""The LLM-judge metric: its score parsing, its calls on the `judge` level, its rubric, its caps."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from graphopt.errors import BudgetExceeded, ConfigError, LLMError, TaskError
from graphopt.lm import LM, Budget, Caps, LMConfig
from graphopt.testing import FakeModel
from graphopt.program import evaluate
from graphopt.tasks import get_task
from graphopt.tasks.base import Task
from graphopt.tasks.judge import DEFAULT_RUBRIC, JudgeMetric, parse_score
from graphopt.tasks.metrics import get_metric
from graphopt.types import Example
from graphopt.program import Program

QUESTIONS = {"Capital of France?": "Paris", "Capital of Italy?": "Rome", "Capital of Spain?": "Madrid"}


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Right.\nScore: 7", 0.7),
        ("Score: 10", 1.0),
        ("Wrong city.\nScore: 0", 0.0),
        ("score = 3/4", 0.75),
        ("**Score:** 70%", 0.7),
        ('{"reason": "ok", "score": 9}', 0.9),
        ("Score: **7**/10", 0.7),
        ("First I thought Score: 2, but on reflection\nScore: 8", 0.8),  # the last one counts
        ("Score: 12", None),  # off the scale
        ("score: 5/0", None),
        ("It is fine, I would give it a high mark.", None),
        ("", None),
    ],
)
def test_a_judge_reply_is_parsed_to_a_score_in_0_1_or_none(reply, score):
    assert parse_score(reply) == score


def judged_lm(verdict: Any, *, budget: Budget | None = None, record: list | None = None) -> LM:
    """Program model "fake/program" answers each question with its capital; judge "fake/judge" replies `verdict(prompt)`."""

    def reply(messages: list[dict[str, str]], request: Any) -> str:
        prompt = messages[-1]["content"]
        if record is not None:
            record.append((request.model, prompt))
        if request.model == "fake/judge":
            return verdict(prompt)
        return QUESTIONS.get(prompt, "?")

    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer", judge="fake/judge")
    return LM(config, transport=FakeModel(fn=reply), budget=budget, cache_dir=None)


def capitals(metric: str = "judge", rubric: str = "") -> Task:
    examples = [Example(id=str(i), input=q, target=a.lower() if i == 1 else a) for i, (q, a) in enumerate(QUESTIONS.items())]
    task = Task(name="capitals", train=examples, val=examples, test=examples, seed_program=Program(instruction="Answer."),
                extract=str.strip, rubric=rubric)
    return task.with_answer(metric=metric)


def fair_judge(prompt: str) -> str:
    answer = prompt.split("Answer to grade:\n", 1)[1].split("\n", 1)[0]
    target = prompt.split("Reference answer:\n", 1)[1].split("\n", 1)[0]
    return "Same city.\nScore: 10" if answer.lower() == target.lower() else "Another city.\nScore: 1"


def test_the_judge_scores_answers_that_exact_match_would_fail_and_keeps_its_reply():
    lm = judged_lm(fair_judge)
    judged = asyncio.run(evaluate(capitals().seed_program, capitals().test, capitals(), lm))
    exact = asyncio.run(evaluate(capitals("exact").seed_program, capitals("exact").test, capitals("exact"), judged_lm(fair_judge)))
    assert judged.accuracy == 1.0 and exact.accuracy == pytest.approx(2 / 3)  # "Rome" vs target "rome"
    assert all(t.metric_note.startswith("Same city.") for t in judged.traces)


def test_the_judges_calls_are_counted_on_the_judge_level_not_the_program_level():
    lm = judged_lm(fair_judge)
    asyncio.run(evaluate(capitals().seed_program, capitals().test, capitals(), lm))
    rows = {(row["level"], row["model"]): row["calls"] for row in lm.ledger.to_dict()["models"]}
    assert rows == {("program", "fake/program"): 3, ("judge", "fake/judge"): 3}


def test_an_unparseable_judge_reply_scores_zero_with_the_reply_in_the_trace():
    lm = judged_lm(lambda prompt: "Looks good to me!")
    result = asyncio.run(evaluate(capitals().seed_program, capitals().test, capitals(), lm))
    assert result.scores == [0.0, 0.0, 0.0] and result.errors == 0
    assert all("no 'Score: N' line" in t.metric_note and "Looks good to me!" in t.metric_note for t in result.traces)


def test_the_judge_goes_through_the_response_cache(tmp_path):
    config = LMConfig().with_models(program="fake/program", judge="fake/judge")
    fake = FakeModel(fn=lambda messages: "Score: 10" if "Reference answer" in messages[-1]["content"] else "Paris")
    for _ in range(2):
        lm = LM(config, transport=fake, cache_dir=tmp_path)
        asyncio.run(evaluate(capitals().seed_program, capitals().test[:1], capitals(), lm))
        lm.close()
    assert fake.calls == 2  # one program call and one judge call; the second run is all cache hits
    assert lm.ledger.level("judge").cache_hits == 1


def test_an_empty_answer_scores_zero_without_asking_the_judge():
    lm = judged_lm(fair_judge)
    example = Example(id="e", input="q", target="Paris")
    assert asyncio.run(JudgeMetric().ascore("  ", example, lm)).score == 0.0
    assert lm.ledger.level("judge").calls == 0


def test_a_judge_cap_stops_the_evaluation_with_the_judges_spend_kept():
    lm = judged_lm(fair_judge, budget=Budget(levels={"judge": Caps(calls=2)}))
    with pytest.raises(BudgetExceeded, match="judge cap of 2 calls"):
        asyncio.run(evaluate(capitals().seed_program, capitals().test, capitals(), lm))
    assert lm.ledger.level("judge").calls == 2


def test_a_judge_call_that_fails_after_its_retries_leaves_the_example_errored():
    def verdict(prompt: str) -> str:
        raise LLMError("overloaded", provider="fake", status=503, retryable=True)

    lm = judged_lm(verdict)
    lm.config = lm.config.model_copy(update={"max_retries": 0})
    result = asyncio.run(evaluate(capitals().seed_program, capitals().test, capitals(), lm))
    assert result.errors == 3 and result.scores == [0.0, 0.0, 0.0]
    assert result.first_error.startswith("metric: ") and "overloaded" in result.first_error


def test_the_rubric_reaches_the_judge_from_the_task_or_a_rubric_file(tmp_path):
    record: list = []
    lm = judged_lm(fair_judge, record=record)
    task = capitals(rubric="Accept the city in any letter case.")
    asyncio.run(evaluate(task.seed_program, task.test[:1], task, lm))
    rubric_file = tmp_path / "rubric.md"
    rubric_file.write_text("Only the capital city counts.\n")
    task = capitals(f"judge:{rubric_file}", rubric="Accept the city in any letter case.")
    asyncio.run(evaluate(task.seed_program, task.test[:1], task, lm))
    asyncio.run(evaluate(capitals().seed_program, capitals().test[:1], capitals(), lm))
    judged = [prompt for model, prompt in record if model == "fake/judge"]
    assert "Rubric:\nAccept the city in any letter case.\n" in judged[0]
    assert "Rubric:\nOnly the capital city counts.\n" in judged[1]  # the file's rubric wins over the task's
    assert f"Rubric:\n{DEFAULT_RUBRIC}\n" in judged[2]


def test_a_missing_or_empty_rubric_file_is_a_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError, match="rubric file not found: .*nope.md"):
        get_metric(f"judge:{tmp_path / 'nope.md'}")
    (tmp_path / "empty.md").write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        get_metric(f"judge:{tmp_path / 'empty.md'}")


def test_the_judge_metric_called_like_a_plain_metric_says_to_await_it():
    with pytest.raises(TaskError, match="asks a model"):
        capitals().score("Paris", capitals().test[0])


def test_a_task_file_with_a_rubric_is_scored_by_the_judge(tmp_path):
    path = tmp_path / "capitals.json"
    examples = [{"input": q, "target": a} for q, a in QUESTIONS.items()]
    path.write_text(json.dumps({"rubric": "Any letter case is fine.", "examples": examples}))
    task = get_task("file", path=str(path))
    assert task.metric_rule == "judge" and task.metric_levels == ("judge",) and task.rubric == "Any letter case is fine."
    assert get_task("file", path=str(path)).with_answer(metric="contains").metric_levels == ()
    csv_task = get_task("file", path=_csv(tmp_path), rubric="Any letter case is fine.")
    assert csv_task.metric_rule == "judge" and csv_task.metric.rubric == "Any letter case is fine."


def test_a_rubric_that_is_not_text_is_a_task_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"rubric": 3, "examples": [{"input": q, "target": a} for q, a in QUESTIONS.items()]}))
    with pytest.raises(TaskError, match='"rubric" must be a non-empty text'):
        get_task("file", path=str(path))


def _csv(tmp_path: Path) -> str:
    path = tmp_path / "capitals.csv"
    path.write_text("input,target\n" + "".join(f"{q},{a}\n" for q, a in QUESTIONS.items()))
    return str(path)
