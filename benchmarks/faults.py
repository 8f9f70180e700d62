"""A scripted search against a fault-injecting OpenAI-compatible server: 0%, 20%, 50%, a bad key.

The stub server (graphopt.testing.StubServer, on 127.0.0.1) answers as the scripted search model
and fails a seeded share of requests with 429, 500 or 503; one run gets a persistent 401 whose
body echoes the key. The client retries (6 retries, short backoff: a race repeats some calls, so a run makes more). Expected:

- 20% and 50%: the same store contents and winner as the clean run; or, where a call failed for
  good (at 50% a call fails past its 6 retries with probability 0.5^7, so a run of ~200 calls
  often has one; the unit is then run once more, and a proposal made again), one of:
  - the run stopped with a clear error (`--max-error-rate`): resumed with the faults off, it
    reaches the clean run's store and winner exactly (nothing was decided on a failure);
  - the run finished with an evaluation recorded `failed` (a failure it may tolerate, below
    `--max-error-rate`): the search went on without that graph, so its later choices may differ
    from the clean run's. Then every evaluation marked done of a graph the clean run also
    evaluated has the clean run's score, the others done are graphs of its own path, and,
    resumed with the faults off, the failed evaluations are run again, no finished one is, and
    the same holds.
  In every case no failure is recorded as a result: an evaluation not marked done has no score;
- 401: a fatal LLMError within 5 seconds, no evaluation marked done, the key nowhere in the store.

Exits 1 when a verdict fails.

Run: python benchmarks/faults.py [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from graphopt.errors import GraphoptError, LLMError
from graphopt.graph.io import load_graph
from graphopt.lm import LM, LevelConfig, LMConfig
from graphopt.search.budgets import get_budget
from graphopt.search.executor import LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.store import RunDir, RunStore
from graphopt.tasks import get_task
from graphopt.testing import Failure, StubServer
from graphopt.testing.search_model import scripted_search

KEY = "sk-faults-benchmark-0123456789abcdef"
SEEDS = ("tgd", "tgd_select", "fewshot")


class FaultyServer(StubServer):
    """The stub server failing a seeded share of requests (or every one, with `persistent`)."""

    def __init__(self, rate: float, seed: int, persistent: int | None = None):
        super().__init__(reply=lambda body: scripted_search(body["messages"]))
        self.rate, self.persistent = rate, persistent
        self.rng = random.Random(seed)
        self.injected = 0

    def _next_failure(self) -> Failure | None:
        if self.persistent is not None:
            self.injected += 1
            return Failure(status=self.persistent, message=f"Incorrect API key provided: {KEY}")
        with self._lock:
            hit = self.rng.random() < self.rate
            status = self.rng.choice((429, 500, 503))
        if not hit:
            return None
        self.injected += 1
        return Failure(status=status, retry_after=0.0 if status == 429 else None)


def search(server: StubServer, run_dir: Path, *, resume: bool = False) -> tuple[str, str]:
    """(outcome, detail): "finished" and the winner, or the error's class and message."""
    level = LevelConfig(model="openai/stub-model", api_base=server.base_url)
    config = LMConfig(program=level, optimizer=level, meta=level, cache_dir=None, max_retries=6,
                      backoff_base=0.01, backoff_max=0.05)
    lm = LM(config)
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 8, 8), seed=3)
    budget = get_budget("tiny", val_limit=6, test_limit=6, minibatch=3, generations=2, children=3, seeds=SEEDS)
    try:
        report = asyncio.run(run_search(task, lm, budget, RunDir(run_dir, resume=resume), [load_graph(s) for s in SEEDS],
                                        executor=LocalExecutor(task, lm, 4)))
        return "finished", report.best.candidate_id
    except GraphoptError as exc:
        return type(exc).__name__, str(exc)
    finally:
        lm.close()


def contents(run_dir: Path) -> list[tuple]:
    with RunStore.open(run_dir, read_only=True) as store:
        return [(c.id, c.graph_hash, c.evaluation.status, c.evaluation.val_score) for c in store.candidates()]


