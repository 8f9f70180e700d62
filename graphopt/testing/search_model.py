"""A scripted model that plays all three levels of a search, for fast pipeline tests and benchmarks.

Program level: answers word_sorting correctly only when the instruction says "carefully", so a
rewrite that adds the word raises validation accuracy. Optimizer level: critiques and rewrites
(the rewrite asks for "carefully"). Meta level: edited prompts and graph proposals.

Example:
    >>> from graphopt.testing import FakeModel
    >>> model = FakeModel(fn=scripted_search, latency=0.1)  # a search's landscape at API-like latency
"""

from __future__ import annotations

__all__ = ["scripted_search", "GOOD_INSTRUCTION"]

import json

GOOD_INSTRUCTION = "Sort the words carefully in alphabetical order and list them."


def _words(text: str) -> list[str]:
    return text.split("List:", 1)[1].split() if "List:" in text else text.split()


def scripted_search(messages, request=None) -> str:
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    last = messages[-1]["content"]
    if "improve one prompt of an automatic prompt optimizer" in last:
        current = last.split("<<<", 1)[1].split(">>>", 1)[0].strip()
        return json.dumps({"prompt": current + "\nBe specific about alphabetical order."})
    if '"nodes"' in last or "operator catalogue" in last.lower() or "graph spec" in last.lower():
        return json.dumps(
            {
                "rationale": "paraphrase then select",
                "name": "llm_graph",
                "nodes": [
                    {"id": "p", "op": "paraphrase", "params": []},
                    {"id": "s", "op": "select", "params": []},
                ],
                "edges": [
                    {"source": "input.program", "target": "p.candidates"},
                    {"source": "p.candidates", "target": "s.candidates"},
                    {"source": "input.program", "target": "s.candidates"},
                ],
            }
        )
    if '"instruction"' in last:
        return json.dumps({"instruction": GOOD_INSTRUCTION})
    if "improve the instruction" in last or "wrong" in last:
        return "The program should sort carefully."
    if system:  # program level
        words = _words(last)
        return " ".join(sorted(words)) if "carefully" in system else " ".join(words)
    return "ok"
