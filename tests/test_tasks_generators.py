"""The word-sorting and Dyck generators: correctness, presets, determinism, official statistics."""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

from graphopt.errors import TaskError
from graphopt.tasks.dyck import (
    DYCK_PREFIX,
    DYCK_PRESETS,
    DyckSpec,
    closing_brackets,
    generate_dyck,
    is_balanced,
    max_depth,
)
from graphopt.tasks.generators import generate_examples, resolve_difficulty
from graphopt.tasks.word_sorting import (
    WORD_SORTING_PREFIX,
    WORD_SORTING_PRESETS,
    WordSortingSpec,
    generate_word_sorting,
)
from graphopt.tasks.words import vocabulary, words_by_length

# The repo's parent holds shared/ (here /work/main/.. and a CI clone's parent alike).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _words(text: str) -> list[str]:
    return text.removeprefix(WORD_SORTING_PREFIX).split()


def _tokens(text: str) -> list[str]:
    return text.removeprefix(DYCK_PREFIX).split()


def _draw(generate, spec, n: int, seed: int = 0):
    rng = random.Random(seed)
    return [generate(rng, spec) for _ in range(n)]


# --- vocabulary ---------------------------------------------------------------------------------


def test_vocabulary_is_large_lowercase_and_spans_word_lengths():
    words = vocabulary()
    assert len(words) >= 1000
    assert all(w.isalpha() and w.islower() for w in words)
    lengths = words_by_length()
    assert all(len(lengths.get(n, ())) >= 20 for n in range(3, 14))
    assert max(lengths) >= 16


# --- word sorting -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(WORD_SORTING_PRESETS))
def test_word_sorting_target_is_the_input_words_sorted(preset):
    for ex in _draw(generate_word_sorting, WORD_SORTING_PRESETS[preset], 200):
        assert ex.input.startswith(WORD_SORTING_PREFIX)
        words = _words(ex.input)
        assert len(set(words)) == len(words)
        assert ex.target == " ".join(sorted(words))


def test_word_sorting_easy_has_2_to_3_words_with_distinct_first_letters():
    for ex in _draw(generate_word_sorting, WORD_SORTING_PRESETS["easy"], 300):
        words = _words(ex.input)
        assert 2 <= len(words) <= 3
        assert len({w[0] for w in words}) == len(words)
        assert all(3 <= len(w) <= 7 for w in words)


def test_word_sorting_medium_has_3_to_5_words():
    counts = Counter(len(_words(ex.input)) for ex in _draw(generate_word_sorting, WORD_SORTING_PRESETS["medium"], 300))
    assert set(counts) == {3, 4, 5}


def test_word_sorting_spec_rejects_impossible_settings():
    with pytest.raises(TaskError, match="26 words"):
        WordSortingSpec("x", {30: 1}, {5: 1}, distinct_first_letters=True)
    with pytest.raises(TaskError, match="word_counts"):
        WordSortingSpec("x", {}, {5: 1})


# --- dyck ---------------------------------------------------------------------------------------


def test_closing_brackets_and_balance_helpers():
    assert closing_brackets("( [ { } <".split()) == [">", "]", ")"]
    assert is_balanced("( [ ] ) < >".split())
    assert not is_balanced("( ]".split())
    assert not is_balanced("( [".split())
    assert max_depth("( [ ] ) { < ( ) > }".split()) == 3
    with pytest.raises(ValueError):
        closing_brackets("( ]".split())


@pytest.mark.parametrize("preset", sorted(DYCK_PRESETS))
def test_dyck_target_is_the_only_completion_and_closes_the_input(preset):
    for ex in _draw(generate_dyck, DYCK_PRESETS[preset], 200):
        assert ex.input.startswith(DYCK_PREFIX)
        tokens, target = _tokens(ex.input), ex.target.split()
        assert ex.target == " ".join(target)  # single spaces, like the official targets
        assert is_balanced(tokens + target)
        assert closing_brackets(tokens) == target
        assert 1 <= len(target) <= 3
        assert ex.meta["target_tokens"] == len(target)
        assert ex.meta["full_length"] == len(tokens) + len(target)


def test_dyck_easy_needs_one_closing_bracket_of_a_short_shallow_input():
    for ex in _draw(generate_dyck, DYCK_PRESETS["easy"], 300):
        tokens = _tokens(ex.input)
        assert len(ex.target.split()) == 1
        assert 2 <= len(tokens) <= 7
        assert max_depth(tokens + ex.target.split()) <= 2


def test_dyck_medium_has_depth_at_most_2_and_1_or_2_closing_brackets():
    examples = _draw(generate_dyck, DYCK_PRESETS["medium"], 300)
    assert {len(ex.target.split()) for ex in examples} == {1, 2}
    assert all(max_depth(_tokens(ex.input)) <= 2 for ex in examples)
    assert all(len(_tokens(ex.input)) <= 9 for ex in examples)


def test_dyck_spec_rejects_impossible_settings():
    with pytest.raises(TaskError, match="max_depth"):
        DyckSpec("x", ((4, 8, 1.0),), {3: 1.0}, max_depth=2)
    with pytest.raises(TaskError, match="full_lengths"):
        DyckSpec("x", ((8, 4, 1.0),), {1: 1.0})


