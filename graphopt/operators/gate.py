"""gate: passes candidates on only in some steps of the inner loop. No model call.

Gates make optimizer stages out of branches of one graph, as composite optimizers do:
- a chain of stages (one stage's program feeds the next, as DSPy's BetterTogether chains
  optimizers): branch A behind `gate(until=2)`, branch B behind `gate(start=2)`; the loop carries
  the best program from A's steps into B's;
- a switch when a stage stalls (GEPA's adaptive sequence): A behind `gate(when="progressing")`,
  B behind `gate(when="stalled")`, with `patience` steps without an accepted program meaning stalled;
- best-of needs no gate: branches side by side, joined by a `select`.
A closed gate passes nothing on, so the nodes behind it make no model call in that step.
"""

from __future__ import annotations

__all__ = ["Gate"]

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from .base import Operator, OperatorParams, Port, StepContext
from .registry import register_operator


@register_operator
class Gate(Operator):
    """Candidates pass when the step is in [start, until) and the loop's progress matches `when`."""

    name = "gate"
    kind = "data"
    description = (
        "Passes candidates on only in some inner-loop steps (from `start`, before `until`) or only once the loop "
        "has stalled / while it progresses: chains optimizer stages and switches stage when one stalls."
    )
    inputs = {"candidates": Port("Candidates", doc="programs to pass on or hold back")}
    outputs = {"candidates": Port("Candidates", doc="the same programs, or none when the gate is closed")}
    prompts = {}

    class Params(OperatorParams):
        model_config = ConfigDict(extra="forbid", frozen=True)

        start: int = Field(0, ge=0, le=100, description="first step (0-based) in which the gate is open")
        until: int | None = Field(None, ge=1, le=100, description="the gate is closed from this step on (None: never)")
        when: Literal["always", "stalled", "progressing"] = Field(
            "always", description="open always, only once the loop has stalled, or only while it has not"
        )
        patience: int = Field(1, ge=1, le=20, description="steps in a row without an accepted program that make a stall")

        @model_validator(mode="after")
        def _window(self) -> Gate.Params:
            if self.until is not None and self.until <= self.start:
                raise ValueError(f"until ({self.until}) must be after start ({self.start}): the gate would never open")
            return self

    def is_open(self, ctx: StepContext) -> bool:
        p = self.params
        if ctx.step < p.start or (p.until is not None and ctx.step >= p.until):
            return False
        stalled = ctx.stalled >= p.patience
        return p.when == "always" or (p.when == "stalled") == stalled

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"candidates": list(inputs["candidates"]) if self.is_open(ctx) else []}
