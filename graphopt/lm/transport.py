"""What travels between the client and a model: a request, a response, and the transports.

A transport sends one request and returns one response, with no retries, caching or
accounting (the client adds those). `LiteLLMTransport` serves every litellm model string
and the embedded local model; `graphopt.lm.fake.FakeModel` serves tests.
"""

from __future__ import annotations

__all__ = ["Request", "Response", "Transport", "LiteLLMTransport", "import_litellm", "classify"]

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError, LLMError


@dataclass(frozen=True)
class Request:
    model: str
    messages: list[dict[str, str]]
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int | None = None
    stop: list[str] | None = None
    response_format: dict[str, Any] | None = None
    timeout: float = 120.0
    extra: dict[str, Any] = field(default_factory=dict)

    def cache_fields(self) -> dict[str, Any]:
        """Everything that can change the answer (the timeout cannot)."""
        data = asdict(self)
        data.pop("timeout")
        return data


@dataclass
class Response:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    provider: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Transport(Protocol):
    async def send(self, request: Request) -> Response: ...


def import_litellm():
    """Imports litellm with its bundled price map (no network) and quiet logging."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    from .local import register_local_provider

    register_local_provider(litellm)
    return litellm


class LiteLLMTransport:
    """Sends requests through `litellm.acompletion` (retries are the client's job)."""

    def __init__(self) -> None:
        self._litellm = None

    @property
    def litellm(self):
        if self._litellm is None:
            self._litellm = import_litellm()
        return self._litellm

    def check_model(self, model: str) -> None:
        """Raises ConfigError when litellm cannot route `model` (e.g. a typo in the provider)."""
        try:
            self.litellm.get_llm_provider(model)
        except Exception as exc:  # litellm raises BadRequestError with a long text
            raise ConfigError(
                f"unknown model {model!r}: use a litellm model string such as 'gpt-4o-mini' or "
                "'ollama/qwen2.5:7b', or 'local/smollm2' for the embedded model"
            ) from exc

    async def send(self, request: Request) -> Response:
        litellm = self.litellm
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "timeout": request.timeout,
            "num_retries": 0,
            **request.extra,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = request.stop
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        response = await litellm.acompletion(**kwargs)
        text = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        provider = ""
        try:
            provider = litellm.get_llm_provider(request.model)[1]
        except Exception:
            pass
        cost = 0.0
        if provider != "local":
            try:
                cost = float(litellm.completion_cost(completion_response=response) or 0.0)
            except Exception:  # unknown price: count tokens, not dollars
                cost = 0.0
        return Response(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=cost,
            provider=provider,
        )


def classify(exc: BaseException, model: str) -> LLMError:
    """Turns any provider exception into an LLMError that says whether to retry."""
    if isinstance(exc, LLMError):
        return exc
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = None
    provider = getattr(exc, "llm_provider", "") or ""
    name = type(exc).__name__
    timeout_like = isinstance(exc, TimeoutError) or "Timeout" in name or "APIConnectionError" in name
    retryable = timeout_like or status in (408, 409, 429) or (status is not None and status >= 500)
    retry_after = None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None) or {}
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        if value is not None:
            retry_after = float(value)
    except (TypeError, ValueError, AttributeError):
        retry_after = None
    reason = str(getattr(exc, "message", "") or exc).strip().splitlines()[0][:300] if str(exc) else name
    return LLMError(
        reason, provider=provider, model=model, status=status, retryable=retryable, retry_after=retry_after
    )
