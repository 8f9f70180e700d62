"""MMLU and GPQA tasks: loading (local CSV, faked Hub), choice shuffling and letter scoring.

No GPQA text appears here: the GPQA tests use invented look-alike questions.
"""

from __future__ import annotations

import csv
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from graphopt.errors import TaskError
from graphopt.tasks.extract import extract_letter
from graphopt.tasks.multiple_choice import format_question, gpqa_diamond, mmlu_abstract_algebra

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

GPQA_HEADER = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]


def _fake_datasets(monkeypatch, load_dataset) -> None:
    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)


def _invented_gpqa_rows(n: int) -> list[dict]:
    """Made-up physics questions shaped like GPQA rows (with an extra column the loader ignores)."""
    return [
        {
            "Question": f"A toy spring of constant {i + 2} N/m is stretched by 0.{i + 1} m. What energy does it store?",
            "Correct Answer": f"right-{i}",
            "Incorrect Answer 1": f"wrong-{i}-1",
            "Incorrect Answer 2": f"wrong-{i}-2",
            "Incorrect Answer 3": f"wrong-{i}-3 ",
            "Record ID": f"rec{i}",
        }
        for i in range(n)
    ]


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _correct_text(example) -> str:
    line = next(line for line in example.input.splitlines() if line.startswith(f"({example.target}) "))
    return line[4:]


# --- formatting and extraction ------------------------------------------------------------------


def test_format_question_letters_the_choices_one_a_line():
    assert format_question(" What is 1+1? ", ["1", "2", "3", "4"]) == "What is 1+1?\n\n(A) 1\n(B) 2\n(C) 3\n(D) 4"


@pytest.mark.parametrize(
    ("output", "letter"),
    [
        ("(B)", "B"),
        ("So the answer is (C).", "C"),
        ("Answer: D", "D"),
        ("**Answer:** A", "A"),
        ("B. because it is cyclic", "B"),
        ("C", "C"),
        (" D)", "D"),
        ("I think it must be C, not D", "C"),
        ("Options (A) and (C) fail, so the answer is D.", "D"),
        ("the answer is a group", ""),  # lower-case "a" is an article, not a choice
        ("no idea", ""),
        ("E", ""),
    ],
)
def test_extract_letter_reads_common_answer_forms(output, letter):
    assert extract_letter(output) == letter


# --- MMLU ---------------------------------------------------------------------------------------


def test_mmlu_local_csv_loads_with_letter_targets(tmp_path):
    rows = [[f"Invented question {i}?", "w", "x", "y", "z", i % 4] for i in range(20)]
    path = _write_csv(tmp_path / "aa.csv", ["question", "choice0", "choice1", "choice2", "choice3", "answer"], rows)
    task = mmlu_abstract_algebra(source=str(path), sizes=(4, 8, 8))
    assert (len(task.train), len(task.val), len(task.test)) == (4, 8, 8)
    example = next(ex for ex in task.train + task.val + task.test if ex.id == "mmlu_abstract_algebra-file-2")
    assert example.target == "C"
    assert example.input == "Invented question 2?\n\n(A) w\n(B) x\n(C) y\n(D) z"
    assert task.score("The answer is (C).", example) == ("C", 1.0)
    assert task.score("(A)", example) == ("A", 0.0)


def test_mmlu_shared_csv_loads_when_present():
    path = SHARED_DATA / "mmlu" / "abstract_algebra_test.csv"
    if not path.is_file():
        pytest.skip(f"shared MMLU data not found at {path}")
    task = mmlu_abstract_algebra(source=path)
    assert (len(task.train), len(task.val), len(task.test)) == (20, 40, 40)
    assert all(ex.target in "ABCD" and "(D) " in ex.input for ex in task.test)


def test_mmlu_official_pools_the_three_hub_splits(monkeypatch):
    calls = []

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        size = {"dev": 5, "validation": 11, "test": 100}[split]
        return [{"question": f"{split} q{i}", "subject": name, "choices": ["a", "b", "c", "d"], "answer": i % 4}
                for i in range(size)]  # fmt: skip

    _fake_datasets(monkeypatch, load_dataset)
    task = mmlu_abstract_algebra()
    assert calls == [("cais/mmlu", "abstract_algebra", s) for s in ("dev", "validation", "test")]
    everything = task.train + task.val + task.test
    assert len(everything) == 116 and len({ex.id for ex in everything}) == 116
    assert {ex.id.split("-")[1] for ex in everything} == {"dev", "validation", "test"}
    assert task.source == "cais/mmlu/abstract_algebra"


