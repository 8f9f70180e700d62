"""A seeded generator of BBH word-sorting examples, with difficulty presets.

The "official" preset follows the distribution of the official BBH set (250 examples): 2 to 20
words per example and word lengths of 1 to 17 letters, both drawn from the official histograms.
The other presets are smaller lists so that small models get a measurable signal.

Example:
    >>> import random
    >>> spec = WORD_SORTING_PRESETS["easy"]
    >>> ex = generate_word_sorting(random.Random(0), spec)
    >>> ex.target == " ".join(sorted(ex.input.removeprefix(WORD_SORTING_PREFIX).split()))
    True
"""

from __future__ import annotations

__all__ = [
    "WORD_SORTING_PREFIX",
    "WordSortingSpec",
    "WORD_SORTING_PRESETS",
    "OFFICIAL_WORD_COUNTS",
    "OFFICIAL_WORD_LENGTHS",
    "generate_word_sorting",
    "word_sorting_input",
]

import random
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import TaskError
from .generators import Generated
from .words import words_by_length

WORD_SORTING_PREFIX = "Sort the following words alphabetically: List: "

# Words per example -> number of official examples (stats.json); used as sampling weights.
OFFICIAL_WORD_COUNTS: Mapping[int, int] = {
    2: 13, 3: 14, 4: 12, 5: 12, 6: 9, 7: 11, 8: 9, 9: 16, 10: 16, 11: 12,
    12: 16, 13: 10, 14: 11, 15: 7, 16: 16, 17: 17, 18: 11, 19: 18, 20: 20,
}  # fmt: skip

# Word length -> number of official words of that length (stats.json); used as sampling weights.
OFFICIAL_WORD_LENGTHS: Mapping[int, int] = {
    1: 2, 2: 11, 3: 86, 4: 225, 5: 348, 6: 447, 7: 484, 8: 439, 9: 379,
    10: 234, 11: 111, 12: 58, 13: 32, 14: 14, 15: 8, 16: 2, 17: 1,
}  # fmt: skip


@dataclass(frozen=True)
class WordSortingSpec:
    """How word-sorting examples are drawn.

    Attributes:
        name: the preset name, used in example ids ("custom" for your own specs).
        word_counts: number of words per example -> sampling weight.
        length_weights: word length -> sampling weight.
        distinct_first_letters: when True, no two words of an example share a first letter, so
            sorting needs only the first letter.
    """

    name: str
    word_counts: Mapping[int, float]
    length_weights: Mapping[int, float]
    distinct_first_letters: bool = False

    def __post_init__(self) -> None:
        if not _valid_weights(self.word_counts) or not 1 <= min(self.word_counts) <= max(self.word_counts) <= 200:
            raise TaskError(f"word-sorting spec {self.name!r}: word_counts needs 1 to 200 words, positive weights")
        if self.distinct_first_letters and max(self.word_counts) > 26:
            raise TaskError(f"word-sorting spec {self.name!r}: distinct first letters allow 26 words at most")
        if not _valid_weights(self.length_weights):
            raise TaskError(f"word-sorting spec {self.name!r}: length_weights needs positive weights")


def _valid_weights(weights: Mapping[int, float]) -> bool:
    return bool(weights) and min(weights.values()) >= 0 and sum(weights.values()) > 0


_SHORT_WORDS = {length: OFFICIAL_WORD_LENGTHS[length] for length in range(3, 8)}
_MEDIUM_WORDS = {length: OFFICIAL_WORD_LENGTHS[length] for length in range(3, 10)}

WORD_SORTING_PRESETS: dict[str, WordSortingSpec] = {
    # 2-3 words of 3-7 letters, all with different first letters.
    "easy": WordSortingSpec("easy", {2: 1, 3: 1}, _SHORT_WORDS, distinct_first_letters=True),
    # 3-5 words of 3-9 letters; first letters may repeat.
    "medium": WordSortingSpec("medium", {3: 1, 4: 1, 5: 1}, _MEDIUM_WORDS),
    # 6-10 words with the official word lengths.
    "hard": WordSortingSpec("hard", dict.fromkeys(range(6, 11), 1), OFFICIAL_WORD_LENGTHS),
    "official": WordSortingSpec("official", OFFICIAL_WORD_COUNTS, OFFICIAL_WORD_LENGTHS),
}


def word_sorting_input(words: list[str]) -> str:
    """The official input text for a list of words."""
    return WORD_SORTING_PREFIX + " ".join(words)


def _nearest_length(length: int, available: Mapping[int, tuple[str, ...]]) -> int:
    return min(available, key=lambda have: (abs(have - length), have))


def generate_word_sorting(rng: random.Random, spec: WordSortingSpec) -> Generated:
    """Draws one example: distinct words in random order, and their alphabetical order as target.

    Args:
        rng: the random source (all randomness comes from it).
        spec: the distribution to draw from.

    Returns:
        The example, with meta {"n_words", "mean_word_len", "difficulty"}.
    """
    by_length = words_by_length()
    lengths = list(spec.length_weights)
    weights = [spec.length_weights[n] for n in lengths]
    n_words = rng.choices(list(spec.word_counts), list(spec.word_counts.values()))[0]
    words: list[str] = []
    firsts: set[str] = set()
    while len(words) < n_words:
        length = _nearest_length(rng.choices(lengths, weights)[0], by_length)
        word = rng.choice(by_length[length])
        if word in words or (spec.distinct_first_letters and word[0] in firsts):
            continue
        words.append(word)
        firsts.add(word[0])
    meta = {
        "n_words": n_words,
        "mean_word_len": sum(map(len, words)) / n_words,
        "difficulty": spec.name,
    }
    return Generated(word_sorting_input(words), " ".join(sorted(words)), meta)
