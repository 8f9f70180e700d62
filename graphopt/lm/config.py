"""Model settings for the levels: program, optimizer, meta, and judge (an LLM-judge metric's)."""

from __future__ import annotations

__all__ = [
    "LEVELS", "OPTIONAL_LEVELS", "DEFAULT_MODEL", "LevelConfig", "LocalConfig", "LMConfig", "default_cache_dir",
    "local_config_from_env", "model_problem", "levels_shown",
]

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_serializer, field_validator

from ..errors import ConfigError
from .secrets import strip_secrets

LEVELS = ("program", "optimizer", "meta", "judge")
# Levels only some runs call (judge: the `judge` metric and the best_of_n baseline): usage lines
# and tables show them when they were used, not as a column of zeros.
OPTIONAL_LEVELS = ("judge",)


def levels_shown(used: Iterable[str] = ()) -> tuple[str, ...]:
    """The levels a usage line or table shows: every level but the optional ones not in `used`.

    Example:
        >>> levels_shown(), levels_shown(["judge"])
        (('program', 'optimizer', 'meta'), ('program', 'optimizer', 'meta', 'judge'))
    """
    used = set(used)
    return tuple(level for level in LEVELS if level not in OPTIONAL_LEVELS or level in used)

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
        api_base: the endpoint (a vLLM, llama.cpp or Ollama server, a proxy). An "openai/..."
            model with an api_base goes through graphopt's lean HTTP path unless
            transport="litellm".
        api_key_env: the name of the environment variable holding this level's key (the key
            itself is never written in a config).
        input_price_per_million, output_price_per_million: dollars per million prompt and
            completion tokens, for models litellm has no price for (they replace its price).
        transport: "auto" (the lean HTTP path where it applies, else litellm) or "litellm".
        embedding_model: the model that embeds texts where a program at this level retrieves its
            demos by meaning (`retrieve` with `by: embedding`): a litellm embedding model
            ("openai/text-embedding-3-small", "ollama/nomic-embed-text"), an "openai/..." model
            served at this level's api_base, or "local/smollm2" (the embedded model, mean-pooled:
            weak, but offline). It takes this level's endpoint and key. None: the level's own model
            where it can embed (a local GGUF model, see `LM.embedding_model`), else no retrieval
            by meaning at this level (retrieval by words needs no model).
        extra: more provider arguments (top_p, extra_headers, ...). Credentials in it (api_key,
            any name with "key", "token", "secret") reach the provider but are left out of
            dumps, reprs and cache keys, so a saved config never holds a secret.
    """

    model_config = ConfigDict(frozen=True)

    model: str = DEFAULT_MODEL
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = 0
    concurrency: int = Field(8, ge=1)
    timeout: float = Field(120.0, gt=0)
    api_base: str | None = None
    api_key_env: str | None = None
    input_price_per_million: float | None = Field(None, ge=0)
    output_price_per_million: float | None = Field(None, ge=0)
    transport: Literal["auto", "litellm"] = "auto"
    embedding_model: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model", "embedding_model", mode="before")
    @classmethod
    def _model_named(cls, model: Any, info: ValidationInfo) -> Any:
        if model is None and info.field_name == "embedding_model":
            return model
        problem = model_problem(model)
        if problem:
            raise ValueError(problem)
        return model

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("api_base must be an http(s) URL, e.g. http://127.0.0.1:8000/v1")
        return url or None

    @property
    def priced(self) -> bool:
        """True when the config gives this level's price (both directions)."""
        return self.input_price_per_million is not None and self.output_price_per_million is not None

    def provider_extra(self, environ: Any = None) -> dict[str, Any]:
        """`extra` plus the endpoint, the route and the key named by api_key_env, for one request."""
        extra = dict(self.extra)
        if self.api_base:
            extra["api_base"] = self.api_base
        if self.transport != "auto":
            extra["transport"] = self.transport
        if self.api_key_env:
            key = (os.environ if environ is None else environ).get(self.api_key_env)
            if not key:
                raise ConfigError(
                    f"api_key_env names ${self.api_key_env}, which is not set: export it, or change api_key_env"
                )
            extra["api_key"] = key
        return extra

    @field_serializer("extra")
    def _extra_without_secrets(self, extra: dict[str, Any]) -> dict[str, Any]:
        return strip_secrets(extra)

    def __repr_args__(self):
        for name, value in super().__repr_args__():
            yield name, strip_secrets(value) if name == "extra" else value


