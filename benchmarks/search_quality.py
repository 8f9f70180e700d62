"""Search quality: what each level of optimization buys at an equal program-token budget.

For each task (word_sorting, dyck_languages) the script first measures the zero-shot seed program
on a few generator settings and picks one where the program model scores 10-60% (or, when none
does, the setting with the most signal, ties to the easiest). Then it compares, each under the
same cap on program-level tokens (an `LM` `Budget`), each with a fresh response cache:

1. zero-shot: the task's seed program, no optimization (spends nothing on optimization);
2. tgd: the inner loop with the `tgd` graph, as many steps as the cap allows (up to a maximum);
3. meta-prompt: `MetaPromptOptimizer` over the seed graphs tgd and tgd_select, scored by the
   `Evaluator` on validation; the best graph on validation wins;
4. search: the full `run_search` pipeline (seeds, prompt optimization, structure search) with a
   small budget and the `tiny` preset's seed graphs, in a fresh run directory.

Every winner's program is then scored on the same test examples by a separate client (no cap,
no cache), so test spend never counts against a method. Optimization spend is reported per level;
the search's own test report is left out of its figures (it reads one test example per row).

Usage: `python benchmarks/search_quality.py [--quick] [--tasks word_sorting,dyck_languages]
[--program-tokens N] [--seed S] [--out DIR]`. Writes `DIR/search_quality.md` (default
benchmarks/results). Exits non-zero only on errors, never because a method scored low.
"""

from __future__ import annotations

__all__ = ["main", "Sizes", "SETTINGS"]

import argparse
import asyncio
import datetime as dt
import json
import random
import shlex
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from graphopt.errors import BudgetExceeded
from graphopt.graph.io import load_graph
from graphopt.lm import LEVELS, LM, Budget, Caps, LMConfig
from graphopt.loop import optimize
from graphopt.program import Evaluation, evaluate
from graphopt.search.budgets import SearchBudget, get_budget
from graphopt.search.fitness import Evaluator, Fitness
from graphopt.search.pipeline import run_config, run_search
from graphopt.search.prompt_opt import MetaPromptOptimizer, PromptEdit
from graphopt.store import RunStore
from graphopt.tasks import Task, get_task
from graphopt.tasks.dyck import DyckSpec
from graphopt.tasks.word_sorting import OFFICIAL_WORD_LENGTHS, WordSortingSpec
from graphopt.types import Program

LOW, HIGH = 0.10, 0.60  # the zero-shot band where optimization has room both ways
TASKS = ("word_sorting", "dyck_languages")
META_PROMPT_SEEDS = ("tgd", "tgd_select")
CONCURRENCY = 2  # calls in flight per model and method: bounds how far the calls can pass the cap

# Easiest first: when no setting reaches the band, ties in accuracy go to the easiest one.
SETTINGS: dict[str, list[tuple[str, object]]] = {
    "word_sorting": [
        (
            "custom: 2 words of 3-5 letters, distinct first letters",
            WordSortingSpec("custom", {2: 1}, {n: OFFICIAL_WORD_LENGTHS[n] for n in range(3, 6)}, True),
        ),
        ("easy", "easy"),
        ("medium", "medium"),
    ],
    "dyck_languages": [
        (
            "custom: depth 1, inputs of 3-7 tokens, 1 bracket to close",
            DyckSpec("custom", ((4, 8, 1.0),), {1: 1.0}, max_depth=1),
        ),
        ("easy", "easy"),
        ("medium", "medium"),
    ],
}


@dataclass(frozen=True)
class Sizes:
    """Every size of one benchmark run."""

    train: int = 20
    probe: int = 30  # validation examples of the zero-shot probe (the val split's size)
    val_limit: int = 20  # validation examples every method optimizes and is reported on
    test: int = 50
    program_tokens: int = 10_000
    minibatch: int = 5
    tgd_max_steps: int = 12
    prompt_iterations: int = 2
    generations: int = 3
    children: int = 2

    @property
    def task_sizes(self) -> tuple[int, int, int]:
        return (self.train, max(self.probe, self.val_limit), self.test)


