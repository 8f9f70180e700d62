"""Your own pipeline as a program: `module:function(components, example) -> output`.

The function runs the program its own way (GEPA's adapter idea); `components` are the named
texts graphopt optimizes (the program's steps: instruction, demos, output format each). A
component is run on the program model with `components.call(name, text)` (or `await
components.acall(name, text)` in an async function); every call is recorded in the example's
trace, so critique sees each component's input and output, and `components.report(name, input,
output)` records work done without the model. The function's return value is the output the
task's rule reads the answer from.

Only functions you name (on the command line, in a program file or in Python) are run: the
optimizer models edit the components' texts, never code.

Example (my_pipeline.py):

    COMPONENTS = {"reason": "Think about the question.", "answer": "Answer in one word."}

    def run(components, example):
        notes = components.call("reason", example.input)
        return components.call("answer", f"{example.input}\\n\\nNotes: {notes}")
"""

from __future__ import annotations

__all__ = ["Components", "run_pipeline", "load_pipeline", "pipeline_program"]

import asyncio
import contextvars
import functools
import inspect
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, ConfigError, LLMError
from ..tasks.metrics import load_user_function
from .retrieval import step_messages
from .model import ANSWER_STEP, Program, Step
from .score import scored_trace
from ..types import Example, StepTrace, Trace

if TYPE_CHECKING:
    from ..lm import LM
    from ..tasks.base import Task

SIGNATURE = "(components, example) -> str"

# Sync pipelines run here, not in the loop's default executor: they block while their model
# calls run, and the embedded model's calls need the default executor's threads.
_THREADS: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    global _THREADS
    if _THREADS is None:
        _THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="graphopt-pipeline")
    return _THREADS


class Components(Mapping[str, str]):
    """The named texts of a program, as a read-only mapping name -> instruction, that can run them.

    Args:
        program: the program whose steps are the components.
        lm: the client; calls go to `level`.
        level: the LM level ("program").
        loop: the event loop the model calls run on (a sync pipeline runs in a worker thread).
        max_tokens: the answer length of a call that gives none.
    """

    def __init__(self, program: Program, lm: LM, level: str, loop: asyncio.AbstractEventLoop, max_tokens: int | None):
        self.program, self.lm, self.level, self.loop, self.max_tokens = program, lm, level, loop, max_tokens
        self.trace: list[StepTrace] = []

    def __getitem__(self, name: str) -> str:
        return self._step(name).instruction

    def __iter__(self) -> Iterator[str]:
        return iter(s.name for s in self.program.steps)

    def __len__(self) -> int:
        return len(self.program.steps)

    def _step(self, name: str) -> Step:
        try:
            return self.program.step(name)
        except KeyError:
            raise KeyError(f"no component {name!r}: the program has {', '.join(self)}") from None

    def step(self, name: str) -> Step:
        """The whole component `name`: instruction, demos and output format."""
        return self._step(name)

    async def acall(self, name: str, text: str, *, max_tokens: int | None = None, stop: list[str] | None = None) -> str:
        """Runs component `name` on `text` with the program model (its prompt first, `text` last)."""
        step = self._step(name)
        completion = await self.lm.complete(
            self.level, await step_messages(step, text, self.lm, self.level), max_tokens=None if self.lm.config.level(self.level).max_tokens
            else (max_tokens or step.max_tokens or self.max_tokens), stop=stop,
        )
        self.report(name, text, completion.text)
        return completion.text

    def call(self, name: str, text: str, **options: Any) -> str:
        """`acall` from a synchronous pipeline (it runs in a worker thread; the model calls on the loop)."""
        return asyncio.run_coroutine_threadsafe(self.acall(name, text, **options), self.loop).result()

    def report(self, name: str, input: str, output: str) -> None:  # noqa: A002  (the trace's field name)
        """Records one component's input and output in the example's trace."""
        self.trace.append(StepTrace(name=name, input=str(input), output=str(output)))


def load_pipeline(ref: str) -> Callable[..., Any]:
    """The function `module:function` names, checked to take (components, example).

    Raises:
        ConfigError: it cannot be imported, is not a function, or has the wrong signature.
    """
    return load_user_function(ref, params=2, what="pipeline", signature=SIGNATURE)


def pipeline_program(ref: str, program: Program | None = None) -> Program:
    """The program that runs pipeline `ref`: `program`'s steps as its components, or the module's
    `COMPONENTS` dict (name -> first instruction) when `program` is None.

    Raises:
        ConfigError: the pipeline cannot be loaded, or there are no components to start from.
    """
    fn = load_pipeline(ref)
    if program is not None:
        return program.model_copy(update={"pipeline": ref})
    seeds = getattr(fn, "components", None) or getattr(fn, "__globals__", {}).get("COMPONENTS")
    if not isinstance(seeds, Mapping) or not seeds or not all(isinstance(v, str) for v in seeds.values()):
        raise ConfigError(
            f"pipeline {ref!r} has no components to start from: define COMPONENTS = {{'name': 'instruction', ...}} "
            "in its module, or pass --program with one step per component"
        )
    names = list(seeds)
    steps = [Step(name=name, instruction=text) for name, text in seeds.items()]
    if ANSWER_STEP in names:  # the answering component last, where fewshot puts its demos
        steps.append(steps.pop(names.index(ANSWER_STEP)))
    try:
        return Program(steps=steps, pipeline=ref)
    except ValueError as exc:
        raise ConfigError(f"pipeline {ref!r}: its COMPONENTS cannot be a program ({exc})") from None


async def run_pipeline(program: Program, example: Example, task: Task, lm: LM, level: str) -> Trace:
    """One example through the program's pipeline, scored by the task.

    A pipeline that raises scores 0 with the error kept in the trace (`Trace.raised`); the run
    goes on. A model call that failed after its retries is an errored example like any other.
    """
    fn = load_pipeline(program.pipeline)
    components = Components(program, lm, level, asyncio.get_running_loop(), task.max_tokens)
    try:
        if inspect.iscoroutinefunction(fn):
            output = await fn(components, example)
        else:
            call = functools.partial(contextvars.copy_context().run, fn, components, example)
            output = await asyncio.get_running_loop().run_in_executor(_threads(), call)
            if inspect.isawaitable(output):
                output = await output
    except BudgetExceeded:
        raise  # a cap reached inside the pipeline: the evaluation is partial, not a score of 0
    except LLMError as exc:
        if exc.fatal:
            raise
        return Trace(example=example, output="", answer="", score=0.0, error=str(exc), steps=tuple(components.trace))
    except Exception as exc:  # noqa: BLE001  (the user's code: any failure scores this example 0)
        raised = f"pipeline {program.pipeline} raised {type(exc).__name__}: {exc}"
        return Trace(example=example, output="", answer="", score=0.0, raised=raised, steps=tuple(components.trace))

    text = "" if output is None else str(output)
    return await scored_trace(program, example, task, lm, text, tuple(components.trace))
