"""Opening run stores: read-only opens write nothing, files that are not stores are refused, one writer per run dir."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from graphopt.errors import ConfigError
from graphopt.store import SCHEMA_VERSION, RunStore
from graphopt.store.lock import LOCK_FILENAME, RunDirLock, lock_run_dir

CONFIG = {"task": "word_sorting", "models": {"program": "local/smollm2"}}


def make_store(run_dir: Path, candidates: int = 2) -> Path:
    with RunStore.open(run_dir) as store:
        store.ensure_run(CONFIG)
        for i in range(candidates):
            store.add_candidate({"name": f"g{i}", "nodes": [], "edges": []}, f"h{i}")
    return run_dir


def snapshot(run_dir: Path) -> dict[str, str]:
    """Every file of the directory with a digest of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.iterdir()) if p.is_file()}


def foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers (name) VALUES ('ada')")
    db.close()


# --- read-only opening ----------------------------------------------------------------------


def test_a_read_only_open_reads_the_store_and_changes_no_file(tmp_path):
    run_dir = make_store(tmp_path / "run")
    before = snapshot(run_dir)
    with RunStore.open(run_dir, read_only=True) as store:
        assert [c.id for c in store.candidates()] == ["c0001", "c0002"]
        assert store.run().config["task"] == "word_sorting"
    assert snapshot(run_dir) == before  # no -wal, no -shm, not one byte changed


def test_a_read_only_open_sees_what_a_live_writer_committed(tmp_path):
    run_dir = make_store(tmp_path / "run")
    with RunStore.open(run_dir) as writer:
        writer.ensure_run(CONFIG)
        writer.add_candidate({"name": "late", "nodes": [], "edges": []}, "h9")
        with RunStore.open(run_dir, read_only=True) as reader:
            assert [c.name for c in reader.candidates()][-1] == "late"


def test_a_read_only_store_refuses_writes(tmp_path):
    run_dir = make_store(tmp_path / "run")
    before = snapshot(run_dir)
    with RunStore.open(run_dir, read_only=True) as store, pytest.raises(OperationalError, match="attempt to write a readonly database"):
        store.ensure_run(CONFIG)
    assert snapshot(run_dir) == before
    with RunStore.open(run_dir, read_only=True) as store:
        assert len(store.candidates()) == 2


