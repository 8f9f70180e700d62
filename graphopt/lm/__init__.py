"""The LLM layer: per-level models on litellm, the embedded local model, cache, ledger, budgets."""

from .budget import Budget, Caps
from .client import LM, Completion
from .config import DEFAULT_MODEL, LEVELS, OPTIONAL_LEVELS, LevelConfig, LMConfig, levels_shown
from .ledger import Ledger, Usage, usage_scope
from .places import current_place, sample_place
from .transport import LiteLLMTransport
from .wire import Request, Response

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
    "LiteLLMTransport",
    "Request",
    "Response",
]
