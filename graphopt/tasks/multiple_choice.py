"""Four-choice question tasks scored by the answer letter: MMLU abstract algebra and GPQA Diamond.

Inputs are the question followed by lettered choices ("(A) ...", one a line); the target is the
letter of the correct choice. The answer letter is read from outputs like "(B)", "Answer: B",
"B." or a lone "B" (see `extract.extract_letter`) and compared exactly.

GPQA is gated on the Hub and its examples must not be shown in plain text anywhere public: this
module holds no GPQA text, and its tests use invented look-alike questions.

Example:
    >>> task = get_task("mmlu_abstract_algebra", source="abstract_algebra_test.csv")  # doctest: +SKIP
    >>> task.score("The answer is (C).", task.test[0])  # doctest: +SKIP
    ('C', 1.0)
"""

from __future__ import annotations

__all__ = [
    "LETTERS",
    "format_question",
    "letter_match",
    "mmlu_task",
    "mmlu_abstract_algebra",
    "gpqa_diamond",
]

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TaskError, did_you_mean
from ..types import Example
from ..program.model import Program
from .base import DEFAULT_SIZES, Task, check_sizes, shuffled_split
from .metrics import exact_match
from .custom import read_records
from .hub import load_hub_rows
from .extract import extract_letter
from .registry import register_task

LETTERS = "ABCD"
MMLU_HUB_ID = "cais/mmlu"
MMLU_SPLITS = ("dev", "validation", "test")
GPQA_HUB_ID = "Idavidrein/gpqa"
GPQA_COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")

_OUTPUT_FORMAT = "Answer with the letter of the correct choice only, for example: (B)"


def format_question(question: str, choices: Sequence[str]) -> str:
    """The question, a blank line, then one "(A) choice" line per choice."""
    lines = [question.strip(), ""]
    lines += [f"({letter}) {str(choice).strip()}" for letter, choice in zip(LETTERS, choices)]
    return "\n".join(lines)


def letter_match(answer: str, example: Example) -> float:
    """1.0 when the extracted letter is the target letter, else 0.0."""
    return exact_match(answer, example)


def _check_source(source: str | Path, task: str) -> str:
    source = str(source)
    if source != "official" and not Path(source).suffix and not Path(source).exists():
        raise TaskError(
            f"unknown source {source!r} for {task}{did_you_mean(source, ['official'])}: "
            "use 'official' or a path to a .csv file"
        )
    return source


def _require_columns(rows: list[dict[str, Any]], columns: Sequence[str], where: str) -> None:
    have = list(rows[0]) if rows else []
    for column in columns:
        if column not in have:
            raise TaskError(f"column {column!r} not in {where}; columns are: {', '.join(map(str, have))}")


def _task(
    name: str,
    examples: list[Example],
    *,
    sizes: Sequence[int],
    seed: int,
    program: Program,
    label: str,
    description: str,
) -> Task:
    train, val, test = shuffled_split(examples, sizes, seed)
    return Task(
        name=name,
        train=train,
        val=val,
        test=test,
        seed_program=program,
        extract=extract_letter,
        metric=letter_match,
        extract_rule="letter",
        metric_rule="exact",
        description=description,
        source=label,
        max_tokens=64,  # a letter, or a short justification ending in one
    )


# --- MMLU ---------------------------------------------------------------------------------------


def _mmlu_answer(value: object, where: str) -> str:
    text = str(value).strip()
    if text.isdigit() and int(text) < len(LETTERS):
        return LETTERS[int(text)]
    if len(text) == 1 and text.upper() in LETTERS:
        return text.upper()
    raise TaskError(f"{where}: answer {value!r} is not 0-3 or A-D")


def _mmlu_example(row: dict[str, Any], example_id: str, where: str) -> Example:
    if "choices" in row:  # the Hub layout: choices is a list
        choices = list(row["choices"])
    else:  # the CSV layout: choice0..choice3
        choices = [row[f"choice{i}"] for i in range(len(LETTERS))]
    if len(choices) != len(LETTERS):
        raise TaskError(f"{where}: expected {len(LETTERS)} choices, got {len(choices)}")
    return Example(
        id=example_id,
        input=format_question(str(row["question"]), choices),
        target=_mmlu_answer(row["answer"], where),
    )


