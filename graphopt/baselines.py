"""The seed paper's baselines as built-ins: zero-shot CoT, few-shot CoT, self-consistency, best-of-N.

Each runs a program (by default the task's seed turned into the `cot` shape) on examples and
returns an `Evaluation`, so `graphopt eval --baseline NAME` reports its accuracy and cost like
any program.

- zero_shot_cot: the cot program as it is.
- few_shot_cot: k demos bootstrapped from train (the cot program's own correct reasoning on
  train examples, as DSPy's BootstrapFewShot), then evaluated.
- self_consistency: n samples per example at temperature > 0, majority vote on the extracted
  answer (ties: the answer sampled first).
- best_of_n: n samples per example; a judge (the judge level's model) picks one.

Example:
    >>> import asyncio
    >>> from graphopt.lm import LM
    >>> from graphopt.testing import FakeModel
    >>> from graphopt.tasks import get_task
    >>> task = get_task("word_sorting", sizes=(5, 5, 5))
    >>> lm = LM(transport=FakeModel(default="Answer: x"), cache_dir=None)
    >>> asyncio.run(run_baseline("self_consistency", task, task.val, lm, samples=3)).accuracy
    0.0
"""

from __future__ import annotations

__all__ = ["BASELINES", "baseline_names", "run_baseline", "bootstrap_demos", "majority_vote", "check_baseline"]

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .errors import ConfigError, LLMError, did_you_mean
from .lm import LM
from .program.run import Evaluation, run_program
from .program.shapes import make_shape
from .tasks.base import Task
from .program.model import Demo, Program
from .types import Example, Trace

JUDGE_PROMPT = """Several candidate answers were written for the same input. Pick the best one.

Input:
{input}

{candidates}

Which candidate answers the input correctly? Reply with JSON {{"best": NUMBER}} and nothing else."""

_JUDGE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "best",
        "schema": {"type": "object", "properties": {"best": {"type": "integer"}}, "required": ["best"],
                   "additionalProperties": False},
    },
}


def majority_vote(traces: list[Trace]) -> Trace | None:
    """The trace whose extracted answer most samples share (ties: the one sampled first); None when all errored."""
    usable = [t for t in traces if not t.error]
    if not usable:
        return None
    counts = Counter(t.answer.strip() for t in usable)
    top = max(counts.values())
    return next(t for t in usable if counts[t.answer.strip()] == top)


async def bootstrap_demos(program: Program, task: Task, lm: LM, k: int) -> list[Demo]:
    """Up to `k` demos: `program`'s own correct outputs on train examples, in train order.

    Train examples are tried in batches of `2k` until `k` are correct or train runs out.
    """
    demos: list[Demo] = []
    batch = max(2 * k, 1)
    for start in range(0, len(task.train), batch):
        traces = await run_program(program, task.train[start : start + batch], task, lm)
        demos += [Demo(input=t.steps[-1].input if t.steps else t.example.input, output=t.output)
                  for t in traces if t.correct and t.output]
        if len(demos) >= k:
            break
    return demos[:k]


async def _samples(program: Program, examples: list[Example], task: Task, lm: LM, n: int, temperature: float) -> list[list[Trace]]:
    """Per example, `n` sampled traces (each run of the program is one sample)."""
    runs = await asyncio.gather(*(run_program(program, examples, task, lm, temperature=temperature) for _ in range(n)))
    return [[run[i] for run in runs] for i in range(len(examples))]


def _voted(samples: list[Trace]) -> Trace:
    """The majority's trace (already scored by the task's metric when it ran), else the first sample."""
    chosen = majority_vote(samples)
    return samples[0] if chosen is None else chosen


async def _judge(lm: LM, example: Example, samples: list[Trace]) -> Trace | None:
    usable = [t for t in samples if not t.error]
    if len(usable) <= 1:
        return usable[0] if usable else None
    listed = "\n\n".join(f"Candidate {i}:\n{t.output.strip()}" for i, t in enumerate(usable, 1))
    prompt = JUDGE_PROMPT.format(input=example.input, candidates=listed)
    try:
        reply = await lm.complete("judge", [{"role": "user", "content": prompt}], response_format=_JUDGE_FORMAT)
    except LLMError as exc:
        if exc.fatal:
            raise
        return majority_vote(usable)
    match = re.search(r'"best"\s*:\s*(\d+)', reply.text) or re.search(r"(\d+)", reply.text)
    pick = int(match.group(1)) if match else 0
    return usable[pick - 1] if 1 <= pick <= len(usable) else majority_vote(usable)


