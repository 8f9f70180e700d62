"""The LLM layer: per-level models on litellm, the embedded local model, cache, ledger, budgets."""

from .budget import Budget, Caps
from .client import LM, Completion
from .config import DEFAULT_MODEL, LEVELS, OPTIONAL_LEVELS, LevelConfig, LMConfig, levels_shown
from .ledger import Ledger, Usage, usage_scope
from .places import current_place, sample_place
from .transport import LiteLLMTransport, Request, Response

__all__ = [
    "LM",
    "Completion",
    "LMConfig",
    "LevelConfig",
    "LEVELS",
    "OPTIONAL_LEVELS",
    "levels_shown",
    "DEFAULT_MODEL",
    "Budget",
    "Caps",
    "Ledger",
    "Usage",
    "usage_scope",
    "sample_place",
    "current_place",
    "FakeModel",
    "LiteLLMTransport",
    "Request",
    "Response",
]


def __getattr__(name: str):
    # FakeModel lives in graphopt.testing (test machinery); this alias keeps
    # `from graphopt.lm import FakeModel` working without importing it with the runtime layer.
    if name == "FakeModel":
        from ..testing.fake import FakeModel

        return FakeModel
    raise AttributeError(f"module 'graphopt.lm' has no attribute {name!r}")
