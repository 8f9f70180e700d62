"""fewshot: attaches worked examples (demos) to programs; no model call.

Where the demos come from (`source`):
    "traces": the correct minibatch traces of the first candidate (wired `traces`), each shown
        with the program's own output (bootstrapping, as in DSPy's BootstrapFewShot). These are
        minibatch examples, so a `select` after this node scores them on inputs it has seen as
        demos: the validation check of the loop is what keeps that honest.
    "train": train examples outside the minibatch, shown with their targets as the output. A
        target is the bare answer, so these demos teach the answer format, not the reasoning.
    "auto" (default): correct traces first, filled up to `max_demos` from train.
How a variant's demos are chosen (`choose`), each variant seeded by the step and its number:
    "random" (default): a random sample, correct traces first (DSPy's BootstrapFewShot sets).
    "diverse": demos whose inputs cover the pool, correct traces first as in a random sample:
        from each source the first at random, then each the one least like those already chosen
        (word-set overlap of the inputs), so near-duplicates are not shown twice.
    "greedy": from the parent's demos (its first `max_demos`), add or drop one demo at a time (up
        to `tries` additions drawn from the pool, and every drop) while the best change raises
        the minibatch score, for at most `rounds` rounds: the only choice that calls the program
        model (the node is then a scoring one). `by` scores a set by the task's metric or by the
        log-probability of the targets (where the program model gives it; else the metric), which
        moves where the metric is flat. A program is scored on the minibatch examples it does not
        show as demos (a bootstrapped demo is a minibatch example with its answer: scored on it,
        the copy would win), each set in the order it would be shown.
The demos are then shown in `order`: as chosen, "similar_last" (the demo most like the step's
minibatch inputs last, next to the input; a demo's own example is not counted), or "short_first".
Each variant replaces the parent's demos. Demos go to the answering step; in a program of several
steps a bootstrapped demo shows that step's own input (earlier outputs filled in), and train
targets are used only when the answering step reads the bare input.
"""

from __future__ import annotations

__all__ = ["FewShot", "demo_pools", "bootstrapped_demos"]

import asyncio
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ..program.model import Demo, Program
from ..types import Trace
from ..program.retrieval import TOKEN_PATTERN
from .base import Dropped, Operator, OperatorParams, Port, StepContext
from .registry import register_operator


def bootstrapped_demos(candidates: list[Program], traces: list[Trace]) -> list[tuple[Demo, str]]:
    """(demo, input of the example it was made from) for each correct trace with an output.

    The demo shows the answering step's own input, which in a program of several steps is not
    the example's: the pair says which minibatch example a demo must not be scored on.
    """
    answer = candidates[0].answer_step.name if candidates else ""
    return [
        (Demo(input=next((s.input for s in reversed(t.steps) if s.name == answer), t.example.input), output=t.output),
         t.example.input)
        for t in traces if t.correct and t.output
    ]


def demo_pools(
    ctx: StepContext, candidates: list[Program], traces: list[Trace], source: str, *, minibatch: bool = False
) -> tuple[list[Demo], list[Demo]]:
    """The demos `candidates` can be given: (bootstrapped from correct traces, labeled train examples).

    `source` is "auto" (both), "traces" or "train". Train targets fit as demos only when the
    answering step sees the bare input; bootstrapped demos show the answering step's own input.
    The step's minibatch examples are left out of the train demos unless `minibatch` is True
    (a retrieval pool, which never shows an input its own example).
    """
    bootstrapped: list[Demo] = []
    if source in ("auto", "traces"):
        bootstrapped = [demo for demo, _ in bootstrapped_demos(candidates, traces)]
    from_train: list[Demo] = []
    reads_input = all(p.answer_step.input == "{input}" and not p.pipeline for p in candidates)
    if source in ("auto", "train") and reads_input:
        seen = set() if minibatch else {ex.id for ex in ctx.minibatch}
        from_train = [Demo(input=ex.input, output=ex.target) for ex in ctx.task.train if ex.id not in seen]
    return bootstrapped, from_train


