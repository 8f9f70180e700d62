"""The run facade is the search's one writer of the store: every write a search makes goes through
`graphopt.search.run.Run`, whichever phase or policy asked for it."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
from search_fakes import scripted

from graphopt.graph.io import load_graph
from graphopt.lm import LM, LMConfig
from graphopt.search.budgets import get_budget
from graphopt.store.events import ProposalMade
from graphopt.search.executor import LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.search.run import Run
from graphopt.status import Status
from graphopt.store import RunStore
from graphopt.tasks import get_task
from graphopt.testing import FakeModel

WRITES = (
    "ensure_run", "set_status", "set_summary", "add_candidate", "start_evaluation", "finish_evaluation",
    "fail_evaluation", "set_example_scores", "set_test_score", "add_event", "record_usage", "record_ledger",
)
STORE_DIR = Path(inspect.getfile(RunStore)).parent


def _writers(monkeypatch) -> dict[str, set[str]]:
    """Wraps the store's write methods to note the file of the code outside the store that called each."""
    seen: dict[str, set[str]] = {}
    for name in WRITES:
        original = getattr(RunStore, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            caller = next(f.filename for f in inspect.stack()[1:] if Path(f.filename).parent != STORE_DIR and f.filename != __file__)
            seen.setdefault(_name, set()).add(Path(caller).name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(RunStore, name, spy)
    return seen


def test_every_write_of_a_search_goes_through_the_run_facade(tmp_path, monkeypatch):
    seen = _writers(monkeypatch)
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=3)
    # Raced seeds, a prompt round, a generation of children, the test report: every kind of write.
    budget = get_budget("small", val_limit=6, test_limit=6, minibatch=3, screen=3, generations=1, children=3)
    lm = LM(LMConfig(cache_dir=None), transport=FakeModel(fn=scripted), budget=budget.lm_budget())
    graphs = [load_graph(name) for name in ("tgd", "tgd_select", "fewshot")]
    asyncio.run(run_search(task, lm, budget, tmp_path / "run", graphs, executor=LocalExecutor(task, lm, 2)))
    assert {"add_candidate", "finish_evaluation", "add_event", "record_ledger", "set_test_score", "set_summary"} <= set(seen)
    assert {caller for callers in seen.values() for caller in callers} == {"run.py"}, seen


def test_a_run_tells_a_done_unit_without_a_score_as_failed_with_an_event(tmp_path):
    from graphopt.search.unit import UnitResult

    run = Run(RunStore.open(tmp_path))
    run.begin({"task": "t", "models": {}})
    row = run.register(load_graph("tgd"))
    outcome = UnitResult(Status.done, result={"best_val": None, "history": []}, usage={})
    run.tell(row.id, outcome)
    assert outcome.status is Status.failed and run.store.evaluation(row.id).status is Status.failed
    assert [e.payload["candidate"] for e in run.store.events("evaluation_failed")] == [row.id]
    run.close()


def test_typed_events_come_back_typed_and_other_kinds_are_left_out(tmp_path):
    run = Run(RunStore.open(tmp_path))
    run.begin({"task": "t", "models": {}})
    run.add(ProposalMade("gen1/child0", "c0001", "mutation"))
    run.note("proposal", "not a payload this version wrote")  # skipped, not a crash
    run.note("winner", {"candidate": "c0001"})
    assert run.events(ProposalMade) == [ProposalMade("gen1/child0", "c0001", "mutation")]
    run.close()


@pytest.mark.parametrize("status", [Status.partial, Status.failed])
def test_not_started_and_failed_units_leave_no_score(tmp_path, status):
    from graphopt.search.unit import UnitResult

    run = Run(RunStore.open(tmp_path))
    run.begin({"task": "t", "models": {}})
    row = run.register(load_graph("tgd"))
    if status is Status.partial:
        run.not_started(row.id, "budget reached: no room")
    else:
        run.tell(row.id, UnitResult(Status.failed, "boom"))
    evaluation = run.store.evaluation(row.id)
    assert evaluation.status is status and evaluation.val_score is None and run.store.done_evaluation(row.id) is None
    run.close()
