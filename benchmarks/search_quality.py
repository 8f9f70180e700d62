"""Search quality: the searched optimizer against the baselines a user would try first, at equal spend.

For each task and seed (the seed fixes the generated examples and every method's randomness),
every method gets the same cap, checked before each model call by an LM `Budget`:

- `--cap total` (default): a cap on tokens of every level (program + optimizer + meta);
- `--cap program`: a cap on program-level tokens only.

Methods (each with a fresh response cache, so no method feeds on another's calls):
1. zero-shot: the task's seed program;
2. labeled few-shot: k random train examples with their targets as demos;
3. bootstrap + random search: demo sets bootstrapped from correct outputs of a teacher (the seed
   program with labeled demos) on train, as many sets as the cap allows, the best on validation;
4. tgd: the inner loop with the `tgd` graph, as many steps as the cap allows;
5. meta-prompted seed: `run_search` without structure search (seeds + meta prompt optimization);
6. structure only: `run_search` without the meta prompt phase;
7. search: the full `run_search`.
The searches use the `tiny` preset's seeds and loop sizes, sized by the flags below.

Every winner is then scored on the same test examples by a separate client (no cap, its own
cache), so test spend never counts against a method. Reported per (task, method): test accuracy,
mean ± 95% CI over seeds (t distribution); the paired difference (per seed) of the search
against the best baseline with demos; tokens per level (spent, cache hits excluded) and the
program : optimizer : meta split; and how often the search's winner is at or above its best seed
graph on test.

Usage: python benchmarks/search_quality.py [--tasks dyck_languages,word_sorting] [--seeds 5]
       [--tokens 30000] [--cap total|program] [--methods a,b,...] [--out benchmarks/results]
Writes OUT/search_quality.md; exits non-zero only on errors, never because a method scored low.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from graphopt.errors import BudgetExceeded
from graphopt.graph.io import load_graph
from graphopt.lm import LM, Budget, Caps, LMConfig, levels_shown

LEVELS = levels_shown()  # program, optimizer, meta: the methods here call no judge
from graphopt.loop import optimize
from graphopt.program import evaluate, run_program
from graphopt.search.budgets import get_budget
from graphopt.search.executor import LocalExecutor, default_parallel
from graphopt.search.phases import PromptPhase, SeedPhase, StructurePhase
from graphopt.search.pipeline import run_search
from graphopt.store import RunStore
from graphopt.tasks import Task, get_task
from graphopt.types import Demo, Program

METHODS = ("zero-shot", "labeled few-shot", "bootstrap + RS", "tgd", "meta-prompted seed", "structure only", "search")
DEMO_BASELINES = ("labeled few-shot", "bootstrap + RS")
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


@dataclass
class Result:
    task: str
    method: str
    seed: int
    program: Program
    tokens: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    test: float | None = None
    seed_graphs_test: list[float] = field(default_factory=list)


def method_lm(args: argparse.Namespace, work: Path) -> LM:
    cap = Caps(tokens=args.tokens)
    budget = Budget(total=cap) if args.cap == "total" else Budget(levels={"program": cap})
    config = LMConfig(cache_dir=work / "cache").with_models(program=args.program_model, optimizer=args.optimizer_model, meta=args.meta_model)
    return LM(config, budget=budget)


def _spent(lm: LM) -> dict[str, int]:
    return {level: lm.ledger.level(level).tokens for level in LEVELS}


async def labeled(task: Task, rng: random.Random, k: int) -> Program:
    return task.seed_program.with_demos([Demo(input=ex.input, output=ex.target) for ex in rng.sample(task.train, k)])


async def bootstrap_rs(task: Task, lm: LM, rng: random.Random, args: argparse.Namespace) -> tuple[Program, str]:
    """Demo sets bootstrapped from a teacher's correct train outputs; the best on validation."""
    val = task.val[: args.val_limit]
    best, best_score, sets = None, -1.0, 0
    try:
        while sets < args.max_sets:
            teacher = await labeled(task, rng, args.k)
            demos: list[Demo] = []
            pool = rng.sample(task.train, len(task.train))
            for start in range(0, len(pool), 4):
                for trace in await run_program(teacher, pool[start : start + 4], task, lm):
                    if trace.score == 1.0 and len(demos) < args.k:
                        demos.append(Demo(input=trace.example.input, output=trace.output.strip()))
                if len(demos) >= args.k:
                    break
            candidate = task.seed_program.with_demos(demos or teacher.demos)
            score = (await evaluate(candidate, val, task, lm)).accuracy
            sets += 1
            if score > best_score:
                best, best_score = candidate, score
    except BudgetExceeded:
        pass
    return best or task.seed_program, f"{sets} demo sets scored"


