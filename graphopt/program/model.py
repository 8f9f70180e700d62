"""The program model: named steps (instruction, demos, output format, input template), how the
answer is read, and what a saved program carries to run the same outside its task.

All are frozen pydantic models: editing returns a new object (`Program.with_instruction`), so a
prompt is never changed in place behind a caller's back.
"""

from __future__ import annotations

__all__ = ["Demo", "Retrieval", "Step", "Program", "ProgramIO", "ANSWER_STEP", "INPUT_FIELD", "REASON_TOKENS", "Message",
           "SCHEMA_VERSION"]

import hashlib
import json
import re
import string
from types import SimpleNamespace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from ..errors import did_you_mean
from .answer_format import AnswerFormat
from .retrieval import nearest

SCHEMA_VERSION = 2  # 2: programs are named steps (version 1 files load as one step)

Message = dict[str, str]


class Demo(BaseModel):
    """A worked example shown to the model before the real input."""

    model_config = ConfigDict(frozen=True)

    input: str
    output: str


class Retrieval(BaseModel):
    """Demos chosen per input: the `k` pool examples nearest to the step's input, shown after the
    step's fixed demos (see `graphopt.program.retrieval`).

    `by`: "bm25" (nearest by words: no model) or "embedding" (nearest by meaning: the cosine of
    the vectors the program level's `embedding_model` gives the inputs; the run embeds them, so a
    program saved with it runs wherever an embedding model is configured).
    """

    model_config = ConfigDict(frozen=True)

    pool: tuple[Demo, ...] = Field(min_length=1)
    k: int = Field(3, ge=1, le=16)
    by: Literal["bm25", "embedding"] = "bm25"

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict) and data.get("by") == "bm25":
            data.pop("by")  # absent at its default: the ids of programs that retrieve by words stay
        return data

    def demos_for(self, step_input: str) -> list[Demo]:
        """The nearest demos by words (a retrieval by meaning needs vectors: `retrieval.step_messages`)."""
        if self.by != "bm25":
            raise ValueError("a retrieval by meaning needs the inputs' vectors: build the messages with "
                             "graphopt.program.retrieval.step_messages")
        return nearest(self.pool, step_input, self.k)


RETRIEVED_BY = {"bm25": "BM25", "embedding": "by meaning: cosine of the embedding model's vectors"}
ANSWER_STEP = "answer"
INPUT_FIELD = "input"
_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LEGACY_KEYS = ("instruction", "demos", "output_format")


class Step(BaseModel):
    """One prompt of a program: an instruction, demos, an output format, and the input it is shown.

    Attributes:
        name: the step's name; later steps read its output as `{steps.NAME}`.
        instruction, demos, output_format: the prompt (the system message is the instruction,
            then the output format; demos are user/assistant turns).
        input: the user message, a template over `{input}` (the example's input) and
            `{steps.NAME}` (an earlier step's output).
        max_tokens: tokens the step may write; None: the task's answer length for the answering
            step, `REASON_TOKENS` for the steps before it.
        retrieve: demos retrieved per input from a pool (None: only the fixed `demos`).
        answer_format: the reply's format constraint (the answering step only; None: free text):
            a JSON Schema the model is held to where it can be, a format instruction elsewhere.
    """

    model_config = ConfigDict(frozen=True)

    name: str = ANSWER_STEP
    instruction: str
    demos: tuple[Demo, ...] = ()
    output_format: str = ""
    input: str = "{" + INPUT_FIELD + "}"
    max_tokens: int | None = Field(None, ge=1)
    retrieve: Retrieval | None = None
    answer_format: AnswerFormat | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for key in ("retrieve", "answer_format"):
            if isinstance(data, dict) and key in data and data[key] is None:
                data.pop(key)  # absent when unused: older program ids stay as they were
        return data

    def system_prompt(self) -> str:
        parts = [self.instruction.strip()]
        if self.output_format.strip():
            parts.append(self.output_format.strip())
        if self.answer_format:
            parts.append(self.answer_format.instruction())
        return "\n\n".join(p for p in parts if p)

    def fields(self) -> set[str]:
        """The template fields of `input`: "input" and "steps.NAME" (raises ValueError when malformed)."""
        return {name for _, name, _, _ in string.Formatter().parse(self.input) if name is not None}

    def render_input(self, program_input: str, outputs: dict[str, str]) -> str:
        """The user message: `input` filled with the example's input and earlier steps' outputs."""
        return self.input.format(**{INPUT_FIELD: program_input}, steps=SimpleNamespace(**outputs))

    def messages(self, step_input: str, retrieved: list[Demo] | None = None) -> list[Message]:
        """The chat messages: the system prompt, the demos, then `step_input` last (prefix reuse).

        `retrieved`: the demos the step's retrieval picked for this input, when the caller picked
        them (a retrieval by meaning); None: picked here (by words), or none."""
        out: list[Message] = [{"role": "system", "content": self.system_prompt()}]
        if retrieved is None:
            retrieved = self.retrieve.demos_for(step_input) if self.retrieve else []
        for demo in (*self.demos, *retrieved):
            out.append({"role": "user", "content": demo.input})
            out.append({"role": "assistant", "content": self.reply(demo.output)})
        out.append({"role": "user", "content": step_input})
        return out

    def reply(self, output: str) -> str:
        """`output` as this step must reply it (a demo's output, or a target scored by likelihood)."""
        return self.answer_format.render(output) if self.answer_format else output


