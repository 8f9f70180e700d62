"""A seeded generator of BBH Dyck-language examples, with difficulty presets.

An example is a Dyck-4 word (brackets `( ) [ ] { } < >`) cut before its last few closing brackets;
the target is those closing brackets, the only correct completion. The generator draws the full
word length and the target length, builds a random word by nesting and joining shorter words
(never deeper than the preset allows), and keeps it when it ends with enough closing brackets.

The "official" preset follows the official BBH set (250 examples): full word lengths 4 to 100
spread like the official buckets 4-10 / 12-20 / 22-50 / 52-100, 1, 2 or 3 target tokens in the
official proportions, and a nesting probability of 0.7, which reproduces the official words' mean
nesting depth (about 7) and how often the input itself ends with a closing bracket (about 80%).

Example:
    >>> import random
    >>> ex = generate_dyck(random.Random(0), DYCK_PRESETS["easy"])
    >>> closing_brackets(ex.input.removeprefix(DYCK_PREFIX).split()) == ex.target.split()
    True
"""

from __future__ import annotations

__all__ = [
    "DYCK_PREFIX",
    "BRACKETS",
    "DyckSpec",
    "DYCK_PRESETS",
    "generate_dyck",
    "closing_brackets",
    "is_balanced",
    "max_depth",
]

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import TaskError
from .generators import Generated

DYCK_PREFIX = "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: "

BRACKETS: Mapping[str, str] = {"(": ")", "[": "]", "{": "}", "<": ">"}
_OPENER_OF = {close: open_ for open_, close in BRACKETS.items()}


@dataclass(frozen=True)
class DyckSpec:
    """How Dyck examples are drawn.

    Attributes:
        name: the preset name, used in example ids ("custom" for your own specs).
        full_lengths: buckets (low, high, weight) of the full word length (input + target, in
            tokens); a bucket is drawn by weight, then an even length uniformly inside it.
        target_weights: target length in tokens -> weight.
        max_depth: the deepest nesting allowed anywhere in the word (None: no limit).
        nest_prob: how often a word is built by wrapping a shorter word in a pair rather than by
            joining two shorter words; higher values give deeper, more nested words.
    """

    name: str
    full_lengths: tuple[tuple[int, int, float], ...]
    target_weights: Mapping[int, float]
    max_depth: int | None = None
    nest_prob: float = 0.7

    def __post_init__(self) -> None:
        if not self.full_lengths or any(lo < 2 or lo > hi or w < 0 for lo, hi, w in self.full_lengths):
            raise TaskError(f"dyck spec {self.name!r}: full_lengths needs buckets (low>=2, high>=low, weight>=0)")
        if not self.target_weights or min(self.target_weights) < 1:
            raise TaskError(f"dyck spec {self.name!r}: target lengths must be >= 1")
        if self.max_depth is not None and self.max_depth < min(self.target_weights):
            raise TaskError(f"dyck spec {self.name!r}: max_depth is below the shortest target")
        if max(hi for _, hi, _ in self.full_lengths) > 400:
            raise TaskError(f"dyck spec {self.name!r}: full words of at most 400 tokens")
        if not 0.0 <= self.nest_prob <= 1.0:
            raise TaskError(f"dyck spec {self.name!r}: nest_prob must be in [0, 1]")


DYCK_PRESETS: dict[str, DyckSpec] = {
    # One bracket left open, nothing nested deeper than 2, inputs of 3-7 tokens: "( [ ]" -> ")".
    "easy": DyckSpec("easy", ((4, 6, 3.0), (8, 8, 1.0)), {1: 1.0}, max_depth=2, nest_prob=0.5),
    # One or two brackets left open, depth at most 2, inputs of 2-9 tokens: "< ( ) [" -> "] >".
    "medium": DyckSpec("medium", ((4, 10, 1.0),), {1: 1.0, 2: 1.0}, max_depth=2, nest_prob=0.5),
    "hard": DyckSpec("hard", ((8, 30, 1.0),), {1: 1.0, 2: 1.0, 3: 1.0}, max_depth=4),
    # Bucket weights and target proportions are the official set's counts (stats.json).
    "official": DyckSpec(
        "official", ((4, 10, 92), (12, 20, 59), (22, 50, 61), (52, 100, 38)), {1: 81, 2: 97, 3: 72}
    ),
}


