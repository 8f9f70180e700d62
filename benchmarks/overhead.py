"""How much time graphopt's LM layer adds on top of the model's own latency.

Runs a prompt program on N examples (500; `--quick`: 100) through `graphopt.program.evaluate`
against the stub OpenAI server (100 ms per answer) at concurrency 32, and compares with:

- the ideal wall time, N x latency / concurrency;
- baselines measured in the same run, no graphopt layer: raw `litellm.acompletion` calls under
  an `asyncio.Semaphore(32)`, and raw `OpenAIHTTPTransport.send` calls (the fast path that
  `LiteLLMTransport` takes for "openai/..." models with an `api_base`, as here) under the same
  semaphore;
- a rerun on the same cache directory (target: 0 model calls);
- a 0 ms server, where wall / calls is the per-call overhead of each client.

The stub server runs in a subprocess so that its CPU time does not share the client's GIL.
Usage: `python benchmarks/overhead.py [--quick] [--json]`. Exits 1 on errors and when a target
is missed (efficiency >= 0.90, judged only where whole waves of calls allow it, so not with
--quick; 0 model calls on the cached rerun).
"""

from __future__ import annotations

__all__ = ["main", "run_benchmark"]

import argparse
import asyncio
import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

MODEL = "openai/stub-model"
TARGET_EFFICIENCY = 0.90


@dataclass
class Figures:
    examples: int
    repeat: int
    concurrency: int
    latency_ms: float
    task: str
    load_average: float  # of the machine over the last minute, before the run (-1: unknown)
    ideal_s: float
    raw_wall_s: float
    raw_efficiency: float
    raw_cpu_ms_per_call: float
    http_wall_s: float
    http_efficiency: float
    http_cpu_ms_per_call: float
    graphopt_wall_s: float
    graphopt_efficiency: float
    graphopt_cpu_ms_per_call: float
    graphopt_calls: int
    ratio_to_raw: float
    rerun_wall_s: float
    rerun_calls: int
    rerun_cache_hits: int
    zero_graphopt_ms_per_call: float
    zero_graphopt_calls_per_s: float
    zero_graphopt_cpu_ms_per_call: float
    zero_raw_ms_per_call: float
    zero_raw_calls_per_s: float
    zero_raw_cpu_ms_per_call: float
    zero_http_ms_per_call: float
    zero_http_calls_per_s: float
    zero_http_cpu_ms_per_call: float
    errors: int


# -- the stub server, in a subprocess -----------------------------------------------------------
@contextlib.contextmanager
def stub_server(latency_ms: float, duration_s: float = 900) -> Iterator[str]:
    """Starts `python -m graphopt.testing.stub_server` on a free loopback port; yields its base URL."""
    command = [
        sys.executable, "-m", "graphopt.testing.stub_server",
        "--port", "0", "--latency-ms", str(latency_ms), "--duration", str(duration_s),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        try:
            base_url = lines.get(timeout=30).strip()
        except queue.Empty:
            base_url = ""
        if not base_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"stub server did not start (exit code {process.poll()})")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


# -- the task -----------------------------------------------------------------------------------
def build_task(n: int):
    """word_sorting when the registry has it with n distinct inputs, else a generated task."""
    from graphopt.tasks.base import Task
    from graphopt.types import Example
    from graphopt.program import Program

    try:
        from graphopt.tasks import get_task

        task = get_task("word_sorting", sizes=(1, n, 1))
        if len(task.val) == n and len({ex.input for ex in task.val}) == n:
            return task, task.val
    except Exception:  # not registered yet, or another signature: use the generated task
        pass
    import random

    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    examples = []
    for i in range(n):
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 8))) for _ in range(6)]
        examples.append(Example(id=str(i), input=f"Sort: {' '.join(words)} (#{i})", target=" ".join(sorted(words))))
    task = Task(
        name="generated_sorting",
        train=examples[:1],
        val=examples,
        test=examples[:1],
        seed_program=Program(instruction="Sort the words alphabetically. Answer with the sorted words only."),
        extract=lambda text: text.strip(),
    )
    return task, examples


