"""Prompt overrides with format specs, widths and sizes: validation agrees with the run, and is fast.

The oracle: when `validate_node` accepts an override, the operator fills it with the values it
really passes (integers for counts, long texts) without error and without a blown-up result; when
it rejects one, the message names the node and prompt. Cases come from our own generator of
format specs (every part of the mini-language, widths and precisions up to 10^12, nested
specs, conversions) over every built-in operator prompt, a few thousand in all, each checked
under a deadline.
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.graph.spec import NodeSpec
from graphopt.templates import DEFAULT_MAX_PROMPT_CHARS, MAX_FORMAT_NUMBER, MAX_PLACEHOLDERS
from graphopt.graph.validate import validate_node
from graphopt.operators.registry import get_operator

# The built-in prompts and the values their operators fill them with at run time (see the
# operators' `prompt(...)` calls): counts are ints, everything else text, some of it long or empty.
RUN_VALUES = {
    ("critique", "critique"): {"program": "Sort the words.\n" * 20, "n": 8, "n_correct": 3,
                               "failures": "Example 1:\nInput: b a", "successes": "(none)"},
    ("rewrite", "rewrite"): {"program": "Sort the words.", "feedback": "", "history": ""},
    ("rewrite", "feedback"): {"critiques": "Be shorter."},
    ("rewrite", "history"): {"attempts": "Instruction: x\nScore: 0.500"},
    ("paraphrase", "paraphrase"): {"instruction": "Sort the words alphabetically."},
    ("ensemble", "combine"): {"programs": "Program 1:\nSort."},
}

FILLS = ["", "*", "0", " ", "{", "x"]
ALIGNS = ["", "<", ">", "^", "="]
SIGNS = ["", "+", "-", " "]
WIDTHS = ["", "0", "5", "80", str(MAX_FORMAT_NUMBER), str(MAX_FORMAT_NUMBER + 1), "1500000000", "9" * 13]
PRECISIONS = ["", ".0", ".3", f".{MAX_FORMAT_NUMBER}", f".{MAX_FORMAT_NUMBER + 1}", ".999999999"]
TYPES = ["", "s", "d", "f", "x", "%", "e", "c", "z"]
CONVERSIONS = ["", "!r", "!s", "!a", "!x"]


def format_specs(rng: random.Random, count: int) -> list[str]:
    """`count` format specs: each part of the mini-language present or not, so some are invalid."""

    def part(options: list[str], present: float = 0.4) -> str:
        return rng.choice(options[1:]) if rng.random() < present else ""

    out = []
    for _ in range(count):
        align = part(ALIGNS)
        fill = part(FILLS) if align else ""
        out.append(fill + align + part(SIGNS, 0.2) + part(["", "#"], 0.1) + part(["", "0"], 0.1) + part(WIDTHS, 0.6)
                   + part(["", ",", "_"], 0.1) + part(PRECISIONS, 0.3) + part(TYPES, 0.3))
    return out


def override_cases(count: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(operator, prompt name, override text) cases, each with one or two formatted placeholders."""
    rng = random.Random(seed)
    cases = []
    keys = sorted(RUN_VALUES)
    for spec in format_specs(rng, count):
        op, prompt = rng.choice(keys)
        names = sorted(RUN_VALUES[(op, prompt)])
        name = rng.choice(names)
        conversion = rng.choice(CONVERSIONS)
        field = "{" + name + conversion + (":" + spec if spec or rng.random() < 0.5 else "") + "}"
        if rng.random() < 0.1:  # a nested spec, which validation refuses
            field = "{" + name + ":{" + rng.choice(names) + "}}"
        other = "{" + rng.choice(names) + "}"
        cases.append((op, prompt, f"Intro {field} middle {other} end."))
    return cases


def fills_like_the_run(op: str, prompt: str, text: str) -> str:
    operator = get_operator(op)("n1", prompts={prompt: text})
    return operator.prompt(prompt, **RUN_VALUES[(op, prompt)])


def check_case(op: str, prompt: str, text: str) -> bool:
    """Validates one override; asserts the oracle; True when it was accepted."""
    started = time.perf_counter()
    problems = validate_node(NodeSpec(id="n1", op=op, prompts={prompt: text}))
    assert time.perf_counter() - started < 1.0, f"validate took too long on {text!r}"
    if problems:
        assert all(p.startswith(f"node n1: prompt {prompt!r}") for p in problems), problems
        return False
    filled = fills_like_the_run(op, prompt, text)  # must not raise
    longest = max(len(str(v)) for v in RUN_VALUES[(op, prompt)].values())
    assert len(filled) <= len(text) + 4 * (MAX_FORMAT_NUMBER + 4 * longest), "accepted override blew up"
    return True


