"""Wrong invocations and failing providers: one `error:` line, exit code 2, no traceback, nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from graphopt.cli import main
from graphopt.store import RunStore
from graphopt.testing import Failure, StubServer

PREFIX = "Sort the following words alphabetically: List: "
CONFIG = {"task": "word_sorting", "models": {"program": "local/smollm2"}}


def sort_reply(body: dict) -> str:
    return " ".join(sorted(body["messages"][-1]["content"].removeprefix(PREFIX).split()))


@pytest.fixture
def server():
    with StubServer(reply=sort_reply) as stub:
        yield stub


def server_config(tmp_path: Path, server: StubServer, *, retries: int = 0) -> Path:
    config = tmp_path / "server.toml"
    config.write_text(
        f'max_retries = {retries}\nbackoff_base = 0.01\n[program]\nmodel = "openai/stub-model"\n'
        f'api_base = "{server.base_url}"\n'
        'input_price_per_million = 0.0\noutput_price_per_million = 0.0\n'
    )
    return config


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def one_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = error_lines(captured.err)
    assert len(lines) == 1, captured.err
    return lines[0]


def evaluate(*args: str) -> int:
    return main(["eval", "--task", "word_sorting", "--difficulty", "easy", "--no-cache", *args])


# --- provider errors ---------------------------------------------------------------------------


def test_a_bad_key_stops_eval_at_once_with_provider_model_and_fix(server, tmp_path, capsys):
    server.fail(*[Failure(401, message="Incorrect API key provided: sk-bad")] * 200)
    out = tmp_path / "eval.json"
    assert evaluate("--limit", "40", "--config", str(server_config(tmp_path, server)), "--out", str(out)) == 2
    line = one_error(capsys)
    assert line.startswith("error: model call to openai/stub-model (openai, status 401) failed: Incorrect API key")
    assert line.endswith("check OPENAI_API_KEY (or the api_key_env setting of the model's level)")
    assert server.calls < 40  # stopped at the first occurrence, not after every example
    assert not out.exists()


def test_a_bad_key_stops_optimize_with_no_files_written(server, tmp_path, capsys):
    server.fail(*[401] * 500)
    out = tmp_path / "opt"
    args = ["optimize", "--graph", "tgd", "--task", "word_sorting", "--difficulty", "easy", "--steps", "1",
            "--val-limit", "5", "--test-limit", "5", "--no-cache", "--out", str(out),
            "--config", str(server_config(tmp_path, server)), "--set", "optimizer.model=openai/stub-model",
            "--set", f"optimizer.api_base={server.base_url}"]  # fmt: skip
    assert main(args) == 2
    assert "status 401" in one_error(capsys)
    assert not out.exists()


def test_errors_past_the_limit_stop_optimize_with_no_files_written(server, tmp_path, capsys):
    server.fail(*[Failure(503, message="upstream overloaded")] * 3)
    out = tmp_path / "opt"
    args = ["optimize", "--graph", "tgd", "--task", "word_sorting", "--difficulty", "easy", "--steps", "2",
            "--val-limit", "5", "--test-limit", "5", "--no-cache", "--out", str(out),
            "--config", str(server_config(tmp_path, server)), "--set", "optimizer.model=openai/stub-model",
            "--set", f"optimizer.api_base={server.base_url}"]  # fmt: skip
    assert main(args) == 2
    line = one_error(capsys)
    assert line.startswith("error: 3 of ") and "failed after retries" in line and "upstream overloaded" in line
    assert not out.exists()


def test_errors_past_the_limit_stop_eval_naming_the_count_and_the_first_error(server, tmp_path, capsys):
    server.fail(*[Failure(503, message="upstream overloaded")] * 3)
    out = tmp_path / "eval.json"
    assert evaluate("--limit", "10", "--config", str(server_config(tmp_path, server)), "--out", str(out)) == 2
    line = one_error(capsys)
    assert line.startswith("error: 3 of 10 examples failed after retries (30%, more than --max-error-rate 0.05)")
    assert line.endswith("First error: model call to openai/stub-model (openai, status 503) failed: upstream overloaded")
    assert not out.exists()


def test_errors_within_the_limit_are_shown_and_kept_per_trace(server, tmp_path, capsys):
    server.fail(*[Failure(503, message="upstream overloaded")] * 3)
    out = tmp_path / "eval.json"
    config = server_config(tmp_path, server)
    assert evaluate("--limit", "10", "--config", str(config), "--out", str(out), "--max-error-rate", "0.5") == 0
    assert "n=10, 3 errored  accuracy 0.700" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["errors"] == 3 and saved["accuracy"] == pytest.approx(0.7)
    assert sorted(bool(t["error"]) for t in saved["traces"]) == [False] * 7 + [True] * 3


def test_retried_errors_are_not_errors(server, tmp_path, capsys):
    server.fail(*[Failure(503)] * 3)
    config = server_config(tmp_path, server, retries=2)
    assert evaluate("--limit", "10", "--config", str(config)) == 0
    assert "n=10  accuracy 1.000" in capsys.readouterr().out


# --- wrong invocations -------------------------------------------------------------------------


def test_eval_with_a_program_directory_is_one_line(tmp_path, capsys):
    assert evaluate("--program", str(tmp_path)) == 2
    assert one_error(capsys) == (
        f"error: --program {tmp_path} is a directory: give a program JSON file (e.g. {tmp_path / 'program.json'})"
    )


def test_a_cache_dir_that_is_a_file_fails_before_any_model_call(server, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.write_text("not a directory")
    config = server_config(tmp_path, server)
    assert main(["eval", "--task", "word_sorting", "--limit", "3", "--config", str(config), "--cache-dir", str(cache)]) == 2
    assert one_error(capsys) == f"error: cache dir {cache} is a file, not a directory: use another --cache-dir, or --no-cache"
    assert server.calls == 0


def test_outputs_that_cannot_be_written_are_refused_before_any_model_call(server, tmp_path, capsys):
    config = server_config(tmp_path, server)
    assert evaluate("--limit", "3", "--config", str(config), "--out", str(tmp_path)) == 2
    assert one_error(capsys) == f"error: --out {tmp_path} is a directory: give a file name, e.g. {tmp_path / 'result.json'}"
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert evaluate("--limit", "3", "--config", str(config), "--out", str(notes / "eval.json")) == 2
    assert one_error(capsys) == f"error: --out {notes / 'eval.json'} cannot be written ({notes} is not a writable directory)"
    args = ["optimize", "--graph", "tgd", "--task", "word_sorting", "--steps", "1", "--config", str(config), "--out", str(notes)]
    assert main(args) == 2
    assert one_error(capsys) == f"error: --out {notes} is a file: give a directory"
    assert server.calls == 0 and notes.read_text() == "mine"


def test_an_empty_program_model_is_refused_not_taken_for_the_embedded_model(capsys):
    assert main(["eval", "--task", "word_sorting", "--program-model", ""]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert lines and all(line.startswith("error: flag --program-model: program.model") for line in lines)
    assert "empty" in lines[0] and "local/smollm2" in lines[0]


def test_control_characters_in_an_error_line_are_escaped(tmp_path, capsys):
    name = tmp_path / "evil\x1b[2J\x07\rname.json"
    assert evaluate("--program", str(name)) == 2
    line = one_error(capsys)
    assert "\x1b" not in line and "\x07" not in line and "\r" not in line
    assert line.endswith("evil\\x1b[2J\\x07\\rname.json")


# --- report and viz --run on stores that are not stores -----------------------------------------


def make_run(run_dir: Path) -> Path:
    with RunStore.open(run_dir) as store:
        store.ensure_run(CONFIG)
        store.add_candidate({"name": "g", "nodes": [], "edges": []}, "h1")
    return run_dir


def _foreign(db: Path) -> None:
    db.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()


def _truncate(db: Path) -> None:
    with RunStore.open(db.parent) as store:
        store.ensure_run(CONFIG)
        for i in range(40):
            store.add_candidate({"name": f"g{i}", "nodes": [], "edges": []}, f"x{i}")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _directory(db: Path) -> None:
    db.unlink()
    db.mkdir()


BROKEN = {
    "zero bytes": (lambda db: db.write_bytes(b""), "is an empty file (0 bytes)"),
    "corrupt": (lambda db: db.write_bytes(b"\x00garbage" * 500), "is not a SQLite file"),
    "truncated": (_truncate, "is truncated"),
    "directory": (_directory, "is a directory, not a run store"),
    "foreign": (_foreign, "is a SQLite database but not a graphopt run store (it has tables notes)"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", ["report", "viz"])
def test_report_and_viz_refuse_a_broken_store_in_one_line_and_change_nothing(tmp_path, capsys, case, command):
    run_dir = make_run(tmp_path / "run")
    db = run_dir / "run.sqlite"
    breaker, message = BROKEN[case]
    breaker(db)
    before = sorted(p.name for p in run_dir.iterdir())
    size = db.stat().st_size if db.is_file() else None
    args = ["report", str(run_dir)] if command == "report" else ["viz", "--run", str(run_dir), "-o", str(tmp_path / "g.dot")]
    assert main(args) == 2
    line = one_error(capsys)
    assert message in line and line.endswith("give the directory of a graphopt search")
    assert sorted(p.name for p in run_dir.iterdir()) == before
    assert (db.stat().st_size if db.is_file() else None) == size
    assert not (tmp_path / "g.dot").exists()


def test_report_on_a_healthy_store_writes_only_the_report(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run")
    before = (run_dir / "run.sqlite").read_bytes()
    assert main(["report", str(run_dir)]) == 0
    assert sorted(p.name for p in run_dir.iterdir()) == ["report.html", "run.sqlite"]
    assert (run_dir / "run.sqlite").read_bytes() == before


def test_report_to_a_path_it_cannot_write_names_the_reason(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert main(["report", str(run_dir), "-o", str(notes / "r.html")]) == 2
    assert one_error(capsys) == f"error: cannot write {notes / 'r.html'}: {notes} is a file, not a directory"
    assert main(["report", str(run_dir), "-o", str(tmp_path)]) == 2
    assert one_error(capsys) == f"error: cannot write {tmp_path}: it is a directory; give a file name such as report.html"
    assert notes.read_text() == "mine"


def unprivileged(args: list[str]) -> subprocess.CompletedProcess:
    """Runs the CLI so that file modes apply to it, also when the tests run as root."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file modes cannot be tested")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(prefix + [sys.executable, "-m", "graphopt", *args], capture_output=True, text=True, timeout=120)


