"""BIG-Bench Hard tasks: word_sorting and dyck_languages, generated or official.

Each task reads its examples from one of three sources:
- "generated" (default): the seeded generators of `word_sorting.py` and `dyck.py`, at a chosen
  difficulty, so that the official format is kept and small models can get a signal;
- "official": the official 250 examples through `datasets.load_dataset("lukaemon/bbh", task)`;
- a path to a local file in the official format ({"canary": ..., "examples": [{"input", "target"}]}).

Scoring is the official one: strict exact match of the answer read after "So the answer is " (or
on the first non-empty line), with one trailing "." dropped and whitespace runs made single spaces.

Example:
    >>> from graphopt.tasks import get_task
    >>> task = get_task("dyck_languages", difficulty="easy", sizes=(2, 2, 2))
    >>> task.score("So the answer is ].", task.train[0])[0] in {")", "]", "}", ">"}
    True
"""

from __future__ import annotations

__all__ = ["word_sorting", "dyck_languages", "read_bbh_file", "BBH_HUB_ID"]

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TaskError, did_you_mean
from ..types import Example
from ..program.model import Program
from .base import DEFAULT_SIZES, Task, check_sizes, shuffled_split, split_examples
from .metrics import exact_match
from .custom import read_records
from .hub import load_hub_rows
from .dyck import DYCK_PRESETS, generate_dyck
from .extract import extract_spaced
from .generators import Generated, generate_examples, resolve_difficulty
from .registry import register_task
from .word_sorting import WORD_SORTING_PRESETS, generate_word_sorting

BBH_HUB_ID = "lukaemon/bbh"
SOURCES = ("generated", "official")

WORD_SORTING_PROGRAM = Program(
    instruction="Sort the given words alphabetically.",
    output_format="Answer with the sorted words only, separated by single spaces.",
)
DYCK_PROGRAM = Program(
    instruction=(
        "Complete the sequence of brackets: give the closing brackets that close every bracket "
        "still open at the end of the input, innermost first."
    ),
    output_format='Answer with the closing brackets only, separated by single spaces (for example: "] ) >").',
)


@dataclass(frozen=True)
class _Recipe:
    """What one BBH task brings: its difficulty presets and generator, seed program and answer length."""

    presets: Mapping[str, Any]
    generate: Callable[[random.Random, Any], Generated]
    program: Program
    description: str
    max_tokens: int


_RECIPES = {
    "word_sorting": _Recipe(
        WORD_SORTING_PRESETS, generate_word_sorting, WORD_SORTING_PROGRAM,
        description="BBH word sorting",
        max_tokens=96,  # up to 20 words of a few tokens each
    ),
    "dyck_languages": _Recipe(
        DYCK_PRESETS, generate_dyck, DYCK_PROGRAM,
        description="BBH Dyck languages",
        max_tokens=32,  # at most 3 closing brackets, with some slack
    ),
}


def read_bbh_file(path: str | Path) -> list[dict[str, Any]]:
    """The examples of a local BBH file: {"canary": ..., "examples": [{"input", "target"}, ...]}.

    A plain JSON list or a .jsonl file of {"input", "target"} objects works too.

    Raises:
        TaskError: the file is missing, not JSON, or has no input/target rows.
    """
    records = read_records(path)
    for i, record in enumerate(records):
        if not isinstance(record.get("input"), str) or not isinstance(record.get("target"), str):
            raise TaskError(f"{path}: example {i} needs string fields 'input' and 'target'")
    return records


def _official_examples(task: str, source: str, hub_id: str) -> tuple[list[Example], str]:
    if source == "official":
        fix = f"pass a local file with source=PATH (the official {task}.json from BIG-Bench-Hard)"
        rows = load_hub_rows(hub_id, task, "test", fix=fix)
        kind, label = "official", f"{hub_id}/{task}"
    else:
        rows = read_bbh_file(source)
        kind, label = "file", str(source)
    examples = [
        Example(id=f"{task}-{kind}-{i}", input=str(row["input"]), target=str(row["target"]).strip())
        for i, row in enumerate(rows)
    ]
    return examples, label


def _is_path(source: str) -> bool:
    return source.lower().endswith((".json", ".jsonl")) or Path(source).is_file()