def test_generated_format_specs_validate_as_the_run_fills_them():
    cases = override_cases(4000)
    accepted = sum(check_case(*case) for case in cases)
    # The generator covers both sides: many accepted, many refused.
    assert 500 < accepted < len(cases) - 500


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(sorted(RUN_VALUES)),
    spec=st.text(alphabet="<>^=+- #0123456789,_.sdfxe%!rsaz{}", max_size=14),
    prefix=st.text(max_size=6),
)
def test_random_format_specs_validate_as_the_run_fills_them(key, spec, prefix):
    op, prompt = key
    name = sorted(RUN_VALUES[key])[0]
    check_case(op, prompt, prefix + "{" + name + ":" + spec + "}")


def test_a_string_format_on_an_integer_count_is_refused():
    [problem] = validate_node(NodeSpec(id="c", op="critique", prompts={"critique": "{program} ran on {n:s} examples"}))
    assert problem.startswith("node c: prompt 'critique' cannot be filled with the values operator critique passes")
    assert "Unknown format code 's'" in problem


def test_integer_formats_on_counts_are_accepted():
    text = "{program} ran on {n:d} examples, {n_correct:>3} right"
    assert validate_node(NodeSpec(id="c", op="critique", prompts={"critique": text})) == []
    assert "ran on 8 examples,   3 right" in fills_like_the_run("critique", "critique", text)


def test_a_huge_width_is_refused_at_once():
    started = time.perf_counter()
    [problem] = validate_node(NodeSpec(id="p", op="paraphrase", prompts={"paraphrase": "{instruction:>1500000000}"}))
    assert time.perf_counter() - started < 0.5
    assert problem == (
        f"node p: prompt 'paraphrase': the format spec {{instruction:>1500000000}} has a width or precision "
        f"above {MAX_FORMAT_NUMBER}"
    )


@pytest.mark.parametrize("text", ["{n:.1500000000f}", "{program:.9999}", "{n:01000000}"])
def test_huge_precisions_and_zero_padded_widths_are_refused(text):
    [problem] = validate_node(NodeSpec(id="c", op="critique", prompts={"critique": text}))
    assert "has a width or precision above" in problem


def test_a_nested_format_spec_is_refused():
    [problem] = validate_node(NodeSpec(id="c", op="critique", prompts={"critique": "{program:>{n}}"}))
    assert problem == "node c: prompt 'critique': the format spec of {program} holds a placeholder; write the spec out"


@pytest.mark.parametrize("field", ["{program.__class__}", "{program[0]}", "{n.real}"])
def test_attribute_and_item_access_is_refused(field):
    [problem] = validate_node(NodeSpec(id="c", op="critique", prompts={"critique": f"x {field}"}))
    assert "reads an attribute or item; write {" in problem


def test_an_override_longer_than_the_limit_is_refused_and_the_limit_can_be_raised(monkeypatch):
    text = "{instruction} " + "a" * DEFAULT_MAX_PROMPT_CHARS
    node = NodeSpec(id="p", op="paraphrase", prompts={"paraphrase": text})
    [problem] = validate_node(node)
    assert problem == (
        f"node p: prompt 'paraphrase' has {len(text):,} characters, more than the limit of "
        f"{DEFAULT_MAX_PROMPT_CHARS:,} (shorten it, or set GRAPHOPT_MAX_PROMPT_CHARS to raise the limit)"
    )
    monkeypatch.setenv("GRAPHOPT_MAX_PROMPT_CHARS", str(len(text)))
    assert validate_node(node) == []


def test_a_20_mb_override_is_refused_quickly():
    started = time.perf_counter()
    [problem] = validate_node(NodeSpec(id="p", op="paraphrase", prompts={"paraphrase": "{instruction}" * 1_500_000}))
    assert time.perf_counter() - started < 1.0
    assert "more than the limit of 20,000" in problem


def test_too_many_placeholders_are_refused():
    text = "{instruction}" * (MAX_PLACEHOLDERS + 1)
    [problem] = validate_node(NodeSpec(id="p", op="paraphrase", prompts={"paraphrase": text}))
    assert problem == f"node p: prompt 'paraphrase' has {MAX_PLACEHOLDERS + 1} placeholders; at most {MAX_PLACEHOLDERS} are allowed"
    assert validate_node(NodeSpec(id="p", op="paraphrase", prompts={"paraphrase": "{instruction}" * MAX_PLACEHOLDERS})) == []
