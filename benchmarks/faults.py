"""A scripted search against a fault-injecting OpenAI-compatible server: 0%, 20%, 50%, a bad key.

The stub server (graphopt.testing.StubServer, on 127.0.0.1) answers as the scripted search model
and fails a seeded share of requests with 429, 500 or 503; one run gets a persistent 401 whose
body echoes the key. The client retries (6 retries, short backoff: a race repeats some calls, so a run makes more). Expected:

- 20%: the same store contents and winner as the clean run (every failure retried away);
- 50%: the same, or stopped with a clear error (`--max-error-rate`), never a different winner;
- 401: a fatal LLMError within 5 seconds, no evaluation marked done, the key nowhere in the store.

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
from graphopt.store import RunStore
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


def search(server: StubServer, run_dir: Path) -> tuple[str, str]:
    """(outcome, detail): "finished" and the winner, or the error's class and message."""
    level = LevelConfig(model="openai/stub-model", api_base=server.base_url)
    config = LMConfig(program=level, optimizer=level, meta=level, cache_dir=None, max_retries=6,
                      backoff_base=0.01, backoff_max=0.05)
    lm = LM(config)
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 8, 8), seed=3)
    budget = get_budget("tiny", val_limit=6, test_limit=6, minibatch=3, generations=2, children=3, seeds=SEEDS)
    try:
        report = asyncio.run(run_search(task, lm, budget, run_dir, [load_graph(s) for s in SEEDS],
                                        executor=LocalExecutor(task, lm, 4)))
        return "finished", report.best.candidate_id
    except GraphoptError as exc:
        return type(exc).__name__, str(exc)
    finally:
        lm.close()


def contents(run_dir: Path) -> list[tuple]:
    with RunStore.open(run_dir, read_only=True) as store:
        return [(c.id, c.graph_hash, c.evaluation.status, c.evaluation.val_score) for c in store.candidates()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = KEY
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        rows = {}
        for label, rate, persistent in (("clean", 0.0, None), ("20%", 0.2, None), ("50%", 0.5, None), ("401", 0.0, 401)):
            with FaultyServer(rate, args.seed, persistent) as server:
                started = time.perf_counter()
                outcome, detail = search(server, tmp / label)
                wall = time.perf_counter() - started
                rows[label] = (outcome, detail, wall, server.calls, server.injected, contents(tmp / label))
        clean = rows["clean"]
        for label, (outcome, detail, wall, calls, injected, stored) in rows.items():
            done = sum(1 for c in stored if c[2] == "done")
            same = stored == clean[5] and detail == clean[1]
            print(f"{label:>5}: {outcome} in {wall:5.1f}s, {calls} requests, {injected} failures injected, "
                  f"{done} evaluations done, same store and winner as clean: {same}")
            if outcome != "finished":
                print(f"       {detail[:200]}")
        ok20 = rows["20%"][5] == clean[5] and rows["20%"][1] == clean[1]
        r50 = rows["50%"]
        ok50 = (r50[5] == clean[5] and r50[1] == clean[1]) or r50[0] != "finished"
        r401 = rows["401"]
        with open(tmp / "401" / "run.sqlite", "rb") as f:
            leaked = KEY.encode() in f.read()
        ok401 = r401[0] == "LLMError" and r401[2] < 5 and not any(c[2] == "done" for c in r401[5]) and not leaked
        print(f"20% identical: {ok20}; 50% identical or stopped loudly: {ok50}; "
              f"401 stopped in {r401[2]:.1f}s with nothing done and no key in the store: {ok401}")
        assert LLMError  # the fatal error class the 401 run must end with


if __name__ == "__main__":
    main()
