"""graphopt: LLM prompt optimizers as typed graphs you can author, search, save and reuse.

Importing this package is cheap: litellm, LangGraph and llama.cpp load only when first used.
"""

from .errors import BudgetExceeded, ConfigError, GraphoptError, LLMError, SpecError, TaskError
from .types import Demo, Example, Feedback, Program, Trace

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
    "Trace",
    "Feedback",
    "__version__",
]
