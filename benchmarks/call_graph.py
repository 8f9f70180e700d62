"""The calls a search made and which earlier calls' outputs each one read: its critical path.

`record_calls(lm)` notes every request an `LM` answers: when the caller asked for it (all its
inputs were ready then), when the answer came back, the place it was made at
(`graphopt.lm.places`: the candidate's id, then the inner-loop step and the graph node), its prompt
and its reply. `critical_path(calls, parents)` then takes each call to wait only on the calls
whose output it reads:

- within one evaluation (the calls at places under one candidate id, or the meta proposal at
  `prompt/<id>/...`, or the final test runs outside any candidate): every call of that
  evaluation answered before it was asked for (the inner loop awaits its steps in order: the
  minibatch traces, then the critique, the rewrite, the candidates' validation...);
- across evaluations: a candidate's calls read its parents' evaluations (a child is made from
  its parents' graphs and scores), a meta proposal at `prompt/<id>/...` reads the evaluation of
  `<id>`, and the final test runs (outside any candidate) read every evaluation (the winner is
  chosen from all the validation scores);
- wherever it is: a call whose prompt contains text that an earlier call wrote (a line or a
  JSON string of its reply of 20 characters or more that was neither in that call's own prompt
  nor in the task's data), the first call that wrote it.

Each call answered by the model costs one latency; an answer from the cache or joined to the
same call in flight costs none. The longest chain, in calls, times the latency is a lower bound
on the wall time of any schedule of these calls that respects what each one reads: no barrier
of the engine, no limit on calls in flight.
"""

from __future__ import annotations

__all__ = ["Call", "record_calls", "critical_path"]

import json
import re
import time
from dataclasses import dataclass

from graphopt.lm import LM
from graphopt.lm.places import current_place

MIN_FRAGMENT = 20
_CANDIDATE = re.compile(r"^c\d+$")


@dataclass
class Call:
    asked: float
    answered: float
    place: str
    prompt: str
    reply: str
    cached: bool


def record_calls(lm: LM) -> list[Call]:
    """Starts noting every request `lm` answers; returns the (growing) list of calls."""
    calls: list[Call] = []
    answer = lm._answer

    async def recorded(level, request):
        asked, place = time.perf_counter(), current_place()
        completion = await answer(level, request)
        prompt = "\n".join(str(m.get("content", "")) for m in request.messages)
        calls.append(Call(asked, time.perf_counter(), place, prompt, completion.text, completion.cached))
        return completion

    lm._answer = recorded
    return calls


def _fragments(text: str) -> set[str]:
    """The lines of a reply, and the strings of a JSON reply, long enough to be recognised."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    pieces = list(_strings(data)) if data is not None else []
    pieces += text.splitlines()
    return {p.strip() for piece in pieces for p in piece.splitlines() if len(p.strip()) >= MIN_FRAGMENT}


def _strings(data) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


def _unit(place: str) -> tuple[str, str | None]:
    """(the evaluation a call belongs to, the candidate whose evaluation it reads besides its own)."""
    parts = place.split("/") if place else []
    if parts and _CANDIDATE.match(parts[0]):
        return parts[0], None
    read = next((p for p in parts if _CANDIDATE.match(p)), None)
    return "/".join(parts[:4]) or "final", read


def critical_path(calls: list[Call], parents: dict[str, tuple[str, ...]], known: str = "") -> tuple[int, list[str]]:
    """The longest chain of model-answered calls, each reading the ones before it (see the module
    docstring): its length in calls, and the places of the calls on it, first to last.

    Args:
        calls: what `record_calls` noted.
        parents: each candidate's parents (from the run store).
        known: text no call wrote (the task's inputs and gold answers): a reply that repeats it
            is not read through it.
    """
    calls = sorted(calls, key=lambda c: c.asked)
    units = [_unit(c.place) for c in calls]
    by_unit: dict[str, list[int]] = {}
    writer: dict[str, int] = {}  # fragment -> the first call that wrote it
    first_asked: dict[str, int] = {}  # prompt -> the first call the model answered for it
    for i, c in enumerate(calls):
        by_unit.setdefault(units[i][0], []).append(i)
        if not c.cached:
            first_asked.setdefault(c.prompt, i)
    for i in sorted(range(len(calls)), key=lambda i: calls[i].answered):
        for fragment in _fragments(calls[i].reply) - _fragments(calls[i].prompt):
            if fragment not in calls[i].prompt and fragment not in known:
                writer.setdefault(fragment, i)
    length, before = [0] * len(calls), [-1] * len(calls)
    for i, c in enumerate(calls):
        unit, read = units[i]
        sources = list(by_unit) if unit == "final" else [unit, *parents.get(unit, ()), *([read] if read else [])]
        reads = [j for u in sources for j in by_unit.get(u, ()) if calls[j].answered <= c.asked]
        reads += [j for f, j in writer.items() if f in c.prompt and calls[j].answered <= c.asked]
        longest = max(reads, key=lambda j: length[j], default=-1)
        ready = length[longest] if longest >= 0 else 0
        length[i], before[i] = ready + 1, longest
        joined = first_asked.get(c.prompt, i)
        if c.cached and joined < i and length[joined] <= ready + 1:
            # Answered by joining (or from the cache of) an earlier identical call: it ends when
            # that call does, or when it could have asked the model itself, whichever is sooner.
            length[i], before[i] = max(ready, length[joined]), joined if length[joined] > ready else longest
        elif c.cached and joined == i:
            length[i] = ready  # a cache entry from before this run: no model call
    if not calls:
        return 0, []
    end = max(range(len(calls)), key=lambda i: length[i])
    chain = []
    while end >= 0:
        chain.append(calls[end].place or "(final)")
        end = before[end]
    return max(length), chain[::-1]