@register_operator
class FewShot(Operator):
    """`k` copies of each of the first `parents` candidates, each with up to `max_demos` demos."""

    name = "fewshot"
    kind = "data"
    description = (
        "Attaches demos (bootstrapped from correct traces, or train examples) to programs: random, diverse "
        "or greedy add/drop sets, in a chosen order."
    )
    inputs = {
        "candidates": Port("Candidates", doc="programs to give demos; the first `parents` are used"),
        "traces": Port("Traces", required=False, doc="minibatch traces of the first candidate"),
    }
    outputs = {"candidates": Port("Candidates", doc="the programs with demos")}
    prompts = {}

    class Params(OperatorParams):
        model_config = ConfigDict(extra="forbid", frozen=True)
        added_later = frozenset({"choose", "order", "rounds", "tries", "by"})

        max_demos: int = Field(3, ge=1, le=32, description="demos per program")
        k: int = Field(1, ge=1, le=32, description="variants (demo samples) per parent")
        parents: int = Field(1, ge=1, le=32, description="give demos to the first N candidates")
        source: Literal["auto", "traces", "train"] = Field(
            "auto", description="demos from correct traces (the program's own outputs), train targets, or both")
        choose: Literal["random", "diverse", "greedy"] = Field(
            "random", description="how demos are chosen: a random sample, inputs that cover the pool, or greedy add/drop on the minibatch")
        order: Literal["drawn", "similar_last", "short_first"] = Field(
            "drawn", description="the order demos are shown in: as chosen, most like the minibatch last, or shortest first")
        rounds: int = Field(2, ge=1, le=8, description="greedy: most rounds of one add or drop")
        tries: int = Field(4, ge=1, le=16, description="greedy: demos tried for addition per round")
        by: Literal["metric", "likelihood"] = Field(
            "metric", description="greedy: score a set by the task's metric, or by the log-probability of the "
            "targets (the embedded model; falls back to the metric)")

    def __init__(self, node_id: str, params: dict[str, Any] | None = None, prompts: dict[str, str] | None = None):
        super().__init__(node_id, params, prompts)
        if self.params.choose == "greedy":
            self.kind = "score"  # it runs the program model on the minibatch

    def _sample(self, rng: random.Random, bootstrapped: list[Demo], from_train: list[Demo]) -> list[Demo]:
        n = self.params.max_demos
        demos = rng.sample(bootstrapped, min(n, len(bootstrapped)))
        demos += rng.sample(from_train, min(n - len(demos), len(from_train)))
        return demos

    def _diverse(self, rng: random.Random, bootstrapped: list[Demo], from_train: list[Demo]) -> list[Demo]:
        """Correct traces first (as in a random sample), then train demos, each source spread over its pool."""
        chosen: list[Demo] = []
        for pool in (bootstrapped, from_train):
            chosen += _spread(rng, list(dict.fromkeys(pool)), self.params.max_demos - len(chosen), chosen)
        return chosen

    async def _held_out(self, ctx: StepContext, programs: list[Program], origin: Mapping[Demo, str]) -> dict[str, float]:
        """Each program's mean score (by `by`) on the minibatch examples it does not show as a demo:
        a bootstrapped demo is a minibatch example with its answer, which the model would copy.
        `origin` maps a bootstrapped demo to its example's input."""
        async def one(program: Program) -> float:
            shown = {_example_of(d, origin) for d in program.demos}
            examples = [ex for ex in ctx.minibatch if ex.input.strip() not in shown]
            if not examples:  # nothing to judge it on: the floor of its scale
                return 0.0 if self.params.by == "metric" else float("-inf")
            if self.params.by == "likelihood":
                found = await ctx.likelihood([program], examples)
                if found is not None:
                    return found[program.id]
            return (await ctx.score([program], examples))[program.id]

        values = await asyncio.gather(*(one(p) for p in programs))
        return {p.id: v for p, v in zip(programs, values)}

    async def _greedy(
        self, ctx: StepContext, rng: random.Random, parent: Program, pool: list[Demo], origin: Mapping[Demo, str]
    ) -> list[Demo]:
        def shown(demos: list[Demo]) -> list[Demo]:  # a set is scored in the order it would be shown
            return self._ordered(ctx, demos, origin)

        current = shown(list(parent.demos)[: self.params.max_demos])
        start = parent.with_demos(current)
        best = (await self._held_out(ctx, [start], origin))[start.id]
        for _ in range(self.params.rounds):
            outside = [d for d in pool if d not in current]
            moves = [shown(current + [d]) for d in rng.sample(outside, min(self.params.tries, len(outside)))
                     if len(current) < self.params.max_demos]
            moves += [current[:i] + current[i + 1:] for i in range(len(current))]
            if not moves:
                break
            programs = [parent.with_demos(m) for m in moves]
            scores = await self._held_out(ctx, programs, origin)
            top = max(range(len(moves)), key=lambda i: (scores[programs[i].id], -i))
            if scores[programs[top].id] <= best:
                break  # no single change helps: stop rather than drift on ties
            current, best = moves[top], scores[programs[top].id]
        return current

    def _ordered(self, ctx: StepContext, demos: list[Demo], origin: Mapping[Demo, str] | None = None) -> list[Demo]:
        if self.params.order == "short_first":
            return sorted(demos, key=lambda d: len(d.input) + len(d.output))
        if self.params.order == "similar_last":
            def likeness(demo: Demo) -> float:  # its own example says nothing about the others
                own = _example_of(demo, origin or {})
                batch = [_words(ex.input) for ex in ctx.minibatch if ex.input.strip() != own]
                return sum(_overlap(_words(demo.input), b) for b in batch) / max(len(batch), 1)

            return [d for _, _, d in sorted(zip(map(likeness, demos), range(len(demos)), demos))]
        return demos

    def demos_shown(self) -> int:
        return self.params.max_demos

    def made(self) -> int:
        # per parent (at most `parents` of them: fewer when fewer candidates come in)
        if self.params.choose == "greedy":  # every add or drop it tries is scored on the minibatch
            return self.params.parents * self.params.k * (1 + self.params.rounds * (self.params.tries + self.params.max_demos))
        return self.params.parents * self.params.k

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        candidates = inputs["candidates"][: self.params.parents]
        traces = inputs.get("traces") or []
        bootstrapped, from_train = demo_pools(ctx, candidates, traces, self.params.source)
        if not bootstrapped and not from_train:
            ctx.dropped.append(Dropped(self.node_id, f"no demos available (source {self.params.source!r})"))
            return {"candidates": []}
        out: list[Program] = []
        seen: set[str] = set()
        pool = list(dict.fromkeys([*bootstrapped, *from_train]))
        origin = dict(bootstrapped_demos(candidates, traces)) if bootstrapped else {}
        for p, parent in enumerate(candidates):
            for i in range(self.params.k):
                rng = random.Random(f"{ctx.step}:{p}:{i}")
                if self.params.choose == "diverse":
                    demos = self._diverse(rng, bootstrapped, from_train)
                elif self.params.choose == "greedy":
                    demos = await self._greedy(ctx, rng, parent, pool, origin)
                else:
                    demos = self._sample(rng, bootstrapped, from_train)
                program = parent.with_demos(self._ordered(ctx, demos, origin))
                if program.id in seen or program.id == parent.id:
                    ctx.dropped.append(Dropped(self.node_id, "same demos as another program"))
                    continue
                seen.add(program.id)
                out.append(program)
        return {"candidates": out}


def _spread(rng: random.Random, pool: list[Demo], n: int, chosen: Sequence[Demo]) -> list[Demo]:
    """Up to `n` demos of `pool`: the first at random (so variants seeded apart differ), then each
    the one least like those chosen so far (`chosen` and the new picks); ties to the earlier in the pool."""
    pool = [d for d in pool if d not in chosen]
    if n <= 0 or not pool:
        return []
    words = [_words(d.input) for d in pool]
    shown = [_words(d.input) for d in chosen]
    picked = [rng.randrange(len(pool))]
    while len(picked) < min(n, len(pool)):
        rest = [i for i in range(len(pool)) if i not in picked]
        near = [*shown, *(words[j] for j in picked)]
        picked.append(min(rest, key=lambda i: (max(_overlap(words[i], w) for w in near), i)))
    return [pool[i] for i in picked]


def _example_of(demo: Demo, origin: Mapping[Demo, str]) -> str:
    """The input of the example `demo` was made from: its own input unless `origin` says otherwise."""
    return origin.get(demo, demo.input).strip()


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(TOKEN_PATTERN, text.lower()))


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard overlap of two word sets (1: the same words)."""
    return len(a & b) / len(a | b) if a or b else 1.0