@dataclass(frozen=True)
class Options:
    """What the baselines take: samples, demos, temperature, and the program to start from."""

    samples: int = 5
    demos: int = 3
    temperature: float = 0.7


async def _zero_shot_cot(program: Program, task: Task, examples: list[Example], lm: LM, opts: Options) -> Evaluation:
    return Evaluation(program, await run_program(program, examples, task, lm))


async def _few_shot_cot(program: Program, task: Task, examples: list[Example], lm: LM, opts: Options) -> Evaluation:
    demos = await bootstrap_demos(program, task, lm, opts.demos)
    with_demos = program.with_demos(demos)
    return Evaluation(with_demos, await run_program(with_demos, examples, task, lm))


async def _self_consistency(program: Program, task: Task, examples: list[Example], lm: LM, opts: Options) -> Evaluation:
    samples = await _samples(program, examples, task, lm, opts.samples, opts.temperature)
    return Evaluation(program, [_voted(s) for s in samples])


async def _best_of_n(program: Program, task: Task, examples: list[Example], lm: LM, opts: Options) -> Evaluation:
    samples = await _samples(program, examples, task, lm, opts.samples, opts.temperature)
    picks = await asyncio.gather(*(_judge(lm, ex, s) for ex, s in zip(examples, samples)))
    # Each sample was scored by the task's metric when it ran: the pick keeps its score.
    return Evaluation(program, [sample[0] if pick is None else pick for sample, pick in zip(samples, picks)])


@dataclass(frozen=True)
class _Baseline:
    run: Callable[[Program, Task, list[Example], LM, Options], Awaitable[Evaluation]]
    doc: str
    levels: tuple[str, ...] = ("program",)


BASELINES: dict[str, _Baseline] = {
    "zero_shot_cot": _Baseline(_zero_shot_cot, "reason step by step, then an Answer: line"),
    "few_shot_cot": _Baseline(_few_shot_cot, "zero-shot CoT with --demos K demos bootstrapped from train"),
    "self_consistency": _Baseline(_self_consistency, "--samples N CoT samples at --temperature, majority vote"),
    "best_of_n": _Baseline(_best_of_n, "--samples N CoT samples; the judge model picks one", ("program", "judge")),
}


def baseline_names() -> list[str]:
    """The built-in baseline names."""
    return list(BASELINES)


def check_baseline(name: str, *, samples: int = 5, temperature: float = 0.7) -> tuple[str, ...]:
    """The levels baseline `name` calls, after checking its name and options.

    Raises:
        ConfigError: an unknown name (with the closest names), or sampling at temperature 0.
    """
    baseline = BASELINES.get(name)
    if baseline is None:
        raise ConfigError(f"unknown baseline {name!r}{did_you_mean(name, BASELINES)}: use one of {', '.join(BASELINES)}")
    if name in ("self_consistency", "best_of_n") and (temperature <= 0 or samples < 1):
        raise ConfigError(f"{name} samples: it needs --temperature above 0 (got {temperature:g}) and --samples of 1 or more")
    return baseline.levels


async def run_baseline(
    name: str, task: Task, examples: list[Example], lm: LM, *, program: Program | None = None,
    samples: int = 5, demos: int = 3, temperature: float = 0.7,
) -> Evaluation:
    """Runs baseline `name` on `examples` and scores it.

    Args:
        name: zero_shot_cot, few_shot_cot, self_consistency or best_of_n.
        task: the task (its train split gives few-shot demos).
        examples: what to score (e.g. the test split).
        lm: the client; best_of_n also calls its judge level.
        program: the program sampled; default the task's seed in the `cot` shape.
        samples: samples per example (self_consistency, best_of_n).
        demos: demos to bootstrap (few_shot_cot).
        temperature: sampling temperature (self_consistency, best_of_n).

    Returns:
        The evaluation (few_shot_cot's carries the program with its demos).

    Raises:
        ConfigError: an unknown baseline or bad options.
    """
    check_baseline(name, samples=samples, temperature=temperature)
    start = program if program is not None else make_shape("cot", task.seed_program)
    return await BASELINES[name].run(start, task, examples, lm, Options(samples, demos, temperature))
