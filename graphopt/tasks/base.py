"""What a task is: examples in three splits, a seed program, answer extraction and a metric."""

from __future__ import annotations

__all__ = [
    "Task",
    "exact_match",
    "SPLITS",
    "DEFAULT_SIZES",
    "split_examples",
    "check_sizes",
    "shuffled_split",
]

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import TaskError
from ..types import Example
from ..program.model import Program, ProgramIO
from .metrics import exact_match, get_metric, metric_levels, score_answer
from .model_metric import ModelMetric

if TYPE_CHECKING:
    from ..lm import LM
    from .model_metric import MetricScore

SPLITS = ("train", "val", "test")
DEFAULT_SIZES = (50, 100, 100)


@dataclass
class Task:
    """A task: the data, the program to start from, how to read an answer and how to score it.

    Attributes:
        name: registry name, e.g. "word_sorting".
        train, val, test: the splits (val drives every choice; test is only for reports).
        seed_program: the zero-shot program optimization starts from.
        extract: maps the program's raw output to the answer compared with the target.
        metric: scores an extracted answer against an example, in [0, 1]: a function, or a
            `ModelMetric` that asks a model (the `judge` metric); `ascore` scores either.
        description: one line for `graphopt tasks`.
        stop: strings that end the program's answer (None: none).
        max_tokens: answer length the program model gets unless its level sets max_tokens.
        source: where the examples came from ("generated(seed=0, difficulty=...)", a path, a Hub id).
        extract_rule: the name of `extract` when it is a registered rule ("bbh_spaced",
            "marker:Answer:"; see `tasks.answers`), saved with programs so `predict` reads answers
            the same way; "" for a function of your own.
        metric_rule: the name of `metric` ("exact", "numeric:0.01", "module:function"), or "".
        input_template: how a custom file's rows became inputs ("" : one column), for `predict`.
        rubric: what a good answer must do, for the `judge` metric ("" : its default rubric).
    """

    name: str
    train: list[Example]
    val: list[Example]
    test: list[Example]
    seed_program: Program
    extract: Callable[[str], str]
    metric: Callable[[str, Example], float] | Any = exact_match
    description: str = ""
    source: str = ""
    stop: list[str] | None = field(default=None)
    max_tokens: int | None = None
    extract_rule: str = ""
    metric_rule: str = ""
    input_template: str = ""
    rubric: str = ""
    notes: tuple[str, ...] = ()  # where a command's rules came from (a program file, a flag), to print

    def __post_init__(self) -> None:
        # The seed program carries how the task feeds and reads it, so every program derived from
        # it (and saved) runs the same outside the task (`graphopt predict`).
        if self.seed_program.io is None and self.extract_rule:
            self.seed_program = self.seed_program.with_io(self.io())

    def io(self) -> ProgramIO:
        """How this task feeds and reads a program: input template, extractor rule, stop, answer length."""
        return ProgramIO(
            input_template=self.input_template, extract=self.extract_rule, stop=tuple(self.stop or ()),
            max_tokens=self.max_tokens, metric=self.metric_rule,
        )

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS:
            raise TaskError(f"unknown split {name!r}: use one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def with_answer(
        self, *, extract: str | None = None, metric: str | None = None, max_tokens: int | None = None
    ) -> Task:
        """A copy reading answers by the rule `extract`, scoring by `metric`, with `max_tokens` room.

        Args:
            extract: an extractor rule (`tasks.answers.get_extractor`); None keeps the task's.
            metric: a metric rule (`tasks.metrics.get_metric`); None keeps the task's.
            max_tokens: the answer length; None keeps the task's.

        Raises:
            ConfigError: an unknown rule, or a user metric that cannot be imported or used.
        """
        from .answers import get_extractor
        changes: dict = {}
        if extract is not None:
            changes.update(extract=get_extractor(extract), extract_rule=extract)
        if metric is not None:
            built = get_metric(metric)
            changes.update(metric=built.for_task(self) if isinstance(built, ModelMetric) else built, metric_rule=metric)
        if max_tokens is not None:
            changes["max_tokens"] = max_tokens
        task = dataclasses.replace(self, **changes)
        return task.with_seed_program(task.seed_program)

    def with_seed_text(self, *, instruction: str | None = None, output_format: str | None = None) -> Task:
        """A copy whose seed program has `instruction` and/or `output_format` (None keeps the task's).

        Example:
            >>> from graphopt.tasks import get_task
            >>> get_task("word_sorting", sizes=(3, 3, 3)).with_seed_text(instruction="Sort them.").seed_program.instruction
            'Sort them.'

        Raises:
            TaskError: an empty instruction (an empty output format is allowed: no format line).
        """
        if instruction is not None and not instruction.strip():
            raise TaskError("the instruction is empty: give the text the seed program starts from, or leave it out")
        changes = {k: v for k, v in (("instruction", instruction), ("output_format", output_format)) if v is not None}
        if not changes:
            return self
        return dataclasses.replace(self, seed_program=self.seed_program.with_step(None, **changes))

    def with_seed_program(self, program: Program) -> Task:
        """A copy starting from `program` (e.g. `graphopt search --program FILE`), fed and read by this task."""
        return dataclasses.replace(self, seed_program=program.with_io(self.io() if self.extract_rule else program.io))

    @property
    def metric_levels(self) -> tuple[str, ...]:
        """The LM levels the metric calls: ("judge",) for the judge metric, () for a plain one."""
        return metric_levels(self.metric)

    def score(self, output: str, example: Example) -> tuple[str, float]:
        """Extracts the answer from `output` and scores it (a plain metric; see `ascore`).

        Raises:
            TaskError: the metric asks a model (use `ascore`).
        """
        answer = self.extract(output)
        return answer, float(self.metric(answer, example))

    async def ascore(self, output: str, example: Example, lm: LM) -> tuple[str, MetricScore]:
        """Extracts the answer from `output` and scores it with any metric, a model's included.

        Raises:
            LLMError: a model metric's call failed (after its retries).
            BudgetExceeded: a cap of the model metric's level was reached.
        """
        answer = self.extract(output)
        return answer, await score_answer(self.metric, answer, example, lm)