async def tgd(task: Task, lm: LM, seed: int, args: argparse.Namespace) -> tuple[Program, str]:
    result = await optimize(task.seed_program, load_graph("tgd"), task, lm, steps=args.tgd_steps,
                            minibatch_size=args.minibatch, val_limit=args.val_limit, seed=seed)
    accepted = sum(1 for r in result.history if r.accepted)
    return result.best_program, f"{len(result.history)} steps ({accepted} accepted)"


async def search(task: Task, lm: LM, seed: int, args: argparse.Namespace, work: Path, variant: str) -> tuple[Program, str]:
    """run_search without its own test phase: test is scored outside the cap."""
    settings = {"val_limit": args.val_limit, "minibatch": args.minibatch, "generations": args.generations,
                "children": args.children, "tokens": args.tokens if args.cap == "total" else None}
    if variant == "meta-prompted seed":
        settings["generations"] = 0
    if variant == "structure only":
        settings["prompt_iterations"] = 0
    plan = get_budget("tiny", **settings)
    graphs = [load_graph(name) for name in plan.seeds]
    phases = [SeedPhase(graphs), PromptPhase(), StructurePhase()]
    report = await run_search(task, lm, plan, work / "run", graphs, seed=seed, phases=phases,
                              executor=LocalExecutor(task, lm, default_parallel(lm)))
    note = f"{report.candidates} graphs, winner {report.best.spec.name}, stop: {report.stop_reason or 'done'}"
    return report.best.program or task.seed_program, note


async def run_method(method: str, task: Task, seed: int, args: argparse.Namespace, root: Path) -> Result:
    work = root / f"{task.name}-{seed}-{method.replace(' ', '_')}"
    lm = method_lm(args, work)
    rng = random.Random(seed)
    clock = time.perf_counter()
    note = ""
    try:
        if method == "zero-shot":
            program = task.seed_program
        elif method == "labeled few-shot":
            program = await labeled(task, rng, args.k)
        elif method == "bootstrap + RS":
            program, note = await bootstrap_rs(task, lm, rng, args)
        elif method == "tgd":
            program, note = await tgd(task, lm, seed, args)
        else:
            program, note = await search(task, lm, seed, args, work, method)
    finally:
        lm.close()
    return Result(task.name, method, seed, program, _spent(lm), time.perf_counter() - clock, note)


async def score_tests(results: list[Result], tasks: dict, args: argparse.Namespace, root: Path) -> None:
    """Test accuracy of every winner (and of the search's seed graphs), outside every cap."""
    config = LMConfig(cache_dir=root / "test-cache").with_models(program=args.program_model)
    lm = LM(config)
    try:
        for r in results:
            task = tasks[(r.task, r.seed)]
            test = task.test[: args.test_limit]
            r.test = (await evaluate(r.program, test, task, lm)).accuracy
            run_dir = root / f"{r.task}-{r.seed}-{r.method.replace(' ', '_')}" / "run"
            if r.method == "search" and (run_dir / "run.sqlite").exists():
                with RunStore.open(run_dir, read_only=True) as store:
                    seeds = [c for c in store.candidates() if c.origin == "seed" and c.evaluation.program]
                for c in seeds:
                    program = Program.model_validate(c.evaluation.program)
                    r.seed_graphs_test.append((await evaluate(program, test, task, lm)).accuracy)
    finally:
        lm.close()


