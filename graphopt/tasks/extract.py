"""Answer extraction: from a model's raw output to the string compared with the target.

Extraction is forgiving about where the answer sits (after "So the answer is ", or on the first
non-empty line) and about whitespace, but scoring stays strict: nothing here lowercases, reorders
or fixes the answer itself.

Example:
    >>> extract_answer("Let's think.\\nSo the answer is ] ).")
    '] )'
    >>> extract_letter("I pick (C) because ...")
    'C'
"""

from __future__ import annotations

__all__ = [
    "ANSWER_MARKER",
    "extract_answer",
    "extract_spaced",
    "extract_letter",
    "first_line",
    "squeeze_spaces",
]

import re

ANSWER_MARKER = "So the answer is "

_SPACES = re.compile(r"\s+")


def first_line(text: str) -> str:
    """The first non-empty line of `text`, stripped ('' when there is none)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def squeeze_spaces(text: str) -> str:
    """Strips `text` and turns every run of whitespace inside it into one space."""
    return _SPACES.sub(" ", text).strip()


def extract_answer(text: str) -> str:
    """The official BBH reading of an output.

    Takes the line after the last "So the answer is " when the marker is present, else the
    first non-empty line; strips it and drops one trailing ".".

    Args:
        text: the model's raw output.

    Returns:
        The answer text ('' for an empty output).
    """
    at = text.rfind(ANSWER_MARKER)
    answer = first_line(text[at + len(ANSWER_MARKER) :]) if at >= 0 else first_line(text)
    if answer.endswith("."):
        answer = answer[:-1].rstrip()
    return answer


def extract_spaced(text: str) -> str:
    """`extract_answer`, then single spaces between tokens (the official targets use single spaces)."""
    return squeeze_spaces(extract_answer(text))


_LETTER_PATTERNS = (
    # "So the answer is (B)", "Answer: B", "**Answer:** B"
    r"(?i:answer)(?:\s+is)?[\s:*]*\(?([{L}])\)?(?![A-Za-z])",
    # "(B)" anywhere
    r"\(([{L}])\)",
    # "B" / "B." / "B)" / "B:" opening the output
    r"\A\s*([{L}])(?:[.):]|\s*\Z|\s+-)",
)


def extract_letter(text: str, letters: str = "ABCD") -> str:
    """The choice letter in a multiple-choice answer, or '' when there is none.

    Tries, in order: "answer is (B)" / "Answer: B", a parenthesised "(B)", a letter opening the
    output ("B", "B.", "B)"), and finally the first standalone capital letter among `letters`.
    Letters are matched as capitals only, so the article "a" is never read as choice A.

    Args:
        text: the model's raw output.
        letters: the valid choice letters, e.g. "ABCD".

    Returns:
        One letter from `letters`, or ''.
    """
    allowed = re.escape(letters)
    for pattern in _LETTER_PATTERNS:
        match = re.search(pattern.replace("{L}", allowed), text)
        if match:
            return match.group(1)
    match = re.search(rf"(?<![A-Za-z])([{allowed}])(?![A-Za-z])", text)
    return match.group(1) if match else ""