def split_examples(
    examples: Sequence[Example], sizes: tuple[int, int, int] = DEFAULT_SIZES
) -> tuple[list[Example], list[Example], list[Example]]:
    """Cuts a list into train/val/test of the given sizes, in order (shuffle before if needed).

    When there are fewer examples than asked, the splits shrink in proportion and each keeps at
    least one example.
    """
    n_train, n_val, n_test = sizes
    wanted = n_train + n_val + n_test
    examples = list(examples)
    if len(examples) < 3:
        raise TaskError(f"need at least 3 examples to make train/val/test splits, got {len(examples)}")
    if len(examples) < wanted:
        ratio = len(examples) / wanted
        n_train = max(1, int(n_train * ratio))
        n_val = max(1, int(n_val * ratio))
        n_test = max(1, len(examples) - n_train - n_val)
    train = examples[:n_train]
    val = examples[n_train : n_train + n_val]
    test = examples[n_train + n_val : n_train + n_val + n_test]
    return train, val, test


def check_sizes(sizes: object) -> tuple[int, int, int]:
    """`sizes` as (train, val, test) positive ints.

    Raises:
        TaskError: not three positive integers.
    """
    try:
        values = tuple(sizes)  # type: ignore[call-overload]
    except TypeError:
        values = ()
    if len(values) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise TaskError(f"sizes must be three positive integers (train, val, test), got {sizes!r}")
    return values  # type: ignore[return-value]


def shuffled_split(
    examples: Sequence[Example], sizes: Sequence[int], seed: int, *, shuffle: bool = True
) -> tuple[list[Example], list[Example], list[Example]]:
    """Shuffles `examples` with `random.Random(seed)` (unless `shuffle` is False), then `split_examples`."""
    examples = list(examples)
    if shuffle:
        random.Random(seed).shuffle(examples)
    return split_examples(examples, check_sizes(sizes))
