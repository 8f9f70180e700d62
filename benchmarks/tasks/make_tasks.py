"""Writes the custom-file tasks of the search-quality benchmark as JSONL files.

Each line is {"input": ..., "target": ...}, read by graphopt's "file" task
(`get_task("file", path=...)`, scored by exact match on the answer's first line). The rows are
generated from graphopt's built-in vocabulary with a fixed seed, so every run writes the same files.

The tasks were chosen so the embedded model (SmolLM2-135M) has signal that demos move: zero-shot
it never answers in the expected form, with three labeled demos it does about half the time, and
no single answer wins more than a tenth (measured by benchmarks/tasks/check_signal.py, in
benchmarks/results/search_quality_tasks.md). Two candidates were dropped there: the initials of
three words (0.05 with demos: no signal) and counting words (the majority answer scores 0.45).

Usage: python benchmarks/tasks/make_tasks.py [--out DIR] [--rows 300] [--tasks a,b]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

from graphopt.tasks.words import words_by_length

Row = tuple[str, str]


def _words(rng: random.Random, n: int, lengths: tuple[int, ...] = (3, 4, 5)) -> list[str]:
    buckets = words_by_length()
    pool = [w for length in lengths for w in buckets.get(length, ())]
    return rng.sample(pool, n)


def last_word(rng: random.Random) -> Row:
    words = _words(rng, rng.randint(3, 5))
    return f"Which word comes last in this list? {' '.join(words)}", words[-1]


def key_lookup(rng: random.Random) -> Row:
    keys = rng.sample(["color", "size", "shape", "animal", "fruit", "city", "tool"], 3)
    values = _words(rng, 3)
    record = ", ".join(f"{k}={v}" for k, v in zip(keys, values))
    asked = rng.randrange(3)
    return f"{record}. What is the {keys[asked]}?", values[asked]


def uppercase(rng: random.Random) -> Row:
    word = _words(rng, 1, (4, 5, 6))[0]
    return f"Write this word in capital letters: {word}", word.upper()


TASKS: dict[str, Callable[[random.Random], Row]] = {
    "last_word": last_word,
    "key_lookup": key_lookup,
    "uppercase": uppercase,
}
DEFAULT_TASKS = ("last_word", "key_lookup")


def write_task(name: str, out: Path, rows: int = 300, seed: int = 0) -> Path:
    """Writes `rows` distinct examples of task `name` to OUT/NAME.jsonl and returns the path."""
    rng = random.Random(f"{name}-{seed}")
    seen: dict[str, str] = {}
    while len(seen) < rows:
        text, target = TASKS[name](rng)
        seen.setdefault(text, target)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"input": i, "target": t}) + "\n" for i, t in seen.items()))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/tasks/data"))
    p.add_argument("--rows", type=int, default=300)
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    args = p.parse_args(argv)
    for name in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        if name not in TASKS:
            print(f"unknown task {name!r}: use {', '.join(TASKS)}")
            return 2
        print(write_task(name, args.out, args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
