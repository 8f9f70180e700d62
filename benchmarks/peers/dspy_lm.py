"""DSPy's side of the peers: a capped, metered `dspy.LM` per level and the task's program.

Every DSPy call goes to the embedded model behind llama_cpp.server; each level has its own
`dspy.LM` (model name "openai/program", "openai/optimizer": the server answers every name with
its one model) so spent tokens are told apart by level. A `Meter` counts the tokens of every call
that reached the server (DSPy's cache hits excluded, as graphopt's ledger excludes its own) and
refuses calls once a cap is reached: DSPy then scores what it could not run as failures, and the
optimizer returns the best program it had.

`ProgramAdapter` renders the task's signature exactly as graphopt renders a one-step program
(system prompt, demos as user/assistant turns, the input last) and reads the whole completion as
the answer, so a DSPy program and the graphopt `Program` made from it by `to_program` send the
model the same messages; other signatures (MIPROv2's proposer, GEPA's reflection) use DSPy's
ChatAdapter as usual.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import dspy
from dspy.utils.usage_tracker import UsageTracker

from graphopt.lm import LMConfig
from graphopt.tasks import Task
from graphopt.program import Demo, Program

from .server import GREEDY

INPUT, OUTPUT = "task_input", "task_answer"
LEVELS = ("program", "optimizer", "meta")


class CapReached(RuntimeError):
    """Raised instead of a model call once the method's cap is reached."""


class Meter(UsageTracker):
    """Tokens per level of the calls that reached the server, and the cap that stops new ones.

    DSPy copies its usage tracker into each worker thread; this one is shared instead (copies
    return itself) so no thread's calls are lost.

    Args:
        tokens: the cap, in tokens.
        scope: "total" (every level counts) or "program" (only program tokens count, and only
            program calls are refused).
    """

    def __init__(self, tokens: int | None, scope: str = "total") -> None:
        super().__init__()
        self.cap, self.scope = tokens, scope
        self.tokens = dict.fromkeys(LEVELS, 0)
        self.refused = 0
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict) -> Meter:
        return self

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        level = lm.split("/", 1)[-1]
        spent = int(usage_entry.get("prompt_tokens") or 0) + int(usage_entry.get("completion_tokens") or 0)
        with self._lock:
            self.tokens[level] = self.tokens.get(level, 0) + spent

    def check(self, level: str) -> None:
        """Raises CapReached when a call at `level` may not start."""
        if self.cap is None or (self.scope == "program" and level != "program"):
            return
        spent = self.tokens["program"] if self.scope == "program" else sum(self.tokens.values())
        if spent >= self.cap:
            with self._lock:
                self.refused += 1
            raise CapReached(f"{self.scope} cap of {self.cap} tokens reached")


class LevelLM(dspy.LM):
    """A `dspy.LM` for one level on the local server, checked against a `Meter` before each call."""

    def __init__(self, url: str, level: str, meter: Meter, **kwargs: Any) -> None:
        super().__init__(
            f"openai/{level}", api_base=url, api_key="local", engine="litellm", cache=True, num_retries=2, **kwargs
        )
        self.level, self.meter = level, meter

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.meter.check(self.level)
        return super().__call__(*args, **kwargs)

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        self.meter.check(self.level)
        return await super().acall(*args, **kwargs)


def program_lm(url: str, task: Task, meter: Meter) -> LevelLM:
    """The program level: greedy, with the task's stop strings and answer length (graphopt's defaults)."""
    stop = {"stop": list(task.stop)} if task.stop else {}
    return LevelLM(url, "program", meter, temperature=GREEDY["temperature"], max_tokens=task.max_tokens or 256,
                   extra_body={"top_k": GREEDY["top_k"], "repeat_penalty": GREEDY["repeat_penalty"]}, **stop)


def optimizer_lm(url: str, meter: Meter, level: str = "optimizer", max_tokens: int | None = None) -> LevelLM:
    """A proposer/reflection level, sampled as graphopt's optimizer level is by default (its
    temperature and longest answer, 0.7 and 384 tokens; `max_tokens` sets another)."""
    ours = LMConfig().level("optimizer")
    return LevelLM(url, level, meter, temperature=ours.temperature, max_tokens=max_tokens or ours.max_tokens,
                   extra_body={"repeat_penalty": 1.0})


def is_task_signature(signature: type[dspy.Signature]) -> bool:
    return set(signature.input_fields) == {INPUT} and set(signature.output_fields) == {OUTPUT}


def task_module(task: Task) -> dspy.Module:
    """The task's zero-shot program as a DSPy `Predict` (its instructions: the seed's system prompt)."""
    signature = dspy.Signature({INPUT: dspy.InputField(), OUTPUT: dspy.OutputField()}, task.seed_program.system_prompt())
    return dspy.Predict(signature)


def to_program(module: dspy.Module, task: Task) -> Program:
    """The graphopt program that sends the model what `module` sends it (instruction and demos)."""
    (predictor,) = module.predictors()
    demos = [Demo(input=str(d[INPUT]), output=str(d[OUTPUT])) for d in predictor.demos if d.get(OUTPUT) is not None]
    return Program(instruction=predictor.signature.instructions, demos=tuple(demos)).with_io(task.seed_program.io)


class ProgramAdapter(dspy.Adapter):
    """graphopt's one-step program format for the task signature; ChatAdapter for any other."""

    def __init__(self) -> None:
        super().__init__()
        self.chat = dspy.ChatAdapter()

    def __call__(self, lm, lm_kwargs, signature, demos, inputs):  # noqa: ANN001, ANN204
        if not is_task_signature(signature):
            return self.chat(lm, lm_kwargs, signature, demos, inputs)
        messages = self.format(signature, demos, inputs)
        with _adapter_call(lm, messages):
            outputs = lm(messages=messages, **lm_kwargs)
        # An empty answer scores 0, as in graphopt; it is not a parse error.
        return [{OUTPUT: _text(o).strip()} for o in outputs]

    async def acall(self, lm, lm_kwargs, signature, demos, inputs):  # noqa: ANN001, ANN204
        if not is_task_signature(signature):
            return await self.chat.acall(lm, lm_kwargs, signature, demos, inputs)
        messages = self.format(signature, demos, inputs)
        with _adapter_call(lm, messages):
            outputs = await lm.acall(messages=messages, **lm_kwargs)
        return [{OUTPUT: _text(o).strip()} for o in outputs]

    def format(self, signature, demos, inputs):  # noqa: ANN001, ANN201
        if not is_task_signature(signature):
            return self.chat.format(signature, demos, inputs)
        shown = [Demo(input=str(d[INPUT]), output=str(d[OUTPUT])) for d in demos if d.get(OUTPUT) is not None]
        return Program(instruction=signature.instructions, demos=tuple(shown)).messages(str(inputs[INPUT]))

    def parse(self, signature, completion):  # noqa: ANN001, ANN201
        if not is_task_signature(signature):
            return self.chat.parse(signature, completion)
        return {OUTPUT: completion.strip()}


def _text(output: Any) -> str:
    return (output.get("text") if isinstance(output, dict) else output) or ""


def _adapter_call(lm: Any, messages: list) -> Any:
    """DSPy 3.4's marker for an adapter's own LM call (it silences a deprecation warning), if present."""
    try:
        from dspy.clients._deprecation import adapter_message_call
    except ImportError:
        return contextlib.nullcontext()
    return adapter_message_call(lm, messages)