# -- the two clients ----------------------------------------------------------------------------
def make_lm(base_url: str, concurrency: int, cache_dir: Path | None):
    from graphopt.lm import LM, LevelConfig, LMConfig

    level = LevelConfig(model=MODEL, concurrency=concurrency, extra={"api_base": base_url})
    return LM(LMConfig(program=level, meta=level, optimizer=level), cache_dir=cache_dir)


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # seconds of this process's CPU (the server runs in another process)
    errors: int


async def run_graphopt(lm, task, examples) -> Run:
    from graphopt.program import evaluate

    started, cpu = time.perf_counter(), time.process_time()
    result = await evaluate(task.seed_program, examples, task, lm)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(wall, cpu, sum(1 for t in result.traces if t.error))


async def run_raw(base_url: str, task, examples, concurrency: int) -> Run:
    """The baseline: the same requests through litellm.acompletion, nothing else."""
    from graphopt.lm.wire import import_litellm

    litellm = import_litellm()
    semaphore = asyncio.Semaphore(concurrency)
    errors = 0

    async def one(example) -> None:
        nonlocal errors
        async with semaphore:
            try:
                await litellm.acompletion(
                    model=MODEL,
                    messages=task.seed_program.messages(example.input),
                    temperature=0.0,
                    max_tokens=256,
                    seed=0,
                    timeout=120.0,
                    num_retries=0,
                    api_base=base_url,
                    **({"stop": task.stop} if task.stop else {}),
                )
            except Exception:
                errors += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(ex) for ex in examples))
    return Run(time.perf_counter() - started, time.process_time() - cpu, errors)


async def run_http(base_url: str, task, examples, concurrency: int) -> Run:
    """The fast path's baseline: the same requests through OpenAIHTTPTransport.send, nothing else."""
    from graphopt.lm.openai_http import OpenAIHTTPTransport
    from graphopt.lm.wire import Request

    transport = OpenAIHTTPTransport()
    transport.prepare()
    semaphore = asyncio.Semaphore(concurrency)
    errors = 0

    async def one(example) -> None:
        nonlocal errors
        request = Request(
            model=MODEL,
            messages=task.seed_program.messages(example.input),
            max_tokens=256,
            seed=0,
            stop=list(task.stop) if task.stop else None,
            extra={"api_base": base_url},
        )
        async with semaphore:
            try:
                await transport.send(request)
            except Exception:
                errors += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(ex) for ex in examples))
    run = Run(time.perf_counter() - started, time.process_time() - cpu, errors)
    await transport.aclose()
    return run


async def warm_up(base_url: str, task, examples, concurrency: int) -> None:
    """Imports litellm and opens connections, so no timed run pays for them."""
    lm = make_lm(base_url, concurrency, None)
    warm = [ex.model_copy(update={"input": ex.input + " (warm-up)"}) for ex in examples[: 2 * concurrency]]
    await run_graphopt(lm, task, warm)
    await run_raw(base_url, task, warm, concurrency)
    await run_http(base_url, task, warm, concurrency)


