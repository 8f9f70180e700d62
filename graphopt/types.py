"""The values that flow: examples, programs, traces, feedback.

All are frozen pydantic models: editing returns a new object (`Program.with_instruction`), so a
prompt is never changed in place behind a caller's back.
"""

from __future__ import annotations

__all__ = ["Example", "Demo", "Program", "Trace", "Feedback", "Attempt", "Message", "SCHEMA_VERSION", "mean_and_stderr"]

import hashlib
import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Message = dict[str, str]


class Example(BaseModel):
    """One task example: the text the program sees and the answer it should give."""

    model_config = ConfigDict(frozen=True)

    id: str
    input: str
    target: str
    meta: dict[str, Any] = Field(default_factory=dict)


class Demo(BaseModel):
    """A worked example shown to the model before the real input."""

    model_config = ConfigDict(frozen=True)

    input: str
    output: str


class Program(BaseModel):
    """A prompt program: an instruction, optional few-shot demos and an output-format instruction.

    Example:
        >>> p = Program(instruction="Sort the words alphabetically.")
        >>> p.with_instruction("Sort the words.").instruction
        'Sort the words.'
    """

    model_config = ConfigDict(frozen=True)

    instruction: str
    demos: tuple[Demo, ...] = ()
    output_format: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def id(self) -> str:
        """A short content hash: equal programs have equal ids."""
        blob = json.dumps(self.model_dump(exclude={"schema_version"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def with_instruction(self, instruction: str) -> Program:
        return self.model_copy(update={"instruction": instruction})

    def with_demos(self, demos: list[Demo] | tuple[Demo, ...]) -> Program:
        return self.model_copy(update={"demos": tuple(demos)})

    def with_output_format(self, output_format: str) -> Program:
        return self.model_copy(update={"output_format": output_format})

    def system_prompt(self) -> str:
        parts = [self.instruction.strip()]
        if self.output_format.strip():
            parts.append(self.output_format.strip())
        return "\n\n".join(p for p in parts if p)

    def messages(self, program_input: str) -> list[Message]:
        """The chat messages for one input: instruction first, demos, then the input last.

        The input comes last so a local model can reuse the cached prefix across examples.
        """
        out: list[Message] = [{"role": "system", "content": self.system_prompt()}]
        for demo in self.demos:
            out.append({"role": "user", "content": demo.input})
            out.append({"role": "assistant", "content": demo.output})
        out.append({"role": "user", "content": program_input})
        return out

    def render(self) -> str:
        """The whole program as readable text (for optimizer prompts and reports)."""
        text = f"Instruction:\n{self.instruction}"
        if self.output_format:
            text += f"\n\nOutput format:\n{self.output_format}"
        for i, demo in enumerate(self.demos, 1):
            text += f"\n\nDemo {i}:\nInput: {demo.input}\nOutput: {demo.output}"
        return text


class Trace(BaseModel):
    """What a program did on one example."""

    model_config = ConfigDict(frozen=True)

    example: Example
    output: str
    answer: str
    score: float
    error: str = ""

    @property
    def correct(self) -> bool:
        return self.score >= 1.0


class Feedback(BaseModel):
    """A critique tied to the candidate program it is about."""

    model_config = ConfigDict(frozen=True)

    program_id: str
    text: str


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
