"""Fuzzing compile and run: every spec that validates compiles in LangGraph and runs a step.

Specs are built the way a search builds them (the built-in graphs through random chains of the
real mutations), then their node ids are replaced by random text, odd characters included
(":", "|", "__start__", ...). Validation may refuse a spec; one it accepts must compile and run
one inner-loop step with the scripted model, so the validator never passes what LangGraph or
an operator then refuses.
"""

from __future__ import annotations

import asyncio
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from search_fakes import scripted

from graphopt.graph.compile import compile_graph
from graphopt.graph.io import load_graph
from graphopt.graph.spec import EdgeSpec, GraphSpec
from graphopt.graph.validate import validate
from graphopt.lm import LM
from graphopt.testing import FakeModel
from graphopt.loop import LoopSizes, optimize
from graphopt.search.mutations import default_mutations, mutate
from graphopt.tasks import get_task

BUILTIN = ("tgd", "tgd_select", "ensemble", "opro", "fewshot", "fewshot_rs", "knn", "vote", "fewshot_format", "bootstrap")
ODD = ["__start__", "__end__", "a:b", "a|b", "input", "x.y", " a", "a-b", "A1", "n_2", "", "é", "@outputs"]
node_ids = st.sampled_from(ODD) | st.text(alphabet="ab:_|-. 1@", min_size=0, max_size=6)

TASK = get_task("word_sorting", difficulty="easy", sizes=(6, 4, 2), seed=1)


def _renamed(spec: GraphSpec, new_ids: list[str]) -> GraphSpec:
    ids = {n.id: (new_ids[i] if i < len(new_ids) else n.id) for i, n in enumerate(spec.nodes)}

    def end(text: str) -> str:
        node, port = text.split(".", 1)
        return f"{ids.get(node, node)}.{port}"

    nodes = [n.model_copy(update={"id": ids[n.id]}) for n in spec.nodes]
    edges = [EdgeSpec(source=end(e.source), target=end(e.target)) for e in spec.edges]
    return spec.model_copy(update={"nodes": nodes, "edges": edges})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(BUILTIN),
    seed=st.integers(0, 2**31),
    mutations=st.integers(0, 4),
    new_ids=st.lists(node_ids, max_size=6),
)
def test_every_spec_that_validates_compiles_and_runs_a_step(base, seed, mutations, new_ids):
    spec = load_graph(base)
    rng = random.Random(seed)
    for _ in range(mutations):
        child, _ = mutate(spec, default_mutations(), rng)
        spec = child or spec
    spec = _renamed(spec, new_ids)
    if validate(spec):
        return  # refused with its reasons: nothing more to check
    compiled = compile_graph(spec)  # never a LangGraph ValueError for a valid spec
    lm = LM(transport=FakeModel(fn=scripted), cache_dir=None)
    result = asyncio.run(optimize(TASK.seed_program, compiled, TASK, lm, LoopSizes(steps=1, minibatch=2, val_limit=2)))
    assert len(result.history) == 1 and result.history[0].error == ""
    assert result.best_val is not None