QUICK = Sizes(train=8, probe=8, val_limit=6, test=10, program_tokens=2_500, minibatch=3,
              tgd_max_steps=2, prompt_iterations=1, generations=1, children=1)  # fmt: skip


@dataclass
class MethodResult:
    method: str
    graph: str = ""
    program: Program | None = None
    val: float | None = None
    val_n: int = 0
    test: Evaluation | None = None
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    error: str = ""


# -- clients -------------------------------------------------------------------------------------
def _config(models: dict[str, str | None], cache_dir: Path | None) -> LMConfig:
    return LMConfig().with_models(**models).model_copy(update={"cache_dir": cache_dir})


def method_lm(models: dict[str, str | None], cache_dir: Path, program_tokens: int) -> LM:
    """A client with its own fresh cache and the program-token cap every method shares.

    The cap is checked before each call goes out, so calls already in flight can pass it. The
    client bounds calls in flight per model, by the largest concurrency of the levels using it,
    so every level gets the low bound (the local model runs one call at a time anyway).
    """
    config = _config(models, cache_dir)
    bounded = {lvl: config.level(lvl).model_copy(update={"concurrency": CONCURRENCY}) for lvl in LEVELS}
    return LM(config.model_copy(update=bounded), budget=Budget(levels={"program": Caps(tokens=program_tokens)}))


