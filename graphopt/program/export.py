"""A program as a prompt to paste elsewhere: chat messages (JSON), plain text or Markdown.

Every format carries what is needed to get the same answer out: each step's messages with the
input slot last, how later steps read earlier outputs, the answer marker, the extraction rule,
the stop strings and the answer length.

Example:
    >>> from graphopt.program import Program, ProgramIO
    >>> p = Program(instruction="Sort the words.", io=ProgramIO(extract="bbh_spaced"))
    >>> print(export_program(p, "text").splitlines()[0])
    # graphopt program 49cec993dbc0 (1 step)
"""

from __future__ import annotations

__all__ = ["FORMATS", "export_program", "export_messages"]

import json
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..tasks.answers import EXTRACTORS, parse_rule
from .model import Program, ProgramIO

FORMATS = ("messages", "text", "markdown")


def _rule_text(io: ProgramIO) -> str:
    name, arg = parse_rule(io.extract or "whole")
    entry = EXTRACTORS.get(name)
    doc = entry.doc if entry else "a rule of your own"
    return f"{io.extract or 'whole'}: {doc}" + (f" (argument {arg!r})" if arg else "")


def _answer(program: Program) -> dict[str, Any]:
    io = program.io or ProgramIO()
    return {
        "answer_marker": program.answer_marker,
        "extract": io.extract or "whole",
        "extract_doc": _rule_text(io),
        "stop": list(io.stop),
        "max_tokens": program.answer_step.max_tokens or io.max_tokens,
        "input_template": io.input_template or "{input}",
    }


def export_messages(program: Program) -> dict[str, Any]:
    """The program as data: per step its chat messages (the last user message is the input
    template), then how the answer is read.
    """
    steps = []
    for step in program.steps:
        entry: dict[str, Any] = {"name": step.name, "messages": _fixed_messages(step), "max_tokens": step.max_tokens}
        if step.retrieve:
            entry["retrieve"] = {
                "k": step.retrieve.k, "how": RETRIEVE_HOW[step.retrieve.by], "pool": [d.model_dump() for d in step.retrieve.pool],
            }
        if step.answer_format:
            entry["response_format"] = step.answer_format.response_format()
        steps.append(entry)
    data: dict[str, Any] = {"program_id": program.id, "steps": steps, "answer": _answer(program)}
    if program.pipeline:
        data["pipeline"] = program.pipeline
    if program.vote:
        data["vote"] = {"how": VOTE_HOW, "others": [export_messages(p) for p in program.vote]}
    return data


RETRIEVE_HOW = {
    "bm25": (
        "per input, the k pool examples nearest to the step's input by BM25 (words and single punctuation marks, "
        "lowercased; an example equal to the input is skipped) go after the fixed demos as user/assistant turns, "
        "the nearest last"
    ),
    "embedding": (
        "per input, the k pool examples whose inputs' embedding vectors have the highest cosine with the step "
        "input's (by the embedding model the program level names in `embedding_model`; an example equal to the input is skipped) go "
        "after the fixed demos as user/assistant turns, the nearest last"
    ),
}
VOTE_HOW = "run this program and each of the others; the answer is the most common extracted answer (case and spacing aside), ties to the earliest (this program first)"


def _fixed_messages(step: Any) -> list[dict[str, str]]:
    """A step's messages with the input template last and without retrieved demos (they depend on the input)."""
    return step.model_copy(update={"retrieve": None}).messages(step.input)


def _how_to_read(program: Program) -> list[str]:
    answer = _answer(program)
    lines = []
    if program.pipeline:
        lines.append(f"The steps are the components of the pipeline {program.pipeline}: it calls them and returns the output.")
    elif len(program.steps) > 1:
        lines.append("Run the steps in order; {steps.NAME} in a step's input is that step's output.")
    lines.append(f"The input is built as: {answer['input_template']}")
    constraint = program.answer_step.answer_format
    if constraint:
        lines.append(f"The last step replies in JSON under this schema (pass it as response_format or a grammar "
                     f"where the model takes one): {json.dumps(constraint.schema())}; its \"answer\" field is the output read below.")
    if answer["answer_marker"]:
        lines.append(f"Read the answer after the last {answer['answer_marker']!r} in the last step's output,")
        lines.append(f"then by the rule {answer['extract_doc']}.")
    else:
        lines.append(f"Read the answer from the last step's output by the rule {answer['extract_doc']}.")
    lines.append(f"Stop strings: {json.dumps(answer['stop'])}; answer length: {answer['max_tokens'] or 'the model default'} tokens.")
    if program.vote:
        lines.append(f"This program votes with {len(program.vote)} others (in the messages export): {VOTE_HOW}.")
    return lines


def _text(program: Program, markdown: bool) -> str:
    n = len(program.steps)
    io = program.io or ProgramIO()
    out = [f"# graphopt program {program.id} ({n} step{'s' if n != 1 else ''})", ""]
    for i, step in enumerate(program.steps, 1):
        length = step.max_tokens or (io.max_tokens if step is program.answer_step else None)
        out.append(f"## Step {i}: {step.name}" + (f" (up to {length} tokens)" if length else ""))
        out.append("")
        if step.retrieve:
            out += [f"Retrieved demos: {RETRIEVE_HOW[step.retrieve.by]}; k = {step.retrieve.k}, pool of {len(step.retrieve.pool)} "
                    "(in the messages export).", ""]
        for message in _fixed_messages(step):
            label = {"system": "System", "user": "User", "assistant": "Assistant"}[message["role"]]
            if markdown:
                out += [f"**{label}:**", "", "```text", message["content"], "```", ""]
            else:
                out += [f"[{label}]", message["content"], ""]
    out.append("## Reading the answer")
    out.append("")
    out += [f"- {line}" if markdown else line for line in _how_to_read(program)]
    return "\n".join(out) + "\n"


def export_program(program: Program, fmt: str) -> str:
    """The program in format `fmt`: "messages" (JSON), "text" or "markdown".

    Raises:
        ConfigError: an unknown format (with the closest names).
    """
    if fmt == "messages":
        return json.dumps(export_messages(program), indent=2, ensure_ascii=False) + "\n"
    if fmt in ("text", "markdown"):
        return _text(program, markdown=fmt == "markdown")
    raise ConfigError(f"unknown export format {fmt!r}{did_you_mean(fmt, FORMATS)}: use one of {', '.join(FORMATS)}")