# --- shared machinery ---------------------------------------------------------------------------


def test_generate_examples_is_deterministic_per_seed_and_differs_across_seeds():
    spec = WORD_SORTING_PRESETS["official"]
    first = generate_examples("word_sorting", generate_word_sorting, spec, n=30, seed=3)
    again = generate_examples("word_sorting", generate_word_sorting, spec, n=30, seed=3)
    other = generate_examples("word_sorting", generate_word_sorting, spec, n=30, seed=4)
    assert first == again
    assert [e.input for e in first] != [e.input for e in other]


def test_generate_examples_gives_distinct_inputs_and_stable_ids():
    examples = generate_examples("dyck_languages", generate_dyck, DYCK_PRESETS["easy"], n=250, seed=0)
    assert len({e.input for e in examples}) == 250
    assert examples[17].id == "dyck_languages-gen-easy-s0-17"
    official = generate_examples("dyck_languages", generate_dyck, DYCK_PRESETS["official"], n=3, seed=2)
    assert [e.id for e in official] == [f"dyck_languages-gen-s2-{i}" for i in range(3)]
    assert official[0].meta["seed"] == 2 and official[0].meta["difficulty"] == "official"


def test_generate_examples_fails_clearly_when_a_spec_has_too_few_distinct_inputs():
    tiny = DyckSpec("tiny", ((2, 2, 1.0),), {1: 1.0})  # only "(", "[", "{", "<"
    with pytest.raises(TaskError, match="only 4 distinct examples"):
        generate_examples("dyck_languages", generate_dyck, tiny, n=10, seed=0)


@pytest.mark.parametrize(
    ("difficulty", "expected"),
    [("easy", "easy"), ("Medium", "medium"), (1, "easy"), ("3", "hard"), (4, "official"), ("official", "official")],
)
def test_resolve_difficulty_accepts_names_and_levels(difficulty, expected):
    assert resolve_difficulty(difficulty, DYCK_PRESETS, task="dyck_languages").name == expected


def test_resolve_difficulty_passes_a_spec_through_and_rejects_unknowns():
    spec = DyckSpec("mine", ((6, 6, 1.0),), {1: 1.0})
    assert resolve_difficulty(spec, DYCK_PRESETS, task="dyck_languages") is spec
    with pytest.raises(TaskError, match="did you mean 'easy'"):
        resolve_difficulty("eazy", DYCK_PRESETS, task="dyck_languages")
    with pytest.raises(TaskError, match="level 9"):
        resolve_difficulty(9, DYCK_PRESETS, task="dyck_languages")
    with pytest.raises(TaskError, match="DyckSpec"):
        resolve_difficulty(WORD_SORTING_PRESETS["easy"], DYCK_PRESETS, task="dyck_languages")


# --- statistics against the official files ------------------------------------------------------


def _official(task: str) -> list[dict]:
    path = SHARED_DATA / "bbh" / f"{task}.json"
    if not path.is_file():
        pytest.skip(f"official data not found at {path}")
    return json.loads(path.read_text())["examples"]


def test_generated_word_sorting_matches_the_official_distribution():
    official = [_words(ex["input"]) for ex in _official("word_sorting")]
    generated = [_words(ex.input) for ex in _draw(generate_word_sorting, WORD_SORTING_PRESETS["official"], 1000)]

    def stats(lists):
        words = [w for ws in lists for w in ws]
        shared = sum(len({w[0] for w in ws}) < len(ws) for ws in lists) / len(lists)
        return statistics.mean(map(len, lists)), statistics.mean(map(len, words)), shared

    (off_n, off_len, off_shared), (gen_n, gen_len, gen_shared) = stats(official), stats(generated)
    assert gen_n == pytest.approx(off_n, rel=0.15)
    assert gen_len == pytest.approx(off_len, rel=0.10)
    assert gen_shared == pytest.approx(off_shared, abs=0.1)
    assert min(map(len, generated)) == 2 and max(map(len, generated)) == 20


def test_generated_dyck_matches_the_official_distribution():
    official = [(_tokens(ex["input"]), ex["target"].split()) for ex in _official("dyck_languages")]
    generated = [
        (_tokens(ex.input), ex.target.split()) for ex in _draw(generate_dyck, DYCK_PRESETS["official"], 1000)
    ]

    def stats(pairs):
        target_share = Counter(len(t) for _, t in pairs)
        return {
            "input_mean": statistics.mean(len(i) for i, _ in pairs),
            "depth_mean": statistics.mean(max_depth(i + t) for i, t in pairs),
            "ends_with_closer": sum(i[-1] in ")]}>" for i, _ in pairs) / len(pairs),
            **{f"target_{k}": target_share[k] / len(pairs) for k in (1, 2, 3)},
        }

    off, gen = stats(official), stats(generated)
    assert gen["input_mean"] == pytest.approx(off["input_mean"], rel=0.20)
    assert gen["depth_mean"] == pytest.approx(off["depth_mean"], rel=0.20)
    assert gen["ends_with_closer"] == pytest.approx(off["ends_with_closer"], abs=0.1)
    for k in (1, 2, 3):
        assert gen[f"target_{k}"] == pytest.approx(off[f"target_{k}"], abs=0.07)
