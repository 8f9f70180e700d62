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
    "diverse": demos whose inputs cover the pool: the first at random, then each the one least
        like those already chosen (word-set overlap of the inputs), so near-duplicates are not
        shown twice.
    "greedy": from the parent's demos, add or drop one demo at a time (up to `tries` additions
        drawn from the pool, and every drop) while the best change raises the minibatch score,
        for at most `rounds` rounds: the only choice that calls the program model. A program is
        scored on the minibatch examples it does not show as demos (a bootstrapped demo is a
        minibatch example with its answer: scored on it, the copy would win).
The demos are then shown in `order`: as chosen, "similar_last" (the demo most like the step's
minibatch inputs last, next to the input), or "short_first". Each variant replaces the parent's demos. Demos go to the answering step; in a program of several steps a
bootstrapped demo shows that step's own input (earlier outputs filled in), and train targets are
used only when the answering step reads the bare input.
"""

from __future__ import annotations

__all__ = ["FewShot", "demo_pools"]

import asyncio
import random
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ..program.model import Demo, Program
from ..types import Trace
from ..program.retrieval import TOKEN_PATTERN
from .base import Dropped, Operator, OperatorParams, Port, StepContext
from .registry import register_operator


def demo_pools(
    ctx: StepContext, candidates: list[Program], traces: list[Trace], source: str, *, minibatch: bool = False
) -> tuple[list[Demo], list[Demo]]:
    """The demos `candidates` can be given: (bootstrapped from correct traces, labeled train examples).

    `source` is "auto" (both), "traces" or "train". Train targets fit as demos only when the
    answering step sees the bare input; bootstrapped demos show the answering step's own input.
    The step's minibatch examples are left out of the train demos unless `minibatch` is True
    (a retrieval pool, which never shows an input its own example).
    """
    answer = candidates[0].answer_step.name if candidates else ""
    bootstrapped: list[Demo] = []
    if source in ("auto", "traces"):
        bootstrapped = [
            Demo(input=next((s.input for s in reversed(t.steps) if s.name == answer), t.example.input), output=t.output)
            for t in traces if t.correct and t.output
        ]
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
    description = "Attaches demos bootstrapped from correct traces (or train examples) to programs."
    inputs = {
        "candidates": Port("Candidates", doc="programs to give demos; the first `parents` are used"),
        "traces": Port("Traces", required=False, doc="minibatch traces of the first candidate"),
    }
    outputs = {"candidates": Port("Candidates", doc="the programs with demos")}
    prompts = {}

    class Params(OperatorParams):
        model_config = ConfigDict(extra="forbid", frozen=True)
        added_later = frozenset({"choose", "order", "rounds", "tries"})

        max_demos: int = Field(3, ge=1, le=32, description="demos per program")
        k: int = Field(1, ge=1, le=32, description="variants (demo samples) per parent")
        parents: int = Field(1, ge=1, le=32, description="give demos to the first N candidates")
        source: Literal["auto", "traces", "train"] = "auto"
        choose: Literal["random", "diverse", "greedy"] = Field(
            "random", description="how demos are chosen: a random sample, inputs that cover the pool, or greedy add/drop on the minibatch")
        order: Literal["drawn", "similar_last", "short_first"] = Field(
            "drawn", description="the order demos are shown in: as chosen, most like the minibatch last, or shortest first")
        rounds: int = Field(2, ge=1, le=8, description="greedy: most rounds of one add or drop")
        tries: int = Field(4, ge=1, le=16, description="greedy: demos tried for addition per round")

    def _sample(self, rng: random.Random, bootstrapped: list[Demo], from_train: list[Demo]) -> list[Demo]:
        n = self.params.max_demos
        demos = rng.sample(bootstrapped, min(n, len(bootstrapped)))
        demos += rng.sample(from_train, min(n - len(demos), len(from_train)))
        return demos

    def _diverse(self, rng: random.Random, pool: list[Demo]) -> list[Demo]:
        words = [_words(d.input) for d in pool]
        chosen = [rng.randrange(len(pool))]
        while len(chosen) < min(self.params.max_demos, len(pool)):
            rest = [i for i in range(len(pool)) if i not in chosen]
            # The least like anything chosen; ties to the earlier in the pool (correct traces first).
            chosen.append(min(rest, key=lambda i: (max(_overlap(words[i], words[j]) for j in chosen), i)))
        return [pool[i] for i in chosen]

    async def _held_out(self, ctx: StepContext, programs: list[Program]) -> dict[str, float]:
        """Each program's mean score on the minibatch examples it does not show as a demo: a
        bootstrapped demo is a minibatch example with its answer, which the model would copy."""
        async def one(program: Program) -> float:
            shown = {d.input.strip() for d in program.demos}
            examples = [ex for ex in ctx.minibatch if ex.input.strip() not in shown]
            return (await ctx.score([program], examples))[program.id] if examples else 0.0

        values = await asyncio.gather(*(one(p) for p in programs))
        return {p.id: v for p, v in zip(programs, values)}

    async def _greedy(self, ctx: StepContext, rng: random.Random, parent: Program, pool: list[Demo]) -> list[Demo]:
        current = list(parent.demos)
        best = (await self._held_out(ctx, [parent]))[parent.id]
        for _ in range(self.params.rounds):
            outside = [d for d in pool if d not in current]
            moves = [current + [d] for d in rng.sample(outside, min(self.params.tries, len(outside)))
                     if len(current) < self.params.max_demos]
            moves += [current[:i] + current[i + 1:] for i in range(len(current))]
            if not moves:
                break
            programs = [parent.with_demos(m) for m in moves]
            scores = await self._held_out(ctx, programs)
            top = max(range(len(moves)), key=lambda i: (scores[programs[i].id], -i))
            if scores[programs[top].id] <= best:
                break  # no single change helps: stop rather than drift on ties
            current, best = moves[top], scores[programs[top].id]
        return current

    def _ordered(self, ctx: StepContext, demos: list[Demo]) -> list[Demo]:
        if self.params.order == "short_first":
            return sorted(demos, key=lambda d: len(d.input) + len(d.output))
        if self.params.order == "similar_last":
            batch = [_words(ex.input) for ex in ctx.minibatch]
            likeness = [sum(_overlap(_words(d.input), b) for b in batch) / max(len(batch), 1) for d in demos]
            return [d for _, _, d in sorted(zip(likeness, range(len(demos)), demos))]
        return demos

    def demos_shown(self) -> int:
        return self.params.max_demos

    def made(self) -> int:
        if self.params.choose == "greedy":  # every add or drop it tries is scored on the minibatch
            return self.params.k * (1 + self.params.rounds * (self.params.tries + self.params.max_demos))
        return self.params.k

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        candidates = inputs["candidates"][: self.params.parents]
        bootstrapped, from_train = demo_pools(ctx, candidates, inputs.get("traces") or [], self.params.source)
        if not bootstrapped and not from_train:
            ctx.dropped.append(Dropped(self.node_id, f"no demos available (source {self.params.source!r})"))
            return {"candidates": []}
        out: list[Program] = []
        seen: set[str] = set()
        pool = list(dict.fromkeys([*bootstrapped, *from_train]))
        for p, parent in enumerate(candidates):
            for i in range(self.params.k):
                rng = random.Random(f"{ctx.step}:{p}:{i}")
                if self.params.choose == "diverse":
                    demos = self._diverse(rng, pool)
                elif self.params.choose == "greedy":
                    demos = await self._greedy(ctx, rng, parent, pool)
                else:
                    demos = self._sample(rng, bootstrapped, from_train)
                program = parent.with_demos(self._ordered(ctx, demos))
                if program.id in seen or program.id == parent.id:
                    ctx.dropped.append(Dropped(self.node_id, "same demos as another program"))
                    continue
                seen.add(program.id)
                out.append(program)
        return {"candidates": out}


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(TOKEN_PATTERN, text.lower()))


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard overlap of two word sets (1: the same words)."""
    return len(a & b) / len(a | b) if a or b else 1.0