def _usage(ledger_dict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    levels = ledger_dict.get("levels", {})
    return {lvl: {k: levels.get(lvl, {}).get(k, 0) for k in ("calls", "tokens", "cache_hits")} for lvl in LEVELS}


# -- step 1: choose the generator setting --------------------------------------------------------
async def probe_settings(name: str, sizes: Sizes, seed: int, lm: LM) -> tuple[list[dict], dict]:
    """Zero-shot accuracy of the seed program on each setting; returns (rows, chosen row)."""
    rows = []
    for label, difficulty in SETTINGS[name]:
        task = get_task(name, difficulty=difficulty, seed=seed, sizes=sizes.task_sizes)
        clock = time.perf_counter()
        ev = await evaluate(task.seed_program, task.val[: sizes.probe], task, lm)
        rows.append({"label": label, "difficulty": difficulty, "acc": ev.accuracy, "stderr": ev.stderr,
                     "n": len(ev.traces), "seconds": time.perf_counter() - clock, "scores": ev.scores})  # fmt: skip
        print(f"  {name:<15} {label:<58} {ev.accuracy:6.1%} ± {ev.stderr:.1%}  (n={len(ev.traces)})", flush=True)
    in_band = [r for r in rows if LOW <= r["acc"] <= HIGH]
    chosen = in_band[0] if in_band else max(rows, key=lambda r: r["acc"])  # max keeps the first (easiest) tie
    chosen["in_band"] = bool(in_band)
    return rows, chosen


# -- step 2: the methods -------------------------------------------------------------------------
async def run_zero_shot(task: Task, sizes: Sizes, probe_scores: list[float]) -> MethodResult:
    """The seed program; its validation score is the probe's on the same first val examples."""
    scores = probe_scores[: sizes.val_limit]
    return MethodResult("zero-shot", "(none)", task.seed_program, sum(scores) / len(scores), len(scores),
                        usage=_usage({}), note="no optimization")  # fmt: skip


async def run_tgd(task: Task, sizes: Sizes, lm: LM, seed: int) -> MethodResult:
    result = await optimize(task.seed_program, load_graph("tgd"), task, lm, steps=sizes.tgd_max_steps,
                            minibatch_size=sizes.minibatch, val_limit=sizes.val_limit, seed=seed)  # fmt: skip
    done = sum(1 for r in result.history if not r.error)
    accepted = sum(1 for r in result.history if r.accepted)
    note = f"{done} steps ({accepted} accepted)" + (", stopped by the cap" if result.stopped else "")
    return MethodResult("tgd", "tgd", result.best_program, result.best_val, sizes.val_limit, note=note)


def search_budget(sizes: Sizes, **overrides: Any) -> SearchBudget:
    """The search's loop sizes and the `tiny` seeds; test_limit 1, as test scores are taken outside the cap."""
    fields = dict(
        inner_steps=1, minibatch=sizes.minibatch, val_limit=sizes.val_limit,
        prompt_iterations=1, prompt_candidates=1, generations=sizes.generations, population=3,
        children=sizes.children, test_limit=1, wall_time=900,
    )  # fmt: skip
    return get_budget("tiny", **{**fields, **overrides})


async def run_meta_prompt(task: Task, sizes: Sizes, lm: LM, seed: int, run_dir: Path) -> MethodResult:
    budget = search_budget(sizes, seeds=META_PROMPT_SEEDS, prompt_iterations=sizes.prompt_iterations)
    seeds = [load_graph(name) for name in budget.seeds]
    store = RunStore.open(run_dir)
    store.ensure_run(run_config(task, lm, budget, seed, seeds))
    evaluator = Evaluator(task, lm, store, budget, task.seed_program, seed=seed)
    optimizer = MetaPromptOptimizer(lm, iterations=budget.prompt_iterations, candidates=budget.prompt_candidates)
    rng = random.Random(seed)
    scored: list[Fitness] = []
    edits: list[PromptEdit] = []
    stopped = ""
    try:
        started = []
        for spec in seeds:
            started.append(await evaluator.evaluate(spec, origin="seed"))
            scored.append(started[-1])
        for fitness in started:
            tuned = await optimizer.optimize(fitness, evaluator, task, rng)
            scored.extend(tuned.tried)
            edits.extend(tuned.edits)
    except BudgetExceeded as exc:
        stopped = f", stopped by the cap ({exc})"
    finally:
        store.close()
    if not scored:
        raise BudgetExceeded("the cap ended the run before any seed graph was scored")
    best = max(scored, key=lambda f: (f.val_score, -f.cost_tokens))
    reasons = Counter(e.reason for e in edits if not e.accepted).most_common(2)
    note = (f"{len(scored)} graphs scored; {sum(e.accepted for e in edits)}/{len(edits)} prompt edits usable"
            + "".join(f"; {n}x {why[:50]}" for why, n in reasons) + stopped)  # fmt: skip
    return MethodResult("meta-prompt", best.spec.name, best.program or task.seed_program, best.val_score,
                        sizes.val_limit, note=note)  # fmt: skip


async def run_full_search(task: Task, sizes: Sizes, lm: LM, seed: int, run_dir: Path) -> MethodResult:
    budget = search_budget(sizes)
    seeds = [load_graph(name) for name in budget.seeds]
    at_report: list[dict] = []

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "phase" and data.get("name") == "test report":
            at_report.append(lm.ledger.to_dict())  # spend before the search reads test examples

    report = await run_search(task, lm, budget, run_dir, seeds, seed=seed, on_event=on_event)
    best = report.best
    note = f"{report.candidates} graphs, {report.rejected} proposals rejected; stop: {report.stop_reason or 'finished'}"
    result = MethodResult("search", best.spec.name, best.program or task.seed_program, best.val_score,
                          sizes.val_limit, note=note)  # fmt: skip
    if at_report:
        result.usage = _usage(at_report[0])
    return result


# -- one task ------------------------------------------------------------------------------------
async def bench_task(name: str, sizes: Sizes, seed: int, models: dict, work: Path, report_lm: LM) -> dict:
    print(f"\n== {name}: zero-shot probe of the seed program ({sizes.probe} val examples per setting)", flush=True)
    rows, chosen = await probe_settings(name, sizes, seed, report_lm)
    print(f"  chosen: {chosen['label']} ({'in' if chosen['in_band'] else 'NOT in'} the {LOW:.0%}-{HIGH:.0%} band)")
    task = get_task(name, difficulty=chosen["difficulty"], seed=seed, sizes=sizes.task_sizes)
    methods = {
        "zero-shot": lambda lm: run_zero_shot(task, sizes, chosen["scores"]),
        "tgd": lambda lm: run_tgd(task, sizes, lm, seed),
        "meta-prompt": lambda lm: run_meta_prompt(task, sizes, lm, seed, work / name / "meta_prompt"),
        "search": lambda lm: run_full_search(task, sizes, lm, seed, work / name / "search"),
    }
    results: list[MethodResult] = []
    for method, run in methods.items():
        print(f"-- {name}: {method} (cap {sizes.program_tokens:,} program tokens)", flush=True)
        lm = method_lm(models, work / name / f"cache_{method}", sizes.program_tokens)
        clock = time.perf_counter()
        try:
            result = await run(lm)
        except Exception as exc:  # noqa: BLE001 - one failed method must not hide the others
            traceback.print_exc()
            result = MethodResult(method, error=f"{type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - clock
        if not result.usage:
            result.usage = _usage(lm.ledger.to_dict())
        if result.usage["program"]["tokens"] >= sizes.program_tokens and "cap" not in result.note:
            result.note += "; reached the cap"
        lm.close()
        results.append(result)
        print(f"   {_line(result)}", flush=True)
    await score_on_test(task, sizes, results, report_lm)
    return {"task": name, "probe": rows, "chosen": chosen, "source": task.source, "results": results}


async def score_on_test(task: Task, sizes: Sizes, results: list[MethodResult], lm: LM) -> None:
    """Every winner on the same test examples; equal programs are scored once (greedy decoding)."""
    seen: dict[str, Evaluation] = {}
    for result in results:
        if result.program is None:
            continue
        if result.program.id not in seen:
            seen[result.program.id] = await evaluate(result.program, task.test[: sizes.test], task, lm)
        result.test = seen[result.program.id]


# -- output --------------------------------------------------------------------------------------
def _tok(result: MethodResult, level: str) -> str:
    return f"{int(result.usage.get(level, {}).get('tokens', 0)):,}"


def _line(r: MethodResult) -> str:
    if r.error:
        return f"{r.method}: FAILED {r.error}"
    val = "n/a" if r.val is None else f"{r.val:.3f}"
    return (f"{r.method}: val {val}, program {_tok(r, 'program')} tok, optimizer {_tok(r, 'optimizer')}, "
            f"meta {_tok(r, 'meta')}, {r.seconds:.0f} s; {r.note}")  # fmt: skip


HEADER = ("method", "winner graph", "val acc (n)", "test acc ± se (n)", "program tok", "optimizer tok",
          "meta tok", "calls p/o/m", "wall s", "notes")  # fmt: skip


def _row(r: MethodResult) -> list[str]:
    if r.error:
        return [r.method, "-", "-", "-", "-", "-", "-", "-", f"{r.seconds:.0f}", f"failed: {r.error[:120]}"]
    test = "-" if r.test is None else f"{r.test.accuracy:.3f} ± {r.test.stderr:.3f} ({len(r.test.traces)})"
    calls = "/".join(str(int(r.usage.get(lvl, {}).get("calls", 0))) for lvl in LEVELS)
    val = "-" if r.val is None else f"{r.val:.3f} ({r.val_n})"
    return [r.method, r.graph, val, test, _tok(r, "program"), _tok(r, "optimizer"), _tok(r, "meta"),
            calls, f"{r.seconds:.0f}", r.note]  # fmt: skip


def _md_table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def print_results(out: dict) -> None:
    print(f"\n== {out['task']} ({out['source']}): results")
    rows = [_row(r) for r in out["results"]]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADER[:-1])]
    print("  ".join(h.ljust(w) for h, w in zip(HEADER, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])


def markdown(outs: list[dict], sizes: Sizes, args: argparse.Namespace, models: dict, seconds: float) -> str:
    command = "python benchmarks/search_quality.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    model_text = ", ".join(f"{lvl} `{models.get(lvl) or LMConfig().level(lvl).model}`" for lvl in LEVELS)
    parts = [
        "# Search quality at equal program-token budgets",
        "",
        f"Run on {dt.date.today().isoformat()}, {seconds / 60:.1f} minutes, with `{command.strip()}` "
        f"(seed {args.seed}). Models: {model_text}.",
        "",
        f"Settings: cap of **{sizes.program_tokens:,} program tokens** per method (LM `Budget`, checked before "
        f"each call; at most {CONCURRENCY} calls in flight, so a method passes it by about a call at "
        f"most); {sizes.train} train examples, validation on {sizes.val_limit}, test on {sizes.test} (the same "
        "examples for every method, scored outside the cap); "
        f"minibatch {sizes.minibatch}; tgd up to {sizes.tgd_max_steps} steps; meta-prompt: seeds "
        f"{', '.join(META_PROMPT_SEEDS)}, 1 inner step per graph, {sizes.prompt_iterations} prompt iterations; "
        f"search: the `tiny` preset's seeds ({', '.join(search_budget(sizes).seeds)}), the same inner loop, "
        f"1 prompt iteration, {sizes.generations} generations of {sizes.children} children. Fresh response "
        "cache per method, fresh run directory for the search. "
        "Token columns are spent tokens (prompt + completion of real calls; cache hits within a method are free). "
        "Standard errors are the sample standard deviation / sqrt(n); 0 correct of n gives 0 ± 0, meaning a "
        "rate below about 3/n (95% confidence).",
    ]
    for out in outs:
        parts += ["", f"## {out['task']}", "", f"Zero-shot probe of the seed program ({sizes.probe} val examples):", ""]
        probe = [[r["label"], f"{r['acc']:.3f} ± {r['stderr']:.3f}", str(r["n"])] for r in out["probe"]]
        parts.append(_md_table(["setting", "zero-shot acc ± se", "n"], probe))
        chosen = out["chosen"]
        band = "in the band" if chosen["in_band"] else f"none reached {LOW:.0%}: the most signal, ties to the easiest"
        parts += ["", f"Chosen: **{chosen['label']}** ({band}); examples `{out['source']}`.", ""]
        parts.append(_md_table(list(HEADER), [_row(r) for r in out["results"]]))
        parts += ["", "Winning programs:", ""]
        for r in out["results"]:
            if r.program is not None:
                parts.append(f"- {r.method}: {json.dumps(r.program.instruction[:240])}"
                             + (f" (+{len(r.program.demos)} demos)" if r.program.demos else ""))  # fmt: skip
    return "\n".join(parts) + "\n"


# -- entry point ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes (tiny sizes)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: word_sorting,dyck_languages")
    parser.add_argument("--program-tokens", type=int, default=None, help="program-token cap per method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="where search_quality.md goes (default: benchmarks/results; with --quick, the work dir)")
    parser.add_argument("--work", type=Path, default=None, help="caches and run stores (default: a new temp dir)")
    for level in LEVELS:
        parser.add_argument(f"--{level}-model", default=None, help=f"model of the {level} level")
    args = parser.parse_args(argv)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in SETTINGS]
    if unknown:
        parser.error(f"unknown task(s) {unknown}: use {', '.join(SETTINGS)}")
    return args


async def run(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else Sizes()
    if args.program_tokens:
        sizes = replace(sizes, program_tokens=args.program_tokens)
    models = {lvl: getattr(args, f"{lvl}_model") for lvl in LEVELS}
    work = args.work or Path(tempfile.mkdtemp(prefix="search_quality-"))
    print(f"work dir (caches, run stores): {work}", flush=True)
    report_lm = LM(_config(models, None))  # probe, zero-shot val and every test score: no cap, no cache
    report_lm.check_models()
    clock = time.perf_counter()
    outs = []
    for name in args.tasks:
        outs.append(await bench_task(name, sizes, args.seed, models, work, report_lm))
        print_results(outs[-1])
    report_lm.close()
    text = markdown(outs, sizes, args, models, time.perf_counter() - clock)
    out_dir = args.out or (work if args.quick else Path(__file__).parent / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "search_quality.md"
    path.write_text(text)
    print(f"\nwrote {path}")
    return 1 if any(r.error for out in outs for r in out["results"]) else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
