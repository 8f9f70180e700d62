"""Answer extractors by name: how a program's raw output becomes the answer a metric scores.

A rule is written `NAME` or `NAME:ARG` (split at the first colon), e.g. `last_line`,
`marker:Answer:`, `regex:#### (\\d+)`, `json:answer`, `last_letter:ABCDE`. Every extractor strips
the answer; none lowercases or reorders it (that is the metric's business).

Example:
    >>> get_extractor("marker:Answer:")("Let me think.\\nAnswer: 42")
    '42'
    >>> get_extractor("last_line")("a\\nb\\n")
    'b'
"""

from __future__ import annotations

__all__ = ["EXTRACTORS", "get_extractor", "extractor_names", "parse_rule", "last_line", "after_marker",
           "regex_group", "json_field", "last_letter"]

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError, did_you_mean
from ..replies import json_objects
from .extract import ANSWER_MARKER, extract_answer, extract_letter, extract_spaced, first_line

Extractor = Callable[[str], str]


def last_line(text: str) -> str:
    """The last non-empty line of `text`, stripped ('' when there is none)."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


def after_marker(text: str, marker: str = ANSWER_MARKER) -> str:
    """The first line after the last `marker` (case-insensitive), one trailing "." dropped.

    Without the marker, the last non-empty line: a reasoning answer ends with its conclusion.
    """
    at = text.lower().rfind(marker.lower().strip())
    answer = first_line(text[at + len(marker.strip()) :]) if at >= 0 else last_line(text)
    answer = answer.strip().strip("*").strip()
    return answer[:-1].rstrip() if answer.endswith(".") else answer


def regex_group(text: str, pattern: str) -> str:
    """The last match of `pattern` in `text`: its first group when it has one ('' without a match)."""
    matches = list(re.finditer(pattern, text, re.MULTILINE))
    if not matches:
        return ""
    last = matches[-1]
    return (last.group(1) if last.re.groups else last.group(0)).strip()


def json_field(text: str, field: str) -> str:
    """The value of `field` in the last JSON object of `text` ('' when there is none).

    A dotted `field` ("result.answer") reads nested objects; a non-string value is dumped as JSON.
    """
    found = None
    for value in json_objects(text):
        if isinstance(value, dict):
            found = value
    for key in field.split("."):
        if not isinstance(found, dict) or key not in found:
            return ""
        found = found[key]
    if found is None:
        return ""
    return found.strip() if isinstance(found, str) else json.dumps(found)


def last_letter(text: str, letters: str = "ABCD") -> str:
    """The choice letter a reasoning answer ends on: after the last "answer is"/"Answer:", else the last one.

    Unlike `extract_letter` (which reads the first letter it finds), a letter named while
    reasoning ("not (A), because ...") does not win over the conclusion.
    """
    allowed = re.escape(letters)
    marked = list(re.finditer(rf"(?i:answer)(?:\s+is)?[\s:*]*\(?([{allowed}])\)?(?![A-Za-z])", text))
    if marked:
        return marked[-1].group(1)
    loose = list(re.finditer(rf"(?<![A-Za-z])\(?([{allowed}])\)?(?![A-Za-z])", text))
    return loose[-1].group(1) if loose else ""


@dataclass(frozen=True)
class _Entry:
    build: Callable[[str | None], Extractor]
    doc: str
    arg: str = ""  # what the argument is ("" when none is taken)
    needs_arg: bool = False


def _no_arg(fn: Extractor) -> Callable[[str | None], Extractor]:
    return lambda arg: fn


def _regex(arg: str | None) -> Extractor:
    try:
        re.compile(arg or "")
    except re.error as exc:
        raise ConfigError(f"extractor regex:{arg} is not a valid regular expression ({exc}): fix the pattern") from None
    return lambda text: regex_group(text, arg or "")


EXTRACTORS: dict[str, _Entry] = {
    "whole": _Entry(_no_arg(str.strip), "the whole output, stripped (multi-line answers)"),
    "first_line": _Entry(_no_arg(first_line), "the first non-empty line"),
    "last_line": _Entry(_no_arg(last_line), "the last non-empty line"),
    "marker": _Entry(lambda arg: (lambda text: after_marker(text, arg or ANSWER_MARKER)),
                     "the line after the last marker (default 'So the answer is'), else the last line", "marker text"),
    "regex": _Entry(_regex, "the last match of a pattern (its first group if any)", "pattern", needs_arg=True),
    "json": _Entry(lambda arg: (lambda text: json_field(text, arg or "answer")),
                   "a field of the last JSON object (default 'answer'; dotted for nested)", "field"),
    "letter": _Entry(lambda arg: (lambda text: extract_letter(text, arg or "ABCD")),
                     "the first choice letter found ('answer is (B)' first)", "letters"),
    "last_letter": _Entry(lambda arg: (lambda text: last_letter(text, arg or "ABCD")),
                          "the choice letter the answer ends on", "letters"),
    "answer_line": _Entry(_no_arg(extract_answer), "after 'So the answer is', else the first line; one '.' dropped"),
    "bbh": _Entry(_no_arg(extract_answer), "BBH's official reading: the same as answer_line"),
    "bbh_spaced": _Entry(_no_arg(extract_spaced), "bbh, then single spaces between tokens"),
}


def extractor_names() -> list[str]:
    """The registered extractor names, sorted."""
    return sorted(EXTRACTORS)


def parse_rule(rule: str) -> tuple[str, str | None]:
    """`"NAME:ARG"` -> ("NAME", "ARG"); `"NAME"` -> ("NAME", None). Names are case-insensitive."""
    name, sep, arg = rule.partition(":")
    return name.strip().lower(), (arg if sep else None)


def get_extractor(rule: str) -> Extractor:
    """The extractor a rule names.

    Args:
        rule: `NAME` or `NAME:ARG`, e.g. "last_line", "marker:Answer:", "regex:(\\d+)$", "json:answer".

    Returns:
        A function from the raw output to the answer.

    Raises:
        ConfigError: an unknown name (with the closest names), a missing argument or a bad regex.
    """
    name, arg = parse_rule(rule)
    entry = EXTRACTORS.get(name)
    if entry is None:
        raise ConfigError(
            f"unknown extractor {name!r}{did_you_mean(name, EXTRACTORS)}: use one of {', '.join(extractor_names())} "
            "(NAME or NAME:ARG, e.g. marker:Answer:)"
        )
    if entry.needs_arg and not arg:
        raise ConfigError(f"extractor {name!r} needs its {entry.arg}: write {name}:{entry.arg.upper().replace(' ', '_')}")
    if arg is not None and not entry.arg:
        raise ConfigError(f"extractor {name!r} takes no argument: write {name}")
    return entry.build(arg)
