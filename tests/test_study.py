"""graphopt study on the scripted model: the grid and transfer cells, kill -9 and resume with no cell
redone, the statistics, the outputs, the dry run and the user errors of the command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from graphopt.cli.app import main
from graphopt.cli.progress import Progress, eta_text
from graphopt.errors import ConfigError, GraphoptError
from graphopt.study import LocalCells, StudyStore, load_study, run_study, summarize, write_outputs
from graphopt.study.report import t_critical
from graphopt.study.store import CellRecord
from graphopt.testing import FakeModel
from graphopt.testing.scripted_study import scripted_config, scripted_study
from graphopt.testing.search_model import scripted_search


def _run(out_dir, study=None, parallel=2):
    import asyncio

    study = study or scripted_study()
    cells = LocalCells(scripted_config(), FakeModel(fn=scripted_search), parallel)
    with StudyStore.in_dir(out_dir, study.name) as store:
        asyncio.run(run_study(study, store, cells, out_dir))
        return store.cells()


def _results(records) -> dict[str, float]:
    return {r.key: r.result["test"] for r in records if r.status == "done"}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The scripted study run once to its end."""
    out = tmp_path_factory.mktemp("clean")
    return out, _run(out)


def test_every_cell_of_the_grid_and_the_transfer_row_is_done_with_per_example_scores(clean):
    _, records = clean
    assert len(records) == 2 * 4 * 2 + 2
    assert all(r.status == "done" for r in records), [r.error for r in records if r.error]
    transfer = [r for r in records if r.cell["source"] == "word_sorting"]
    assert [r.cell["task"] for r in transfer] == ["dyck_languages", "dyck_languages"]
    assert all(r.result["graph"]["nodes"] for r in transfer)  # the search's winner was applied
    search = next(r for r in records if r.key == "word_sorting|search|default|seed 0")
    assert transfer[0].result["graph"]["name"] == search.result["graph"]["name"]
    assert all(len(r.result["scores"]) == 8 for r in records)


def test_the_scripted_landscape_shows_in_the_table_with_paired_differences(clean):
    _, records = clean
    rows = {(r.task, r.method): r for r in summarize(scripted_study(), records)}
    base, tgd = rows[("word_sorting", "zero-shot")], rows[("word_sorting", "tgd")]
    assert tgd.mean == 1.0 and base.mean < 1.0  # the rewrite says "carefully": every sort is right
    assert tgd.vs_baseline == pytest.approx(1.0 - base.mean) and tgd.vs_n == 16
    assert base.vs_baseline is None
    assert rows[("word_sorting", "search")].tokens["meta"] > 0
    assert rows[("word_sorting", "zero-shot")].tokens["optimizer"] == 0
    assert ("dyck_languages", "search from word_sorting") in rows


def test_mean_and_confidence_interval_use_student_t_over_seeds():
    study = scripted_study()
    records = [
        CellRecord(f"k{s}", "done", {"task": "t", "method": "m", "seed": s, "model": None}, {"test": v, "scores": {}}, None)
        for s, v in enumerate([0.2, 0.4, 0.6])
    ]
    (row,) = summarize(study, records)
    assert row.mean == pytest.approx(0.4)
    assert row.ci95 == pytest.approx(4.303 * 0.2 / 3**0.5)
    assert t_critical(1) == 12.706 and t_critical(100) == 1.96


def test_outputs_are_csv_json_and_one_self_contained_html_page(clean, tmp_path):
    _, records = clean
    paths = write_outputs(scripted_study(), records, tmp_path)
    csv_lines = paths["csv"].read_text().splitlines()
    assert csv_lines[0].startswith("task,method,n,cells,mean,ci95,vs_baseline")
    assert len(csv_lines) == 1 + 9
    data = json.loads(paths["json"].read_text())
    assert data["baseline"] == "zero-shot" and len(data["cells"]) == 18
    html = paths["html"].read_text()
    assert "<script" not in html and "http" not in html.split("<body>")[1]
    assert "search from word_sorting" in html


def test_a_study_killed_with_sigkill_resumes_without_redoing_a_done_cell(clean, tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "graphopt.testing.scripted_study", str(out), "--latency", "0.01", "--parallel", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    done: dict[str, object] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "study.sqlite").exists():
            with StudyStore.in_dir(out, "scripted") as store:
                done = {r.key: r.result for r in store.cells() if r.status == "done"}
            if len(done) >= 3:
                break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert 3 <= len(done) < 18, err.decode()[-800:]

    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    with StudyStore.in_dir(out, "scripted") as store:
        records = store.cells()
    assert all(r.status == "done" for r in records)
    assert _results(records) == _results(clean[1])  # the same grid as a run that was never killed
    by_key = {r.key: r.result for r in records}
    assert all(by_key[key] == result for key, result in done.items())  # no done cell was redone


