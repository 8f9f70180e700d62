"""The task registry, and one contract every built-in task meets (built offline)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from graphopt.errors import TaskError
from graphopt.tasks import Task, get_task, task_names
from graphopt.tasks.registry import factories
from graphopt.program import Program

BUILTIN_TASKS = ("dyck_languages", "file", "gpqa_diamond", "hub", "mmlu_abstract_algebra", "word_sorting")


def _fake_hub(dataset_id, name=None, split=None):
    """Stands in for `datasets.load_dataset`: invented rows in each built-in dataset's layout."""
    if dataset_id == "cais/mmlu":
        return [{"question": f"{split} question {i}?", "choices": ["w", "x", "y", "z"], "answer": i % 4}
                for i in range(12)]  # fmt: skip
    if dataset_id == "Idavidrein/gpqa":
        return [{"Question": f"Invented science question {i}?", "Correct Answer": f"yes {i}",
                 "Incorrect Answer 1": f"no {i}", "Incorrect Answer 2": f"nope {i}", "Incorrect Answer 3": f"never {i}"}
                for i in range(30)]  # fmt: skip
    return [{"input": f"item {i}", "target": f"answer {i}"} for i in range(30)]


@pytest.fixture
def offline_hub(monkeypatch):
    module = types.ModuleType("datasets")
    module.load_dataset = _fake_hub
    monkeypatch.setitem(sys.modules, "datasets", module)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"input": f"x{i}", "target": f"y{i}"}) + "\n" for i in range(30)))
    return path


# Options that build each built-in task offline; a new built-in task needs an entry here.
CONTRACT_CASES = {
    "word_sorting": [{}, {"difficulty": "easy"}, {"source": "official"}],
    "dyck_languages": [{}, {"difficulty": "easy"}, {"difficulty": "medium"}, {"source": "official"}],
    "mmlu_abstract_algebra": [{}],
    "gpqa_diamond": [{}],
    "file": [{"path": "DATA_FILE"}],
    "hub": [{"dataset_id": "someone/pairs"}],
}


def _cases():
    for name, option_sets in CONTRACT_CASES.items():
        for options in option_sets:
            yield pytest.param(name, options, id=f"{name}-{'-'.join(map(str, options.values())) or 'default'}")


def test_task_names_lists_every_builtin_task():
    assert set(BUILTIN_TASKS) <= set(task_names())
    assert task_names() == sorted(task_names())


def test_every_builtin_task_has_a_contract_case_and_a_description():
    builtin = [f for f in factories() if f.build.__module__.startswith("graphopt.tasks.")]
    assert {f.name for f in builtin} == set(CONTRACT_CASES)
    assert all(f.description for f in builtin)


def test_unknown_task_name_suggests_the_closest():
    with pytest.raises(TaskError, match=r"unknown task 'word_sortin' \(did you mean 'word_sorting'\?\)"):
        get_task("word_sortin")


def test_unknown_option_names_the_options_the_task_takes():
    with pytest.raises(TaskError, match=r"has no option 'dificulty' \(did you mean 'difficulty'\?\): it takes source"):
        get_task("dyck_languages", dificulty="easy")


@pytest.mark.parametrize(("name", "options"), list(_cases()))
def test_task_contract(name, options, offline_hub, data_file):
    options = {k: (str(data_file) if v == "DATA_FILE" else v) for k, v in options.items()}
    task = get_task(name, sizes=(5, 6, 7), **options)

    assert isinstance(task, Task) and task.name == name
    assert isinstance(task.seed_program, Program) and task.seed_program.instruction
    splits = (task.train, task.val, task.test)
    assert all(splits), "every split has examples"
    ids = [ex.id for split in splits for ex in split]
    assert len(ids) == len(set(ids)), "ids are unique and the splits disjoint"
    assert len({ex.input for split in splits for ex in split}) == len(ids), "no input is repeated"
    assert all(ex.input and ex.target for split in splits for ex in split)

    example = task.val[0]
    assert task.seed_program.messages(example.input)[-1]["content"] == example.input
    assert task.score(example.target, example)[1] == 1.0, "the target itself scores as correct"
    assert task.score("", example)[1] == 0.0
    assert task.split("test") is task.test

    again = get_task(name, sizes=(5, 6, 7), **options)
    assert [ex.id for ex in again.train] == [ex.id for ex in task.train], "same options, same task"
    assert [ex.input for ex in again.test] == [ex.input for ex in task.test]
