"""Helpers the built-in operators share: showing programs and traces to a model, reading its replies.

Anything an operator parses (a rewritten instruction) is requested as JSON against a schema
(`instruction_format`), so a provider that honours `response_format` returns valid JSON and
`parse_instruction` only falls back to plain-text cleanup when one does not.
"""

from __future__ import annotations

__all__ = [
    "instruction_format",
    "parse_instruction",
    "instruction_problem",
    "format_trace",
    "format_traces",
    "format_attempts",
    "format_programs",
    "feedback_for",
    "shorten",
    "unique_programs",
    "step_targets",
    "LLMParams",
    "ask",
    "propose_instruction",
    "propose_programs",
]

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from ..errors import LLMError
from ..types import Attempt, Feedback, Trace
from ..program.model import Program
from ..replies import first_json_object
from .base import Dropped, OperatorParams, StepContext

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_LABEL = re.compile(r"^(new |improved |rewritten )?instruction\s*:\s*", re.IGNORECASE)


def instruction_format(name: str = "instruction") -> dict[str, Any]:
    """The `response_format` asking for `{"instruction": "..."}` (llama.cpp turns it into a grammar)."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "schema": {
                "type": "object",
                "properties": {"instruction": {"type": "string"}},
                "required": ["instruction"],
                "additionalProperties": False,
            },
        },
    }


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marking the cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def parse_instruction(text: str) -> str | None:
    """The instruction in a model reply: the "instruction" field of a JSON object, else the plain text.

    A reply that attempts JSON but has no usable "instruction" field is unparseable (None);
    a plain-text reply (a provider that ignored `response_format`) is cleaned of code fences and
    an "Instruction:" label.
    """
    stripped = text.strip()
    value = first_json_object(stripped)
    if isinstance(value, dict):
        found = value.get("instruction")
        return found.strip() if isinstance(found, str) else None
    cleaned = _LABEL.sub("", _FENCE.sub("", stripped)).strip()
    if cleaned.startswith(("{", "[")) or '"instruction"' in cleaned:
        return None  # JSON was attempted and is broken
    cleaned = cleaned.strip('"').strip()
    return cleaned


def instruction_problem(new: str | None, old: str, *, min_chars: int) -> str | None:
    """Why a proposed instruction cannot be used, or None when it can."""
    if new is None:
        return "unparseable reply (no 'instruction' field)"
    if not new.strip():
        return "empty instruction"
    if len(new.strip()) < min_chars:
        return f"instruction shorter than {min_chars} characters"
    if " ".join(new.split()) == " ".join(old.split()):
        return "instruction identical to the current one"
    return None


def format_trace(trace: Trace, *, limit: int = 600) -> str:
    """One trace as the optimizer model sees it: input, output, extracted answer, expected answer."""
    lines = [f"Input: {shorten(trace.example.input, limit)}"]
    # A multi-step program's earlier steps, so a critique can tell which step went wrong.
    lines += [f"Step {s.name} output: {shorten(s.output, limit) or '(empty)'}" for s in trace.steps[:-1]]
    if trace.steps and not trace.steps[-1].output == trace.output:  # a pipeline's last call is not its output
        lines.append(f"Step {trace.steps[-1].name} output: {shorten(trace.steps[-1].output, limit) or '(empty)'}")
    lines += [
        f"Model output: {shorten(trace.output, limit) or '(empty)'}",
        f"Extracted answer: {shorten(trace.answer, limit) or '(none)'}",
        f"Expected answer: {shorten(trace.example.target, limit)}",
    ]
    if trace.error or trace.raised:
        lines.append(f"Error: {shorten(trace.error or trace.raised, 200)}")
    return "\n".join(lines)


def format_traces(traces: list[Trace], *, limit: int = 600) -> str:
    """Numbered traces separated by blank lines, or "(none)"."""
    if not traces:
        return "(none)"
    return "\n\n".join(f"Example {i}:\n{format_trace(t, limit=limit)}" for i, t in enumerate(traces, 1))


def format_attempts(attempts: list[Attempt]) -> str:
    """Earlier instructions with their scores, one block each, in the order given."""
    return "\n\n".join(f"{_instructions(a.program)}\nScore: {a.score:.3f}" for a in attempts) or "(none)"


def _instructions(program: Program) -> str:
    """"Instruction: ..." for a one-step program; one "Instruction of step NAME: ..." line per step otherwise."""
    if len(program.steps) == 1:
        return f"Instruction: {program.instruction}"
    return "\n".join(f"Instruction of step {s.name}: {s.instruction}" for s in program.steps)


def format_programs(programs: list[Program]) -> str:
    """Programs rendered one after another, numbered."""
    return "\n\n".join(f"Program {i}:\n{p.render()}" for i, p in enumerate(programs, 1))


def step_targets(program: Program, choice: str, blamed: Sequence[str] = ()) -> list[str | None]:
    """The steps an editing operator changes: its `step` param resolved against `program`.

    Args:
        program: the parent program.
        choice: "" (the step a critique blames, else the answering step), "each" (every step),
            or a step name (that step; the answering step when the program has no such step).
        blamed: step names critiques of this program blame, first first.

    Returns:
        Step names, or [None] for the answering step.
    """
    names = [s.name for s in program.steps]
    if choice == "each":
        return list(names) if len(names) > 1 else [None]
    if choice and choice in names:
        return [choice]
    found = next((name for name in blamed if name in names), None)
    return [found] if found and not choice else [None]


def unique_programs(programs: list[Program]) -> list[Program]:
    """`programs` without repeats (same id), first occurrence kept, order kept."""
    seen: dict[str, Program] = {}
    for program in programs:
        seen.setdefault(program.id, program)
    return list(seen.values())


def feedback_for(program: Program, feedback: list[Feedback]) -> list[Feedback]:
    """The critiques about `program`; when none name it, all of them (advice on a relative still helps)."""
    own = [f for f in feedback if f.program_id == program.id]
    return own or list(feedback)


class LLMParams(OperatorParams):
    """Parameters every model-calling operator takes; None means the optimizer level's setting."""

    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=32768)


