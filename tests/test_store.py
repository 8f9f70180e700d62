"""Tests for graphopt.store: the run store a search writes and a report reads."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import inspect

from graphopt.errors import ConfigError, RunError
from graphopt.graph.spec import EdgeSpec, GraphSpec, NodeSpec
from graphopt.lm.ledger import Ledger, Usage
from graphopt.store import SCHEMA_VERSION, RunStore, strip_secrets
from graphopt.program import Program

from store_backends import BACKENDS, backend_url

CONFIG = {
    "task": "word_sorting",
    "models": {"program": "local/smollm2", "optimizer": "gpt-4o", "meta": "o1"},
    "budgets": {"dollars": 5.0, "max_tokens": 100000},
    "seeds": [1, 2],
}


def spec(name: str) -> dict:
    return {"name": name, "nodes": [{"id": "r", "op": "rewrite"}], "edges": []}


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    """A started run on each backend: a SQLite run dir, and a PostgreSQL database when one is given."""
    if request.param == "sqlite":
        s = RunStore.open(tmp_path / "out")
    else:
        s = RunStore(backend_url("postgresql", tmp_path))
    s.ensure_run(CONFIG)
    yield s
    s.close()


def reader_of(store: RunStore) -> RunStore:
    """A second store on the same database, as a new process would open it."""
    if store.url.get_backend_name() == "sqlite":
        return RunStore.open(store.location)
    return RunStore(store.url, run_id=store.run_id)


def reopen(store: RunStore, config: dict = CONFIG) -> RunStore:
    """A second store on the same database that resumes the run, as a new process would."""
    other = reader_of(store)
    other.ensure_run(config)
    return other


def sqlite_only(store: RunStore) -> None:
    if store.url.get_backend_name() != "sqlite":
        pytest.skip("checks SQLite's write-ahead log; the same reads on PostgreSQL are in test_store_shared.py")


def test_open_creates_the_directory_and_all_tables(tmp_path):
    with RunStore.open(tmp_path / "a" / "b") as s:
        tables = set(inspect(s._engine).get_table_names())
        assert s.schema_version == SCHEMA_VERSION
    assert (tmp_path / "a" / "b" / "run.sqlite").is_file()
    assert {"store_meta", "run", "candidate", "candidate_parent", "evaluation", "event", "usage"} <= tables


def test_sqlite_url_and_run_dir_open_reach_the_same_store(tmp_path):
    with RunStore.open(tmp_path) as s:
        s.ensure_run(CONFIG)
        s.add_candidate(spec("g"), "h1")
    with RunStore(f"sqlite:///{tmp_path / 'run.sqlite'}") as s:
        assert [c.graph_hash for c in s.candidates()] == ["h1"]


def test_open_without_create_refuses_a_missing_store(tmp_path):
    with pytest.raises(ConfigError, match="no run store"):
        RunStore.open(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_in_memory_url_works(tmp_path):
    with RunStore("sqlite://") as s:
        s.ensure_run(CONFIG)
        s.add_candidate(spec("g"), "h1")
        assert s.find_by_hash("h1").id == "c0001"


def test_a_newer_schema_version_is_refused(tmp_path):
    RunStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        db.execute("UPDATE store_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(ConfigError, match="schema version"):
        RunStore.open(tmp_path)


def test_writes_before_ensure_run_fail_with_a_clear_error(tmp_path):
    with RunStore.open(tmp_path) as s, pytest.raises(RunError, match="ensure_run"):
        s.add_candidate(spec("g"), "h1")


def test_candidate_ids_follow_insertion_order_and_the_same_hash_returns_the_same_row(store):
    first = store.add_candidate(spec("a"), "ha", origin="seed")
    second = store.add_candidate(spec("b"), "hb", origin="seed")
    again = store.add_candidate(spec("a-renamed"), "ha", origin="mutation", parents=["c0002"], generation=3)
    assert (first.id, second.id) == ("c0001", "c0002")
    assert again == first
    assert again.name == "a" and again.origin == "seed" and again.parents == ()
    assert len(store.candidates()) == 2
    assert store.find_by_hash("hb").id == "c0002"
    assert store.find_by_hash("nope") is None


def test_a_new_candidate_has_a_pending_evaluation(store):
    row = store.add_candidate(spec("a"), "ha")
    assert row.evaluation.status == "pending"
    assert store.done_evaluation("ha") is None


def test_add_candidate_accepts_a_graph_spec_and_keeps_its_name(store):
    graph = GraphSpec(
        name="critic",
        nodes=[NodeSpec(id="c", op="critique"), NodeSpec(id="r", op="rewrite")],
        edges=[EdgeSpec(source="c.feedback", target="r.feedback")],
    )
    row = store.add_candidate(graph, "hg")
    assert row.name == "critic"
    assert GraphSpec.model_validate(row.spec) == graph


def test_unknown_origin_or_parent_is_an_error_naming_it(store):
    with pytest.raises(RunError, match="did you mean 'mutation'"):
        store.add_candidate(spec("a"), "ha", origin="mutaton")
    with pytest.raises(RunError, match="c0404"):
        store.add_candidate(spec("a"), "ha", origin="mutation", parents=["c0404"])
    assert store.candidates() == []


def test_lineage_round_trips_with_parent_order(store):
    store.add_candidate(spec("a"), "ha")
    store.add_candidate(spec("b"), "hb")
    store.add_candidate(spec("ab"), "hab", parents=["c0002", "c0001"], origin="crossover", generation=1)
    child = store.add_candidate(
        spec("m"), "hm", parents=["hab"], origin="mutation", mutation="add_critic", generation=2
    )
    assert child.parents == ("c0003",)
    assert child.mutation == "add_critic" and child.generation == 2
    assert store.candidate("c0003").parents == ("c0002", "c0001")
    assert store.lineage() == [("c0002", "c0003"), ("c0001", "c0003"), ("c0003", "c0004")]


def test_evaluation_lifecycle_pending_running_done_with_test_score(store):
    store.add_candidate(spec("a"), "ha")
    store.start_evaluation("c0001")
    running = store.evaluation("c0001")
    assert running.status == "running" and running.started_at is not None
    assert store.done_evaluation("c0001") is None

    ledger = Ledger()
    ledger.record("program", "local", Usage(calls=10, prompt_tokens=900, completion_tokens=100, cost=0.01))
    ledger.record("optimizer", "gpt-4o", Usage(calls=2, prompt_tokens=150, completion_tokens=50, cost=0.2))
    program = Program(instruction="Sort the words.")
    history = [{"step": 0, "val": 0.25, "kept": True}, {"step": 1, "val": 0.5, "kept": True}]
    done = store.finish_evaluation("ha", val_score=0.5, val_stderr=0.1, program=program, history=history, usage=ledger)
    assert done.status == "done" and done.val_score == 0.5 and done.val_stderr == 0.1
    assert (done.program_tokens, done.optimizer_tokens, done.meta_tokens) == (1000, 200, 0)
    assert done.dollars == pytest.approx(0.21)
    assert Program.model_validate(done.program) == program
    assert done.history == history
    assert Ledger.from_dict(done.usage).total().tokens == 1200
    assert done.finished_at >= done.started_at
    assert done.test_score is None

    store.set_test_score("c0001", 0.4, 0.05)
    final = store.done_evaluation("ha")
    assert (final.test_score, final.test_stderr) == (0.4, 0.05)
    assert store.best().id == "c0001"
    assert store.best("test_score").id == "c0001"


def test_failed_evaluation_keeps_the_error_and_is_not_done(store):
    store.add_candidate(spec("a"), "ha")
    store.start_evaluation("ha")
    store.fail_evaluation("ha", ValueError("bad graph"))
    ev = store.evaluation("ha")
    assert ev.status == "failed" and ev.error == "ValueError: bad graph"
    assert store.done_evaluation("ha") is None
    assert store.best() is None


def test_best_picks_the_highest_score_and_the_earliest_on_ties(store):
    for i, score in enumerate([0.3, 0.7, 0.7, 0.1]):
        store.add_candidate(spec(f"g{i}"), f"h{i}")
        store.finish_evaluation(f"h{i}", val_score=score)
    store.add_candidate(spec("pending"), "hp")
    assert store.best().id == "c0002"
    assert store.best("test_score") is None
    with pytest.raises(RunError, match="metric"):
        store.best("dollars")


def test_unknown_candidate_in_an_evaluation_call_is_an_error(store):
    with pytest.raises(RunError, match="c0009"):
        store.start_evaluation("c0009")
    assert store.evaluation("c0009") is None
    assert store.done_evaluation("c0009") is None


def test_events_are_kept_in_order_and_filter_by_kind_and_id(store):
    first = store.add_event("generation", {"generation": 0, "best": 0.25})
    store.add_event("rejected_proposal", {"reasons": ["edge a -> b: port 'feedback' expects Feedback"]})
    store.add_event("generation", {"generation": 1, "best": 0.5})
    assert [e.payload["generation"] for e in store.events("generation")] == [0, 1]
    assert [e.kind for e in store.events(after=first.id)] == ["rejected_proposal", "generation"]
    assert store.events()[0].to_dict()["payload"] == {"generation": 0, "best": 0.25}


def test_status_and_summary_are_stored(store):
    store.set_status("finished")
    store.set_summary({"winner": "c0001", "val_score": 0.5})
    run = store.run()
    assert run.status == "finished" and run.summary == {"winner": "c0001", "val_score": 0.5}
    assert run.updated_at >= run.created_at
    with pytest.raises(RunError, match="did you mean 'finished'"):
        store.set_status("finishd")


def test_a_reopened_store_sees_everything_written_before(store):
    store.add_candidate(spec("a"), "ha")
    store.add_candidate(spec("b"), "hb", parents=["c0001"], origin="mutation", mutation="swap", generation=1)
    store.finish_evaluation("hb", val_score=0.75, program={"instruction": "x"}, history=[{"step": 0}])
    store.add_event("note", {"text": "hello"})
    store.set_summary({"winner": "c0002"})
    before = [c.to_dict() for c in store.candidates()]

    other = reopen(store)
    assert other.resumed
    assert [c.to_dict() for c in other.candidates()] == before
    assert other.lineage() == [("c0001", "c0002")]
    assert other.done_evaluation("hb").val_score == 0.75
    assert [e.kind for e in other.events()] == ["note", "resume"]
    assert other.run().summary == {"winner": "c0002"}
    assert other.add_candidate(spec("c"), "hc").id == "c0003"
    other.close()


def test_a_running_evaluation_of_a_killed_run_is_pending_after_resume(store):
    store.add_candidate(spec("a"), "ha")
    store.add_candidate(spec("b"), "hb")
    store.finish_evaluation("ha", val_score=0.5)
    store.start_evaluation("hb")
    store.set_status("interrupted")

    other = reopen(store)
    assert other.evaluation("hb").status == "pending"
    assert other.evaluation("hb").started_at is None
    assert other.done_evaluation("ha").val_score == 0.5
    assert other.run().status == "running"
    assert other.events("resume")[-1].payload == {"previous_status": "interrupted", "reset_evaluations": 1}
    other.close()


def test_resume_with_another_task_or_other_models_is_refused_in_one_line(store):
    with pytest.raises(ConfigError) as err:
        reopen(store, {**CONFIG, "task": "dyck_languages"})
    message = str(err.value)
    assert message == f"run dir {store.location} was made for task word_sorting; use another --out or the same settings"
    with pytest.raises(ConfigError, match="was made for models program=local/smollm2"):
        reopen(store, {**CONFIG, "models": {**CONFIG["models"], "meta": "claude"}})


def test_a_run_stored_without_a_level_resumes_whatever_that_level_is_set_to(store):
    # A run made before the judge level existed recorded three levels; its judge setting is not compared.
    models = {**CONFIG["models"], "judge": "gpt-4o-mini"}
    other = reopen(store, {**CONFIG, "models": models})
    assert other.resumed
    other.close()
    with pytest.raises(ConfigError, match="was made for models"):
        reopen(store, {**CONFIG, "models": {**models, "meta": "claude"}})  # a recorded level still counts
    from graphopt.store.run_store import _check_identity

    stored = {"levels": {"program": {"model": "local/smollm2"}}}
    _check_identity("run", stored, {"levels": {"program": {"model": "local/smollm2"}, "judge": {"model": "gpt-4o"}}})
    with pytest.raises(ConfigError, match="other model settings"):
        _check_identity("run", stored, {"levels": {"program": {"model": "gpt-4o"}}})


def test_resume_may_change_budgets(store):
    other = reopen(store, {**CONFIG, "budgets": {"dollars": 10.0}})
    assert other.run().config["budgets"] == {"dollars": 10.0}
    other.close()


def test_secrets_are_stripped_from_the_stored_config_at_any_depth(tmp_path):
    config = {
        **CONFIG,
        "api_key": "sk-top",
        "models": {"program": "gpt-4o-mini", "OPENAI_API_KEY": "sk-1"},
        "providers": [{"name": "openai", "auth_token": "t-1", "client_secret": "s-1", "base": "http://x"}],
        "keys": {"openai": "sk-2"},
        "budgets": {"max_tokens": 5000, "tokens": 100},
    }
    with RunStore.open(tmp_path) as s:
        s.ensure_run(config)
        stored = s.run().config
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        raw = " ".join(str(row) for row in db.execute("SELECT config FROM run"))
    for secret in ("sk-top", "sk-1", "sk-2", "t-1", "s-1"):
        assert secret not in raw
    assert "api_key" not in stored and "keys" not in stored
    assert stored["models"] == {"program": "gpt-4o-mini"}
    assert stored["providers"] == [{"name": "openai", "base": "http://x"}]
    assert stored["budgets"] == {"max_tokens": 5000, "tokens": 100}  # numbers are counts, not credentials


def test_strip_secrets_leaves_the_input_unchanged():
    config = {"a": {"secret": "x"}}
    assert strip_secrets(config) == {"a": {}}
    assert config == {"a": {"secret": "x"}}


def test_a_second_connection_reads_what_the_writer_committed_under_wal(store):
    sqlite_only(store)
    with sqlite3.connect(store.url.database) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader = RunStore.open(store.location, create=False)
    store.add_candidate(spec("a"), "ha")
    assert [c.id for c in reader.candidates()] == ["c0001"]
    store.finish_evaluation("ha", val_score=0.5)
    assert reader.done_evaluation("ha").val_score == 0.5
    # A plain sqlite3 reader mid-transaction does not block the writer (WAL).
    raw = sqlite3.connect(store.url.database)
    raw.execute("BEGIN")
    assert raw.execute("SELECT count(*) FROM candidate").fetchone()[0] == 1
    store.add_candidate(spec("b"), "hb")
    assert raw.execute("SELECT count(*) FROM candidate").fetchone()[0] == 1  # its snapshot
    raw.execute("COMMIT")
    assert raw.execute("SELECT count(*) FROM candidate").fetchone()[0] == 2
    raw.close()
    reader.close()


def test_usage_totals_add_up_across_sessions_and_repeated_records_do_not_double_count(store):
    store.record_usage("program", Usage(calls=5, prompt_tokens=100, completion_tokens=20, cost=0.01))
    store.record_usage("program", Usage(calls=8, prompt_tokens=160, completion_tokens=40, cost=0.02))  # running total
    store.record_usage("meta", {"calls": 1, "tokens": 50, "cost": 0.5})
    totals = store.usage_totals()
    assert totals["levels"]["program"]["tokens"] == 200
    assert totals["levels"]["optimizer"]["tokens"] == 0
    assert totals["total"]["cost"] == pytest.approx(0.52)

    other = reopen(store)
    ledger = Ledger()
    ledger.record("program", "local", Usage(calls=2, prompt_tokens=30, completion_tokens=10, cost=0.005))
    ledger.record("optimizer", "gpt-4o", Usage(calls=1, prompt_tokens=70, completion_tokens=30, cost=0.1))
    other.record_ledger(ledger)
    totals = other.usage_totals()
    assert totals["levels"]["program"]["tokens"] == 240
    assert totals["levels"]["program"]["calls"] == 10
    assert totals["levels"]["optimizer"]["tokens"] == 100
    assert totals["levels"]["meta"]["tokens"] == 50
    assert totals["total"]["tokens"] == 390
    assert totals["total"]["cost"] == pytest.approx(0.625)
    other.close()
    with reader_of(store) as reader:
        assert reader.usage_totals() == totals


def test_json_columns_round_trip_exactly(store):
    payload = {
        "unicode": "naïve — 単語 🙂",
        "floats": [0.1, 1e-12, 123456.789, -0.0],
        "ints": [0, -1, 2**53],
        "nested": {"list": [[], {}, None, True, False], "empty": ""},
        "order": {"z": 1, "a": 2, "m": 3},
    }
    store.add_candidate({"name": "g", **payload}, "hj")
    usage = {"levels": {}, "x": payload}
    store.finish_evaluation("hj", val_score=0.5, program=payload, history=[payload, payload], usage=usage)
    store.add_event("note", payload)
    store.set_summary(payload)
    other = reopen(store)
    row = other.find_by_hash("hj")
    assert row.spec == {"name": "g", **payload}
    assert row.evaluation.program == payload
    assert list(row.evaluation.program["order"]) == ["z", "a", "m"]
    assert row.evaluation.history == [payload, payload]
    assert row.evaluation.usage["x"] == payload
    assert other.events("note")[0].payload == payload
    assert other.run().summary == payload
    other.close()


def test_rows_are_frozen_and_to_dict_is_plain_json(store):
    import json

    row = store.add_candidate(spec("a"), "ha")
    with pytest.raises(AttributeError):
        row.name = "b"  # type: ignore[misc]
    data = row.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["evaluation"]["status"] == "pending" and data["parents"] == []


def test_concurrent_writers_from_threads_get_distinct_ids(store):
    def add(i: int) -> None:
        for j in range(10):
            store.add_candidate(spec(f"g{i}-{j}"), f"h{i}-{j}")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ids = [c.id for c in store.candidates()]
    assert ids == [f"c{n:04d}" for n in range(1, 41)]