def ci(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, half


def fmt(mean: float, half: float) -> str:
    return f"{mean:.3f}" if math.isnan(half) else f"{mean:.3f} ± {half:.3f}"


def markdown(results: list[Result], args: argparse.Namespace, seconds: float) -> str:
    lines = [
        "# Search quality at equal spend",
        "",
        f"Run on {time.strftime('%Y-%m-%d')}, {seconds / 60:.1f} minutes, load average {os.getloadavg()[0]:.1f}, with "
        f"`python benchmarks/search_quality.py {' '.join(sys.argv[1:])}`.",
        f"Cap: **{args.tokens:,} {'total' if args.cap == 'total' else 'program'} tokens** per method; "
        f"validation {args.val_limit}, test {args.test_limit} examples; {args.k} demos; seeds {args.seeds}. "
        f"Models: program {args.program_model or 'local/smollm2'}, optimizer {args.optimizer_model or 'local/smollm2'}, "
        f"meta {args.meta_model or 'local/smollm2'}. Test accuracy: mean ± 95% CI over seeds.",
    ]
    for task in dict.fromkeys(r.task for r in results):
        mine = [r for r in results if r.task == task]
        lines += ["", f"## {task}", "", "| method | test acc | program tok | optimizer tok | meta tok | p : o : m | notes (seed 0) |", "|---|---|---|---|---|---|---|"]
        for method in dict.fromkeys(r.method for r in mine):
            rs = [r for r in mine if r.method == method]
            toks = {lv: statistics.fmean(r.tokens.get(lv, 0) for r in rs) for lv in LEVELS}
            total = sum(toks.values()) or 1
            split = " : ".join(f"{100 * toks[lv] / total:.0f}%" for lv in LEVELS)
            lines.append(f"| {method} | {fmt(*ci([r.test for r in rs]))} | {toks['program']:,.0f} | {toks['optimizer']:,.0f} | "
                         f"{toks['meta']:,.0f} | {split} | {rs[0].note} |")
        searches = {r.seed: r for r in mine if r.method == "search"}
        baselines = [m for m in DEMO_BASELINES if any(r.method == m for r in mine)]
        if searches and baselines:
            best = max(baselines, key=lambda m: statistics.fmean(r.test for r in mine if r.method == m))
            diffs = [searches[r.seed].test - r.test for r in mine if r.method == best and r.seed in searches]
            at_or_above = sum(1 for r in searches.values() if r.seed_graphs_test and r.test >= max(r.seed_graphs_test) - 1e-9)
            lines += ["", f"Search minus {best} (paired by seed): {fmt(*ci(diffs))} over {len(diffs)} seeds. "
                      f"The search's winner is at or above its best seed graph on test in {at_or_above} of {len(searches)} seeds."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="dyck_languages,word_sorting")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--tokens", type=int, default=30_000)
    p.add_argument("--cap", choices=("total", "program"), default="total")
    p.add_argument("--difficulty", default="easy")
    p.add_argument("--train", type=int, default=30)
    p.add_argument("--val-limit", type=int, default=20)
    p.add_argument("--test-limit", type=int, default=50)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--max-sets", type=int, default=16)
    p.add_argument("--minibatch", type=int, default=4)
    p.add_argument("--tgd-steps", type=int, default=12)
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--children", type=int, default=3)
    p.add_argument("--program-model", default=None)
    p.add_argument("--optimizer-model", default=None)
    p.add_argument("--meta-model", default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"unknown method(s) {unknown}: use {', '.join(METHODS)}", file=sys.stderr)
        return 2
    started, results, tasks = time.perf_counter(), [], {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in [t.strip() for t in args.tasks.split(",") if t.strip()]:
            for seed in range(args.seeds):
                task = get_task(name, difficulty=args.difficulty, seed=seed, sizes=(args.train, args.val_limit, args.test_limit))
                tasks[(name, seed)] = task
                for method in methods:
                    result = await run_method(method, task, seed, args, root)
                    results.append(result)
                    print(f"{name} seed {seed} {method}: {result.seconds:.0f}s, tokens {result.tokens} {result.note}", flush=True)
        await score_tests(results, tasks, args, root)
    text = markdown(results, args, time.perf_counter() - started)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_quality.md").write_text(text)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