# -- the benchmark ------------------------------------------------------------------------------
def run_benchmark(n: int, concurrency: int, latency_ms: float, zero_n: int, repeat: int = 2) -> Figures:
    os.environ.setdefault("OPENAI_API_KEY", "sk-stub-benchmark")  # the stub ignores it
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    task, examples = build_task(n)
    ideal = n * latency_ms / 1000 / concurrency
    try:
        load = os.getloadavg()[0]  # other work on the machine delays every wake-up
    except (AttributeError, OSError):
        load = -1.0

    with tempfile.TemporaryDirectory(prefix="graphopt-overhead-") as tmp:
        with stub_server(latency_ms) as base_url:
            asyncio.run(warm_up(base_url, task, examples, concurrency))
            # Alternate the clients and keep each one's best run: the machine's load varies.
            raws, https, ours = [], [], []
            for rep in range(repeat):
                raws.append(asyncio.run(run_raw(base_url, task, examples, concurrency)))
                https.append(asyncio.run(run_http(base_url, task, examples, concurrency)))
                lm = make_lm(base_url, concurrency, Path(tmp) / f"cache{rep}")  # a fresh cache each time
                ours.append(asyncio.run(run_graphopt(lm, task, examples)))
                calls = lm.ledger.total().calls
                lm.close()
            raw, best = min(raws, key=lambda r: r.wall), min(ours, key=lambda r: r.wall)
            http = min(https, key=lambda r: r.wall)

            rerun_lm = make_lm(base_url, concurrency, Path(tmp) / "cache0")
            rerun = asyncio.run(run_graphopt(rerun_lm, task, examples))
            rerun_usage = rerun_lm.ledger.total()
            rerun_lm.close()

        zero_examples = examples[:zero_n]
        with stub_server(0) as zero_url:
            asyncio.run(warm_up(zero_url, task, zero_examples, concurrency))
            zero_raws, zero_https, zeros = [], [], []
            for _ in range(repeat):
                zero_raws.append(asyncio.run(run_raw(zero_url, task, zero_examples, concurrency)))
                zero_https.append(asyncio.run(run_http(zero_url, task, zero_examples, concurrency)))
                zero_lm = make_lm(zero_url, concurrency, None)
                zeros.append(asyncio.run(run_graphopt(zero_lm, task, zero_examples)))
                zero_calls = max(zero_lm.ledger.total().calls, 1)
            zero_raw, zero = min(zero_raws, key=lambda r: r.wall), min(zeros, key=lambda r: r.wall)
            zero_http = min(zero_https, key=lambda r: r.wall)
        errors = sum(r.errors for r in [*raws, *https, *ours, rerun, *zero_raws, *zero_https, *zeros])

    return Figures(
        examples=n,
        repeat=repeat,
        concurrency=concurrency,
        latency_ms=latency_ms,
        task=task.name,
        load_average=load,
        ideal_s=ideal,
        raw_wall_s=raw.wall,
        raw_efficiency=ideal / raw.wall,
        raw_cpu_ms_per_call=1000 * raw.cpu / n,
        http_wall_s=http.wall,
        http_efficiency=ideal / http.wall,
        http_cpu_ms_per_call=1000 * http.cpu / n,
        graphopt_wall_s=best.wall,
        graphopt_efficiency=ideal / best.wall,
        graphopt_cpu_ms_per_call=1000 * best.cpu / max(calls, 1),
        graphopt_calls=calls,
        ratio_to_raw=best.wall / raw.wall,
        rerun_wall_s=rerun.wall,
        rerun_calls=rerun_usage.calls,
        rerun_cache_hits=rerun_usage.cache_hits,
        zero_graphopt_ms_per_call=1000 * zero.wall / zero_calls,
        zero_graphopt_calls_per_s=zero_calls / zero.wall,
        zero_graphopt_cpu_ms_per_call=1000 * zero.cpu / zero_calls,
        zero_raw_ms_per_call=1000 * zero_raw.wall / len(zero_examples),
        zero_raw_calls_per_s=len(zero_examples) / zero_raw.wall,
        zero_raw_cpu_ms_per_call=1000 * zero_raw.cpu / len(zero_examples),
        zero_http_ms_per_call=1000 * zero_http.wall / len(zero_examples),
        zero_http_calls_per_s=len(zero_examples) / zero_http.wall,
        zero_http_cpu_ms_per_call=1000 * zero_http.cpu / len(zero_examples),
        errors=errors,
    )


