"""The Python API end to end: search an optimizer graph, load the winning program, predict.

    python examples/python_api.py                # the embedded model, smoke-size search
    python examples/python_api.py runs/api-demo  # choose the run directory

Every step has a command-line twin: `graphopt search`, `graphopt predict`, `graphopt export`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import graphopt
from graphopt.program import export_program
from graphopt.graph import load_graph
from graphopt.lm import LM, LMConfig
from graphopt.search.budgets import get_budget
from graphopt.search.pipeline import run_search
from graphopt.program import make_shape
from graphopt.tasks import get_task

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/api-demo")

# 1. A task, and the program the search starts from: a shape of the task's seed ("direct" here;
#    "cot" reasons first and ends with an "Answer:" line, "reason_then_answer" is two calls).
#    `Task.with_seed_program` is what `graphopt search --program` does.
task = get_task("word_sorting", difficulty="easy", sizes=(8, 3, 3))
task = task.with_seed_program(make_shape("direct", task.seed_program))

# 2. The models of the three levels (all the embedded SmolLM2 here; any litellm model string
#    works: LMConfig().with_models(program="gpt-4o-mini", optimizer="gpt-4o", meta="o1")).
lm = LM(LMConfig())

# 3. A smoke-size search: one seed graph, one generation of one child, three validation examples.
budget = get_budget("tiny", generations=1, children=1, val_limit=3, test_limit=3, seeds=("tgd",))
try:
    report = asyncio.run(run_search(task, lm, budget, out, [load_graph(name) for name in budget.seeds]))
finally:
    lm.close()
print(f"best graph: {report.best_path}")

# 4. The winner's program, ready to call: it carries the task's extraction rule and stop strings.
runner = graphopt.load_program(out / "best.program.json")
for words in ("pear apple", "moon sun star"):
    prediction = runner(f"Sort the following words alphabetically: List: {words}")
    print(f"{words!r} -> {prediction.answer!r}")
runner.lm.close()

# 5. The same prompt as Markdown, to paste elsewhere.
print(export_program(runner.program, "markdown"))
