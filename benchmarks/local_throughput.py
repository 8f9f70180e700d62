"""Throughput of the embedded model: graphopt's pool against raw llama-cpp-python and llama.cpp's server, in one run.

Runs the seed program of word_sorting on 48 examples (temperature 0, the task's answer length
and stop strings) four ways, in slices with the order rotated so that a change in the machine's
load falls on all alike, and prints prompts per second and CPU seconds per prompt:

- graphopt: `graphopt.program.evaluate()` with the default settings (the pool), cache off;
- raw single: one `llama_cpp.Llama`, calls one after another (graphopt's default before the pool);
- raw pool: as many `Llama` instances as graphopt's pool has, one Python thread each, pulling
  the same prompts from a queue (what the pool is built on);
- server: `python -m llama_cpp.server` (started by benchmarks/peers/server.py) on the same model
  file, sent the same requests by as many client threads as the pool has instances.

Equal configurations: the raw instances are built from the constructor settings of an instance
graphopt's pool loaded (`Llama.__getstate__`: context, batch, threads, seed), and every raw and
server request carries the sampling arguments graphopt's own call passed to
`create_chat_completion` (recorded on a warm-up prompt); the server gets graphopt's context,
batch and threads (peers/server.py reads them from graphopt). The completion length of every
prompt (tokens) is recorded for each way and must be equal across ways.

llama_cpp.server has no parallel slots (it serves one request at a time behind one lock), and a
`llama-server` binary is used only where one is on PATH; the run says which it measured.

Verdicts (exit 1 when one fails, with --json too): graphopt / raw single >= 1.5, graphopt / raw
pool >= 0.9, equal completion lengths on every prompt. The ratio to the server is printed, with
no target (not a batched server here). `--background N` adds N busy processes for the whole
measurement. Non-zero on errors.

Usage: `python benchmarks/local_throughput.py [--examples 48] [--instances N] [--rounds 3] [--background N] [--no-server] [--json]`.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_VS_SINGLE = 1.5
TARGET_VS_POOL = 0.9


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _key(messages: list[dict]) -> str:
    return json.dumps(messages, sort_keys=True)


def batched_server_note() -> str:
    """What this machine offers as a batched llama.cpp server (one line)."""
    help_text = subprocess.run([sys.executable, "-m", "llama_cpp.server", "--help"], capture_output=True, text=True).stdout
    slots = "--n_parallel" in help_text or "--parallel" in help_text
    binary = shutil.which("llama-server")
    if slots:
        return "llama_cpp.server offers parallel slots"
    if binary:
        return f"llama_cpp.server has no parallel slots; llama-server at {binary} (not driven by this script yet)"
    return ("no batched llama.cpp server on this machine: llama_cpp.server has no parallel slots (one request at a "
            "time behind one lock) and no llama-server binary is on PATH; the server anchor is that one-at-a-time server")


class _Recording:
    """A pool instance lent to graphopt's call, recording the call's arguments and completion length."""

    def __init__(self, llama: Any, log: dict[str, Any]):
        self._llama, self._log = llama, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_chat_completion(self, **kwargs: Any) -> Any:
        self._log.setdefault("llama_state", self._llama.__getstate__())  # before a call moves its seed
        reply = self._llama.create_chat_completion(**kwargs)
        sampling = {k: v for k, v in kwargs.items() if k not in ("messages", "logits_processor")}
        self._log.setdefault("sampling", sampling)
        self._log["tokens"][_key(kwargs["messages"])] = reply["usage"]["completion_tokens"]
        return reply


class Graphopt:
    """graphopt's evaluate() on the default pool (every instance loaded before timing), cache off."""

    def __init__(self, instances: int | None):
        from graphopt.lm import LM, LMConfig
        from graphopt.lm.config import LocalConfig
        from graphopt.lm.local import LocalModels, resolve_model_path

        config = LMConfig(local=LocalConfig(instances=instances), cache_dir=None)
        self.lm = LM(config, cache_dir=None)
        self.pool = LocalModels.pool(resolve_model_path("smollm2"), config.local)
        self.pool.fill()
        self.log: dict[str, Any] = {"tokens": {}}
        lend = self.pool.run
        self.pool.run = lambda prompt, fn: lend(prompt, lambda llama: fn(_Recording(llama, self.log)))
        self.scores: list[float] = []

    def run(self, examples: list, task: Any) -> dict[str, int]:
        from graphopt.program import evaluate

        self.scores += asyncio.run(evaluate(task.seed_program, examples, task, self.lm)).scores
        keys = [_key(task.seed_program.messages(ex.input)) for ex in examples]
        return {k: self.log["tokens"][k] for k in keys if k in self.log["tokens"]}

    def close(self) -> None:
        from graphopt.lm.local import LocalModels

        self.lm.close()
        LocalModels.close_all()


