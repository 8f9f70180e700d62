"""How many validation examples a race needs to tell a better program from a worse one: exact
match against likelihood (the mean log-probability of the target under the program).

On the embedded model, per task: the seed program with `--demos` labeled train demos (the kind
of program the `fewshot` seeds make, about 0.25 on easy Dyck) against the zero-shot seed (0). Both
run on `--n` validation examples; each example gets its exact-match score and the log-probability
of its target. Then, for screens of 4, 6, 8, ... examples drawn from those (`--draws` paired
bootstrap draws each, with replacement), the share of screens where the race's one-sided sign test at 5% calls the few-shot
program better is its power; the smallest screen with power >= `--power` is what each score needs.

Run: python benchmarks/likelihood_race.py [--tasks dyck_languages,word_sorting] [--n 40]
Prints a table per task and the ratio exact-match examples / likelihood examples. Exits 1 when
a run fails, or when likelihood never needs more examples than exact match is false.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from graphopt.lm import LM, LMConfig
from graphopt.program import evaluate
from graphopt.search.policy import sign_test
from graphopt.tasks import get_task
from graphopt.program import Demo

SCREENS = (4, 6, 8, 12, 16, 24, 32, 40, 48, 64)


def power(a: dict[str, float], b: dict[str, float], size: int, draws: int, rng: random.Random) -> float:
    """Share of screens of `size` examples (drawn with replacement: a bootstrap of the population
    the examples come from) on which the race's sign test calls A better than B."""
    ids = sorted(a)
    hits = 0
    for _ in range(draws):
        chosen = rng.choices(ids, k=size)
        if sign_test({n: a[i] for n, i in enumerate(chosen)}, {n: b[i] for n, i in enumerate(chosen)}).better():
            hits += 1
    return hits / draws


async def scores(task, lm: LM, program, examples) -> tuple[dict[str, float], dict[str, float]]:
    metric = {t.example.id: t.score for t in (await evaluate(program, examples, task, lm)).traces}
    logprobs = await asyncio.gather(*(lm.logprob("program", program.messages(ex.input), ex.target) for ex in examples))
    return metric, {ex.id: lp for ex, lp in zip(examples, logprobs)}


async def one_task(name: str, args: argparse.Namespace) -> dict:
    task = get_task(name, difficulty=args.difficulty, sizes=(30, args.n, 1), seed=args.seed)
    lm = LM(LMConfig(cache_dir=None))
    rng = random.Random(args.seed)
    demos = [Demo(input=ex.input, output=ex.target) for ex in rng.sample(task.train, args.demos)]
    better, worse = task.seed_program.with_demos(demos), task.seed_program
    (em_a, lp_a), (em_b, lp_b) = await asyncio.gather(
        scores(task, lm, better, task.val), scores(task, lm, worse, task.val)
    )
    lm.close()
    rows = []
    for size in SCREENS:
        rows.append((size, power(em_a, em_b, size, args.draws, random.Random(size)),
                     power(lp_a, lp_b, size, args.draws, random.Random(size))))
    need = {
        kind: next((size for size, *p in rows if p[i] >= args.power), None) for i, kind in enumerate(("exact", "likelihood"))
    }
    return {
        "task": name, "acc": (sum(em_a.values()) / len(em_a), sum(em_b.values()) / len(em_b)),
        "lp": (sum(lp_a.values()) / len(lp_a), sum(lp_b.values()) / len(lp_b)), "rows": rows, "need": need,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="dyck_languages,word_sorting")
    p.add_argument("--difficulty", default="easy")
    p.add_argument("--n", type=int, default=40, help="validation examples scored by both programs")
    p.add_argument("--demos", type=int, default=3)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--power", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    ok = True
    for name in args.tasks.split(","):
        try:
            result = asyncio.run(one_task(name, args))
        except Exception as exc:  # a failed run is reported, not a figure
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            ok = False
            continue
        (acc_a, acc_b), (lp_a, lp_b) = result["acc"], result["lp"]
        print(f"\n{name} ({args.difficulty}, {args.n} val): {args.demos}-demo program exact {acc_a:.3f}, "
              f"mean logprob {lp_a:.2f}; zero-shot exact {acc_b:.3f}, mean logprob {lp_b:.2f}")
        print("| screen | power, exact match | power, likelihood |\n|---|---|---|")
        for size, em, lp in result["rows"]:
            print(f"| {size} | {em:.2f} | {lp:.2f} |")
        exact, dense = result["need"]["exact"], result["need"]["likelihood"]
        print(f"examples for power {args.power}: exact match {exact or '> ' + str(result['rows'][-1][0])}, "
              f"likelihood {dense or '> ' + str(result['rows'][-1][0])}"
              + (f"; ratio {exact / dense:.1f}x" if exact and dense else ""))
        if dense is None or (exact is not None and dense > exact):
            ok = False
    print("verdict:", "likelihood needs no more examples than exact match" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