def test_a_read_only_open_refuses_a_missing_store_without_creating_anything(tmp_path):
    with pytest.raises(ConfigError, match="no run store in"):
        RunStore.open(tmp_path / "none", read_only=True)
    assert not (tmp_path / "none").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no run store in"):
        RunStore.open(tmp_path / "empty", read_only=True)
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_read_only_open_refuses_a_newer_schema(tmp_path):
    run_dir = make_store(tmp_path / "run")
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        db.execute("UPDATE store_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.close()
    with pytest.raises(ConfigError, match=f"schema version {SCHEMA_VERSION + 1}"):
        RunStore.open(run_dir, read_only=True)


# --- files that are not stores ----------------------------------------------------------------


def _zero_bytes(db: Path) -> None:
    db.write_bytes(b"")


def _foreign(db: Path) -> None:
    foreign_sqlite(db)


def _garbage(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 100)


def _directory(db: Path) -> None:
    db.mkdir()


def _truncated(db: Path) -> None:
    make_store(db.parent, candidates=40)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _damaged(db: Path) -> None:
    make_store(db.parent, candidates=40)
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page
    db.write_bytes(bytes(data))


BAD_FILES = {
    "zero bytes": (_zero_bytes, "is an empty file (0 bytes), not a run store"),
    "foreign sqlite": (_foreign, "is a SQLite database but not a graphopt run store (it has tables customers)"),
    "garbage": (_garbage, "is not a SQLite file"),
    "directory": (_directory, "is a directory, not a run store"),
    "truncated": (_truncated, "is truncated"),
    "damaged": (_damaged, "cannot be read as a run store"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("mode", ["read_only", "write", "resume"])
def test_a_file_that_is_not_a_store_is_refused_in_one_line_and_left_as_it_was(tmp_path, case, mode):
    make, message = BAD_FILES[case]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    db = run_dir / "run.sqlite"
    make(db)
    before = snapshot(run_dir)
    kwargs = {"read_only": {"read_only": True}, "write": {"lock": True}, "resume": {"create": False, "lock": True}}[mode]
    with pytest.raises(ConfigError) as info:
        RunStore.open(run_dir, **kwargs)
    text = str(info.value)
    assert message in text and "\n" not in text and str(db) in text
    assert text.endswith("give the directory of a graphopt search" if mode == "read_only" else "use another --out")
    assert snapshot(run_dir) == before
    assert db.is_dir() == (case == "directory")  # a directory is not removed, a file not replaced by one
    if case == "foreign sqlite":  # someone else's database keeps its rows
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            assert conn.execute("SELECT name FROM customers").fetchall() == [("ada",)]


def test_an_empty_sqlite_database_can_become_a_store_but_is_not_read_as_one(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    sqlite3.connect(run_dir / "run.sqlite").execute("VACUUM").connection.close()
    with pytest.raises(ConfigError, match="not a graphopt run store \\(it has no tables\\)"):
        RunStore.open(run_dir, read_only=True)
    with RunStore.open(run_dir) as store:
        store.ensure_run(CONFIG)
    with RunStore.open(run_dir, read_only=True) as store:
        assert store.run() is not None


def test_writing_into_a_path_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "out"
    out.write_text("notes")
    with pytest.raises(ConfigError) as info:
        RunStore.open(out)
    assert str(info.value) == f"{out} is a file, not a run directory: use another --out"
    with pytest.raises(ConfigError, match="is a file, not a run directory"):
        RunStore.open(out, read_only=True)
    assert out.read_text() == "notes"


# --- the run directory lock -------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys
    from graphopt.store import RunStore
    store = RunStore.open(sys.argv[1], lock=True)
    print("locked", flush=True)
    sys.stdin.read()  # hold it until the test closes stdin (or kills us)
    store.close()
    print("released", flush=True)
    """
)


def start_holder(run_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_pid(tmp_path):
    run_dir = make_store(tmp_path / "run")
    holder = start_holder(run_dir)
    try:
        with pytest.raises(ConfigError) as info:
            RunStore.open(run_dir, lock=True)
        assert str(info.value) == (
            f"run dir {run_dir} is in use by pid {holder.pid} (another graphopt search); "
            "wait for it or use another --out"
        )
        with RunStore.open(run_dir, read_only=True) as reader:  # reading needs no lock
            assert len(reader.candidates()) == 2
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
    with RunStore.open(run_dir, lock=True) as store:  # released: the next writer gets it
        store.ensure_run(CONFIG)
        assert (run_dir / LOCK_FILENAME).read_text().strip() == str(os.getpid())


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path):
    run_dir = make_store(tmp_path / "run")
    holder = start_holder(run_dir)
    assert (run_dir / LOCK_FILENAME).read_text().strip() == str(holder.pid)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with RunStore.open(run_dir, lock=True) as store:
        store.ensure_run(CONFIG)
        assert store.resumed
        assert (run_dir / LOCK_FILENAME).read_text().strip() == str(os.getpid())
    assert (run_dir / LOCK_FILENAME).read_text() == ""  # released: no stale pid left behind


WRITER = textwrap.dedent(
    """
    import sys
    from graphopt.store import RunStore
    store = RunStore.open(sys.argv[1], lock=True)
    store.ensure_run({"task": "word_sorting", "models": {"program": "local/smollm2"}})
    store.add_candidate({"name": "written before the kill", "nodes": [], "edges": []}, "h-kill")
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def test_a_store_killed_mid_run_reads_everything_it_committed_and_resumes(tmp_path):
    run_dir = make_store(tmp_path / "run")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "locked"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert (run_dir / "run.sqlite-wal").exists()  # the kill left the write-ahead log behind
    with RunStore.open(run_dir, read_only=True) as reader:
        assert [c.name for c in reader.candidates()] == ["g0", "g1", "written before the kill"]
    with RunStore.open(run_dir, create=False, lock=True) as store:
        store.ensure_run(CONFIG)
        assert store.resumed and store.find_by_hash("h-kill") is not None


def test_a_refused_writer_leaves_the_holder_lock_and_store_alone(tmp_path):
    run_dir = make_store(tmp_path / "run")
    holder = start_holder(run_dir)
    try:
        for _ in range(3):
            with pytest.raises(ConfigError, match="in use by pid"):
                RunStore.open(run_dir, lock=True)
        assert (run_dir / LOCK_FILENAME).read_text().strip() == str(holder.pid)
    finally:
        holder.communicate("", timeout=30)


def test_lock_run_dir_is_a_context_manager_and_refuses_a_second_holder_in_the_same_process(tmp_path):
    with lock_run_dir(tmp_path / "new" / "run") as lock:
        assert lock.held and (tmp_path / "new" / "run").is_dir()
        with pytest.raises(ConfigError, match=f"in use by pid {os.getpid()}"):
            RunDirLock(tmp_path / "new" / "run").acquire()
    assert not lock.held
    with lock_run_dir(tmp_path / "new" / "run") as again:
        assert again.held


# --- read-only and unwritable directories (a process without root's override of file modes) --


def unprivileged(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs `args` so that file modes apply to it, also when the tests run as root."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file modes cannot be tested")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(prefix + args, capture_output=True, text=True, timeout=120, **kwargs)


OPEN = "import sys; from graphopt.store import RunStore\n"


def test_a_read_only_run_dir_opens_read_only_and_refuses_writing(tmp_path):
    run_dir = make_store(tmp_path / "run")
    before = snapshot(run_dir)
    run_dir.chmod(0o555)
    (run_dir / "run.sqlite").chmod(0o444)
    try:
        read = unprivileged([sys.executable, "-c", OPEN + "print(len(RunStore.open(sys.argv[1], read_only=True).candidates()))", str(run_dir)])
        assert (read.returncode, read.stdout.strip()) == (0, "2"), read.stderr
        write = unprivileged([sys.executable, "-c", OPEN + """
from graphopt.errors import ConfigError
try:
    RunStore.open(sys.argv[1], lock=True)
except ConfigError as exc:
    print(exc)
""", str(run_dir)])
        assert write.stdout.strip() == f"run directory {run_dir} is not writable: use another --out, or make it writable", write.stderr
    finally:
        run_dir.chmod(0o755)
    assert snapshot(run_dir) == before


def test_a_read_only_store_file_is_refused_for_writing_before_anything_is_created(tmp_path):
    run_dir = make_store(tmp_path / "run")
    (run_dir / "run.sqlite").chmod(0o444)
    before = snapshot(run_dir)
    result = unprivileged([sys.executable, "-c", OPEN + """
from graphopt.errors import ConfigError
try:
    RunStore.open(sys.argv[1], create=False)
except ConfigError as exc:
    print(exc)
""", str(run_dir)])
    assert result.stdout.strip() == (
        f"run store file {run_dir / 'run.sqlite'} is read-only: make it writable, or use another --out"
    ), result.stderr
    assert snapshot(run_dir) == before