class RawPool:
    """Raw llama-cpp-python: `size` instances with graphopt's settings, one Python thread each, on a shared queue."""

    def __init__(self, state: dict[str, Any], sampling: dict[str, Any], size: int):
        from llama_cpp import Llama

        self.sampling = sampling
        self.llamas = [Llama(**{**state, "verbose": False}) for _ in range(size)]

    def run(self, prompts: list[list[dict]]) -> dict[str, int]:
        work: queue.Queue = queue.Queue()
        for messages in prompts:
            work.put(messages)
        tokens: dict[str, int] = {}

        def worker(llama: Any) -> None:
            while True:
                try:
                    messages = work.get_nowait()
                except queue.Empty:
                    return
                reply = llama.create_chat_completion(messages=messages, **self.sampling)
                tokens[_key(messages)] = reply["usage"]["completion_tokens"]

        threads = [threading.Thread(target=worker, args=(llama,)) for llama in self.llamas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return tokens

    def close(self) -> None:
        for llama in self.llamas:
            llama.close()


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """llama_cpp.server with graphopt's settings, sent the same requests by `clients` threads."""

    def __init__(self, sampling: dict[str, Any], clients: int, log_dir: Path):
        from peers.server import GREEDY, serve

        self.body = {"model": "program", **GREEDY, **sampling}
        self.clients = clients
        self._stack = contextlib.ExitStack()
        server = self._stack.enter_context(serve(log_dir))
        self.url, self.pid = server.url, server.process.pid

    def cpu(self) -> float:
        return _process_cpu(self.pid)

    def run(self, prompts: list[list[dict]]) -> dict[str, int]:
        from peers.server import chat

        def one(messages: list[dict]) -> tuple[str, int]:
            return _key(messages), chat(self.url, {**self.body, "messages": messages})["usage"]["completion_tokens"]

        with ThreadPoolExecutor(self.clients) as clients:
            return dict(clients.map(one, prompts))

    def close(self) -> None:
        self._stack.close()


def unequal_lengths(tokens: dict[str, dict[str, int]]) -> list[str]:
    """The prompts whose completion length is not the same in every way (or that a way did not answer)."""
    keys = set().union(*tokens.values())
    return sorted(k for k in keys if len({way.get(k) for way in tokens.values()}) != 1)


def run(examples_count: int, instances: int | None, rounds: int, server: bool) -> dict[str, Any]:
    """Each way on the same examples, in `rounds` slices with the order rotated, so that a change
    in the machine's load falls on all alike; wall and CPU seconds are summed per way."""
    from graphopt.tasks import get_task

    task = get_task("word_sorting")
    pool_examples = task.train + task.val + task.test
    warmup, examples = pool_examples[0], pool_examples[1 : examples_count + 1]
    ours = Graphopt(instances)
    ours.run([warmup], task)  # records graphopt's own Llama settings and sampling arguments
    state, sampling, size = ours.log["llama_state"], ours.log["sampling"], ours.pool.size
    single, pool = RawPool(state, sampling, 1), RawPool(state, sampling, size)
    anchors = [single, pool]
    ways = {
        "graphopt": lambda chunk: ours.run(chunk, task),
        "raw_single": lambda chunk: single.run([task.seed_program.messages(ex.input) for ex in chunk]),
        "raw_pool": lambda chunk: pool.run([task.seed_program.messages(ex.input) for ex in chunk]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if server:
            served = Server(sampling, size, Path(tmp))
            anchors.append(served)
            ways["server"] = lambda chunk: served.run([task.seed_program.messages(ex.input) for ex in chunk])
        for way in anchors:  # the same warm-up prompt as graphopt's, off the clock
            way.run([task.seed_program.messages(warmup.input)])
        load_before = os.getloadavg()
        wall, cpu = dict.fromkeys(ways, 0.0), dict.fromkeys(ways, 0.0)
        tokens: dict[str, dict[str, int]] = {name: {} for name in ways}
        names = list(ways)
        per_round = -(-len(examples) // rounds)
        for r in range(rounds):
            chunk = examples[r * per_round : (r + 1) * per_round]
            for name in names[r % len(names) :] + names[: r % len(names)]:
                cpu_of = served.cpu if name == "server" else time.process_time
                started, cpu_started = time.perf_counter(), cpu_of()
                tokens[name].update(ways[name](chunk))
                wall[name] += time.perf_counter() - started
                cpu[name] += cpu_of() - cpu_started
        load_after = os.getloadavg()
        for way in (ours, *anchors):
            way.close()
    n = len(examples)
    rates = {name: n / wall[name] for name in ways}
    differ = unequal_lengths(tokens)
    return {
        "examples": n,
        "instances": size,
        "cores": os.cpu_count(),
        "rounds": rounds,
        "settings": {k: state[k] for k in ("n_ctx", "n_batch", "n_ubatch", "n_threads", "n_threads_batch", "seed")},
        "sampling": sampling,
        "prompts_per_s": rates,
        "cpu_s_per_prompt": {name: cpu[name] / n for name in ways},
        "completion_tokens": {name: sum(t.values()) for name, t in tokens.items()},
        "unequal_lengths": len(differ),
        "ratios": {f"graphopt_vs_{name}": rates["graphopt"] / rates[name] for name in ways if name != "graphopt"},
        "accuracy": sum(ours.scores[1:]) / max(len(ours.scores) - 1, 1),
        "load_before": load_before,
        "load_after": load_after,
    }


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    ratios = figures["ratios"]
    return {
        f"graphopt / raw single {ratios['graphopt_vs_raw_single']:.2f}x (target >= {TARGET_VS_SINGLE}x)":
            ratios["graphopt_vs_raw_single"] >= TARGET_VS_SINGLE,
        f"graphopt / raw pool {ratios['graphopt_vs_raw_pool']:.2f}x (target >= {TARGET_VS_POOL}x)":
            ratios["graphopt_vs_raw_pool"] >= TARGET_VS_POOL,
        f"equal completion lengths in every way ({figures['unequal_lengths']} prompts differ)":
            figures["unequal_lengths"] == 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--instances", type=int, default=None, help="pool size (default: graphopt's sizing)")
    parser.add_argument("--background", type=int, default=0, help="busy processes to run alongside")
    parser.add_argument("--rounds", type=int, default=3, help="slices of the examples, the order of the ways rotated")
    parser.add_argument("--no-server", action="store_true", help="leave out the llama_cpp.server anchor")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    note = None if args.no_server else batched_server_note()
    busy = [multiprocessing.Process(target=_busy, args=(3600.0,), daemon=True) for _ in range(args.background)]
    for process in busy:
        process.start()
    try:
        figures = run(args.examples, args.instances, args.rounds, not args.no_server)
    finally:
        for process in busy:
            process.terminate()
            process.join()
    figures["background_processes"] = args.background
    figures["server_note"] = note
    checks = verdicts(figures)
    if args.json:
        print(json.dumps({**figures, "verdicts": checks, "targets_met": all(checks.values())}, indent=2))
        return 0 if all(checks.values()) else 1
    rates, cpu, tokens, size = figures["prompts_per_s"], figures["cpu_s_per_prompt"], figures["completion_tokens"], figures["instances"]
    print(f"word_sorting seed program, {figures['examples']} examples, {figures['cores']} cores, "
          f"{args.background} busy background processes")
    print(f"load average before {figures['load_before'][0]:.2f}, after {figures['load_after'][0]:.2f}")
    print(f"every way: {figures['settings']}, sampling {figures['sampling']}")
    if note:
        print(note)
    labels = {
        "graphopt": f"graphopt evaluate(), pool of {size} (accuracy {figures['accuracy']:.3f})",
        "raw_single": "raw llama-cpp-python, 1 instance",
        "raw_pool": f"raw llama-cpp-python, {size} instances",
        "server": f"llama_cpp.server, {size} clients (one request at a time)",
    }
    for name, rate in rates.items():
        print(f"{labels[name]:<58}{rate:6.2f} prompts/s  cpu {cpu[name]:.3f} s/prompt  {tokens[name]} completion tokens")
    for name, ratio in figures["ratios"].items():
        print(f"{name.replace('_vs_', ' / ')}: {ratio:.2f}x")
    for what, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
