"""graphopt: LLM prompt optimizers as typed graphs you can author, search, save and reuse.

Importing this package is cheap: litellm, LangGraph and llama.cpp load only when first used.
"""

from .errors import BudgetExceeded, ConfigError, GraphoptError, LLMError, SpecError, TaskError
from .program.model import Demo, Program, ProgramIO, Step
from .types import Example, Feedback, Trace

__version__ = "0.1.0"

__all__ = [
    "GraphoptError",
    "ConfigError",
    "TaskError",
    "SpecError",
    "LLMError",
    "BudgetExceeded",
    "Example",
    "Demo",
    "Program",
    "Step",
    "ProgramIO",
    "load_program",
    "run_sync",
    "Trace",
    "Feedback",
    "__version__",
]


def run_sync(coro):  # noqa: ANN001, ANN201  (see graphopt.aio.run_sync)
    """The result of a graphopt coroutine from synchronous code, in a notebook too:
    `graphopt.run_sync(optimize(...))` (inside a running loop, `await optimize(...)` works as well)."""
    from .aio import run_sync as _run

    return _run(coro)


def load_program(path, lm=None):  # noqa: ANN001, ANN201  (see graphopt.program.predict.load_program)
    """A saved program ready to call: `graphopt.load_program("best.program.json")("input").answer`.

    Args:
        path: the program file (best.program.json, or optimize's program.json).
        lm: a `graphopt.lm.LM` (default: the configured program model).

    Returns:
        A `graphopt.program.predict.Runner` with `__call__(input)` and `acall(input)`.

    Raises:
        ConfigError: the file is missing or not a valid program.
    """
    from .program.predict import load_program as _load

    return _load(path, lm)
