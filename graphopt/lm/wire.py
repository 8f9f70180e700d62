"""What travels between the client and a model: a request, a response, and the transport protocol.

A transport (`graphopt.lm.transport.LiteLLMTransport`, the lean `graphopt.lm.openai_http`
transport it routes self-hosted servers to, `graphopt.testing.FakeModel`) sends one `Request` and
returns one `Response`, with no retries, caching or accounting (the client adds those). Both
transports read these types from here, so neither imports the other to know them.
"""

from __future__ import annotations

__all__ = ["Request", "Response", "Transport", "import_litellm", "retry_after"]

import gc
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

from .providers import resolved_endpoint
from .secrets import strip_secrets


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
    # Score this text as the reply instead of generating one: the response's text is its mean
    # log-probability per token (the embedded model only).
    score_target: str | None = None
    # Embed the one message's content instead of answering it: the response's text is the
    # vector as a JSON list (retrieval by meaning, `LM.embed`).
    embed: bool = False

    def cache_fields(self) -> dict[str, Any]:
        """Everything that can change the answer, without secrets.

        The timeout and `extra["transport"]` cannot change the answer, so they are left out. API
        keys, tokens and other credentials in `extra` cannot change the answer and must never
        reach a cache key, a store or a log, so they are dropped (at any depth, e.g. inside
        `extra_headers`).
        """
        # Built by hand: dataclasses.asdict deep-copies every message and cost ~40 us per call.
        # The same dict (the cache key hashes it with sorted keys), values not copied.
        return {
            "model": self.model,
            "messages": self.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": self.stop,
            "response_format": self.response_format,
            "extra": strip_secrets({k: v for k, v in self.extra.items() if k != "transport"}),
            # The server that answers, wherever its address came from (flag, file, environment).
            "endpoint": resolved_endpoint(self.model, self.extra),
            # Only when set, so the keys of generated answers stay as they were.
            **({"score_target": self.score_target} if self.score_target is not None else {}),
            **({"embed": True} if self.embed else {}),
        }

    def __repr__(self) -> str:
        # Never print credentials: a request can end up in a log or an error message.
        fields = {**self.__dict__, "extra": strip_secrets(self.extra)}
        return "Request(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"


@dataclass
class Response:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    provider: str = ""
    reasoning_tokens: int = 0  # included in completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)  # the fields, in order (asdict is 10x slower)


class Transport(Protocol):
    """Sends one request. May also define `prepare(model)`, called before the call is timed."""

    async def send(self, request: Request) -> Response: ...


def import_litellm():
    """Imports litellm with its bundled price map (no network) and quiet logging."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    first = "litellm" not in sys.modules
    import litellm

    if first:
        # litellm leaves a few hundred thousand long-lived objects; without this every full
        # garbage collection walks them again, which cost ~0.2 ms per model call under load.
        gc.freeze()
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    from .local import register_local_provider

    register_local_provider(litellm)
    return litellm


def retry_after(headers: Any) -> float | None:
    """Seconds from Retry-After (seconds) or OpenAI's retry-after-ms; None for anything else."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = headers.get(name) or headers.get(name.title())
            if value is not None:
                return max(0.0, float(value) / scale)
        except (TypeError, ValueError, AttributeError):
            continue
    return None