REASON_TOKENS = 256


class ProgramIO(BaseModel):
    """How a program is fed and read outside its task: carried with it so `predict` and `export`
    give the same answers as the task's evaluation.

    Attributes:
        input_template: builds the input from a record's fields ("Question: {question}"); ""
            reads the record's "input" field (or the record itself when it is a string).
        extract: the task's extractor rule (`graphopt.tasks.answers`); "" keeps the whole output.
        stop: strings that end the answering step's output.
        max_tokens: the answering step's length, unless the step sets its own.
        metric: the task's metric rule ("exact", "contains", "module:function", ...) the program
            was optimized for, so `eval --program` scores it the same way ("" : not recorded).
    """

    model_config = ConfigDict(frozen=True)

    input_template: str = ""
    extract: str = ""
    stop: tuple[str, ...] = ()
    max_tokens: int | None = Field(None, ge=1)
    metric: str = ""


class Program(BaseModel):
    """A prompt program: named steps run in order; the last step's output is the answer.

    A one-step program is written and read in the flat form of schema version 1
    (`instruction`, `demos`, `output_format`); `instruction`, `demos` and `output_format` read
    (and `with_instruction` etc. edit) the answering step, so one-step callers need not know
    about steps. Older files (schema version 1) load unchanged.

    Attributes:
        steps: the steps, in the order they run; names are unique identifiers.
        answer_marker: when set, the answer is read from the text after the last occurrence of
            this marker in the final output (a reasoning program's "Answer:"), by the task's rule.
        io: the task's input template, answer rule, stop strings and answer length, so the
            program runs the same outside its task (None: not recorded).
        pipeline: "module:function" of a user pipeline that runs the steps as its components
            (see `graphopt.program.pipeline`); "" runs the steps in order.
        vote: other programs that answer each input too; the answer is the majority of the
            extracted answers of this program and these (ties: the earliest, this program first).
            A vote of n programs costs about n times as much per input.

    Example:
        >>> p = Program(instruction="Sort the words alphabetically.")
        >>> p.with_instruction("Sort the words.").instruction
        'Sort the words.'
        >>> two = Program(steps=[Step(name="reason", instruction="Think."),
        ...                      Step(instruction="Answer.", input="{input}\\n{steps.reason}")])
        >>> [s.name for s in two.steps]
        ['reason', 'answer']
    """

    model_config = ConfigDict(frozen=True)

    steps: tuple[Step, ...]
    answer_marker: str = ""
    io: ProgramIO | None = None
    pipeline: str = ""
    vote: tuple[Program, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        """Schema version 1 (and the flat one-step form): instruction/demos/output_format -> one step."""
        if not isinstance(data, dict) or "steps" in data:
            return data
        data = dict(data)
        step = {key: data.pop(key) for key in _LEGACY_KEYS if key in data}
        for key in ("name", "input", "max_tokens"):
            if key in data:
                step[key] = data.pop(key)
        if "instruction" not in step:
            return data  # let validation report the missing field
        data["steps"] = [step]
        data["schema_version"] = SCHEMA_VERSION
        return data

    @model_validator(mode="after")
    def _check_steps(self) -> Program:
        if not self.steps:
            raise ValueError("a program needs at least one step")
        seen: list[str] = []
        for step in self.steps:
            if not _STEP_NAME.match(step.name):
                raise ValueError(f"step name {step.name!r} is not an identifier (letters, digits, _)")
            if step.name in seen:
                raise ValueError(f"two steps are named {step.name!r}")
            try:
                fields = step.fields()
            except ValueError as exc:
                raise ValueError(f"step {step.name!r}: input template {step.input!r} is malformed ({exc})") from None
            for field_name in fields:
                if field_name == INPUT_FIELD:
                    continue
                ref = field_name.removeprefix("steps.")
                if ref == field_name or ref not in seen:
                    known = ["{input}"] + [f"{{steps.{n}}}" for n in seen]
                    raise ValueError(
                        f"step {step.name!r} reads {{{field_name}}}, which is not an earlier step's output"
                        f"{did_you_mean('{' + field_name + '}', known)}; it may read {', '.join(known)}"
                    )
            seen.append(step.name)
        for step in self.steps[:-1]:
            if step.answer_format:
                raise ValueError(f"step {step.name!r} has an answer format: only the answering step (the last) may")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict) and data.get("io", 0) is None:
            data.pop("io")
        if isinstance(data, dict) and data.get("pipeline", 0) == "":
            data.pop("pipeline")
        if isinstance(data, dict) and "vote" in data and not data["vote"]:
            data.pop("vote")
        if self.is_flat and isinstance(data, dict) and "steps" in data:
            (step,) = data.pop("steps")
            flat = {key: step[key] for key in _LEGACY_KEYS if key in step}
            if self.steps[0].max_tokens is not None and "max_tokens" in step:
                flat["max_tokens"] = step["max_tokens"]
            if not self.answer_marker:
                data.pop("answer_marker", None)
            data = {**flat, **data}
        return data

    @property
    def is_flat(self) -> bool:
        """True for a one-step program written in the schema-1 form (named "answer", input "{input}")."""
        step = self.steps[0]
        return (
            len(self.steps) == 1 and step.name == ANSWER_STEP and step.input == "{input}"
            and step.retrieve is None and step.answer_format is None and not self.vote
        )

    @property
    def one_call(self) -> bool:
        """True when one model call's whole reply is the answer (one step, no pipeline, vote or marker):
        such a program can be scored by the log-probability of the target."""
        return len(self.steps) == 1 and not self.pipeline and not self.vote and not self.answer_marker

    @property
    def answer_step(self) -> Step:
        """The last step, whose output is the answer."""
        return self.steps[-1]

    @property
    def instruction(self) -> str:
        """The answering step's instruction."""
        return self.answer_step.instruction

    @property
    def demos(self) -> tuple[Demo, ...]:
        """The answering step's demos."""
        return self.answer_step.demos

    @property
    def output_format(self) -> str:
        """The answering step's output format."""
        return self.answer_step.output_format

    @property
    def id(self) -> str:
        """A short content hash: equal programs have equal ids (a one-step program's is the same as in schema 1)."""
        # How it is fed and read (`io`) is the task's, not the program's: not part of its identity.
        blob = json.dumps(self.model_dump(exclude={"schema_version", "io"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def step(self, name: str | None = None) -> Step:
        """The step named `name` (None: the answering step).

        Raises:
            KeyError: no step has that name.
        """
        if name is None:
            return self.answer_step
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def with_step(self, name: str | None, **changes: Any) -> Program:
        """A copy with the fields `changes` of step `name` (None: the answering step) replaced."""
        target = self.step(name).name
        steps = tuple(s.model_copy(update=changes) if s.name == target else s for s in self.steps)
        return self.model_copy(update={"steps": steps})

    def with_instruction(self, instruction: str, step: str | None = None) -> Program:
        return self.with_step(step, instruction=instruction)

    def with_demos(self, demos: list[Demo] | tuple[Demo, ...], step: str | None = None) -> Program:
        return self.with_step(step, demos=tuple(demos))

    def system_prompt(self) -> str:
        """The answering step's system prompt."""
        return self.answer_step.system_prompt()

    def messages(self, program_input: str) -> list[Message]:
        """The chat messages of the first step for one input: instruction first, demos, then the input last.

        For a one-step program these are the whole program's messages. The input comes last so a
        local model can reuse the cached prefix across examples.
        """
        first = self.steps[0]
        return first.messages(first.render_input(program_input, {}))

    def with_io(self, io: ProgramIO | None) -> Program:
        """A copy fed and read by `io` (see `ProgramIO`)."""
        return self.model_copy(update={"io": io})

    def answer_text(self, output: str) -> str:
        """The part of the final output the task's rule reads: the answer of an answer format's
        reply, then the text after the last `answer_marker`, if any."""
        if self.answer_step.answer_format:
            output = self.answer_step.answer_format.read(output)
        if not self.answer_marker:
            return output
        at = output.lower().rfind(self.answer_marker.lower())
        return output[at + len(self.answer_marker) :].strip() if at >= 0 else output

    def render(self) -> str:
        """The whole program as readable text (for optimizer prompts and reports)."""
        if self.vote:
            lead = self.model_copy(update={"vote": ()})
            members = [lead, *self.vote]
            return f"A vote of {len(members)} programs (the majority answer; ties: the first):\n\n" + "\n\n".join(
                f"Voter {i}:\n{m.render()}" for i, m in enumerate(members, 1)
            )
        if len(self.steps) == 1 and self.steps[0].name == ANSWER_STEP and self.steps[0].input == "{input}":
            return _render_step(self.steps[0])
        parts = [
            f"Step {i} ({step.name}){', gives the answer' if step is self.answer_step else ''}:\n"
            + (f"Input: {step.input}\n" if step.input != "{input}" else "")
            + _render_step(step)
            for i, step in enumerate(self.steps, 1)
        ]
        return "\n\n".join(parts)


def _render_step(step: Step) -> str:
    text = f"Instruction:\n{step.instruction}"
    if step.output_format:
        text += f"\n\nOutput format:\n{step.output_format}"
    for i, demo in enumerate(step.demos, 1):
        text += f"\n\nDemo {i}:\nInput: {demo.input}\nOutput: {demo.output}"
    if step.retrieve:
        text += (
            f"\n\nPlus the {step.retrieve.k} examples nearest to each input ({RETRIEVED_BY[step.retrieve.by]}), retrieved from a pool of "
            f"{len(step.retrieve.pool)} worked examples."
        )
    if step.answer_format:
        text += f"\n\nReply format (enforced where the model supports it):\n{json.dumps(step.answer_format.schema())}"
    return text


