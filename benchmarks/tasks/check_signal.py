"""Checks that the embedded model has signal that demos move on the generated custom tasks.

For each task: test accuracy of the zero-shot seed program and of the seed with 3 labeled train
demos, on the same `--n` test examples, and the share of the most common target (what always
giving one answer would score). Prints a Markdown table.

Usage: python benchmarks/tasks/check_signal.py [--tasks a,b] [--n 20] [--seeds 0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tasks import TASKS, write_task  # noqa: E402

from graphopt.lm import LM, LMConfig  # noqa: E402
from graphopt.program import evaluate  # noqa: E402
from graphopt.tasks import get_task  # noqa: E402
from graphopt.program import Demo  # noqa: E402


async def check(names: list[str], n: int, seeds: list[int]) -> str:
    lm = LM(LMConfig(cache_dir=None))
    lines = ["| task | seed | zero-shot | 3 labeled demos | majority answer |", "|---|---|---|---|---|"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                path = write_task(name, Path(tmp))
                for seed in seeds:
                    task = get_task("file", path=path, seed=seed, sizes=(30, 20, n))
                    demos = [Demo(input=ex.input, output=ex.target) for ex in random.Random(seed).sample(task.train, 3)]
                    zero = (await evaluate(task.seed_program, task.test, task, lm)).accuracy
                    few = (await evaluate(task.seed_program.with_demos(demos), task.test, task, lm)).accuracy
                    top = Counter(ex.target for ex in task.test).most_common(1)[0][1] / len(task.test)
                    lines.append(f"| {name} | {seed} | {zero:.2f} | {few:.2f} | {top:.2f} |")
                    print(lines[-1], flush=True)
    finally:
        lm.close()
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--seeds", default="0")
    args = p.parse_args(argv)
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    print(asyncio.run(check(names, args.n, [int(s) for s in args.seeds.split(",")])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
