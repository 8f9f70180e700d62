"""The seed paper's baselines on the embedded model (or any --program-model), side by side.

For word_sorting and dyck_languages at the easy settings (seed 0), runs on the test split:

- zero_shot: the task's seed program;
- zero_shot_cot: the `cot` shape (reason, then an "Answer:" line);
- few_shot_cot: the cot shape with 3 demos bootstrapped from train (its own correct reasoning);
- self_consistency: 5 cot samples at temperature 0.7, majority vote on the extracted answer;

and prints test accuracy ± standard error and program-level tokens per method, as a Markdown
table (and JSON with --json). It compares methods, so its only verdict is that the table is
sound: every method answered every test example with no failed model call (a failed call would
count as a wrong answer). Exits 1 when a row breaks that.

Usage: `python benchmarks/baselines.py [--test 50] [--tasks word_sorting,dyck_languages]
[--methods zero_shot,zero_shot_cot,few_shot_cot,self_consistency] [--program-model M] [--json]`.
"""

from __future__ import annotations

__all__ = ["main", "run_method"]

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from graphopt.baselines import run_baseline
from graphopt.lm import LM, LMConfig
from graphopt.program import evaluate
from graphopt.tasks import get_task

METHODS = ("zero_shot", "zero_shot_cot", "few_shot_cot", "self_consistency")


async def run_method(method: str, task: Any, lm: LM) -> dict[str, Any]:
    """One method on the task's test split: accuracy, its standard error, tokens and seconds."""
    before = lm.ledger.to_dict()["total"]
    started = time.monotonic()
    if method == "zero_shot":
        result = await evaluate(task.seed_program, task.test, task, lm)
    else:
        result = await run_baseline(method, task, task.test, lm, samples=5, demos=3, temperature=0.7)
    after = lm.ledger.to_dict()["total"]
    tokens = (after["prompt_tokens"] + after["completion_tokens"]) - (before["prompt_tokens"] + before["completion_tokens"])
    return {"task": task.name, "method": method, "accuracy": result.accuracy, "stderr": result.stderr,
            "n": len(result.traces), "errors": result.errors, "tokens": tokens,
            "seconds": round(time.monotonic() - started, 1)}


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    config = LMConfig() if args.program_model is None else LMConfig().with_models(program=args.program_model)
    lm = LM(config, cache_dir=None)
    rows = []
    try:
        for name in args.tasks.split(","):
            task = get_task(name, difficulty="easy", seed=0, sizes=(args.train, 10, args.test))
            for method in args.methods.split(","):
                rows.append(await run_method(method, task, lm))
    finally:
        lm.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", type=int, default=50, help="test examples per task")
    parser.add_argument("--train", type=int, default=30, help="train examples (few-shot demos come from them)")
    parser.add_argument("--tasks", default="word_sorting,dyck_languages")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--program-model", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = asyncio.run(_run(args))
    broken = [f"{r['task']} {r['method']}: {r['errors']} failed calls, {r['n']} of {args.test} answered"
              for r in rows if r["errors"] or r["n"] != args.test]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("| task | method | test accuracy ± se | n | program tokens | seconds |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['task']} | {r['method']} | {r['accuracy']:.2f} ± {r['stderr']:.2f} | {r['n']} | {r['tokens']:,} | {r['seconds']} |")
    for line in broken:
        print(f"FAIL  {line}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
