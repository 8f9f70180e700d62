"""The values that flow besides programs: examples, traces, feedback, attempts.

All are frozen pydantic models. The program itself is `graphopt.program.model.Program`.
"""

from __future__ import annotations

__all__ = ["Example", "StepTrace", "Trace", "Feedback", "Attempt", "mean_and_stderr"]

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .program.model import Program


class Example(BaseModel):
    """One task example: the text the program sees and the answer it should give."""

    model_config = ConfigDict(frozen=True)

    id: str
    input: str
    target: str
    meta: dict[str, Any] = Field(default_factory=dict)


class StepTrace(BaseModel):
    """What one step of a multi-step program (or of a user pipeline) saw and wrote on one example."""

    model_config = ConfigDict(frozen=True)

    name: str
    input: str
    output: str


class Trace(BaseModel):
    """What a program did on one example."""

    model_config = ConfigDict(frozen=True)

    example: Example
    output: str
    answer: str
    score: float
    error: str = ""
    steps: tuple[StepTrace, ...] = ()
    raised: str = ""  # what a user pipeline raised on this example (scored 0; not a model error)
    metric_note: str = ""  # what a model metric said of the answer (the judge's reply), to read its score

    @property
    def correct(self) -> bool:
        return self.score >= 1.0


class Feedback(BaseModel):
    """A critique tied to the candidate program it is about."""

    model_config = ConfigDict(frozen=True)

    program_id: str
    text: str
    step: str = ""  # the step the critique blames ("" : none named, the answering step)


def mean_and_stderr(scores: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n))."""
    n = len(scores)
    if n == 0:
        return 0.0, 0.0
    mean = sum(scores) / n
    if n == 1:
        return mean, 0.0
    var = sum((s - mean) ** 2 for s in scores) / (n - 1)
    return mean, math.sqrt(var / n)


class Attempt(BaseModel):
    """A program tried in an earlier step, with its score (fed to OPRO-style rewrites)."""

    model_config = ConfigDict(frozen=True)

    program: Program
    score: float
    step: int = 0
