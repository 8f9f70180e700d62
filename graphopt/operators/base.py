"""What an operator is: declared ports, named default prompts, parameters, and one `run` method.

An operator is one node kind of an optimizer graph. It declares the typed ports it consumes and
produces, so a graph spec can be checked before anything runs, and its default prompts as named
data, so the meta prompt optimizer can edit them (a node's prompt override replaces one by name).
"""

from __future__ import annotations

__all__ = [
    "PORT_TYPES",
    "Port",
    "Prompt",
    "Operator",
    "NoParams",
    "StepContext",
    "Dropped",
]

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from ..templates import prompt_placeholders

if TYPE_CHECKING:
    from ..lm import LM
    from ..tasks.base import Task
    from ..types import Example, Trace

# The values that flow on edges:
#   Program     one program (graphopt.types.Program)
#   Candidates  list[Program], best first when ranked
#   Feedback    list[graphopt.types.Feedback], critiques tied to programs by id
#   Traces      list[graphopt.types.Trace], a program's outputs and scores on the minibatch
#   History     list[Attempt], past programs with their validation scores (oldest first)
PORT_TYPES = ("Program", "Candidates", "Feedback", "Traces", "History")


@dataclass(frozen=True)
class Port:
    """An input or output port: its type, and for inputs whether it must be connected.

    `many=True` inputs accept several incoming edges, merged by the port type's reducer.
    """

    type: str
    required: bool = True
    many: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Prompt:
    """A named prompt template. `{name}` placeholders are filled by the operator at run time.

    Attributes:
        text: the template.
        doc: what the prompt is for.
        types: placeholder -> type of the value the operator fills it with, for those that are
            not text (e.g. `{"n": int}`); validation fills overrides with values of these types.
    """

    text: str
    doc: str = ""
    types: Mapping[str, type] = field(default_factory=dict, hash=False)

    def placeholders(self) -> set[str]:
        return prompt_placeholders(self.text)

    def fill(self, **values: Any) -> str:
        return self.text.format(**values)




