"""Built-in program shapes: the task's seed program turned into a direct, reasoning or two-call program.

`graphopt eval --program cot` picks one by name. Each shape keeps the task's instruction and
answer format and adds room to reason where the shape has it.

Example:
    >>> from graphopt.program import Program
    >>> seed = Program(instruction="Sort the words.", output_format="Only the words.")
    >>> cot = make_shape("cot", seed)
    >>> cot.answer_marker, cot.instruction
    ('Answer:', 'Sort the words.')
    >>> [s.name for s in make_shape("reason_then_answer", seed).steps]
    ['reason', 'answer']
"""

from __future__ import annotations

__all__ = ["SHAPES", "make_shape", "shape_names", "COT_MARKER", "COT_TOKENS"]

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError, did_you_mean
from .model import ANSWER_STEP, REASON_TOKENS, Program, Step

COT_MARKER = "Answer:"
COT_TOKENS = 384  # reasoning then the answer line

COT_FORMAT = (
    "Think step by step first. Then write the final answer on a last line that starts with "
    '"Answer:". {answer_format}'
)
REASON_INSTRUCTION = (
    "Think step by step about how to solve the task below for the given input. Write your "
    "reasoning only; do not write the final answer.\n\nTask: {instruction}"
)
ANSWER_INPUT = "{input}\n\nReasoning:\n{steps.reason}"


def direct(seed: Program) -> Program:
    """The seed as it is: one call, the answer read by the task's rule."""
    return seed


def cot(seed: Program) -> Program:
    """Zero-shot chain of thought: one call that reasons, then ends with an "Answer: ..." line."""
    answer = seed.answer_step
    answer_format = f"On that line: {answer.output_format.strip()}" if answer.output_format.strip() else ""
    step = answer.model_copy(
        update={"output_format": COT_FORMAT.format(answer_format=answer_format).strip(), "max_tokens": COT_TOKENS}
    )
    return seed.model_copy(update={"steps": (*seed.steps[:-1], step), "answer_marker": COT_MARKER})


def reason_then_answer(seed: Program) -> Program:
    """Two calls: one writes the reasoning, the next reads it and gives the answer in the task's format."""
    answer = seed.answer_step
    reason = Step(
        name="reason", instruction=REASON_INSTRUCTION.format(instruction=answer.instruction.strip()),
        max_tokens=REASON_TOKENS,
    )
    final = answer.model_copy(update={"name": ANSWER_STEP, "input": ANSWER_INPUT})
    return Program(steps=(reason, final), io=seed.io)


@dataclass(frozen=True)
class _Shape:
    build: Callable[[Program], Program]
    doc: str


SHAPES: dict[str, _Shape] = {
    "direct": _Shape(direct, "the task's seed program: answer at once"),
    "cot": _Shape(cot, 'reason step by step, then a final "Answer:" line (one call)'),
    "reason_then_answer": _Shape(reason_then_answer, "one call reasons, a second reads it and answers"),
}


def shape_names() -> list[str]:
    """The built-in shape names."""
    return list(SHAPES)


def make_shape(name: str, seed: Program) -> Program:
    """The program of shape `name` built from `seed` (a task's seed program).

    Raises:
        ConfigError: an unknown shape name (with the closest names).
    """
    shape = SHAPES.get(name)
    if shape is None:
        raise ConfigError(f"unknown program shape {name!r}{did_you_mean(name, SHAPES)}: use one of {', '.join(SHAPES)} or a program file")
    return shape.build(seed)