async def ask(
    ctx: StepContext, node_id: str, prompt: str, params: LLMParams, *, json_reply: bool = False,
    temperature: float | None = None,
) -> str | None:
    """Sends one optimizer-level prompt; a call that failed after its retries is recorded as dropped and gives None.

    `BudgetExceeded` is not caught: it ends the step and the loop keeps the best program so far.
    A fatal `LLMError` (bad key, unknown model: see `LLMError.fatal`) is not caught either: every
    later call would fail alike, so the command stops.
    """
    try:
        completion = await ctx.lm.complete(
            "optimizer",
            [{"role": "user", "content": prompt}],
            temperature=params.temperature if temperature is None else temperature,
            max_tokens=params.max_tokens,
            response_format=instruction_format() if json_reply else None,
        )
    except LLMError as exc:
        if exc.fatal:
            raise
        ctx.dropped.append(Dropped(node_id, f"model call failed: {exc}"))
        return None
    return completion.text


async def propose_instruction(
    ctx: StepContext, node_id: str, prompt: str, old: str, params: LLMParams, *, min_chars: int,
    temperature: float | None = None,
) -> str | None:
    """Asks for `{"instruction": ...}` and returns a usable new instruction, or None (recorded as dropped)."""
    reply = await ask(ctx, node_id, prompt, params, json_reply=True, temperature=temperature)
    if reply is None:
        return None
    new = parse_instruction(reply)
    problem = instruction_problem(new, old, min_chars=min_chars)
    if problem is not None:
        ctx.dropped.append(Dropped(node_id, problem, shorten(reply, 500)))
        return None
    return new


async def propose_programs(
    ctx: StepContext,
    node_id: str,
    requests: Sequence[tuple[Program, str] | tuple[Program, str, str | None]],
    params: LLMParams,
    *,
    per_request: int,
    min_chars: int,
    duplicate: str,
) -> list[Program]:
    """New programs from `per_request` concurrent asks of each (parent, prompt[, step]) request.

    Each usable instruction replaces the instruction of the request's step (None or absent: the
    answering step) of its parent, demos and output format kept; unusable replies, and programs
    equal to an earlier one, are recorded as dropped (the latter with reason `duplicate`).
    """
    jobs = []
    for request in requests:
        parent, text = request[0], request[1]
        step = request[2] if len(request) > 2 else None
        old = parent.step(step).instruction
        for _ in range(per_request):
            jobs.append((parent, step, propose_instruction(ctx, node_id, text, old, params, min_chars=min_chars)))
    proposals = await asyncio.gather(*(job for _, _, job in jobs))
    out: list[Program] = []
    seen: set[str] = set()
    for (parent, step, _), instruction in zip(jobs, proposals):
        if instruction is None:
            continue
        program = parent.with_instruction(instruction, step)
        if program.id in seen:
            ctx.dropped.append(Dropped(node_id, duplicate, instruction))
            continue
        seen.add(program.id)
        out.append(program)
    return out
