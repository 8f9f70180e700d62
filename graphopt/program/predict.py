"""Running a saved program on new inputs, outside graphopt's tasks.

Example:
    >>> from graphopt.lm import LM
    >>> from graphopt.testing import FakeModel
    >>> from graphopt.program import Program, ProgramIO
    >>> program = Program(instruction="Answer.", io=ProgramIO(extract="marker:Answer:"))
    >>> runner = Runner(program, LM(transport=FakeModel(default="Hmm.\\nAnswer: 4"), cache_dir=None))
    >>> runner("What is 2 + 2?").answer
    '4'
"""

from __future__ import annotations

__all__ = ["Runner", "Prediction", "load_program", "read_program", "record_input"]

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..aio import run_sync
from ..errors import ConfigError
from ..lm import LM
from ..tasks.answers import get_extractor
from ..tasks.base import Task
from ..types import Example, StepTrace
from .files import read_program
from .model import Program, ProgramIO
from .run import run_program

_INPUT_FIELDS = ("input", "question", "prompt", "text")


@dataclass(frozen=True)
class Prediction:
    """What a program answered on one input.

    Attributes:
        answer: the answer, read by the program's extraction rule.
        output: the answering step's raw output.
        steps: each step's input and output (programs of several steps).
        error: why there is no answer (a model call that failed after its retries), or "".
    """

    answer: str
    output: str
    steps: tuple[StepTrace, ...] = field(default=())
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"answer": self.answer, "output": self.output}
        if self.steps:
            data["steps"] = [s.model_dump() for s in self.steps]
        if self.error:
            data["error"] = self.error
        return data


def record_input(record: Any, io: ProgramIO) -> str:
    """The program input for one record: a string as it is, else the input template over its fields.

    Raises:
        ConfigError: a field the template (or the default "input") needs is missing.
    """
    if isinstance(record, str):
        return record
    if not isinstance(record, Mapping):
        raise ConfigError(f"an input must be a string or a JSON object, got {type(record).__name__}")
    template = io.input_template or "{input}"
    if template == "{input}" and "input" not in record:
        present = next((name for name in _INPUT_FIELDS if name in record), None)
        template = "{" + present + "}" if present else template
    try:
        return template.format(**{k: v if isinstance(v, str) else json.dumps(v) for k, v in record.items()})
    except (KeyError, AttributeError, IndexError) as exc:
        raise ConfigError(
            f"input has no field {exc.args[0]!r} (the program reads {template!r}); fields are: {', '.join(map(str, record))}"
        ) from None


class Runner:
    """A program ready to answer: `runner("input")`, `await runner.acall(record)`; a context
    manager (`with` or `async with`) that closes the client it made.

    Args:
        program: the program; its `io` gives the extraction rule, stop strings and answer length.
        lm: the client whose "program" level runs it.

    Attributes:
        task: a task with no examples that feeds and reads the program as its `io` says
            (for `graphopt.program.run_program` on many inputs at once).
    """

    def __init__(self, program: Program, lm: LM, *, owns_lm: bool = False):
        self.program = program
        self.lm = lm
        self._owns_lm = owns_lm
        io = program.io or ProgramIO()
        self.io = io
        self.task = Task(
            name="predict", train=[], val=[], test=[], seed_program=program,
            extract=get_extractor(io.extract or "whole"), metric=lambda answer, example: 0.0,
            stop=list(io.stop) or None, max_tokens=io.max_tokens,
        )

    async def acall(self, record: Any) -> Prediction:
        """The program's answer on one input (a string, or a record read by the input template)."""
        example = Example(id="input", input=record_input(record, self.io), target="")
        (trace,) = await run_program(self.program, [example], self.task, self.lm)
        return Prediction(answer=trace.answer, output=trace.output, steps=trace.steps, error=trace.error)

    def __call__(self, record: Any) -> Prediction:
        """`acall` from synchronous code, a notebook's running event loop included (see `graphopt.aio`)."""
        return run_sync(self.acall(record))

    def close(self) -> None:
        """Releases the client this runner made (a client passed in is the caller's to close)."""
        if self._owns_lm:
            self.lm.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


def load_program(path: str | Path, lm: LM | None = None) -> Runner:
    """A saved program (best.program.json, optimize's program.json) ready to call.

    Args:
        path: the program file.
        lm: the client (default: `LM()`, the configured program model; the embedded model
            unless settings say otherwise).

    Returns:
        A `Runner`: `runner("text")` or `await runner.acall({"question": ...})`.

    Raises:
        ConfigError: the file is missing or not a valid program.

    Example:
        >>> runner = load_program("runs/x/best.program.json")  # doctest: +SKIP
        >>> runner("Sort the following words alphabetically: List: pear apple").answer  # doctest: +SKIP
    """
    program = read_program(path)
    return Runner(program, lm if lm is not None else LM(), owns_lm=lm is None)