def _bbh_task(
    task: str, *, source: str | Path, difficulty: object, seed: int, sizes: Sequence[int], hub_id: str
) -> Task:
    """The BBH task `task` (a key of `_RECIPES`) from the given source; see `word_sorting` for the options."""
    recipe = _RECIPES[task]
    presets = recipe.presets
    sizes = check_sizes(sizes)
    source = str(source)
    if source == "generated":
        spec = resolve_difficulty(difficulty, presets, task=task)
        examples = generate_examples(task, recipe.generate, spec, n=sum(sizes), seed=seed)
        train, val, test = split_examples(examples, sizes)
        label = f"generated(seed={seed}, difficulty={getattr(spec, 'name', 'custom')})"
    else:
        if source not in SOURCES and not _is_path(source):
            raise TaskError(
                f"unknown source {source!r} for {task}{did_you_mean(source, SOURCES)}: "
                "use 'generated', 'official' or a path to a BBH .json file"
            )
        if resolve_difficulty(difficulty, presets, task=task) is not presets["official"]:
            raise TaskError("difficulty applies to generated examples only: drop it or use source='generated'")
        examples, label = _official_examples(task, source, hub_id)
        train, val, test = shuffled_split(examples, sizes, seed)
    return Task(
        name=task,
        train=train,
        val=val,
        test=test,
        seed_program=recipe.program,
        extract=extract_spaced,
        metric=exact_match,
        extract_rule="bbh_spaced",
        metric_rule="exact",
        description=recipe.description,
        source=label,
        stop=None,
        max_tokens=recipe.max_tokens,
    )


@register_task("word_sorting", "BBH word sorting: sort a list of words alphabetically (generated or official)")
def word_sorting(
    *,
    source: str | Path = "generated",
    difficulty: object = "official",
    seed: int = 0,
    sizes: Sequence[int] = DEFAULT_SIZES,
    hub_id: str = BBH_HUB_ID,
) -> Task:
    """The BBH word-sorting task: "Sort the following words alphabetically: List: ...".

    Args:
        source: "generated" (seeded generator), "official" (the 250 official examples from the
            Hub through `datasets`) or a path to a local BBH-format .json file.
        difficulty: for generated examples only, a preset or a level:
            "easy" (1): 2-3 words of 3-7 letters, all with different first letters;
            "medium" (2): 3-5 words of 3-9 letters, first letters may repeat;
            "hard" (3): 6-10 words with the official word lengths;
            "official" (4, default): 2-20 words (mean ~11.5) and word lengths of 1-17 letters
            (mean ~7.3), drawn from the official histograms.
            A `WordSortingSpec` can be passed for anything else.
        seed: seeds the generator (generated) or the shuffle before splitting (official, file).
        sizes: (train, val, test); generated sets have exactly sum(sizes) distinct inputs.
        hub_id: the Hub dataset holding the official BBH configs.

    Returns:
        The task, scored by strict exact match of the space-normalised answer.

    Raises:
        TaskError: unknown source or difficulty, or official data that cannot be loaded (the
            message says to pass a local file with source=PATH).

    Example:
        >>> task = word_sorting(difficulty="easy", sizes=(2, 2, 2))
        >>> task.train[0].id
        'word_sorting-gen-easy-s0-0'
    """
    return _bbh_task("word_sorting", source=source, difficulty=difficulty, seed=seed, sizes=sizes, hub_id=hub_id)


@register_task(
    "dyck_languages", "BBH Dyck languages: close the open brackets of a sequence (generated or official)"
)
def dyck_languages(
    *,
    source: str | Path = "generated",
    difficulty: object = "official",
    seed: int = 0,
    sizes: Sequence[int] = DEFAULT_SIZES,
    hub_id: str = BBH_HUB_ID,
) -> Task:
    """The BBH Dyck-languages task: give the closing brackets that complete a Dyck-4 sequence.

    Args:
        source: "generated" (seeded generator), "official" (the 250 official examples from the
            Hub through `datasets`) or a path to a local BBH-format .json file.
        difficulty: for generated examples only, a preset or a level:
            "easy" (1): one bracket left open (1-token target), nesting depth <= 2, inputs of
            3-7 tokens, e.g. "( [ ]" -> ")";
            "medium" (2): one or two brackets left open, depth <= 2, inputs of 2-9 tokens;
            "hard" (3): 1-3 brackets left open, depth <= 4, full words of 8-30 tokens;
            "official" (4, default): full words of 4-100 tokens (inputs ~24 tokens on average),
            targets of 1-3 tokens and nesting depth ~7, as in the official set.
            A `DyckSpec` can be passed for anything else.
        seed: seeds the generator (generated) or the shuffle before splitting (official, file).
        sizes: (train, val, test); generated sets have exactly sum(sizes) distinct inputs.
        hub_id: the Hub dataset holding the official BBH configs.

    Returns:
        The task, scored by strict exact match of the answer with single spaces between brackets.

    Raises:
        TaskError: unknown source or difficulty, or official data that cannot be loaded (the
            message says to pass a local file with source=PATH).
    """
    return _bbh_task("dyck_languages", source=source, difficulty=difficulty, seed=seed, sizes=sizes, hub_id=hub_id)
