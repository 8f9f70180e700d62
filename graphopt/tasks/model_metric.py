"""The kinds of score a metric gives: a plain number, or a `ModelMetric` that asks a model.

Its own module so that the judge (a model metric) and the metric registry (which names the judge)
both read these without importing each other.
"""

from __future__ import annotations

__all__ = ["MetricScore", "ModelMetric"]

from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import TaskError
from ..types import Example

if TYPE_CHECKING:
    from ..lm import LM


class MetricScore(NamedTuple):
    """A score in [0, 1] and what the metric said about it ("" for a plain metric; a judge's reply)."""

    score: float
    note: str = ""


class ModelMetric:
    """A metric that asks a model: one method, `ascore`, and the levels it calls.

    Calling it like a plain metric raises: it needs the client, so evaluation awaits `ascore`
    (see `score_answer`).
    """

    levels: tuple[str, ...] = ()
    rule: str = ""

    async def ascore(self, answer: str, example: Example, lm: LM) -> MetricScore:
        raise NotImplementedError

    def for_task(self, task: Any) -> ModelMetric:
        """This metric completed by the task it scores (e.g. the judge takes the task's rubric)."""
        return self

    def __call__(self, answer: str, example: Example) -> float:
        raise TaskError(f"metric {self.rule!r} asks a model: score with await score_answer(metric, answer, example, lm)")
