"""Two processes on one run, on SQLite and on PostgreSQL: a search writes its store while
`graphopt report`, in another process, reads it live; `--store URL` keeps no password."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from store_backends import BACKENDS, backend_url

from graphopt.errors import ConfigError
from graphopt.store.shared import open_run_store
from graphopt.testing import scripted_run


def _candidates(run_dir) -> int:
    with open_run_store(run_dir, read_only=True) as store:
        return len(store.candidates())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_running_search_is_read_live_by_graphopt_report_in_another_process(backend, tmp_path):
    run_dir = tmp_path / "run"
    extra = ["--latency", "0.1", "--parallel", "1"]  # a run of about 15 s: several reads on a loaded machine
    if backend == "postgresql":
        extra += ["--store", backend_url(backend, tmp_path)]
    search = scripted_run.start(run_dir, extra=extra)
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while search.poll() is None and time.monotonic() < deadline:
            if (run_dir / "run.sqlite").exists() or (run_dir / "store.json").exists():
                report = subprocess.run(
                    [sys.executable, "-m", "graphopt", "report", str(run_dir), "--out", str(tmp_path / "live.html")],
                    capture_output=True, text=True, timeout=60,
                )
                assert report.returncode == 0, report.stderr
                if search.poll() is None:
                    seen.append(_candidates(run_dir))
            time.sleep(0.5)
        out, err = search.communicate(timeout=120)
    finally:
        if search.poll() is None:
            search.kill()
    assert search.returncode == 0, err
    assert len(seen) >= 2 and seen[-1] > seen[0]  # the reader saw the run grow while it ran
    assert "<html" in (tmp_path / "live.html").read_text().lower()
    with open_run_store(run_dir, read_only=True) as store:
        assert store.run().status == "finished"
        assert store.candidates()[-1].id == f"c{_candidates(run_dir):04d}"
    assert (run_dir / "run.sqlite").exists() == (backend == "sqlite")


def test_a_store_url_with_a_password_is_refused_and_the_pointer_names_none(tmp_path):
    with pytest.raises(ConfigError, match="set PGPASSWORD"):
        open_run_store(tmp_path / "a", "postgresql+psycopg://user:hunter2@127.0.0.1/db")
    store = open_run_store(tmp_path / "b", f"sqlite:///{tmp_path / 'shared.sqlite'}")
    store.close()
    pointer = json.loads((tmp_path / "b" / "store.json").read_text())
    assert pointer == {"url": f"sqlite:///{tmp_path / 'shared.sqlite'}", "run_id": "b"}
    with pytest.raises(ConfigError, match="keeps its store at"):
        open_run_store(tmp_path / "b", f"sqlite:///{tmp_path / 'other.sqlite'}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "postgresql+psycopg://u:pw@127.0.0.1:1/db"], "--store holds a password: leave it out of the URL and set PGPASSWORD"),
        (["--store", "postgresql+psycopg://u@127.0.0.1:1/db"], "check that the database server runs and that the --store URL names it"),
        (["--store", "::nonsense"], "is not a database URL"),
        (["--executor", "rai"], "unknown --executor 'rai' (did you mean 'ray'?)"),
        (["--ray-address", "auto"], "--ray-address needs --executor ray"),
    ],
)
def test_search_store_and_executor_mistakes_are_one_line_exit_2_and_no_password_is_kept(tmp_path, capsys, args, message):
    from graphopt.cli.app import main

    out = tmp_path / "run"
    assert main(["search", "--task", "word_sorting", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert "pw" not in err[0]
    assert not (out / "store.json").exists()
