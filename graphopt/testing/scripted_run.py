"""A whole search on the scripted search model, as a process of its own, and kill -9 trials of it.

    python -m graphopt.testing.scripted_run RUN_DIR [--resume] [--latency S] [--parallel N]

No response cache: a resumed run can only rebuild the search from its store. Prints the
winner's candidate id on the last line when the search finishes. `trial` kills such a process
with SIGKILL after a delay, resumes it to the end and compares it with a clean run
(`benchmarks/kill_resume.py` runs 20 trials, the tests a few).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..graph.io import load_graph
from ..lm import LM, LevelConfig, LMConfig
from ..search.budgets import get_budget
from ..search.executor import LocalExecutor
from ..search.pipeline import run_search
from ..status import Status
from ..store import RunDir, RunStore
from ..tasks import get_task
from .fake import FakeModel
from .search_model import scripted_search

SEEDS = ("tgd", "tgd_select", "fewshot")


def start(run_dir: Path, *, resume: bool = False, extra: list[str] | None = None) -> subprocess.Popen:
    """Starts the scripted search in a process of its own (`extra`: more of its arguments)."""
    cmd = [sys.executable, "-m", "graphopt.testing.scripted_run", str(run_dir)] + (["--resume"] if resume else []) + (extra or [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_store(run_dir: Path, proc: subprocess.Popen, timeout: float = 60.0) -> float:
    """Waits until the process has created its run store (imports done, search started); returns when."""
    deadline = time.perf_counter() + timeout
    while not (run_dir / "run.sqlite").exists() and proc.poll() is None and time.perf_counter() < deadline:
        time.sleep(0.02)
    return time.perf_counter()


def finish(run_dir: Path, *, resume: bool = False) -> str:
    """Runs the scripted search to its end; returns the winner's candidate id."""
    proc = start(run_dir, resume=resume)
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"scripted run failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return out.strip().splitlines()[-1]


def contents(run_dir: Path) -> list[tuple]:
    """The store's candidates as (id, hash, parents, status, val score): what a resume must rebuild."""
    with RunStore.open(run_dir, read_only=True) as store:
        return [(c.id, c.graph_hash, c.parents, c.evaluation.status, c.evaluation.val_score) for c in store.candidates()]


def done_times(run_dir: Path) -> dict[str, object]:
    """Finish times of the done evaluations (a repeated evaluation gets a new one)."""
    if not (run_dir / "run.sqlite").exists():
        return {}
    with RunStore.open(run_dir, read_only=True) as store:
        return {c.id: c.evaluation.finished_at for c in store.candidates() if c.evaluation and c.evaluation.status == Status.done}


def search_seconds(run_dir: Path) -> tuple[str, float]:
    """Runs the scripted search to its end: (winner, seconds from the store's creation to the end)."""
    proc = start(run_dir)
    began = wait_for_store(run_dir, proc)
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"scripted run failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return out.strip().splitlines()[-1], time.perf_counter() - began


def trial(tmp: Path, n: int, delay: float, reference: list[tuple], winner: str) -> dict:
    """Kills a scripted search with SIGKILL `delay` seconds after its store appeared, resumes it,
    and compares it with the reference."""
    run_dir = tmp / f"trial{n}"
    proc = start(run_dir)
    wait_for_store(run_dir, proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = done_times(run_dir)
    got = finish(run_dir, resume=(run_dir / "run.sqlite").exists())
    after = done_times(run_dir)
    repeated = sum(1 for cid, at in before.items() if after.get(cid) != at)
    return {
        "delay": delay,
        "done_before": len(before),
        "repeated": repeated,
        "same_winner": got == winner,
        "same_store": contents(run_dir) == reference,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A scripted search, for kill and resume trials.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--store", default=None, help="a database URL for the store (default RUN_DIR/run.sqlite)")
    args = parser.parse_args(argv)
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 8, 8), seed=3)
    budget = get_budget("tiny", val_limit=6, test_limit=6, minibatch=3, generations=3, children=3, seeds=SEEDS)
    level = LevelConfig(model="fake/scripted")
    lm = LM(LMConfig(program=level, optimizer=level, meta=level, cache_dir=None),
            transport=FakeModel(fn=scripted_search, latency=args.latency))
    graphs = [load_graph(name) for name in SEEDS]
    report = asyncio.run(run_search(
        task, lm, budget, RunDir(args.run_dir, args.store, args.resume), graphs,
        executor=LocalExecutor(task, lm, args.parallel),
    ))
    print(report.best.candidate_id)


if __name__ == "__main__":
    main()
