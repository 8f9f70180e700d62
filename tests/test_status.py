"""The status enum: equal to the strings stored before it existed, and read back as the enum."""

from __future__ import annotations

import json

from sqlalchemy import text

from graphopt.status import Status
from graphopt.store import RunStore


def test_a_status_equals_its_stored_string_and_prints_as_it():
    assert Status.done == "done" and Status("screened") is Status.screened
    assert (str(Status.partial), f"{Status.failed}", json.dumps(Status.pending)) == ("partial", "failed", '"pending"')
    assert {Status.done: 1}["done"] == 1  # a dict keyed by either finds the other


def test_statuses_round_trip_through_the_store_as_plain_strings(tmp_path):
    store = RunStore.open(tmp_path)
    store.ensure_run({"task": "t", "models": {}})
    for i, status in enumerate((Status.done, Status.partial, Status.screened)):
        store.add_candidate({"name": f"g{i}", "nodes": [], "edges": []}, f"h{i}")
        store.finish_evaluation(f"c000{i + 1}", val_score=0.5, status=status)
    store.add_candidate({"name": "g3", "nodes": [], "edges": []}, "h3")
    store.fail_evaluation("c0004", "boom")
    store.add_candidate({"name": "g4", "nodes": [], "edges": []}, "h4")
    read = [c.evaluation.status for c in store.candidates()]
    assert read == [Status.done, Status.partial, Status.screened, Status.failed, Status.pending]
    assert all(type(s) is Status for s in read)
    with store._engine.connect() as conn:
        raw = [r[0] for r in conn.execute(text("SELECT status FROM evaluation ORDER BY candidate_id"))]
    assert raw == ["done", "partial", "screened", "failed", "pending"] and all(type(s) is str for s in raw)
    store.close()


def test_a_status_written_as_a_plain_string_reads_back_as_the_enum(tmp_path):
    store = RunStore.open(tmp_path)
    store.ensure_run({"task": "t", "models": {}})
    store.add_candidate({"name": "g", "nodes": [], "edges": []}, "h")
    store.finish_evaluation("c0001", val_score=0.5, status="done")  # as code before the enum wrote it
    assert store.done_evaluation("c0001").status is Status.done
    store.close()
