"""What differs between providers: which parameters each accepts, its endpoint, its price.

- `litellm_arguments` builds the arguments of `litellm.acompletion` from a request, sending only
  the parameters the provider accepts (litellm's `get_supported_openai_params`): no `seed` to
  Anthropic, and reasoning models (o1/o3/o4, gpt-5, Claude with thinking) get
  `max_completion_tokens` and no temperature, which they refuse or ignore.
- `resolved_endpoint` names the server a request goes to, from its `api_base` or, failing that,
  the environment variables litellm reads (OPENAI_BASE_URL, OLLAMA_API_BASE, ...), so that the
  response cache never answers one server's request with another's reply.
- `known_price` says whether dollars can be counted for a model.
"""

from __future__ import annotations

__all__ = ["litellm_arguments", "resolved_endpoint", "known_price", "is_reasoning_model", "ENDPOINT_ENV"]

import functools
import os
import re
from typing import Any

LOCAL_PREFIX = "local/"

# The variables litellm reads for a provider's endpoint when no api_base is given.
ENDPOINT_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_BASE", "OPENAI_BASE_URL"),
    "anthropic": ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"),
    "ollama": ("OLLAMA_API_BASE",),
    "ollama_chat": ("OLLAMA_API_BASE",),
    "hosted_vllm": ("HOSTED_VLLM_API_BASE",),
    "azure": ("AZURE_API_BASE",),
    "lm_studio": ("LM_STUDIO_API_BASE",),
    "openrouter": ("OPENROUTER_API_BASE",),
    "groq": ("GROQ_API_BASE",),
    "mistral": ("MISTRAL_API_BASE",),
}
_ALL_ENDPOINT_ENV = tuple(dict.fromkeys(name for names in ENDPOINT_ENV.values() for name in names))
_REASONING_NAME = re.compile(r"(?:^|/)(?:o[1-9](?:-|$)|o[1-9]-mini|gpt-5)")
# Arguments that configure litellm or graphopt, not the model; never filtered.
_PASS_THROUGH = frozenset({"api_base", "base_url", "api_key", "api_version", "extra_headers", "extra_body", "organization"})


def _provider_of(model: str) -> str | None:
    if "/" in model:
        return model.split("/", 1)[0]
    return None  # a bare name ("gpt-4o-mini"): litellm guesses the provider from its price map


def resolved_endpoint(model: str, extra: dict[str, Any], environ: Any = None) -> str | None:
    """The endpoint a request goes to: its api_base, else the provider's variables in the environment.

    For a bare model name (no "provider/") every endpoint variable that is set counts, since
    litellm may route it to any of them. The embedded model's endpoint is its GGUF file.
    """
    base = extra.get("api_base") or extra.get("base_url")
    if base:
        return str(base).rstrip("/")
    if model.startswith(LOCAL_PREFIX):
        from .local import resolve_model_path

        try:
            return f"file:{resolve_model_path(model[len(LOCAL_PREFIX):])}"
        except Exception:  # a missing file fails when the call is made, with its own message
            return None
    environ = os.environ if environ is None else environ
    provider = _provider_of(model)
    names = ENDPOINT_ENV.get(provider, ()) if provider else _ALL_ENDPOINT_ENV
    found = [f"{name}={environ[name].rstrip('/')}" for name in names if environ.get(name)]
    return ";".join(found) or None


@functools.lru_cache(maxsize=256)
def _provider_facts(litellm: Any, model: str) -> tuple[str | None, frozenset[str] | None, bool]:
    """(provider, the OpenAI parameters it accepts or None if unknown, whether it is a reasoning model)."""
    try:
        resolved, provider, _, _ = litellm.get_llm_provider(model)
    except Exception:
        return None, None, bool(_REASONING_NAME.search(model))
    try:
        supported = litellm.get_supported_openai_params(model=resolved, custom_llm_provider=provider)
        params = frozenset(supported) if supported else None
    except Exception:
        params = None
    try:
        reasoning = bool(litellm.supports_reasoning(model=model))
    except Exception:
        reasoning = False
    reasoning = reasoning or bool(_REASONING_NAME.search(resolved))
    return provider, params, reasoning


def is_reasoning_model(litellm: Any, model: str) -> bool:
    """True for models that take max_completion_tokens and no temperature (o-series, gpt-5, ...)."""
    return _provider_facts(litellm, model)[2]


def litellm_arguments(request: Any, litellm: Any) -> dict[str, Any]:
    """The keyword arguments of `litellm.acompletion` for `request`, only what the provider accepts.

    Args:
        request: a `graphopt.lm.transport.Request`.
        litellm: the imported litellm module.
    """
    provider, supported, reasoning = _provider_facts(litellm, request.model)
    ok = (lambda name: True) if supported is None else (lambda name: name in supported)
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": request.messages,
        "timeout": request.timeout,
        "num_retries": 0,
        # A parameter our filter let through that the provider still refuses is dropped, not an error.
        "drop_params": True,
    }
    if reasoning:
        kwargs["max_completion_tokens"] = request.max_tokens
    else:
        kwargs["temperature"] = request.temperature
        kwargs["max_tokens"] = request.max_tokens
    if request.seed is not None and ok("seed"):
        kwargs["seed"] = request.seed
    if request.stop and ok("stop"):
        kwargs["stop"] = request.stop
    if request.response_format is not None and ok("response_format"):
        kwargs["response_format"] = request.response_format
    if (
        provider in ("openai", "hosted_vllm", "lm_studio")
        and request.extra.get("api_base")
        and not request.extra.get("api_key")
        and not os.environ.get("OPENAI_API_KEY")
    ):
        # A self-hosted server usually takes no key, but litellm's OpenAI client insists on one.
        kwargs["api_key"] = "no-key"
    for name, value in request.extra.items():
        if name == "transport":
            continue
        if name in _PASS_THROUGH or supported is None or name in supported or name not in _OPENAI_PARAMS:
            kwargs[name] = value  # provider-specific arguments (e.g. "thinking") pass as given
    return kwargs


# OpenAI chat parameters that some providers do not accept; extra ones outside this set are
# provider-specific and pass through to litellm as given.
_OPENAI_PARAMS = frozenset(
    {
        "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "n", "top_p",
        "seed", "stop", "user", "parallel_tool_calls", "service_tier", "reasoning_effort",
    }
)  # fmt: skip


@functools.lru_cache(maxsize=256)
def known_price(litellm: Any, model: str) -> bool:
    """True when litellm's price map prices `model` (the embedded model is free: True)."""
    if model.startswith(LOCAL_PREFIX):
        return True
    candidates = [model]
    if model.startswith("openai/"):
        candidates.append(model[len("openai/") :])
    for name in candidates:
        entry = litellm.model_cost.get(name)
        if entry and entry.get("input_cost_per_token") is not None:
            return True
    try:
        info = litellm.get_model_info(model)
    except Exception:
        return False
    return info.get("input_cost_per_token") is not None