class OperatorParams(BaseModel):
    """Base of the built-in operators' `Params`: unknown names refused, values frozen, and
    true/false refused where a number is expected (pydantic alone would read `k: true` as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Params added after graphs using the operator were hashed: at their default they are left out
    # of the graph's canonical hash, so existing graphs (and the runs that stored them) keep theirs.
    added_later: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_bools_for_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                info = cls.model_fields.get(name)
                if isinstance(value, bool) and info is not None and bool not in _types(info.annotation):
                    raise ValueError(f"param {name!r} is a number, not {str(value).lower()}")
        return data


def _types(annotation: Any) -> set[Any]:
    args = getattr(annotation, "__args__", None)
    return {annotation} | (set().union(*(_types(a) for a in args)) if args else set())


class NoParams(OperatorParams):
    pass


@dataclass
class Dropped:
    """A candidate the step could not use, and why (recorded in the step's history)."""

    node: str
    reason: str
    text: str = ""


@dataclass
class StepContext:
    """What every node of one optimizer step can see.

    Attributes:
        lm: the LM client; operators call the "optimizer" level, `select` the "program" level.
        task: the task being optimized (for scoring and examples).
        minibatch: this step's train examples.
        step: the step number (0-based), usable to vary seeds.
        stalled: steps in a row, just before this one, in which the loop accepted no program.
        dropped: candidates dropped with a reason, appended by operators.
        scores: (program id -> minibatch score) filled by scoring operators, shared by all nodes.
        node_outputs: node id -> summary of what it produced (for the meta prompt optimizer).
    """

    lm: LM
    task: Task
    minibatch: list[Example]
    step: int = 0
    stalled: int = 0
    dropped: list[Dropped] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    node_outputs: dict[str, Any] = field(default_factory=dict)
    likelihoods: dict[str, float] = field(default_factory=dict)

    async def likelihood(self, programs: list, examples: list[Example] | None = None) -> dict[str, float] | None:
        """Mean log-probability of the minibatch targets under each program (the program model's),
        cached per program id within the step, or its mean on `examples` when given (not cached,
        as in `score`); None when a program's answer is not its one call's whole reply (several
        steps, a pipeline, a vote, an answer marker), so it cannot be scored so.
        """
        from ..program.run import scorable_by_likelihood, target_logprobs

        if not scorable_by_likelihood(programs, self.lm):
            return None  # one cannot be scored so: rank them all on the metric
        if examples is not None:
            found = await asyncio.gather(*(target_logprobs(p, examples, self.lm) for p in programs))
            return {p.id: sum(values.values()) / max(len(values), 1) for p, values in zip(programs, found)}
        todo = list({p.id: p for p in programs if p.id not in self.likelihoods}.values())
        found = await asyncio.gather(*(target_logprobs(p, self.minibatch, self.lm) for p in todo))
        for program, values in zip(todo, found):
            self.likelihoods[program.id] = sum(values.values()) / max(len(values), 1)
        return {p.id: self.likelihoods[p.id] for p in programs}

    async def score(self, programs: list, examples: list[Example] | None = None) -> dict[str, float]:
        """Mean minibatch score of each program (cached per program id within the step), or its
        mean score on `examples` when given (not cached: the cache holds minibatch scores)."""
        from ..program.run import run_program

        if examples is not None:
            runs = await asyncio.gather(*(run_program(p, examples, self.task, self.lm) for p in programs))
            return {p.id: sum(t.score for t in traces) / max(len(traces), 1) for p, traces in zip(programs, runs)}
        examples = self.minibatch
        todo = list({p.id: p for p in programs if p.id not in self.scores}.values())
        # The candidates are scored together (each sends its examples at once); the client
        # bounds the concurrency per model, and the embedded model's pool keeps each program's
        # prefix on the instance that serves it.
        runs: list[list[Trace]] = await asyncio.gather(*(run_program(p, examples, self.task, self.lm) for p in todo))
        for program, traces in zip(todo, runs):
            self.scores[program.id] = sum(t.score for t in traces) / max(len(traces), 1)
        return {p.id: self.scores[p.id] for p in programs}


class Operator(ABC):
    """Base of every operator. Subclasses set the class attributes and implement `run`.

    Class attributes:
        name: registry name, e.g. "critique".
        kind: "llm" (calls the optimizer model), "score" (calls the program model) or "merge"/"data"
            (no model call); used for drawing and for the meta prompt optimizer.
        inputs / outputs: port name -> Port.
        prompts: prompt name -> default Prompt; `placeholders` of a prompt are exactly those its
            operator fills (a node's override may use any subset of them, no others).
        Params: a pydantic model of the node's parameters (extra keys forbidden).
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "llm"
    description: ClassVar[str] = ""
    inputs: ClassVar[dict[str, Port]] = {}
    outputs: ClassVar[dict[str, Port]] = {}
    prompts: ClassVar[dict[str, Prompt]] = {}
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, node_id: str, params: dict[str, Any] | None = None, prompts: dict[str, str] | None = None):
        self.node_id = node_id
        self.params = self.Params.model_validate(params or {})
        overrides = prompts or {}
        self.prompt_texts = {name: overrides.get(name, p.text) for name, p in self.prompts.items()}

    def rendered_prompts(self, wired: Collection[str]) -> set[str]:
        """The names of the prompts this node renders when the input ports `wired` are connected.

        The meta prompt optimizer edits only these, and the canonical hash counts only these.
        Default: every prompt; an operator whose sections depend on its wiring or params says so.
        """
        return set(self.prompts)

    def prompt(self, name: str, **values: Any) -> str:
        """The node's prompt `name` (override or default), filled with `values`."""
        return self.prompt_texts[name].format(**values)

    def made(self) -> int:
        """New programs this node adds to a step (for the cost model, `graphopt.search.cost`):
        its `k`, when it has one, else 1; 0 for a node that only changes the programs it is given."""
        return int(getattr(self.params, "k", 1) or 1)

    def demos_shown(self) -> int:
        """Demos this node has a program show per input (for the cost model: each makes the prompt longer)."""
        return 0

    def optimizer_calls(self) -> int:
        """Optimizer-model calls a model-calling node makes per step (for the cost model): its `k`, else 1."""
        return int(getattr(self.params, "k", 1) or 1)

    @abstractmethod
    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        """Consumes the values on the input ports, returns {output port: value}."""
