"""The BBH tasks: sources, splits, ids, official loading (local file, faked Hub) and scoring."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from graphopt.errors import TaskError
from graphopt.tasks import get_task
from graphopt.tasks.bbh import dyck_languages, word_sorting
from graphopt.tasks.extract import extract_answer, extract_spaced, first_line, squeeze_spaces

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _fake_datasets(monkeypatch, load_dataset) -> None:
    """Puts a stand-in `datasets` module in place, so nothing touches the network."""
    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)


def _bbh_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        words = [f"w{i}a", f"w{i}c", f"w{i}b"]
        rows.append({"input": "Sort the following words alphabetically: List: " + " ".join(words),
                     "target": " ".join(sorted(words))})  # fmt: skip
    return rows


def _ids(*splits) -> list[str]:
    return [ex.id for split in splits for ex in split]


# --- generated ----------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [word_sorting, dyck_languages])
def test_generated_task_has_default_sizes_and_disjoint_splits(build):
    task = build()
    assert (len(task.train), len(task.val), len(task.test)) == (50, 100, 100)
    inputs = [ex.input for ex in task.train + task.val + task.test]
    assert len(set(inputs)) == 250
    assert len(set(_ids(task.train, task.val, task.test))) == 250
    assert task.source == "generated(seed=0, difficulty=official)"


def test_generated_ids_are_stable_strings():
    task = word_sorting(sizes=(10, 5, 5), seed=0)
    assert task.train[0].id == "word_sorting-gen-s0-0"
    assert task.val[2].id == "word_sorting-gen-s0-12"
    assert word_sorting(sizes=(10, 5, 5), seed=0).val[2] == task.val[2]
    assert dyck_languages(difficulty="easy", sizes=(3, 3, 3), seed=5).test[0].id == "dyck_languages-gen-easy-s5-6"


def test_seed_changes_the_generated_examples():
    a, b = word_sorting(sizes=(5, 5, 5), seed=0), word_sorting(sizes=(5, 5, 5), seed=1)
    assert [e.input for e in a.train] != [e.input for e in b.train]


def test_difficulty_levels_and_names_reach_the_generator():
    easy = dyck_languages(difficulty=1, sizes=(20, 5, 5))
    assert all(len(ex.target.split()) == 1 for ex in easy.train)
    assert easy.source == "generated(seed=0, difficulty=easy)"
    assert word_sorting(difficulty="2", sizes=(2, 2, 2)).train[0].meta["difficulty"] == "medium"


# --- official and local files -------------------------------------------------------------------


def test_official_json_file_loads_and_splits_with_a_fixed_shuffle(tmp_path):
    path = SHARED_DATA / "bbh" / "word_sorting.json"
    if not path.is_file():
        path = tmp_path / "word_sorting.json"
        path.write_text(json.dumps({"canary": "test", "examples": _bbh_rows(250)}))
    task = get_task("word_sorting", source=str(path))
    assert (len(task.train), len(task.val), len(task.test)) == (50, 100, 100)
    assert len(set(_ids(task.train, task.val, task.test))) == 250
    assert all(ex.id.startswith("word_sorting-file-") for ex in task.train)
    assert task.source == str(path)
    again = get_task("word_sorting", source=path)
    assert _ids(task.train) == _ids(again.train)
    assert _ids(task.train) != _ids(get_task("word_sorting", source=path, seed=1).train)
    assert _ids(task.train) != [f"word_sorting-file-{i}" for i in range(50)]  # shuffled


def test_small_local_file_shrinks_the_splits(tmp_path):
    path = tmp_path / "few.json"
    path.write_text(json.dumps({"canary": "x", "examples": _bbh_rows(10)}))
    task = word_sorting(source=path)
    assert (len(task.train), len(task.val), len(task.test)) == (2, 4, 4)


def test_local_file_without_input_and_target_is_a_task_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"examples": [{"question": "q", "answer": "a"}]}))
    with pytest.raises(TaskError, match="'input' and 'target'"):
        word_sorting(source=path)
    with pytest.raises(TaskError, match="file not found"):
        word_sorting(source=str(tmp_path / "missing.json"))


def test_official_source_loads_the_lukaemon_config_through_datasets(monkeypatch):
    calls = []

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return _bbh_rows(250)

    _fake_datasets(monkeypatch, load_dataset)
    task = word_sorting(source="official")
    assert calls == [("lukaemon/bbh", "word_sorting", "test")]
    assert (len(task.train), len(task.val), len(task.test)) == (50, 100, 100)
    assert task.train[0].id.startswith("word_sorting-official-")
    assert task.source == "lukaemon/bbh/word_sorting"
    dyck_languages(source="official", hub_id="me/bbh-copy")
    assert calls[-1] == ("me/bbh-copy", "dyck_languages", "test")


def test_official_source_offline_says_to_pass_a_local_file(monkeypatch):
    def load_dataset(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'lukaemon/bbh' on the Hub\n(offline)")

    _fake_datasets(monkeypatch, load_dataset)
    with pytest.raises(TaskError) as info:
        dyck_languages(source="official")
    message = str(info.value)
    assert "source=PATH" in message and "lukaemon/bbh" in message
    assert "\n" not in message


def test_official_source_without_datasets_installed_is_a_task_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(TaskError, match="needs the `datasets` package"):
        word_sorting(source="official")


def test_difficulty_with_official_data_and_unknown_sources_are_rejected():
    with pytest.raises(TaskError, match="generated examples only"):
        word_sorting(source="official", difficulty="easy")
    with pytest.raises(TaskError, match="did you mean 'official'"):
        word_sorting(source="oficial")
    with pytest.raises(TaskError, match="sizes must be three positive integers"):
        word_sorting(sizes=(10, 0, 5))


# --- programs, extraction, scoring --------------------------------------------------------------


def test_seed_programs_put_the_input_last_and_ask_for_the_answer_format():
    task = dyck_languages(sizes=(2, 2, 2))
    messages = task.seed_program.messages(task.val[0].input)
    assert messages[-1] == {"role": "user", "content": task.val[0].input}
    assert "single spaces" in task.seed_program.output_format
    assert task.stop is None
    assert "sorted words only" in word_sorting(sizes=(2, 2, 2)).seed_program.output_format


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        ("Let's think step by step.\n...\nSo the answer is ] } ).", "] } )"),
        ("So the answer is apple banana cherry.", "apple banana cherry"),
        ("\n\n  apple banana  \nmore text", "apple banana"),
        ("apple banana..", "apple banana."),  # only one trailing dot is dropped
        ("So the answer is x.\nSo the answer is y.", "y"),  # the last marker wins
        ("", ""),
    ],
)
def test_extract_answer_follows_the_official_reading(output, answer):
    assert extract_answer(output) == answer


def test_spacing_is_normalised_but_scoring_stays_strict():
    assert extract_spaced("So the answer is ]   }\t).") == "] } )"
    assert squeeze_spaces("  a \n b ") == "a b"
    assert first_line("\n \n x \n y") == "x"
    task = dyck_languages(sizes=(2, 2, 2))
    example = task.train[0]
    assert task.score(f"So the answer is {example.target}.", example) == (example.target, 1.0)
    assert task.score(example.target.replace(" ", "  "), example)[1] == 1.0
    if " " in example.target:
        assert task.score(example.target.replace(" ", ""), example)[1] == 0.0


def test_word_sorting_scores_only_the_exact_sorted_list():
    task = word_sorting(difficulty="easy", sizes=(2, 2, 2))
    example = task.train[0]
    words = example.target.split()
    assert task.score(" ".join(words), example)[1] == 1.0
    assert task.score("  " + "   ".join(words) + ".", example)[1] == 1.0
    assert task.score(" ".join(reversed(words)), example)[1] == 0.0
    assert task.score(", ".join(words), example)[1] == 0.0
    assert task.score(" ".join(words).upper(), example)[1] == 0.0