def test_a_resumed_study_runs_only_the_cells_not_done(clean, tmp_path):
    first = _run(tmp_path, scripted_study(seeds=[0]))
    fake = FakeModel(fn=scripted_search)
    import asyncio

    with StudyStore.in_dir(tmp_path, "scripted") as store:
        with pytest.raises(ConfigError, match="another study file"):
            asyncio.run(run_study(scripted_study(seeds=[0, 1]), store, LocalCells(scripted_config(), fake), tmp_path))
        asyncio.run(run_study(scripted_study(seeds=[0]), store, LocalCells(scripted_config(), fake), tmp_path))
        assert [r.result for r in store.cells()] == [r.result for r in first]
    assert fake.calls == 0


def test_an_unknown_graph_or_task_option_stops_the_study_before_any_cell(tmp_path):
    bad_graph = scripted_study(methods=[{"name": "zero-shot", "kind": "zero-shot"}, {"name": "bad", "kind": "graph", "graph": "no_such_graph"}],
                               transfer=[])
    with pytest.raises(ConfigError, match="no_such_graph"):
        _run(tmp_path / "a", bad_graph)
    bad_task = scripted_study(tasks=[{"name": "word_sorting", "difficulty": "impossible"}], transfer=[])
    with pytest.raises(GraphoptError, match="impossible"):
        _run(tmp_path / "b", bad_task)
    with StudyStore.in_dir(tmp_path / "a", "scripted") as store:
        assert store.cells() == []


def test_a_cell_that_raises_is_recorded_failed_and_the_study_goes_on(tmp_path, monkeypatch):
    from graphopt.study import runner

    real = runner.CellJob.run

    async def flaky(job, *args, **kwargs):
        if job.cell.method == "few-shot" and job.cell.seed == 1:
            raise RuntimeError("the disk is full")
        return await real(job, *args, **kwargs)

    monkeypatch.setattr(runner.CellJob, "run", flaky)
    records = _run(tmp_path, scripted_study(transfer=[], methods=scripted_study().methods[:2]))
    status = {r.key: (r.status, r.error) for r in records}
    assert status["word_sorting|few-shot|default|seed 1"] == ("failed", "RuntimeError: the disk is full")
    assert sum(1 for s, _ in status.values() if s == "done") == len(records) - 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: [{name: word_sorting}]\nmethods: [{name: a, kind: zero-shot}]\nbaseline: b\n", "baseline 'b' is not a method"),
        ("tasks: [{name: word_sorting}]\nmethods: [{name: a, kind: graph}]\n", "give graph: NAME or FILE"),
        ("tasks: [{name: word_sorting}]\nmethods: [{name: a, kind: zero-shot}]\ntransfer: [{method: a, source: word_sorting, target: x}]\n",
         "must name a search method"),
        ("tasks: [{name: word_sorting}]\nmethods: [{name: a, kind: nope}]\n", "methods.0.kind"),
        ("tasks: [\n", "is not valid YAML"),
    ],
)
def test_a_bad_study_file_is_one_line_naming_the_setting_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_study(path)
    assert main(["study", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message.split()[0] in err[0]


def test_dry_run_prints_every_cell_and_the_estimate_per_level(tmp_path, capsys):
    assert main(["study", "examples/study.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "22 cells" in out and "dyck_languages|search from word_sorting|default|seed 1" in out
    assert "meta 16 calls" in out and "total: program" in out  # meta prompts only for race winners and "nothing was spent" in out
    assert main(["study", str(tmp_path / "missing.yaml")]) == 2


def test_a_study_file_task_takes_its_file_from_source(tmp_path, capsys):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"input": f"q{i}", "target": f"a{i}"}) + "\n" for i in range(9)))
    path = tmp_path / "s.yaml"
    path.write_text(f"tasks: [{{name: file, source: {data}}}]\nmethods: [{{name: a, kind: zero-shot}}]\n")
    assert load_study(path).tasks[0].options() == {"path": str(data)}
    assert main(["study", str(path), "--dry-run"]) == 0
    assert "file|a|" in capsys.readouterr().out


