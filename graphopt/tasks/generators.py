"""What the procedural task generators share: the generated value, difficulty presets, dedup.

A generator is a function `(rng, spec) -> Generated`; a spec is a small frozen dataclass (see
`word_sorting.WordSortingSpec`, `dyck.DyckSpec`) and each task keeps named presets of it.

Example:
    >>> from graphopt.tasks.word_sorting import WORD_SORTING_PRESETS, generate_word_sorting
    >>> spec = resolve_difficulty("easy", WORD_SORTING_PRESETS, task="word_sorting")
    >>> examples = generate_examples("word_sorting", generate_word_sorting, spec, n=3, seed=0)
    >>> examples[0].id
    'word_sorting-gen-easy-s0-0'
"""

from __future__ import annotations

__all__ = ["Generated", "DIFFICULTY_LEVELS", "resolve_difficulty", "generate_examples"]

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import TaskError, did_you_mean
from ..types import Example

Spec = TypeVar("Spec")

# Integer difficulty levels, easiest first; the official distribution is the hardest.
DIFFICULTY_LEVELS: Mapping[int, str] = {1: "easy", 2: "medium", 3: "hard", 4: "official"}


@dataclass(frozen=True)
class Generated:
    """One generated example before it gets an id: input, target and the generator's parameters."""

    input: str
    target: str
    meta: dict[str, Any] = field(default_factory=dict)


def resolve_difficulty(difficulty: object, presets: Mapping[str, Spec], *, task: str) -> Spec:
    """The spec a `difficulty` option names.

    Args:
        difficulty: a preset name ("easy", "medium", "hard", "official"), a level 1-4 (also as a
            string, as the CLI passes it), or a spec object, returned as is.
        presets: the task's presets by name.
        task: the task name, for error messages.

    Raises:
        TaskError: an unknown name or level (with the closest preset names).
    """
    if isinstance(difficulty, str) and difficulty.strip().isdigit():
        difficulty = int(difficulty)
    if isinstance(difficulty, int) and not isinstance(difficulty, bool):
        if difficulty not in DIFFICULTY_LEVELS:
            raise TaskError(
                f"unknown difficulty level {difficulty} for {task}: use 1-{max(DIFFICULTY_LEVELS)} "
                f"({', '.join(f'{k}={v}' for k, v in DIFFICULTY_LEVELS.items())})"
            )
        difficulty = DIFFICULTY_LEVELS[difficulty]
    if isinstance(difficulty, str):
        key = difficulty.strip().lower()
        if key not in presets:
            raise TaskError(
                f"unknown difficulty {difficulty!r} for {task}{did_you_mean(key, presets)}: "
                f"use one of {', '.join(presets)} or a level 1-{max(DIFFICULTY_LEVELS)}"
            )
        return presets[key]
    spec_type = type(next(iter(presets.values())))
    if isinstance(difficulty, spec_type):
        return difficulty
    raise TaskError(
        f"difficulty for {task} must be a preset name, a level or a {spec_type.__name__}, "
        f"got {type(difficulty).__name__}"
    )


def generate_examples(
    task: str,
    generate: Callable[[random.Random, Spec], Generated],
    spec: Spec,
    *,
    n: int,
    seed: int,
) -> list[Example]:
    """Draws `n` examples with distinct inputs from one `random.Random(seed)`.

    Ids are "{task}-gen-s{seed}-{i}" for the official preset and "{task}-gen-{preset}-s{seed}-{i}"
    for the others, so they are stable for a given seed and difficulty.

    Raises:
        TaskError: the spec has fewer than `n` distinct inputs (ask for smaller sizes).
    """
    rng = random.Random(seed)
    name = getattr(spec, "name", "custom")
    prefix = f"{task}-gen-s{seed}" if name == "official" else f"{task}-gen-{name}-s{seed}"
    seen: set[str] = set()
    examples: list[Example] = []
    attempts = 0
    max_attempts = 100 * n + 1000
    while len(examples) < n:
        attempts += 1
        if attempts > max_attempts:
            raise TaskError(
                f"{task} difficulty {name!r} gave only {len(examples)} distinct examples of the "
                f"{n} asked: ask for smaller sizes or a harder difficulty"
            )
        drawn = generate(rng, spec)
        if drawn.input in seen:
            continue
        seen.add(drawn.input)
        meta = {**drawn.meta, "seed": seed, "index": len(examples)}
        examples.append(Example(id=f"{prefix}-{len(examples)}", input=drawn.input, target=drawn.target, meta=meta))
    return examples
