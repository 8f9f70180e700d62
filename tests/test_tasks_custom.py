"""Custom tasks from local files and Hub datasets, and their one-line errors."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from graphopt.app.task import build_task
from graphopt.errors import TaskError
from graphopt.tasks import get_task
from graphopt.tasks.custom import MULTILINE_OUTPUT_FORMAT, file_task, read_records
from graphopt.tasks.hub import hub_task


def _fake_datasets(monkeypatch, load_dataset) -> None:
    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _qa_rows(n: int) -> list[dict]:
    return [{"question": f"What is {i} + 1?", "answer": i + 1, "level": "easy"} for i in range(n)]


def test_jsonl_file_with_custom_columns_becomes_a_task(tmp_path):
    path = _jsonl(tmp_path / "sums.jsonl", _qa_rows(30))
    task = get_task("file", path=str(path), input_key="question", target_key="answer", sizes=(10, 10, 10))
    assert (len(task.train), len(task.val), len(task.test)) == (10, 10, 10)
    everything = task.train + task.val + task.test
    assert len({ex.id for ex in everything}) == 30
    example = next(ex for ex in everything if ex.id == "sums-4")
    assert (example.input, example.target, example.meta) == ("What is 4 + 1?", "5", {"level": "easy"})
    assert task.score("5\nbecause 4 + 1 = 5", example) == ("5", 1.0)
    assert task.score("So the answer is 5.", example) == ("5", 1.0)
    assert task.score("6", example)[1] == 0.0
    assert task.source == str(path)


def test_csv_tsv_and_json_files_read_the_same_rows(tmp_path):
    (tmp_path / "a.csv").write_text("input,target\nx,1\ny,2\nz,3\n")
    (tmp_path / "a.tsv").write_text("input\ttarget\nx\t1\ny\t2\nz\t3\n")
    (tmp_path / "a.json").write_text(json.dumps([{"input": "x", "target": "1"}, {"input": "y", "target": "2"},
                                                 {"input": "z", "target": "3"}]))  # fmt: skip
    (tmp_path / "b.json").write_text(json.dumps({"canary": "c", "examples": json.loads((tmp_path / "a.json").read_text())}))
    expected = [{"input": "x", "target": "1"}, {"input": "y", "target": "2"}, {"input": "z", "target": "3"}]
    for name in ("a.csv", "a.tsv", "a.json", "b.json"):
        assert read_records(tmp_path / name) == expected


def test_csv_cells_keep_their_line_breaks(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text('input,target\n"line one\nline two",x\n"a, b",y\n', newline="")
    assert read_records(path) == [{"input": "line one\nline two", "target": "x"}, {"input": "a, b", "target": "y"}]


def test_shuffle_false_keeps_file_order_and_small_files_shrink_splits(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [{"input": str(i), "target": str(i)} for i in range(10)])
    task = file_task(path=path, shuffle=False)
    assert [ex.id for ex in task.train] == ["d-0", "d-1"]
    assert (len(task.train), len(task.val), len(task.test)) == (2, 4, 4)
    shuffled = file_task(path=path, seed=3)
    assert [ex.id for ex in shuffled.train + shuffled.val + shuffled.test] != [f"d-{i}" for i in range(10)]


def test_source_fills_path_and_the_seed_text_is_replaced_on_a_file_task(tmp_path):
    path = _jsonl(tmp_path / "e.jsonl", _qa_rows(6))
    task = build_task("file", source=str(path), input_key="question", target_key="answer", instruction="Add one.")
    assert task.source == str(path) and task.seed_program.instruction == "Add one."
    assert task.seed_program.output_format == file_task(path=path).seed_program.output_format  # the default, kept
    assert build_task("file", source=str(path), output_format="").seed_program.output_format == ""
    with pytest.raises(TaskError, match="has no option 'source'"):
        get_task("file", source=str(path))  # one name in Python: path=


def test_a_multiline_file_task_keeps_its_output_format_unless_one_is_given(tmp_path):
    path = _jsonl(tmp_path / "m.jsonl", [{"input": f"q{i}", "target": f"a{i}\nb{i}"} for i in range(6)])
    task = build_task("file", source=str(path), instruction="Write both lines.")
    assert (task.seed_program.instruction, task.seed_program.output_format) == ("Write both lines.", MULTILINE_OUTPUT_FORMAT)
    assert task.extract_rule == "whole"
    given = build_task("file", source=str(path), output_format="Two lines.\\nNo more.")
    assert given.seed_program.output_format == "Two lines.\nNo more."  # unescaped like on the command line
    assert given.seed_program.instruction == "Read the input and give the correct answer."  # the default, kept


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("data.txt", "hello", r"unsupported file type '.txt' for .*data.txt: use .jsonl"),
        ("empty.jsonl", "\n\n", r"empty.jsonl has no examples"),
        ("empty.csv", "", r"empty.csv has no examples"),
        ("broken.jsonl", '{"input": "a", "target": "b"}\n{"input": "a",\n', r"broken.jsonl line 2 is not valid JSON"),
        ("list.jsonl", '["a", "b"]\n', r"list.jsonl line 1 is not a JSON object"),
        ("broken.json", '{"examples": [', r"broken.json is not valid JSON"),
        ("scalar.json", '"text"', r"expected a list of objects"),
    ],
)
def test_bad_files_give_one_line_task_errors(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(TaskError, match=message) as info:
        file_task(path=tmp_path / name)
    assert "\n" not in str(info.value)


def test_missing_file_and_missing_path(tmp_path):
    with pytest.raises(TaskError, match=r"^file not found: .*nope.jsonl$"):
        file_task(path=tmp_path / "nope.jsonl")
    with pytest.raises(TaskError, match=r"^task 'file' needs a file: --source FILE \(path= in Python\)"):
        file_task()


def test_missing_column_lists_the_columns_and_the_fix(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("q,a,notes\nx,1,n\ny,2,n\nz,3,n\n")
    with pytest.raises(TaskError) as info:
        file_task(path=path, input_key="question", target_key="a")
    assert str(info.value) == f"column 'question' not in {path}; columns are: q, a, notes; pick the columns with --input-key/--target-key (input_key=/target_key= in Python)"


def test_row_without_a_value_is_named(tmp_path):
    path = _jsonl(tmp_path / "holes.jsonl", [{"input": "a", "target": "1"}, {"input": "b", "target": None},
                                             {"input": "c", "target": "3"}])  # fmt: skip
    with pytest.raises(TaskError, match=r"row 2 of .*holes.jsonl has no value for 'target'"):
        file_task(path=path)


def test_hub_task_reads_one_split_through_datasets(monkeypatch):
    calls = []

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return [{"question": f"q{i}", "answer": f"a{i}"} for i in range(20)]

    _fake_datasets(monkeypatch, load_dataset)
    task = get_task("hub", dataset_id="someone/qa", config="main", split="test", input_key="question",
                    target_key="answer", sizes=(5, 5, 5))  # fmt: skip
    assert calls == [("someone/qa", "main", "test")]
    assert (len(task.train), len(task.val), len(task.test)) == (5, 5, 5)
    assert task.train[0].id.startswith("someone_qa-main-test-")
    task = build_task("hub", source="someone/qa", input_key="question", target_key="answer")
    assert (task.name, task.source, calls[-1]) == ("hub", "someone/qa split 'train'", ("someone/qa", None, "train"))


def test_hub_task_errors_are_one_line(monkeypatch):
    def load_dataset(path, name=None, split=None):
        raise FileNotFoundError(f"Dataset '{path}' doesn't exist on the Hub\nor cannot be accessed.")

    _fake_datasets(monkeypatch, load_dataset)
    with pytest.raises(TaskError) as info:
        hub_task(dataset_id="nobody/nothing")
    assert "could not load nobody/nothing split 'train'" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(TaskError, match=r"^task 'hub' needs a dataset: --source OWNER/NAME \(dataset_id= in Python\)$"):
        hub_task()
