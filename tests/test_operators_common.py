"""Reading instructions out of model replies, and the formatting shared by the operators."""

from __future__ import annotations

import pytest

from graphopt.operators.common import (
    feedback_for,
    format_trace,
    instruction_format,
    instruction_problem,
    parse_instruction,
    unique_programs,
)
from graphopt.types import Example, Feedback, Trace
from graphopt.program import Program


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"instruction": "Sort the words."}', "Sort the words."),
        ('Sure! {"instruction": " Sort the words. "} Hope it helps.', "Sort the words."),
        ("```json\n{\"instruction\": \"Sort them.\"}\n```", "Sort them."),
        ("Instruction: Sort the words alphabetically.", "Sort the words alphabetically."),
        ('"Sort the words."', "Sort the words."),
        ("```\nSort the words.\n```", "Sort the words."),
    ],
)
def test_parse_instruction_reads_json_or_falls_back_to_plain_text(reply: str, expected: str) -> None:
    assert parse_instruction(reply) == expected


@pytest.mark.parametrize("reply", ['{"answer": "x"}', '{"instruction": 3}', '{"instruction": "unterminated', "[1, 2]", '```json\n{"instruction": "cut\n```'])
def test_parse_instruction_gives_none_for_json_without_an_instruction(reply: str) -> None:
    assert parse_instruction(reply) is None


def test_instruction_problem_names_the_reason() -> None:
    assert instruction_problem(None, "old", min_chars=5).startswith("unparseable")
    assert instruction_problem("  ", "old", min_chars=5) == "empty instruction"
    assert "shorter than 5" in instruction_problem("abc", "old", min_chars=5)
    assert "identical" in instruction_problem("Sort  the words.", "Sort the words.", min_chars=5)
    assert instruction_problem("Sort the words well.", "Sort the words.", min_chars=5) is None


def test_instruction_format_is_a_json_schema_response_format() -> None:
    fmt = instruction_format()
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["required"] == ["instruction"]


def test_format_trace_shows_input_output_answer_and_target() -> None:
    trace = Trace(example=Example(id="1", input="b a", target="a b"), output="So: b a", answer="b a", score=0.0)
    text = format_trace(trace)
    assert "Input: b a" in text and "Model output: So: b a" in text
    assert "Extracted answer: b a" in text and "Expected answer: a b" in text


def test_unique_programs_keeps_first_occurrence_and_order() -> None:
    a, b = Program(instruction="a"), Program(instruction="b")
    assert unique_programs([a, b, a, b]) == [a, b]


def test_feedback_for_prefers_the_programs_own_critiques() -> None:
    a, b = Program(instruction="a"), Program(instruction="b")
    own, other = Feedback(program_id=a.id, text="own"), Feedback(program_id=b.id, text="other")
    assert feedback_for(a, [own, other]) == [own]
    assert feedback_for(Program(instruction="c"), [own, other]) == [own, other]
