"""Answer extractors by name: each reads the answer where its rule says, and bad rules are one-line errors."""

from __future__ import annotations

import pytest

from graphopt.errors import ConfigError
from graphopt.tasks.answers import extractor_names, get_extractor

COT = "Let's think step by step.\nFirst (A) looks right, but it is not.\nSo the answer is (C).\n"


@pytest.mark.parametrize(
    ("rule", "output", "answer"),
    [
        ("whole", "  line one\nline two \n", "line one\nline two"),
        ("first_line", "\n  first \nsecond", "first"),
        ("last_line", "reasoning\n\nAnswer: 42\n\n", "Answer: 42"),
        ("marker", COT, "(C)"),
        ("marker:Answer:", "Answer: no\nthinking\nanswer: 12.", "12"),
        ("marker:Answer:", "no marker here\nfinal", "final"),
        ("regex:#### (\\d+)", "work #### 3 then #### 17", "17"),
        ("regex:\\d+", "a 5 b 6", "6"),
        ("regex:\\d+", "none", ""),
        ("json", 'Thought. {"answer": "x"} then {"answer": " Paris "}', "Paris"),
        ("json:result.value", '{"result": {"value": 3}}', "3"),
        ("json:missing", '{"answer": 1}', ""),
        ("letter", COT, "C"),
        ("letter", "(A) is wrong; the right one is (C)", "A"),
        ("last_letter", "(A) is wrong; the right one is (C)", "C"),
        ("last_letter", COT, "C"),
        ("last_letter:ABCDE", "maybe (B), but I say E", "E"),
        ("answer_line", "Thinking\nSo the answer is ] ).", "] )"),
        ("answer_line", "Paris.\nBecause it is the capital.", "Paris"),
        ("bbh", "Thinking\nSo the answer is ] ).", "] )"),
        ("bbh_spaced", "So the answer is apple   banana.", "apple banana"),
    ],
)
def test_each_extractor_reads_the_answer_its_rule_names(rule, output, answer):
    assert get_extractor(rule)(output) == answer


def test_every_registered_extractor_is_covered_and_returns_text_on_empty_output():
    assert set(extractor_names()) == {"whole", "first_line", "last_line", "marker", "regex", "json", "letter",
                                      "last_letter", "answer_line", "bbh", "bbh_spaced"}
    for name in extractor_names():
        rule = "regex:x" if name == "regex" else name
        assert get_extractor(rule)("") == ""


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("lst_line", "unknown extractor 'lst_line' (did you mean 'last_line' or 'first_line'?)"),
        ("regex", "extractor 'regex' needs its pattern"),
        ("regex:(", "is not a valid regular expression"),
        ("first_line:x", "extractor 'first_line' takes no argument"),
    ],
)
def test_bad_rules_are_config_errors_naming_the_fix(rule, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        get_extractor(rule)
