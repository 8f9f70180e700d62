"""An answer format constraint: the answering step replies `{"answer": ...}`, its answer held to a rule.

The rule is a JSON Schema, so every model that can be held to one is: the embedded model through
llama.cpp (the schema becomes a grammar: the model cannot write anything else), OpenAI-compatible
servers through `response_format`. A provider that ignores `response_format` still reads the
format instruction the constraint adds to the system prompt, and a plain reply is read as the
answer, so nothing breaks where the constraint is not enforced.

What an answer may be (`kind`):
    "free": any text up to `max_length` characters.
    "charset": only the characters in `chars` (a Dyck closing sequence: ") ] }" and spaces).
    "choices": one of `choices` (a label set seen in the train targets).

Demos are shown in the same form: a demo whose output is not already such an object is wrapped
(`{"answer": output}`), so a labeled target teaches the format it will be read in.

Example:
    >>> f = AnswerFormat(kind="choices", choices=("True", "False"))
    >>> f.read('{"answer": "True"}'), f.read("False"), f.render("True")
    ('True', 'False', '{"answer": "True"}')
"""

from __future__ import annotations

__all__ = ["AnswerFormat", "FORMAT_TOKENS", "infer_format"]

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..replies import json_objects

# Tokens the JSON wrapper adds to an answer ('{"answer": "' and '"}'), on top of the answer's own.
FORMAT_TOKENS = 8
# Characters a charset rule leaves out: JSON would escape them, and a grammar over escapes is brittle.
_UNSAFE = set('"\\') | {chr(i) for i in range(32) if chr(i) != " "}
_PARTIAL = re.compile(r'"answer"\s*:\s*"((?:[^"\\]|\\.)*)')


class AnswerFormat(BaseModel):
    """How the answering step must reply; see the module docstring.

    Attributes:
        kind: "free", "charset" or "choices".
        chars: the characters a "charset" answer may use (no quote, backslash or control character).
        choices: the answers a "choices" answer may be.
        max_length: the longest answer, in characters ("free").
        max_word, max_words: a "charset" answer's longest word and most words (0: unbounded), so
            a small model held to the characters cannot write them until it runs out of tokens.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["free", "charset", "choices"] = "free"
    chars: str = ""
    choices: tuple[str, ...] = ()
    max_length: int = Field(200, ge=1, le=4000)
    max_word: int = Field(0, ge=0, le=200)
    max_words: int = Field(0, ge=0, le=200)

    @model_validator(mode="after")
    def _check(self) -> AnswerFormat:
        if self.kind == "charset" and (not set(self.chars) - set(" ^-") or set(self.chars) & _UNSAFE):
            raise ValueError("a charset answer format needs characters besides space, ^ and -, and none of them a quote, "
                             "backslash or control character")
        if self.kind == "choices" and not self.choices:
            raise ValueError("a choices answer format needs at least one choice")
        return self

    def answer_schema(self) -> dict[str, Any]:
        """The JSON Schema of the answer string alone."""
        if self.kind == "choices":
            return {"type": "string", "enum": list(self.choices)}
        if self.kind == "charset":
            word = f"[{_class_body(self.chars)}]" + (f"{{1,{self.max_word}}}" if self.max_word else "+")
            if " " not in self.chars:
                return {"type": "string", "pattern": f"^{word}$"}
            # Words of the other characters separated by single spaces: an answer never starts,
            # ends or is made of spaces.
            more = f"{{0,{self.max_words - 1}}}" if self.max_words else "*"
            return {"type": "string", "pattern": f"^{word}( {word}){more}$"}
        return {"type": "string", "maxLength": self.max_length}

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the reply: an object with one string field, "answer"."""
        return {
            "type": "object", "properties": {"answer": self.answer_schema()},
            "required": ["answer"], "additionalProperties": False,
        }

    def response_format(self) -> dict[str, Any]:
        """The OpenAI-style `response_format` asking for the reply's schema."""
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": self.schema(), "strict": True}}

    def instruction(self) -> str:
        """The format instruction added to the system prompt (the only constraint where none is enforced)."""
        text = 'Reply with only a JSON object: {"answer": "..."}.'
        if self.kind == "choices":
            text += " The answer is one of: " + ", ".join(json.dumps(c) for c in self.choices) + "."
        elif self.kind == "charset":
            text += " The answer uses only these characters: " + " ".join(repr(c)[1:-1] for c in sorted(set(self.chars))) + "."
        return text

    def read(self, text: str) -> str:
        """The answer in a reply: the "answer" of its last JSON object; of a reply cut short, what
        it had written of it; of a plain reply (the constraint not enforced), the reply itself."""
        found = None
        for value in json_objects(text):
            if isinstance(value, dict) and "answer" in value:
                found = value["answer"]
        if found is not None:
            return found.strip() if isinstance(found, str) else json.dumps(found)
        partial = _PARTIAL.findall(text)
        if partial:
            try:
                return json.loads(f'"{partial[-1]}"').strip()
            except ValueError:
                return partial[-1].strip()
        return text

    def render(self, output: str) -> str:
        """A demo's output as the model must reply: kept when it is already an answer object, else wrapped."""
        if any(isinstance(v, dict) and "answer" in v for v in json_objects(output)):
            return output
        return json.dumps({"answer": output.strip()}, ensure_ascii=False)


def _class_body(chars: str) -> str:
    """The characters of `chars` but space as the inside of a character class that both regular
    expressions and llama.cpp's grammars read the same: only brackets escaped, "^" not first,
    "-" last."""
    plain = sorted(set(chars) - {" ", "^", "-"})
    body = "".join("\\" + c if c in "[]" else c for c in plain)
    return body + ("^" if "^" in chars else "") + ("-" if "-" in chars else "")


def infer_format(targets: Sequence[str], kind: str = "auto", *, max_choices: int = 12) -> AnswerFormat | None:
    """The answer format the train `targets` call for, or None when `kind` cannot fit them.

    "auto": "choices" when there are at most `max_choices` distinct targets and each was seen at
    least twice (a label set, not a sample of open answers); else "charset" when the targets use
    at most 24 distinct characters, none unsafe; else "free". An answer may be twice as long as the
    longest target (in characters; in words for "charset", each word no longer than the longest seen).

    Example:
        >>> infer_format(["True", "False", "False", "True"]).kind
        'choices'
        >>> f = infer_format([") ]", "} ) ]", "]"]); (f.kind, f.chars)
        ('charset', ' )]}')
    """
    targets = [t.strip() for t in targets if t.strip()]
    if not targets:
        return None
    length = min(4000, max(8, 2 * max(len(t) for t in targets)))
    counts = Counter(targets)
    chars = "".join(sorted(set("".join(targets))))
    choices_fit = len(counts) <= max_choices and min(counts.values()) >= 2
    charset_fit = len(chars) <= 24 and not set(chars) & _UNSAFE and bool(set(chars) - set(" ^-"))
    if kind == "auto":
        kind = "choices" if choices_fit else "charset" if charset_fit else "free"
    if kind == "choices":
        return AnswerFormat(kind="choices", choices=tuple(sorted(counts))) if len(counts) <= max_choices else None
    if kind == "charset":
        if not charset_fit:
            return None
        words = [t.split() for t in targets]
        return AnswerFormat(kind="charset", chars=chars, max_length=length, max_word=min(200, max(len(w) for ws in words for w in ws)),
                            max_words=min(200, 2 * max(len(ws) for ws in words)))
    return AnswerFormat(kind="free", max_length=length)
