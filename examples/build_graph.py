"""Build an optimizer graph in Python, save it, and run it on a task.

Two branches (critique -> rewrite, and paraphrase) run concurrently; their proposals are pooled
and the best on the minibatch, the current program included, goes on to validation (a tie goes to a
proposal, `ties="last"`: the loop's acceptance examples then decide it, not the 4-example minibatch).

    python examples/build_graph.py            # scripted fake model: instant, shows the plumbing
    python examples/build_graph.py --local    # the embedded SmolLM2 model (slow, small gains)
"""

from __future__ import annotations

import asyncio
import json
import sys

from graphopt.graph import Graph, save_graph
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.loop import LoopSizes, optimize
from graphopt.tasks import get_task

# 1. The graph: nodes are handles, `a.port >> b.port` draws an edge; build() validates.
g = Graph("two_branches", description="critique/rewrite and paraphrase branches, pooled, best kept")
critique = g.node("critique", max_failures=3)
rewrite = g.node("rewrite", k=2)
paraphrase = g.node("paraphrase", n=2)
pool = g.node("ensemble", mode="union")
select = g.node("select", k=1, ties="last")
g.input.program >> critique.candidates
g.input.traces >> critique.traces
g.input.program >> rewrite.candidates
critique.feedback >> rewrite.feedback
g.input.program >> paraphrase.candidates
rewrite.candidates >> pool.candidates
paraphrase.candidates >> pool.candidates
g.input.program >> select.candidates
pool.candidates >> select.candidates
spec = g.build()
save_graph(spec, "two_branches.graph.json")  # reuse: graphopt optimize --graph two_branches.graph.json


# 2. A model: the embedded one, or a scripted fake that "understands" only one instruction.
def scripted(messages: list[dict[str, str]], request) -> str:
    if request.model == "fake/program":  # sorts only when told to sort alphabetically
        words = messages[-1]["content"].split(": ")[-1].split()
        return " ".join(sorted(words) if "alphabetical" in messages[0]["content"] else words)
    if "Do not write the new instruction" in messages[-1]["content"]:
        return "The instruction should say to sort in alphabetical order."
    return json.dumps({"instruction": "Put the words in alphabetical order, separated by spaces."})


if "--local" in sys.argv:
    lm = LM(LMConfig())
else:
    lm = LM(LMConfig().with_models(program="fake/program", optimizer="fake/optimizer"),
            transport=FakeModel(fn=scripted), cache_dir=None)

# 3. The inner loop on a small generated task.
task = get_task("word_sorting", difficulty="easy", sizes=(20, 10, 10))
seed = task.seed_program.with_instruction("Look at the words.")
result = asyncio.run(optimize(seed, spec, task, lm, LoopSizes(steps=2, minibatch=4)))
print(f"validation: {result.initial_val:.2f} -> {result.best_val:.2f}")
print(f"best instruction: {result.best_program.instruction}")
for record in result.history:
    print(f"step {record.step}: candidates {[c.program.id for c in record.candidates]}, "
          f"dropped {[d['reason'] for d in record.dropped]}, accepted {record.accepted}")