def report(f: Figures) -> str:
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    # One event loop spends this much CPU per call, so it cannot exceed 1000/cpu_ms calls/s.
    needed = f.examples / f.ideal_s if f.ideal_s else float("inf")

    def ceiling(cpu_ms: float) -> float:
        return min(1.0, 1000 / cpu_ms / needed) if cpu_ms else 1.0

    # Calls go out in waves of `concurrency`: the last, partial wave takes a whole latency too.
    waves = -(-f.examples // f.concurrency) * f.latency_ms / 1000
    lines = [
        f"graphopt LM-layer overhead: {f.examples} examples of {f.task}, concurrency {f.concurrency}, "
        f"stub latency {f.latency_ms:g} ms (server in a subprocess; best of {f.repeat} alternating runs; "
        f"load average {f.load_average:.2f} on {os.cpu_count()} cpus)",
        f"  ideal wall (n x latency / concurrency)   {f.ideal_s:8.3f} s   needs {needed:.0f} calls/s",
        f"  whole waves (ceil(n / concurrency) x lat) {waves:7.3f} s   best possible efficiency"
        f" {f.ideal_s / waves if waves else 1.0:.3f}",
        f"  raw litellm.acompletion + Semaphore      {f.raw_wall_s:8.3f} s   efficiency {f.raw_efficiency:.3f}"
        f"   cpu {f.raw_cpu_ms_per_call:.2f} ms/call",
        f"  raw OpenAIHTTPTransport + Semaphore      {f.http_wall_s:8.3f} s   efficiency {f.http_efficiency:.3f}"
        f"   cpu {f.http_cpu_ms_per_call:.2f} ms/call",
        f"  graphopt evaluate() (fast path)          {f.graphopt_wall_s:8.3f} s   efficiency {f.graphopt_efficiency:.3f}"
        f"   cpu {f.graphopt_cpu_ms_per_call:.2f} ms/call"
        f"   (target >= {TARGET_EFFICIENCY:.2f}: {mark(f.graphopt_efficiency >= TARGET_EFFICIENCY)})",
        f"  graphopt wall / raw litellm wall         {f.ratio_to_raw:8.3f}",
        f"  graphopt wall / raw OpenAIHTTPTransport  {f.graphopt_wall_s / f.http_wall_s:8.3f}"
        "   (what graphopt's layer adds: cache, ledger, budget, retries)",
        f"  model calls made                         {f.graphopt_calls:8d}",
        f"  cached rerun: model calls                {f.rerun_calls:8d}   (target 0: {mark(f.rerun_calls == 0)}), "
        f"cache hits {f.rerun_cache_hits}, wall {f.rerun_wall_s:.3f} s",
        "  per-call overhead at 0 ms latency (wall/calls, calls/s, client cpu/call):",
        f"    graphopt                               {f.zero_graphopt_ms_per_call:8.3f} ms/call"
        f"   {f.zero_graphopt_calls_per_s:7.1f} calls/s   cpu {f.zero_graphopt_cpu_ms_per_call:.3f} ms",
        f"    raw OpenAIHTTPTransport                {f.zero_http_ms_per_call:8.3f} ms/call"
        f"   {f.zero_http_calls_per_s:7.1f} calls/s   cpu {f.zero_http_cpu_ms_per_call:.3f} ms",
        f"    raw litellm                            {f.zero_raw_ms_per_call:8.3f} ms/call"
        f"   {f.zero_raw_calls_per_s:7.1f} calls/s   cpu {f.zero_raw_cpu_ms_per_call:.3f} ms",
        f"  best efficiency litellm's cpu/call allows {ceiling(f.zero_raw_cpu_ms_per_call):7.3f}"
        "   (1000 / cpu ms per call / calls/s needed)",
        f"  best efficiency graphopt's cpu/call allows {ceiling(f.zero_graphopt_cpu_ms_per_call):6.3f}",
        f"  failed calls                             {f.errors:8d}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 examples instead of 500 (a smoke run)")
    parser.add_argument("--examples", type=int, default=None, help="number of examples (default 500)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each client; the best counts")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    n = args.examples or (100 if args.quick else 500)
    zero_n = min(n, 300)
    try:
        figures = run_benchmark(n, args.concurrency, args.latency_ms, zero_n, max(1, args.repeat))
    except Exception as exc:  # a broken run, not a missed target
        print(f"error: benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(report(figures))
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
    if figures.errors:
        print(f"error: {figures.errors} model calls failed", file=sys.stderr)
        return 1
    checks = [(f"{figures.rerun_calls} model calls on the cached rerun (target 0)", figures.rerun_calls == 0)]
    waves = -(-figures.examples // figures.concurrency) * figures.latency_ms / 1000
    best = figures.ideal_s / waves if waves else 1.0
    if best >= TARGET_EFFICIENCY:
        checks.append((f"efficiency {figures.graphopt_efficiency:.3f} < {TARGET_EFFICIENCY:.2f}",
                       figures.graphopt_efficiency >= TARGET_EFFICIENCY))
    else:  # --quick: whole waves of `concurrency` calls alone keep it below the target
        print(f"efficiency not judged: at {figures.examples} examples whole waves allow at most {best:.3f}")
    missed = [what for what, ok in checks if not ok]
    for what in missed:
        print(f"FAIL  {what}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
