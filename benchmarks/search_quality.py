"""Search quality: the searched optimizer against real peers (DSPy) and simple baselines, at equal spend.

For each task, seed and cap (the seed fixes the data split and every method's randomness), each
method runs under the same cap, checked before each model call:

- `total`: a cap on tokens of every level (program + optimizer + meta);
- `program`: a cap on program-level tokens only (optimizer and meta calls are free).
`--caps total,program` (the default) runs both and writes one table per cap.

Methods (each with a fresh response cache, so no method feeds on another's calls):
- zero-shot: the task's seed program; labeled few-shot: k random train examples as demos;
- dspy BootstrapFewShot, BootstrapFewShotWithRandomSearch, MIPROv2 (auto="light") and GEPA
  (benchmarks/peers): DSPy's own optimizers, their program and proposer/reflection calls sent to
  the embedded model served on 127.0.0.1 by `python -m llama_cpp.server` (greedy, repeat_penalty
  1.0), which the harness first checks gives the in-process answers token for token;
- tgd (opt-in): the inner loop with the `tgd` graph;
- meta-prompted seed, structure only (opt-in ablations) and search: `run_search` with the
  preset's seeds and loop sizes, its phases cut as named.

Every method's program is then scored on the same test examples, in process, by one client outside
every cap. Reported per (cap, task, method): test accuracy (mean ± 95% CI over seeds, t
distribution), tokens spent per level (cache hits excluded) and in total against the cap, test
tokens per example (the program's inference cost), and for the search whether its winner is a seed
graph, its paired difference against the best DSPy peer and against its own best seed graph (the
seed graph with the best validation score). An average over tasks follows.

Usage: python benchmarks/search_quality.py [--tasks word_sorting,dyck_languages,last_word,key_lookup]
       [--seeds 5] [--tokens 30000] [--caps total,program] [--methods a,b,...] [--out benchmarks/results]
Tasks: built-in names, or a generated custom-file task of benchmarks/tasks/make_tasks.py.
Each finished method run (with its test score) is journaled at once to OUT/search_quality.parts.jsonl;
the same command run again takes the journaled runs of the same settings instead of running them
again, so a run of hours that stops continues where it was. Writes OUT/search_quality.md and
OUT/search_quality.json; exits 2 on a usage error, a missing
`bench` extra or a server that is not exact, 1 when a method run failed (its row says why; the
others are kept), never because a method scored low.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download from litellm
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "tasks"))

from make_tasks import TASKS as CUSTOM_TASKS  # noqa: E402
from make_tasks import write_task  # noqa: E402
from peers import missing_extra  # noqa: E402
from peers.journal import Journal, same_run, settings  # noqa: E402
from peers.report import Result, markdown  # noqa: E402

from graphopt.graph.io import load_graph  # noqa: E402
from graphopt.lm import LM, Budget, Caps, LMConfig, levels_shown, usage_scope  # noqa: E402
from graphopt.loop import LoopSizes, optimize  # noqa: E402
from graphopt.program import evaluate  # noqa: E402
from graphopt.search.budgets import get_budget  # noqa: E402
from graphopt.search.executor import LocalExecutor, default_parallel  # noqa: E402
from graphopt.search.phases import ChoosePhase, PromptPhase, SeedPhase, StructurePhase  # noqa: E402
from graphopt.search.pipeline import run_search  # noqa: E402
from graphopt.search.policy import tie_key  # noqa: E402
from graphopt.search.winner import entries  # noqa: E402
from graphopt.store import RunStore  # noqa: E402
from graphopt.tasks import Task, get_task  # noqa: E402
from graphopt.program import Demo, Program  # noqa: E402

LEVELS = levels_shown()  # program, optimizer, meta: the methods here call no judge
PEERS = ("dspy BootstrapFewShot", "dspy BootstrapFewShotWithRandomSearch", "dspy MIPROv2 light", "dspy GEPA")
OWN = ("zero-shot", "labeled few-shot", "tgd", "meta-prompted seed", "structure only", "search")
METHODS = OWN + PEERS
DEFAULT_METHODS = ("zero-shot", "labeled few-shot", *PEERS, "search")


def method_lm(args: argparse.Namespace, cap: str, work: Path) -> LM:
    caps = Caps(tokens=args.tokens)
    budget = Budget(total=caps) if cap == "total" else Budget(levels={"program": caps})
    config = LMConfig(cache_dir=work / "cache").with_models(program=args.program_model, optimizer=args.optimizer_model, meta=args.meta_model)
    return LM(config, budget=budget)


def labeled(task: Task, seed: int, k: int) -> Program:
    demos = [Demo(input=ex.input, output=ex.target) for ex in random.Random(seed).sample(task.train, k)]
    return task.seed_program.with_demos(demos)


async def tgd(task: Task, lm: LM, seed: int, args: argparse.Namespace) -> tuple[Program, str]:
    sizes = LoopSizes(steps=args.tgd_steps, minibatch=args.minibatch, val_limit=args.val_limit)
    result = await optimize(task.seed_program, load_graph("tgd"), task, lm, sizes, seed=seed)
    accepted = sum(1 for r in result.history if r.accepted)
    return result.best_program, f"{len(result.history)} steps ({accepted} accepted)"


async def search(task: Task, lm: LM, r: Result, args: argparse.Namespace, cap: str, work: Path) -> Program:
    """run_search without its own test phase (test is scored outside the cap); records the seeds."""
    settings = {"val_limit": args.val_limit, "minibatch": args.minibatch, "generations": args.generations,
                "children": args.children, "tokens": args.tokens if cap == "total" else None,
                "seeds": tuple(args.search_seeds.split(",")) if args.search_seeds else None, "screen": args.screen}
    if r.method == "meta-prompted seed":
        settings["generations"] = 0
    if r.method == "structure only":
        settings["prompt_iterations"] = 0
    plan = get_budget(args.preset, **settings)
    graphs = [load_graph(name) for name in plan.seeds]
    phases = [SeedPhase(graphs), PromptPhase(), StructurePhase(), ChoosePhase()]  # the product's winner rule, no test
    report = await run_search(task, lm, plan, work / "run", graphs, seed=r.seed, phases=phases,
                              executor=LocalExecutor(task, lm, default_parallel(lm)))
    with RunStore.open(work / "run", read_only=True) as store:
        winner = store.candidate(report.best.candidate_id)
        seeds = [(e, row) for e, row in entries(store, task.seed_program.id) if e.seed and row.evaluation.program]
        why = next((e.payload.get("why", "") for e in reversed(store.events("winner")) if isinstance(e.payload, dict)), "")
    r.winner_is_seed = winner is not None and winner.origin == "seed"
    if seeds:  # the seed graph the search would keep on validation alone: the winner rule's order of seeds
        _, best = min(seeds, key=lambda pair: tie_key(pair[0]))
        r.best_seed = (best.name, Program.model_validate(best.evaluation.program))
    r.note = f"{report.candidates} graphs, winner {report.best.spec.name}, stop: {report.stop_reason or 'done'}" + (
        f"; why: {why}" if why else "")
    return report.best.program or task.seed_program


async def run_own(method: str, task: Task, r: Result, args: argparse.Namespace, cap: str, work: Path) -> None:
    lm = method_lm(args, cap, work)
    try:
        if method == "zero-shot":
            r.program = task.seed_program
        elif method == "labeled few-shot":
            r.program = labeled(task, r.seed, args.k)
        elif method == "tgd":
            r.program, r.note = await tgd(task, lm, r.seed, args)
        else:
            r.program = await search(task, lm, r, args, cap, work)
    finally:
        lm.close()
    r.tokens = {level: lm.ledger.level(level).tokens for level in LEVELS}


def run_peer(method: str, task: Task, r: Result, args: argparse.Namespace, cap: str, work: Path, url: str) -> None:
    from peers.dspy_lm import Meter
    from peers.dspy_peers import run_peer as run_dspy

    run = run_dspy(method, task, r.seed, url, Meter(args.tokens, cap), args.val_limit, work / "dspy.log",
                   args.proposer_tokens)
    r.program, r.tokens, r.note = run.program, run.tokens, run.note


async def score_test(r: Result, task: Task, lm: LM, args: argparse.Namespace) -> None:
    """Test accuracy and inference tokens per example of a method's program (and of the search's best seed)."""
    test = task.test[: args.test_limit]
    with usage_scope() as used:
        r.test = (await evaluate(r.program, test, task, lm)).accuracy
    spent = used.level("program")
    r.test_tokens = (spent.tokens + spent.cached_tokens) / max(1, len(test))
    if r.best_seed is not None:
        r.best_seed_test = (await evaluate(r.best_seed[1], test, task, lm)).accuracy


async def run_method(method: str, cap: str, task: Task, r: Result, args: argparse.Namespace, root: Path, url: str | None) -> Result:
    """Runs one method under its cap; a method that raises keeps the seed program, says why, and is marked failed."""
    work = root / f"{cap}-{r.task}-{r.seed}-{method.replace(' ', '_')}"
    clock = time.perf_counter()
    try:
        if method in PEERS:
            run_peer(method, task, r, args, cap, work, url or "")
        else:
            await run_own(method, task, r, args, cap, work)
    except Exception as exc:  # one broken run must not lose hours of others: kept, shown, exit 1
        r.program, r.failed = task.seed_program, True
        r.note = f"FAILED ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
    r.seconds = time.perf_counter() - clock
    return r


def load_task(name: str, seed: int, args: argparse.Namespace, data: Path) -> Task:
    sizes = (args.train, args.val_limit, args.test_limit)
    if name in CUSTOM_TASKS:
        path = data / f"{name}.jsonl"
        if not path.exists():
            write_task(name, data)
        return get_task("file", path=path, seed=seed, sizes=sizes)
    return get_task(name, difficulty=args.difficulty, seed=seed, sizes=sizes)


async def exactness(tasks: dict, url: str, args: argparse.Namespace) -> tuple[int, int]:
    """(equal, asked): the server's answers against the in-process ones, on each task's first seed."""
    from peers.server import check_exact

    prompts = []
    for (name, seed), task in tasks.items():
        if seed == 0:
            for program in (task.seed_program, labeled(task, 0, args.k)):
                prompts += [(program.messages(ex.input), task.max_tokens, task.stop) for ex in task.val[:2]]
    differ = await check_exact(url, prompts)
    return len(prompts) - len(differ), len(prompts)


def seed_list(text: str) -> list[int]:
    """`--seeds`: N is seeds 0 to N-1; a comma-separated list (3,4 or 3,) is those seeds."""
    try:
        seeds = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        seeds = []
    if "," not in text and seeds and seeds[0] >= 1:
        return list(range(seeds[0]))
    if "," in text and seeds and seeds[0] >= 0:
        return seeds
    raise argparse.ArgumentTypeError(f"{text!r}: give a count of seeds (5: seeds 0-4) or the seeds themselves (3,4)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="word_sorting,dyck_languages,last_word,key_lookup")
    p.add_argument("--seeds", type=seed_list, default=seed_list("5"),
                   help="N: seeds 0 to N-1; or the seeds themselves, comma-separated (e.g. 3,4: another process's share of a run)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    p.add_argument("--tokens", type=int, default=30_000)
    p.add_argument("--caps", default="total,program", help="total, program, or both (comma-separated)")
    p.add_argument("--preset", default="tiny", help="the search's preset (its seeds and loop sizes)")
    p.add_argument("--difficulty", default="easy")
    p.add_argument("--train", type=int, default=30)
    p.add_argument("--val-limit", type=int, default=20)
    p.add_argument("--test-limit", type=int, default=50)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--minibatch", type=int, default=4)
    p.add_argument("--tgd-steps", type=int, default=12)
    p.add_argument("--search-seeds", default=None, help="the search's seed graphs, comma-separated (default: the preset's)")
    p.add_argument("--screen", type=int, default=None, help="the search's race screen (default: the preset's; 0 is no race)")
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--children", type=int, default=3)
    p.add_argument("--proposer-tokens", type=int, default=None,
                   help="the longest answer of MIPROv2's proposer and GEPA's reflection (default: 384, graphopt's optimizer level)")
    p.add_argument("--program-model", default=None)
    p.add_argument("--optimizer-model", default=None)
    p.add_argument("--meta-model", default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--journal", type=Path, default=None,
                   help="finished runs, one JSON line each (default OUT/search_quality.parts.jsonl): a run with the same "
                        "settings takes them instead of running them again, so a stopped run continues")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: write the tables of the journaled runs these arguments select (a run still under way)")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, or None."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        return f"unknown method(s) {unknown}: use {', '.join(METHODS)}"
    caps = [c.strip() for c in args.caps.split(",") if c.strip()]
    if not caps or any(c not in ("total", "program") for c in caps):
        return f"--caps {args.caps!r}: use total, program or total,program"
    if any(m in PEERS for m in methods):
        if args.program_model or args.optimizer_model:
            return "the DSPy peers run on the embedded model only: drop --program-model/--optimizer-model or the dspy methods"
        return missing_extra()
    return None


async def run(args: argparse.Namespace) -> int:
    problem = check_args(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    caps = [c.strip() for c in args.caps.split(",") if c.strip()]
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    started, results, tasks = time.perf_counter(), [], {}
    if args.table_only:
        return write_tables(*journaled(args, caps, names, methods), args, None, None)
    with tempfile.TemporaryDirectory() as tmp, contextlib_server(any(m in PEERS for m in methods), Path(tmp)) as url:
        root = Path(tmp)
        os.environ.setdefault("DSPY_CACHEDIR", str(root / "dspy-cache"))
        tasks = {(name, seed): load_task(name, seed, args, root / "data") for name in names for seed in args.seeds}
        exact = await exactness(tasks, url, args) if url else None
        if exact and exact[0] != exact[1]:
            print(f"llama_cpp.server gave other answers than the in-process model on {exact[1] - exact[0]} of {exact[1]} "
                  "prompts: the peers would not run on the same model; check llama-cpp-python's version", file=sys.stderr)
            return 2
        journal = Journal(args.journal or args.out / "search_quality.parts.jsonl", settings(args))
        done = journal.load()
        test_lm = LM(LMConfig(cache_dir=root / "test-cache").with_models(program=args.program_model))  # outside every cap
        try:
            for cap in caps:
                for (name, seed), task in tasks.items():
                    for method in methods:
                        if (cap, name, seed, method) in done:
                            results.append(done[(cap, name, seed, method)])
                            continue
                        same = same_run(done, (cap, name, seed, method))
                        if same is not None:
                            journal.add(same)
                            results.append(same)
                            continue
                        r = await run_method(method, cap, task, Result(cap, name, method, seed, task.seed_program), args, root, url)
                        await score_test(r, task, test_lm, args)
                        journal.add(r)
                        done[(cap, name, seed, method)] = r
                        results.append(r)
                        print(f"{cap} {name} seed {seed} {method}: {r.seconds:.0f}s, tokens {r.tokens}, test {r.test:.3f} {r.note}", flush=True)
        finally:
            test_lm.close()
    return write_tables(results, None, args, time.perf_counter() - started, exact)


def journaled(args: argparse.Namespace, caps: list[str], names: list[str], methods: list[str]) -> tuple[list[Result], int]:
    """The journaled runs these arguments select, in the order a run makes them, and how many of
    the selected runs are not journaled yet."""
    done = Journal(args.journal or args.out / "search_quality.parts.jsonl", settings(args)).load()
    cells = [(cap, name, seed, method) for cap in caps for name in names for seed in args.seeds for method in methods]
    found = [r for r in (done.get(cell) or same_run(done, cell) for cell in cells) if r is not None]
    return found, len(cells) - len(found)


def write_tables(results: list[Result], missing: int | None, args: argparse.Namespace, seconds: float | None,
                 exact: tuple[int, int] | None) -> int:
    """Writes OUT/search_quality.md and .json (`missing` None: from a run, which took `seconds`;
    a number: from the journal, where that many selected runs are not yet); the exit code."""
    text = markdown(results, args, seconds if seconds is not None else sum(r.seconds for r in results), exact,
                    missing=missing)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_quality.md").write_text(text)
    (args.out / "search_quality.json").write_text(json.dumps([r.row() for r in results], indent=1) + "\n")
    print(text)
    failed = [f"{r.cap} {r.task} seed {r.seed} {r.method}" for r in results if r.failed]
    if failed:
        print(f"{len(failed)} method runs failed (their rows say why): {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def contextlib_server(wanted: bool, log_dir: Path):  # noqa: ANN201
    """The llama_cpp.server of the peers (its URL), or None when no peer runs."""
    import contextlib

    if not wanted:
        return contextlib.nullcontext(None)
    from peers.server import serve

    @contextlib.contextmanager
    def url():  # noqa: ANN202
        with serve(log_dir) as server:
            yield server.url

    return url()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
