"""fewshot: attaches worked examples (demos) to programs; no model call.

Where the demos come from (`source`):
    "traces": the correct minibatch traces of the first candidate (wired `traces`), each shown
        with the program's own output (bootstrapping, as in DSPy's BootstrapFewShot). These are
        minibatch examples, so a `select` after this node scores them on inputs it has seen as
        demos: the validation check of the loop is what keeps that honest.
    "train": train examples outside the minibatch, shown with their targets as the output. A
        target is the bare answer, so these demos teach the answer format, not the reasoning.
    "auto" (default): correct traces first, filled up to `max_demos` from train.
Each of the `k` variants draws its own sample (seeded by the step and the variant number) and
replaces the parent's demos. Demos go to the answering step; in a program of several steps a
bootstrapped demo shows that step's own input (earlier outputs filled in), and train targets are
used only when the answering step reads the bare input.
"""

from __future__ import annotations

__all__ = ["FewShot", "demo_pools"]

import random
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ..program.model import Demo, Program
from ..types import Trace
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

        max_demos: int = Field(3, ge=1, le=32, description="demos per program")
        k: int = Field(1, ge=1, le=32, description="variants (demo samples) per parent")
        parents: int = Field(1, ge=1, le=32, description="give demos to the first N candidates")
        source: Literal["auto", "traces", "train"] = "auto"

    def _sample(self, rng: random.Random, bootstrapped: list[Demo], from_train: list[Demo]) -> list[Demo]:
        n = self.params.max_demos
        demos = rng.sample(bootstrapped, min(n, len(bootstrapped)))
        demos += rng.sample(from_train, min(n - len(demos), len(from_train)))
        return demos

    def demos_shown(self) -> int:
        return self.params.max_demos

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        candidates = inputs["candidates"][: self.params.parents]
        bootstrapped, from_train = demo_pools(ctx, candidates, inputs.get("traces") or [], self.params.source)
        if not bootstrapped and not from_train:
            ctx.dropped.append(Dropped(self.node_id, f"no demos available (source {self.params.source!r})"))
            return {"candidates": []}
        out: list[Program] = []
        seen: set[str] = set()
        for p, parent in enumerate(candidates):
            for i in range(self.params.k):
                rng = random.Random(f"{ctx.step}:{p}:{i}")
                program = parent.with_demos(self._sample(rng, bootstrapped, from_train))
                if program.id in seen or program.id == parent.id:
                    ctx.dropped.append(Dropped(self.node_id, "same demos as another program"))
                    continue
                seen.add(program.id)
                out.append(program)
        return {"candidates": out}
