"""The inner loop's sizes: one spelling for `graphopt.loop.optimize`, the search's units, study
cells and the optimize command (a light module: reading sizes loads no graph machinery)."""

from __future__ import annotations

__all__ = ["LoopSizes"]

from pydantic import BaseModel, ConfigDict, Field


class LoopSizes(BaseModel):
    """The inner loop's sizes, one spelling for `optimize`, the search's units and study cells.

    Attributes:
        steps: optimizer steps to run (0: only score the start).
        minibatch: train examples per step.
        val_limit: validation examples the returned program is scored on (the first N; the dev
            split is at most that large too); None: all of them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: int = Field(3, ge=0)
    minibatch: int = Field(8, ge=1)
    val_limit: int | None = Field(None, ge=1)