def test_report_and_viz_on_a_read_only_run_dir(tmp_path):
    run_dir = make_run(tmp_path / "run")
    (run_dir / "run.sqlite").chmod(0o444)
    run_dir.chmod(0o555)
    try:
        refused = unprivileged(["report", str(run_dir)])
        assert refused.returncode == 2 and error_lines(refused.stderr) == [
            f"error: cannot write {run_dir / 'report.html'}: Permission denied; write it elsewhere with -o FILE"
        ]
        elsewhere = tmp_path / "elsewhere.html"
        written = unprivileged(["report", str(run_dir), "-o", str(elsewhere)])
        assert written.returncode == 0, written.stderr
        assert "<html" in elsewhere.read_text()[:500].lower()
        drawn = unprivileged(["viz", "--run", str(run_dir), "--candidate", "c0001", "-o", str(tmp_path / "g.dot")])
        assert drawn.returncode == 0, drawn.stderr
        assert (tmp_path / "g.dot").read_text().startswith("digraph")
    finally:
        run_dir.chmod(0o755)
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.sqlite"]


def test_a_read_only_cache_dir_fails_before_any_model_call(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    config = server_config(tmp_path, server)
    try:
        result = unprivileged(["eval", "--task", "word_sorting", "--limit", "3", "--config", str(config), "--cache-dir", str(cache)])
    finally:
        cache.chmod(0o755)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"error: cannot write the response cache in {cache} (Permission denied): use another --cache-dir, or --no-cache"
    ]
    assert server.calls == 0


def test_resume_of_a_directory_with_no_run_is_refused_before_anything_runs(tmp_path, capsys):
    typo = tmp_path / "runs" / "dyck-typo"
    code = main(["search", "--task", "word_sorting", "--difficulty", "easy", "--budget", "tiny", "--resume",
                 "--out", str(typo), "--program-model", "openai/none", "--no-cache"])
    assert code == 2
    assert "holds no run to resume" in one_error(capsys)
    assert not typo.exists()  # nothing created, nothing spent


def test_no_subcommand_prints_real_help_and_exits_0_with_h_and_version(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: graphopt") and "\\n" not in out and "search" in out
    assert main(["config"]) == 0 and "show" in capsys.readouterr().out
    assert main(["search", "-h"]) == 0 and "--budget" in capsys.readouterr().out
    assert main(["config", "show", "-h"]) == 0 and "--config" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip().startswith("graphopt 0.")
    assert main(["nosuch"]) == 2 and "No such command" in one_error(capsys)