def test_mmlu_bad_answer_and_missing_column_are_task_errors(tmp_path):
    header = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]
    bad = _write_csv(tmp_path / "bad.csv", header, [["q", "a", "b", "c", "d", 7]] * 3)
    with pytest.raises(TaskError, match="answer '7' is not 0-3 or A-D"):
        mmlu_abstract_algebra(source=bad)
    short = _write_csv(tmp_path / "short.csv", ["question", "answer"], [["q", 1]] * 3)
    with pytest.raises(TaskError, match="column 'choice0' not in .*columns are: question, answer"):
        mmlu_abstract_algebra(source=short)


def test_mmlu_offline_says_to_pass_a_local_csv(monkeypatch):
    def load_dataset(*args, **kwargs):
        raise ConnectionError("offline")

    _fake_datasets(monkeypatch, load_dataset)
    with pytest.raises(TaskError, match="source=PATH"):
        mmlu_abstract_algebra()


# --- GPQA ---------------------------------------------------------------------------------------


def test_gpqa_official_shuffles_choices_per_row_and_records_the_correct_letter(monkeypatch):
    calls = []

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return _invented_gpqa_rows(40)

    _fake_datasets(monkeypatch, load_dataset)
    task = gpqa_diamond(sizes=(10, 15, 15))
    assert calls == [("Idavidrein/gpqa", "gpqa_diamond", "train")]
    everything = task.train + task.val + task.test
    assert len(everything) == 40
    for ex in everything:
        assert _correct_text(ex) == f"right-{ex.meta['row']}"
        assert ex.id == f"gpqa_diamond-s0-{ex.meta['row']}"
    assert len(Counter(ex.target for ex in everything)) == 4  # the right answer is not always first
    again = gpqa_diamond(sizes=(10, 15, 15))
    assert [(e.id, e.input, e.target) for e in again.train] == [(e.id, e.input, e.target) for e in task.train]
    reseeded = gpqa_diamond(sizes=(10, 15, 15), seed=1)
    letters_seed1 = {e.meta["row"]: e.target for e in reseeded.train + reseeded.val + reseeded.test}
    assert letters_seed1 != {e.meta["row"]: e.target for e in everything}
    assert task.score("Answer: " + everything[0].target, everything[0])[1] == 1.0


def test_gpqa_gated_dataset_gives_a_one_line_fix(monkeypatch):
    def load_dataset(*args, **kwargs):
        raise PermissionError("Dataset 'Idavidrein/gpqa' is a gated dataset on the Hub.\nYou must be authenticated")

    _fake_datasets(monkeypatch, load_dataset)
    with pytest.raises(TaskError) as info:
        gpqa_diamond()
    message = str(info.value)
    assert "request access" in message and "HF_TOKEN" in message and "source=PATH" in message
    assert "\n" not in message


def test_gpqa_local_csv_loads_and_missing_columns_are_named(tmp_path):
    rows = [[r[h] for h in GPQA_HEADER] for r in _invented_gpqa_rows(12)]
    path = _write_csv(tmp_path / "gpqa_lookalike.csv", GPQA_HEADER, rows)
    task = gpqa_diamond(source=path, sizes=(2, 5, 5))
    assert (len(task.train), len(task.val), len(task.test)) == (2, 5, 5)
    assert all(_correct_text(ex) == f"right-{ex.meta['row']}" for ex in task.test)
    bad = _write_csv(tmp_path / "bad.csv", GPQA_HEADER[:2], [row[:2] for row in rows])
    with pytest.raises(TaskError, match="column 'Incorrect Answer 1' not in"):
        gpqa_diamond(source=bad)
    with pytest.raises(TaskError, match="file not found"):
        gpqa_diamond(source=tmp_path / "nope.csv")