def mmlu_task(
    subject: str,
    *,
    source: str | Path = "official",
    seed: int = 0,
    sizes: Sequence[int] = DEFAULT_SIZES,
    hub_id: str = MMLU_HUB_ID,
) -> Task:
    """An MMLU subject as a four-choice task.

    Args:
        subject: the MMLU configuration, e.g. "abstract_algebra".
        source: "official" (the dev, validation and test splits of `hub_id`, pooled) or a path to a
            local CSV with the header question,choice0,choice1,choice2,choice3,answer (answer 0-3).
        seed: seed of the shuffle before splitting.
        sizes: (train, val, test); with fewer rows the splits shrink in proportion.
        hub_id: the Hub dataset.

    Raises:
        TaskError: the data cannot be loaded, or a column or an answer is wrong.
    """
    name = f"mmlu_{subject}"
    check_sizes(sizes)
    source = _check_source(source, name)
    examples: list[Example] = []
    if source == "official":
        fix = "pass a local CSV (question,choice0..choice3,answer) with source=PATH"
        for split in MMLU_SPLITS:
            rows = load_hub_rows(hub_id, subject, split, fix=fix)
            where = f"{hub_id} ({subject}) split {split!r}"
            _require_columns(rows, ("question", "choices", "answer"), where)
            examples += [
                _mmlu_example(row, f"{name}-{split}-{i}", f"{where} row {i}") for i, row in enumerate(rows)
            ]
        label = f"{hub_id}/{subject}"
    else:
        rows = read_records(source)
        _require_columns(rows, ("question", *(f"choice{i}" for i in range(len(LETTERS))), "answer"), source)
        examples = [_mmlu_example(row, f"{name}-file-{i}", f"{source} row {i + 1}") for i, row in enumerate(rows)]
        label = source
    program = Program(
        instruction=f"Answer the multiple-choice question about {subject.replace('_', ' ')}.",
        output_format=_OUTPUT_FORMAT,
    )
    description = f"MMLU {subject}"
    return _task(name, examples, sizes=sizes, seed=seed, program=program, label=label, description=description)


@register_task(
    "mmlu_abstract_algebra", "MMLU abstract algebra (cais/mmlu, or a local CSV): 4 choices, answer letter"
)
def mmlu_abstract_algebra(
    *,
    source: str | Path = "official",
    seed: int = 0,
    sizes: Sequence[int] = DEFAULT_SIZES,
    hub_id: str = MMLU_HUB_ID,
) -> Task:
    """MMLU abstract algebra: 116 four-choice questions (dev 5, validation 11, test 100), pooled,
    shuffled with `seed` and split by `sizes` (fewer rows than asked shrink the splits).

    Args:
        source: "official" (`datasets.load_dataset(hub_id, "abstract_algebra")`) or a path to a
            local CSV with the header question,choice0,choice1,choice2,choice3,answer (answer 0-3).
        seed: seed of the shuffle before splitting.
        sizes: (train, val, test).
        hub_id: the Hub dataset.

    Raises:
        TaskError: the data cannot be loaded (offline: pass source=PATH), or a bad column or answer.
    """
    return mmlu_task("abstract_algebra", source=source, seed=seed, sizes=sizes, hub_id=hub_id)


# --- GPQA ---------------------------------------------------------------------------------------


def _gpqa_example(row: dict[str, Any], index: int, seed: int, name: str) -> Example:
    answers = [str(row[column]).strip() for column in GPQA_COLUMNS[1:]]
    order = list(range(len(answers)))
    random.Random(f"{seed}-{index}").shuffle(order)  # position of the correct answer, per row
    return Example(
        id=f"{name}-s{seed}-{index}",
        input=format_question(str(row["Question"]), [answers[j] for j in order]),
        target=LETTERS[order.index(0)],
        meta={"row": index},
    )


@register_task("gpqa_diamond", "GPQA Diamond (Idavidrein/gpqa, gated; or a local CSV): 4 choices, answer letter")
def gpqa_diamond(
    *,
    source: str | Path = "official",
    seed: int = 0,
    sizes: Sequence[int] = DEFAULT_SIZES,
    hub_id: str = GPQA_HUB_ID,
    config: str = "gpqa_diamond",
) -> Task:
    """GPQA Diamond: 198 graduate-level science questions with four choices.

    Each row's correct and three incorrect answers are shuffled with `random.Random(f"{seed}-{row}")`,
    so the correct letter is fixed for a seed; the rows are then shuffled with `seed` and split.

    Args:
        source: "official" (`datasets.load_dataset(hub_id, config)`, split "train"; gated: request
            access on the Hub and set HF_TOKEN) or a path to a local CSV with the columns Question,
            Correct Answer, Incorrect Answer 1, Incorrect Answer 2, Incorrect Answer 3.
        seed: seeds the choice order and the shuffle before splitting.
        sizes: (train, val, test); with fewer rows the splits shrink in proportion.
        hub_id, config: the Hub dataset and its configuration.

    Raises:
        TaskError: the data cannot be loaded (gated or offline) or a column is missing.
    """
    name = "gpqa_diamond"
    check_sizes(sizes)
    source = _check_source(source, name)
    if source == "official":
        fix = f"request access to {hub_id} on the Hub and set HF_TOKEN, or pass a local CSV with source=PATH"
        rows = load_hub_rows(hub_id, config, "train", fix=fix)
        where, label = f"{hub_id} ({config})", f"{hub_id}/{config}"
    else:
        rows = read_records(source)
        where = label = source
    if not rows:
        raise TaskError(f"{where} has no examples")
    _require_columns(rows, GPQA_COLUMNS, where)
    examples = [_gpqa_example(row, i, seed, name) for i, row in enumerate(rows)]
    program = Program(instruction="Answer the multiple-choice science question.", output_format=_OUTPUT_FORMAT)
    return _task(name, examples, sizes=sizes, seed=seed, program=program, label=label, description="GPQA Diamond")
