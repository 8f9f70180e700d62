"""The LLM layer: per-level models on litellm, the embedded local model, cache, ledger, budgets."""

from .budget import Budget, Caps
from .client import LM, Completion
from .config import DEFAULT_MODEL, LEVELS, LevelConfig, LMConfig
from .fake import FakeModel
from .ledger import Ledger, Usage, usage_scope
from .transport import LiteLLMTransport, Request, Response

__all__ = [
    "LM",
    "Completion",
    "LMConfig",
    "LevelConfig",
    "LEVELS",
    "DEFAULT_MODEL",
    "Budget",
    "Caps",
    "Ledger",
    "Usage",
    "usage_scope",
    "FakeModel",
    "LiteLLMTransport",
    "Request",
    "Response",
]
