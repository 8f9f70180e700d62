"""The LLM-judge metric: the `judge` level's model scores an answer against the target and a rubric.

The judge sees the example's input, its target (the reference answer), the program's extracted
answer and the rubric (from `judge:RUBRIC_FILE`, or the task's own `rubric`), and ends its reply
with a line "Score: N", N from 0 to 10; the score is N / 10. A reply with no readable score
scores 0, and the reply is kept in the trace (`Trace.metric_note`) to be read; it never stops
the evaluation. The judge's calls are made, cached, counted and capped on the `judge` level.

Example:
    >>> import asyncio
    >>> from graphopt.lm import LM
    >>> from graphopt.testing import FakeModel
    >>> from graphopt.types import Example
    >>> lm = LM(transport=FakeModel(default="Close enough.\\nScore: 8"), cache_dir=None)
    >>> asyncio.run(JudgeMetric().ascore("Paris", Example(id="1", input="Capital?", target="Paris"), lm)).score
    0.8
    >>> lm.ledger.level("judge").calls, lm.ledger.level("program").calls
    (1, 0)
"""

from __future__ import annotations

__all__ = ["JUDGE_PROMPT", "DEFAULT_RUBRIC", "JudgeMetric", "judge_metric", "parse_score", "read_rubric"]

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..types import Example
from .model_metric import MetricScore, ModelMetric

if TYPE_CHECKING:
    from ..lm import LM

SCALE = 10

DEFAULT_RUBRIC = "The answer is correct when it means the same as the reference answer; wording and formatting do not matter."

JUDGE_PROMPT = """You grade an answer against a reference answer.

Rubric:
{rubric}

Input:
{input}

Reference answer:
{target}

Answer to grade:
{answer}

Give one or two sentences of reasons, then a last line "Score: N", where N is a whole number from 0 (wrong) to 10 (fully correct)."""

# "Score: 7", "score = 7/10", "**Score:** 70%", '{"score": 7}': the last one in the reply counts.
_SCORE = re.compile(r"score\W{0,4}?(\d+(?:\.\d+)?)\s*\**\s*(?:(/)\s*(\d+(?:\.\d+)?)|(%))?", re.IGNORECASE)


def parse_score(reply: str, scale: int = SCALE) -> float | None:
    """The score in [0, 1] a judge's reply gives, or None when it gives none that can be read.

    The last "Score: N" in the reply counts: N out of `scale`, or N/D, or N%. A value outside
    the scale is not a score.

    Example:
        >>> parse_score("Mostly right.\\nScore: 7"), parse_score("score = 3/4"), parse_score("Score: 12")
        (0.7, 0.75, None)
    """
    found = list(_SCORE.finditer(reply or ""))
    if not found:
        return None
    value, slash, denominator, percent = found[-1].groups()
    number = float(value)
    if slash:
        total = float(denominator)
        if total <= 0:
            return None
        score = number / total
    elif percent:
        score = number / 100
    else:
        score = number / scale
    return round(score, 6) if 0.0 <= score <= 1.0 else None


def read_rubric(path: str | Path) -> str:
    """The rubric in a text file.

    Raises:
        ConfigError: no such file, unreadable, or empty.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"rubric file not found: {path} (write the rubric in a text file: judge:RUBRIC_FILE)")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read rubric file {path}: {exc}") from None
    if not text:
        raise ConfigError(f"rubric file {path} is empty: write what a correct answer must do")
    return text


@dataclass(frozen=True)
class JudgeMetric(ModelMetric):
    """Scores an answer by asking the judge level's model.

    Attributes:
        rubric: what a good answer must do ("" : the task's rubric, else DEFAULT_RUBRIC).
        prompt: the judge's prompt, with {rubric}, {input}, {target} and {answer}.
        level: the LM level the judge calls.
        rule: how the metric was named ("judge", "judge:rubric.md").
    """

    rubric: str = ""
    prompt: str = JUDGE_PROMPT
    level: str = "judge"
    rule: str = "judge"

    @property
    def levels(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.level,)

    def for_task(self, task: Any) -> JudgeMetric:
        """This judge with the task's rubric when it was given none of its own."""
        rubric = getattr(task, "rubric", "")
        return self if self.rubric or not rubric else dataclasses.replace(self, rubric=rubric)

    def messages(self, answer: str, example: Example) -> list[dict[str, str]]:
        text = self.prompt.format(
            rubric=self.rubric or DEFAULT_RUBRIC, input=example.input, target=example.target, answer=answer
        )
        return [{"role": "user", "content": text}]

    async def ascore(self, answer: str, example: Example, lm: LM) -> MetricScore:
        """The judge's score of `answer`; an empty answer scores 0 without a call.

        Raises:
            LLMError: the judge's call failed (after its retries).
            BudgetExceeded: a cap of the judge level (or the run) was reached.
        """
        if not answer.strip():
            return MetricScore(0.0, "no answer to judge (scored 0)")
        reply = (await lm.complete(self.level, self.messages(answer, example))).text
        score = parse_score(reply)
        if score is None:
            return MetricScore(0.0, f"judge reply has no 'Score: N' line from 0 to {SCALE} (scored 0): {reply.strip()}")
        return MetricScore(score, reply.strip())


def judge_metric(rubric_file: str | None = None) -> JudgeMetric:
    """The judge metric of the rule `judge` (the task's rubric) or `judge:RUBRIC_FILE`.

    Raises:
        ConfigError: the rubric file is missing, unreadable or empty.
    """
    if rubric_file is None:
        return JudgeMetric()
    if not rubric_file.strip():
        raise ConfigError("metric judge: name the rubric file after the colon, judge:RUBRIC_FILE, or write judge")
    return JudgeMetric(rubric=read_rubric(rubric_file), rule=f"judge:{rubric_file}")