class LocalConfig(BaseModel):
    """The embedded model's runtime: a pool of llama.cpp instances.

    Attributes:
        instances: how many llama.cpp instances serve calls in parallel; None sizes the pool
            by cores and free memory.
        threads: threads per instance; None: one (several threads per instance spin at
            barriers and lose to several one-thread instances on a busy machine).
        n_ctx: context length of each instance, in tokens (4096: the meta model's graph
            proposals, with the operator catalogue and the task, run to about 2,000 tokens).
    """

    model_config = ConfigDict(frozen=True)

    instances: int | None = Field(None, ge=1, le=64)
    threads: int | None = Field(None, ge=1, le=256)
    n_ctx: int = Field(4096, ge=128)


def _optimizer_default() -> LevelConfig:
    # Optimizer and meta prompts ask for more text (critiques, rewritten prompts, graph specs).
    return LevelConfig(max_tokens=384, temperature=0.7)


class LMConfig(BaseModel):
    """Everything the LM client needs: one LevelConfig per level, the cache and retry policy."""

    model_config = ConfigDict(frozen=True)

    program: LevelConfig = Field(default_factory=LevelConfig)
    optimizer: LevelConfig = Field(default_factory=_optimizer_default)
    meta: LevelConfig = Field(default_factory=_optimizer_default)
    judge: LevelConfig = Field(default_factory=LevelConfig)  # temperature 0: a judge scores, it does not sample
    local: LocalConfig = Field(default_factory=lambda: local_config_from_env())
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
            if model is not None:
                problem = model_problem(model)
                if problem:
                    raise ConfigError(f"the {level} model: {problem}")
                update[level] = self.level(level).model_copy(update={"model": model})
        return self.model_copy(update=update)


def model_problem(model: Any) -> str | None:
    """Why `model` names no model (None, empty, or a provider alone such as "openai/"), else None."""
    if model is None:
        return "no model: name one, e.g. gpt-4o-mini, or local/smollm2 for the embedded one"
    if isinstance(model, str) and not model.strip():
        return "empty: name a model, e.g. gpt-4o-mini, or local/smollm2 for the embedded one"
    if isinstance(model, str) and model.strip().endswith("/"):
        return f"{model.strip()!r} names a provider but no model: write PROVIDER/MODEL, e.g. openai/gpt-4o-mini"
    return None


def default_cache_dir() -> Path | None:
    """$GRAPHOPT_CACHE_DIR, or ~/.cache/graphopt; "off" or "" turns the cache off.

    Nothing is created here: the directory appears on the first cache write.
    """
    value = os.environ.get("GRAPHOPT_CACHE_DIR")
    if value is not None:
        return None if value.strip().lower() in ("", "off", "none", "0") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphopt"


def local_config_from_env(environ: Any = None) -> LocalConfig:
    """The pool settings from $GRAPHOPT_LOCAL_INSTANCES, _THREADS and _N_CTX (unset: defaults)."""
    environ = os.environ if environ is None else environ
    values: dict[str, int] = {}
    for key in ("instances", "threads", "n_ctx"):
        name = f"GRAPHOPT_LOCAL_{key.upper()}"
        raw = environ.get(name)
        if raw:
            try:
                values[key] = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    try:
        return LocalConfig(**values)
    except ValueError as exc:
        raise ConfigError(f"GRAPHOPT_LOCAL_* settings: {exc.errors()[0]['msg']}") from None