def by_graph(run_dir: Path) -> dict[str, tuple]:
    """Graph hash -> (status, validation score) of a run's evaluations."""
    with RunStore.open(run_dir, read_only=True) as store:
        return {c.graph_hash: (c.evaluation.status, c.evaluation.val_score) for c in store.candidates()}


def no_failure_as_result(run_dir: Path, clean_dir: Path) -> bool:
    """Every evaluation marked done of a graph the clean run evaluated has the clean run's score;
    every evaluation not marked done has no score."""
    clean = by_graph(clean_dir)
    return all(
        (graph not in clean or clean[graph][1] == score) if status == "done" else score is None
        for graph, (status, score) in by_graph(run_dir).items()
    )


def faulty_verdict(label: str, server: FaultyServer, run_dir: Path, clean: tuple, clean_dir: Path) -> bool:
    """The 20%/50% verdict (see the module docstring); resumes the run with the faults off when it is not identical."""
    outcome, detail = search(server, run_dir)
    stored = contents(run_dir)
    if stored == clean[1] and detail == clean[0]:
        print(f"{label:>5}: {outcome}, {server.calls} requests, {server.injected} failures injected: identical to clean")
        return True
    honest = no_failure_as_result(run_dir, clean_dir)
    tolerated = outcome == "finished"  # it went on without a failed graph: its path may differ from clean's
    states = sorted({c[2] for c in stored if c[2] != "done"})
    print(f"{label:>5}: {outcome}, {server.calls} requests, {server.injected} failures injected, "
          f"{sum(c[2] == 'done' for c in stored)} done and {len(stored) - sum(c[2] == 'done' for c in stored)} "
          f"{'/'.join(states) or '-'}; no failure recorded as a result: {honest}")
    if outcome != "finished":
        print(f"       {detail[:200]}")
    done_before = {c[0]: c for c in stored if c[2] == "done"}
    server.rate, before = 0.0, server.calls
    resumed = search(server, run_dir, resume=True)
    after = contents(run_dir)
    if tolerated:
        kept = all(c in after for c in done_before.values())  # no finished evaluation run again or changed
        same = resumed[0] == "finished" and all(c[2] == "done" for c in after) and kept and no_failure_as_result(run_dir, clean_dir)
        what = "failed evaluations run again, finished ones kept, scores as clean's"
    else:
        same = after == clean[1] and resumed == ("finished", clean[0])
        what = "same store and winner as clean"
    print(f"       resumed with the faults off ({server.calls - before} requests): {what}: {same}")
    return honest and same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = KEY
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with FaultyServer(0.0, args.seed) as server:
            started = time.perf_counter()
            outcome, winner = search(server, tmp / "clean")
            print(f"clean: {outcome} in {time.perf_counter() - started:.1f}s, {server.calls} requests, winner {winner}")
        clean = (winner, contents(tmp / "clean"))
        verdicts = {"clean finished": outcome == "finished"}
        for label, rate in (("20%", 0.2), ("50%", 0.5)):
            with FaultyServer(rate, args.seed) as server:
                verdicts[f"{label} identical or honest and resumable"] = faulty_verdict(label, server, tmp / label, clean, tmp / "clean")
        with FaultyServer(0.0, args.seed, 401) as server:
            started = time.perf_counter()
            outcome, detail = search(server, tmp / "401")
            wall = time.perf_counter() - started
            print(f"  401: {outcome} in {wall:.1f}s, {server.calls} requests: {detail[:160]}")
        stored = contents(tmp / "401")
        leaked = KEY.encode() in (tmp / "401" / "run.sqlite").read_bytes()
        verdicts["401 a fatal LLMError within 5 s, nothing done, no key stored"] = (
            outcome == LLMError.__name__ and wall < 5 and not any(c[2] == "done" for c in stored) and not leaked
        )
    for what, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    if not all(verdicts.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