def test_progress_is_plain_lines_off_a_terminal_with_spend_and_eta():
    import io

    stream = io.StringIO()
    progress = Progress(4, done=1, stream=stream, tty=False)
    progress.add({"levels": {"program": {"tokens": 1500, "cost": 0.01}, "meta": {"tokens": 20}}}, "cell a done")
    line = stream.getvalue().splitlines()[-1]
    assert line.startswith("2/4 cells | tokens program 1.5k optimizer 0 meta 20 | $0.0100")
    assert "ETA" in line and "cell a done" in line and "\r" not in stream.getvalue()
    assert eta_text(1, 3, 10.0) == "ETA 20s" and eta_text(0, 3, 1.0) == "ETA ?"


def test_search_progress_prints_the_search_lines_then_done_total_with_the_runs_spend():
    import io

    from graphopt.cli.progress import search_progress

    stream, seen = io.StringIO(), []
    on_event = search_progress(10, lambda kind, data: seen.append(kind), stream=stream, tty=False)
    usage = {"program": {"tokens": 2000, "cost": 0.5}, "optimizer": {"tokens": 300}}
    on_event("phase", {"name": "seeds", "count": 2})
    on_event("candidate", {"reused": True, "usage": usage})
    on_event("candidate", {"reused": False, "usage": usage})
    lines = stream.getvalue().splitlines()
    assert seen == ["phase", "candidate", "candidate"]
    assert len(lines) == 2 and lines[-1].startswith("2/10 evaluations | tokens program 2.0k optimizer 300 meta 0 | $0.5000")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "rai"], "unknown --executor 'rai'"),
        (["--ray-address", "auto"], "--ray-address needs --executor ray"),
        (["--executor", "ray", "--ray-address", "bogus"], "is not auto or ray://HOST:PORT"),
    ],
)
def test_executor_mistakes_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["study", "examples/study.yaml", "--out", str(tmp_path / "s"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_study_store_works_on_any_url_and_resumes_there(backend, tmp_path):
    import asyncio

    from store_backends import backend_url

    url = backend_url(backend, tmp_path)
    study = scripted_study(seeds=[0], transfer=[], tasks=[scripted_study().tasks[0].model_dump()], methods=scripted_study().methods[:3])
    fake = FakeModel(fn=scripted_search)
    with StudyStore(url, "on-a-url") as store:
        asyncio.run(run_study(study, store, LocalCells(scripted_config(), fake), tmp_path))
    calls = fake.calls
    with StudyStore(url, "on-a-url") as store:
        assert store.exists() and [r.status for r in store.cells()] == ["done"] * 3
        asyncio.run(run_study(study, store, LocalCells(scripted_config(), fake), tmp_path))
        assert _results(store.cells())["word_sorting|tgd|default|seed 0"] == 1.0
    assert fake.calls == calls  # nothing ran again


def test_the_few_shot_baseline_shows_the_first_train_examples_as_demos(clean):
    from graphopt.study.cells import FewShot
    from graphopt.tasks import get_task
    from graphopt.program import Program

    task = get_task("word_sorting", difficulty="easy", sizes=(10, 6, 8), seed=0)
    messages = FewShot(2).program(task).messages(task.test[0].input)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == task.train[0].target and task.train[1].input in messages[3]["content"]
    stored = next(r for r in clean[1] if r.key == "word_sorting|few-shot|default|seed 0")
    assert len(Program.model_validate(stored.result["program"]).demos) == 2


def test_a_cell_whose_test_calls_failed_is_recorded_failed_not_scored(tmp_path, monkeypatch):
    from graphopt.study import cells
    from graphopt.types import Trace

    real = cells.evaluate

    async def flaky(program, examples, task, lm):
        result = await real(program, examples, task, lm)
        if len(examples) == len(task.test[: len(examples)]) and examples and examples[0] is task.test[0]:
            first = result.traces[0]
            broken = Trace(example=first.example, output="", answer="", score=0.0, error="status 503")
            result.traces[0] = broken
        return result

    monkeypatch.setattr(cells, "evaluate", flaky)
    records = _run(tmp_path, scripted_study(transfer=[], methods=scripted_study().methods[:1], seeds=[0]))
    assert records and all(r.status == "failed" for r in records)
    assert all("test examples got no answer" in r.error and "503" in r.error for r in records)
    assert all(r.result is None or "test" not in (r.result or {}) for r in records)