def closing_brackets(tokens: Sequence[str]) -> list[str]:
    """The closing brackets that complete `tokens`, innermost first.

    Raises:
        ValueError: `tokens` has an unknown token or a closing bracket that does not match.
    """
    stack: list[str] = []
    for token in tokens:
        if token in BRACKETS:
            stack.append(token)
        elif token in _OPENER_OF and stack and stack[-1] == _OPENER_OF[token]:
            stack.pop()
        else:
            raise ValueError(f"unexpected token {token!r}")
    return [BRACKETS[t] for t in reversed(stack)]


def is_balanced(tokens: Sequence[str]) -> bool:
    """True when `tokens` is a complete Dyck word (every bracket closed, in order)."""
    try:
        return not closing_brackets(tokens)
    except ValueError:
        return False


def max_depth(tokens: Sequence[str]) -> int:
    """The deepest nesting reached while reading `tokens` left to right."""
    depth = deepest = 0
    for token in tokens:
        depth += 1 if token in BRACKETS else -1
        deepest = max(deepest, depth)
    return deepest


def _random_word(rng: random.Random, pairs: int, depth_left: int, nest_prob: float) -> list[str]:
    """A random Dyck word of `pairs` bracket pairs nesting at most `depth_left` deep.

    Each step either wraps a shorter word in a new pair (with probability `nest_prob`) or
    concatenates two shorter words split at a uniform point.
    """
    if pairs == 0:
        return []
    if pairs == 1 or (depth_left > 1 and rng.random() < nest_prob):
        opener = rng.choice(tuple(BRACKETS))
        return [opener, *_random_word(rng, pairs - 1, depth_left - 1, nest_prob), BRACKETS[opener]]
    left = rng.randint(1, pairs - 1)
    return _random_word(rng, left, depth_left, nest_prob) + _random_word(rng, pairs - left, depth_left, nest_prob)


def _trailing_closers(tokens: Sequence[str]) -> int:
    count = 0
    for token in reversed(tokens):
        if token in BRACKETS:
            break
        count += 1
    return count


def _draw_full_length(rng: random.Random, spec: DyckSpec) -> int:
    buckets = list(spec.full_lengths)
    lo, hi, _ = rng.choices(buckets, [w for _, _, w in buckets])[0]
    lo += lo % 2  # full Dyck words have an even length
    return rng.randrange(lo, hi + 1, 2) if lo <= hi else hi - hi % 2


def generate_dyck(rng: random.Random, spec: DyckSpec) -> Generated:
    """Draws one example: a Dyck word cut before its last closing brackets, which are the target.

    Args:
        rng: the random source (all randomness comes from it).
        spec: the distribution to draw from.

    Returns:
        The example, with meta {"full_length", "target_tokens", "max_depth", "difficulty"}.

    Raises:
        TaskError: the spec allows no word at all (e.g. targets longer than half the words).
    """
    targets = list(spec.target_weights)
    target_weights = [spec.target_weights[k] for k in targets]
    n_target = rng.choices(targets, target_weights)[0]
    for _ in range(100):
        full = _draw_full_length(rng, spec)
        ceiling = spec.max_depth if spec.max_depth is not None else full // 2
        # Redraw only the word, so that lengths and target sizes keep the spec's proportions.
        for _ in range(50):
            word = _random_word(rng, full // 2, ceiling, spec.nest_prob)
            if _trailing_closers(word) >= n_target:
                break
        else:
            continue  # this length (nearly) never ends with n_target closing brackets: draw another
        tokens, closing = word[:-n_target], word[-n_target:]
        meta = {
            "full_length": full,
            "target_tokens": n_target,
            "max_depth": max_depth(word),
            "difficulty": spec.name,
        }
        return Generated(DYCK_PREFIX + " ".join(tokens), " ".join(closing), meta)
    raise TaskError(f"dyck spec {spec.name!r} allows no example: check full_lengths, targets and max_depth")
