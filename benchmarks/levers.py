"""Which program shapes move the embedded model: how many labeled demos, an answer format, a vote.

For each task and seed (the seed fixes the data split and the demos drawn), the task's seed
program is scored on the first `--val` validation examples with 0, 3, 8 and 16 labeled train
demos (`--demos`), each plain and held to the answer format the `format` operator would infer
from the train targets (`answers: auto`: choices, charset or free), and, for the smallest
nonzero demo count, a majority vote of `--vote` programs with different demo sets (the first
is the plain program's; the vote costs `--vote` times as much per input). The table gives accuracy per
cell, the mean over seeds per task, and the mean over tasks; with `--val 30` one example is 3.3
points, so differences under about 10 points on one task are noise.

Run: python benchmarks/levers.py [--tasks dyck_languages,word_sorting,last_word,key_lookup]
     [--seeds 2] [--val 30] [--demos 0,3,8,16] [--no-format] [--vote 3] [--knn 3,8] [--knn-by bm25,embedding]
Tasks: built-in names (difficulty easy) or a custom-file task of benchmarks/tasks/make_tasks.py.
A measurement, not a verdict: exits 0 unless a run fails (1) or an argument is wrong (2).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tasks"))

from make_tasks import TASKS as CUSTOM_TASKS  # noqa: E402
from make_tasks import write_task  # noqa: E402

from graphopt.lm import LM, LMConfig  # noqa: E402
from graphopt.program import Demo, Program, Retrieval, evaluate  # noqa: E402
from graphopt.program.answer_format import infer_format  # noqa: E402
from graphopt.tasks import Task, get_task  # noqa: E402


def load(name: str, seed: int, val: int, data: Path) -> Task:
    sizes = (30, val, 50)  # 50 test examples are split off (never read), as in the figures of benchmarks/README.md
    if name in CUSTOM_TASKS:
        path = data / f"{name}.jsonl"
        if not path.exists():
            write_task(name, data)
        return get_task("file", path=path, seed=seed, sizes=sizes)
    return get_task(name, difficulty="easy", seed=seed, sizes=sizes)


def labeled(task: Task, seed: int | str, k: int) -> list[Demo]:
    return [Demo(input=ex.input, output=ex.target) for ex in random.Random(seed).sample(task.train, k)]


async def cells(task: Task, seed: int, demos: list[int], args: argparse.Namespace, lm: LM) -> dict[str, float]:
    fmt = infer_format([ex.target for ex in task.train], "auto") if not args.no_format else None
    val = args.val
    knn = [int(k) for k in args.knn.split(",") if k]
    out: dict[str, float] = {}
    variants: dict[str, Program] = {}
    voted = min((k for k in demos if k > 0), default=0) if args.vote > 1 else 0
    for k in demos:
        program = task.seed_program.with_demos(labeled(task, seed, k))
        variants[f"{k}"] = program
        if fmt is not None:
            variants[f"{k}+{fmt.kind}"] = program.with_step(None, answer_format=fmt)
        if k == voted:
            voters = tuple(task.seed_program.with_demos(labeled(task, f"{seed}:vote{i}", k)) for i in range(1, args.vote))
            variants[f"{k} vote{args.vote}"] = program.model_copy(update={"vote": voters})
    pool = tuple(Demo(input=ex.input, output=ex.target) for ex in task.train)
    for k in knn:  # each input shown its k nearest train examples (the `retrieve` operator's program)
        for by in args.knn_by.split(","):
            label = f"knn{k}" + ("" if by == "bm25" else "e")
            variants[label] = task.seed_program.with_step(None, retrieve=Retrieval(pool=pool, k=k, by=by))
    for label, p in variants.items():
        out[label] = (await evaluate(p, task.val[:val], task, lm)).accuracy
    return out


async def main(args: argparse.Namespace) -> int:
    demos = [int(k) for k in args.demos.split(",")]
    lm = LM(LMConfig(cache_dir=None))  # the embedded model, which embeds too (--knn-by embedding)
    clock = time.perf_counter()
    means: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.tasks.split(","):
                rows = []
                for seed in range(args.seeds):
                    task = load(name, seed, args.val, Path(tmp))
                    rows.append(await cells(task, seed, demos, args, lm))
                labels = list(rows[0])
                print(f"\n{name} ({args.val} validation examples; demos, +format kind)")
                print("| seed | " + " | ".join(labels) + " |")
                print("|---" * (len(labels) + 1) + "|")
                for seed, row in enumerate(rows):
                    print(f"| {seed} | " + " | ".join(f"{row[label]:.2f}" for label in labels) + " |")
                mean = {label: sum(r[label] for r in rows) / len(rows) for label in labels}
                print("| mean | " + " | ".join(f"{mean[label]:.2f}" for label in labels) + " |")
                for label, value in mean.items():
                    # the format's kind differs by task: average by demos and format or not
                    means.setdefault(label.split("+")[0] + ("+format" if "+" in label else ""), []).append(value)
    finally:
        lm.close()
    print("\nmean over tasks: " + ", ".join(f"{label} {sum(v) / len(v):.3f}" for label, v in means.items()))
    print(f"{time.perf_counter() - clock:.0f} s")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="dyck_languages,word_sorting,last_word,key_lookup")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--val", type=int, default=30)
    p.add_argument("--demos", default="0,3,8,16")
    p.add_argument("--no-format", action="store_true", help="no answer-format variants")
    p.add_argument("--vote", type=int, default=3, help="voters of the vote variant (0 or 1: none)")
    p.add_argument("--knn", default="", help="retrieval variants: comma-separated k (each input shown its k nearest train examples)")
    p.add_argument("--knn-by", default="bm25", help="bm25, embedding (the embedded model's vectors; label knnKe) or both, comma-separated")
    args = p.parse_args(argv)
    try:
        if args.seeds < 1 or args.val < 1 or args.vote < 0 or any(int(k) < 0 for k in args.demos.split(",")) \
                or any(not 1 <= int(k) <= 16 for k in args.knn.split(",") if k) \
                or any(by not in ("bm25", "embedding") for by in args.knn_by.split(",")):
            raise ValueError
    except ValueError:
        p.error("--seeds and --val take positive numbers, --demos comma-separated counts >= 0, --knn counts 1-16, --knn-by bm25,embedding")
    return args


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse())))
    except Exception as exc:  # a failed run: one line, exit 1
        print(f"levers: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
