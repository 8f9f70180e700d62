"""Model settings for the three levels: program, optimizer, meta."""

from __future__ import annotations

__all__ = ["LEVELS", "DEFAULT_MODEL", "LevelConfig", "LMConfig", "default_cache_dir"]

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from ..errors import ConfigError
from .transport import scrub_secrets

LEVELS = ("program", "optimizer", "meta")

# The embedded SmolLM2-135M-Instruct, run in process by llama.cpp (see graphopt.lm.local).
DEFAULT_MODEL = "local/smollm2"
DEFAULT_MAX_TOKENS = 256


class LevelConfig(BaseModel):
    """The model of one level and the parameters sent with every call.

    Attributes:
        model: any litellm model string ("gpt-4o-mini", "ollama/qwen2.5:7b") or "local/smollm2",
            or "local/PATH.gguf" for another GGUF file.
        temperature, max_tokens, seed: sent to the provider on every call of this level. With
            max_tokens None, the caller decides: a task's answer length at the program level,
            else DEFAULT_MAX_TOKENS.
        concurrency: at most this many calls in flight to this model.
        timeout: seconds before one call is abandoned (and retried).
        extra: more litellm arguments (api_base, top_p, ...). Credentials in it (api_key, any
            name with "key", "token", "secret") reach the provider but are left out of dumps,
            reprs and cache keys, so a saved config never holds a secret.
    """

    model_config = ConfigDict(frozen=True)

    model: str = DEFAULT_MODEL
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = 0
    concurrency: int = Field(8, ge=1)
    timeout: float = Field(120.0, gt=0)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("extra")
    def _extra_without_secrets(self, extra: dict[str, Any]) -> dict[str, Any]:
        return scrub_secrets(extra)

    def __repr_args__(self):
        for name, value in super().__repr_args__():
            yield name, scrub_secrets(value) if name == "extra" else value


def _optimizer_default() -> LevelConfig:
    # Optimizer and meta prompts ask for more text (critiques, rewritten prompts, graph specs).
    return LevelConfig(max_tokens=384, temperature=0.7)


class LMConfig(BaseModel):
    """Everything the LM client needs: one LevelConfig per level, the cache and retry policy."""

    model_config = ConfigDict(frozen=True)

    program: LevelConfig = Field(default_factory=LevelConfig)
    optimizer: LevelConfig = Field(default_factory=_optimizer_default)
    meta: LevelConfig = Field(default_factory=_optimizer_default)
    cache_dir: Path | None = Field(default_factory=lambda: default_cache_dir())
    max_retries: int = Field(4, ge=0)
    backoff_base: float = Field(0.5, gt=0)
    backoff_max: float = Field(30.0, gt=0)

    def level(self, name: str) -> LevelConfig:
        if name not in LEVELS:
            raise ConfigError(f"unknown level {name!r}: use one of {', '.join(LEVELS)}")
        return getattr(self, name)

    def with_models(self, **models: str | None) -> LMConfig:
        """A copy with the model of some levels replaced, e.g. with_models(program="gpt-4o-mini")."""
        update = {}
        for level, model in models.items():
            if model:
                update[level] = self.level(level).model_copy(update={"model": model})
        return self.model_copy(update=update)


def default_cache_dir() -> Path | None:
    """$GRAPHOPT_CACHE_DIR, or ~/.cache/graphopt; "off" or "" turns the cache off.

    Nothing is created here: the directory appears on the first cache write.
    """
    value = os.environ.get("GRAPHOPT_CACHE_DIR")
    if value is not None:
        return None if value.strip().lower() in ("", "off", "none", "0") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphopt"
