"""retrieve: gives programs a demo pool; each input is then shown its nearest examples. No model call.

The pool holds the correct minibatch traces of the first candidate (the program's own outputs,
as in bootstrapping) and labeled train examples (`source`, as in `fewshot`), at most `pool` of
them; when the program runs, the `k` pool examples nearest to the input (`by`: "bm25", by words;
or "embedding", by meaning: the cosine of the vectors of the program level's `embedding_model`,
see `graphopt.program.retrieval`) are shown after its fixed demos, as kNN few-shot prompting does. An
example is never shown as its own demo, so scoring the program on train examples stays honest.
With `keep_demos` false (the default) the fixed demos are dropped: the retrieved ones replace them.
"""

from __future__ import annotations

__all__ = ["Retrieve"]

import random
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ..program.model import Demo, Retrieval
from .base import Dropped, Operator, OperatorParams, Port, StepContext
from .fewshot import demo_pools
from .registry import register_operator


@register_operator
class Retrieve(Operator):
    """The first `parents` candidates, each given a pool of up to `pool` demos and `k` per input."""

    name = "retrieve"
    kind = "data"
    description = (
        "Gives programs a demo pool; each input is shown its k nearest pool examples (by words, BM25, or by meaning, "
        "an embedding model's vectors), kNN few-shot."
    )
    inputs = {
        "candidates": Port("Candidates", doc="programs to give a demo pool; the first `parents` are used"),
        "traces": Port("Traces", required=False, doc="minibatch traces of the first candidate"),
    }
    outputs = {"candidates": Port("Candidates", doc="the programs with retrieval")}
    prompts = {}

    class Params(OperatorParams):
        model_config = ConfigDict(extra="forbid", frozen=True)
        added_later = frozenset({"by"})

        k: int = Field(3, ge=1, le=16, description="demos retrieved per input")
        pool: int = Field(128, ge=2, le=1024, description="most demos in the pool")
        parents: int = Field(1, ge=1, le=32, description="give retrieval to the first N candidates")
        source: Literal["auto", "traces", "train"] = "auto"
        keep_demos: bool = Field(False, description="keep the program's fixed demos before the retrieved ones")
        by: Literal["bm25", "embedding", "auto"] = Field(
            "bm25", description="nearest by words (BM25, no model), by meaning (the program level's embedding model), "
            "or auto: by meaning where the program level has an embedding model, else by words")

    def _pool(self, ctx: StepContext, candidates: list, traces: list) -> tuple[Demo, ...]:
        bootstrapped, from_train = demo_pools(ctx, candidates, traces, self.params.source, minibatch=True)
        by_input: dict[str, Demo] = {}
        for demo in (*bootstrapped, *from_train):  # the program's own correct output first
            by_input.setdefault(demo.input.strip(), demo)
        pool = list(by_input.values())
        if len(pool) > self.params.pool:
            pool = random.Random(f"retrieve:{ctx.step}").sample(pool, self.params.pool)
        return tuple(pool)

    def made(self) -> int:
        return 0  # gives the programs it is given a pool

    def demos_shown(self) -> int:
        return self.params.k

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        candidates = inputs["candidates"][: self.params.parents]
        can_embed = ctx.lm.embedding_model("program") is not None
        if self.params.by == "embedding" and not can_embed:
            ctx.dropped.append(Dropped(self.node_id, "retrieval by meaning needs an embedding_model at the program level"))
            return {"candidates": []}
        by = "embedding" if self.params.by == "embedding" or (self.params.by == "auto" and can_embed) else "bm25"
        pool = self._pool(ctx, candidates, inputs.get("traces") or [])
        if len(pool) < 2:
            ctx.dropped.append(Dropped(self.node_id, f"fewer than 2 demos for a pool (source {self.params.source!r})"))
            return {"candidates": []}
        retrieval = Retrieval(pool=pool, k=min(self.params.k, len(pool) - 1), by=by)
        out = []
        for parent in candidates:
            changes: dict[str, Any] = {"retrieve": retrieval}
            if not self.params.keep_demos:
                changes["demos"] = ()
            program = parent.with_step(None, **changes)
            if program.id == parent.id:
                ctx.dropped.append(Dropped(self.node_id, "the program already retrieves from this pool"))
                continue
            out.append(program)
        return {"candidates": out}
