"""The router: `LiteLLMTransport` sends a request (`graphopt.lm.wire`) to the model that serves it.

A transport sends one request and returns one response, with no retries, caching or
accounting (the client adds those). `LiteLLMTransport` serves every litellm model string
and the embedded local model; `graphopt.testing.FakeModel` serves tests.

Routing: a model "openai/..." with an `api_base` in `extra` (a self-hosted OpenAI-compatible
server: vLLM, llama.cpp server, the stub server) goes through the lean
`graphopt.lm.openai_http.OpenAIHTTPTransport`, since litellm's chat path costs about 6 ms of
CPU per call, which caps one event loop near 160-200 calls/s. `extra={"transport": "litellm"}`
sends such a model through litellm instead (the "transport" entry itself is not passed on).
"local/" models go straight to the embedded model's pool of llama.cpp instances
(`graphopt.lm.local`). Everything else goes through `litellm.acompletion`, with only the
parameters the provider accepts (`graphopt.lm.providers`).
"""

from __future__ import annotations

__all__ = ["LiteLLMTransport", "classify"]

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, LLMError
from .providers import known_price, litellm_arguments
from .secrets import scrub_text
from .wire import Request, Response, import_litellm, retry_after

# What of a level's provider arguments an embedding call takes (sampling arguments it does not).
_EMBEDDING_ARGUMENTS = ("api_key", "api_base", "base_url", "api_version", "organization", "extra_headers", "dimensions")

if TYPE_CHECKING:
    from .config import LocalConfig


LOCAL_PREFIX = "local/"
OPENAI_PREFIX = "openai/"


class LiteLLMTransport:
    """Sends requests through `litellm.acompletion` (retries are the client's job)."""

    def __init__(self, local: LocalConfig | None = None) -> None:
        self.local = local  # the embedded model's pool settings (None: from the environment)
        self._litellm = None
        self._providers: dict[str, str] = {}
        self._http = None  # the OpenAIHTTPTransport, created on the first request routed to it

    @property
    def litellm(self):
        if self._litellm is None:
            self._litellm = import_litellm()
        return self._litellm

    def prepare(self, model: str | None = None) -> None:
        """Imports litellm (seconds, once) before the first call, outside its timeout.

        The embedded model's calls do not go through litellm: they do not wait for it.
        """
        if model is None or not model.startswith(LOCAL_PREFIX):
            self.litellm  # noqa: B018

    def check_model(self, model: str) -> None:
        """Raises ConfigError when litellm cannot route `model` (e.g. a typo in the provider)."""
        if model.startswith(LOCAL_PREFIX):
            from .local import resolve_model_path

            resolve_model_path(model[len(LOCAL_PREFIX) :])
            return
        try:
            self.litellm.get_llm_provider(model)
        except Exception as exc:  # litellm raises BadRequestError with a long text
            raise ConfigError(
                f"unknown model {model!r}: use a litellm model string such as 'gpt-4o-mini' or "
                "'ollama/qwen2.5:7b', or 'local/smollm2' for the embedded model"
            ) from exc

    def missing_key(self, model: str, extra: dict[str, Any]) -> str | None:
        """The environment variable `model` needs for its key and does not have (None: nothing missing).

        The embedded model, a model given a key (`api_key_env`, `extra`) or an endpoint of its own
        (`api_base`: a self-hosted server may take no key) needs none; otherwise litellm says which
        variables its provider reads. Only key and token variables count (Ollama's base URL has a default).
        """
        if model.startswith(LOCAL_PREFIX) or extra.get("api_key") or extra.get("api_base"):
            return None
        try:
            found = self.litellm.validate_environment(model)
        except Exception:  # a provider litellm cannot check: the first call will say
            return None
        missing = [k for k in found.get("missing_keys") or [] if k.endswith(("_KEY", "_TOKEN"))]
        return missing[0] if missing else None

    def can_embed(self, model: str) -> bool:
        """Whether `model` embeds texts without an embedding model of its own: the embedded model."""
        return model.startswith(LOCAL_PREFIX)

    def can_score(self, model: str) -> bool:
        """Whether `model` can score a given answer (`Request.score_target`): the embedded model."""
        return model.startswith(LOCAL_PREFIX)

    def close(self) -> None:
        """Closes the HTTP sessions of the fast path (each also closes when its loop ends)."""
        if self._http is not None:
            self._http.close()

    async def send(self, request: Request) -> Response:
        extra = request.extra
        route = extra.get("transport", "auto")
        if route not in ("auto", "litellm"):
            raise ConfigError(f"unknown transport {route!r} in extra: use 'litellm' or 'auto'")
        if route == "auto" and request.model.startswith(OPENAI_PREFIX) and extra.get("api_base"):
            if self._http is None:
                from .openai_http import OpenAIHTTPTransport

                self._http = OpenAIHTTPTransport()
            return await self._http.send(request)
        if request.embed:
            return await (self._local_embed(request) if request.model.startswith(LOCAL_PREFIX) else self._embed(request))
        if request.score_target is not None:
            if not request.model.startswith(LOCAL_PREFIX):
                raise ConfigError(
                    f"scoring an answer by its log-probability needs the embedded model (local/...), not "
                    f"{request.model}: use the task's metric for this level"
                )
            return await self._local_score(request)
        if request.model.startswith(LOCAL_PREFIX) and route == "auto":
            return await self._local(request)
        litellm = self.litellm
        kwargs = litellm_arguments(request, litellm)
        if request.model.startswith(LOCAL_PREFIX):
            # A missing GGUF file is the user's mistake, not a provider failure to retry.
            from .local import resolve_model_path

            resolve_model_path(request.model[len(LOCAL_PREFIX) :])
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            # litellm wraps what the local provider raises (llama-cpp-python missing, a prompt
            # longer than the context) in an APIConnectionError with status 500, which would be
            # retried; surface our own error, which says whether retrying can help.
            ours = _our_error_in_chain(exc)
            if ours is not None:
                raise ours from None
            raise
        text = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        # litellm has already priced the response and named the provider (in _hidden_params);
        # asking again (completion_cost, get_llm_provider) doubled its per-call CPU cost.
        hidden = getattr(response, "_hidden_params", None) or {}
        provider = hidden.get("custom_llm_provider") or self._provider(request.model)
        if provider == "local":
            cost = 0.0
        elif "response_cost" in hidden:
            cost = float(hidden.get("response_cost") or 0.0)  # None: no known price
        else:
            try:
                cost = float(litellm.completion_cost(completion_response=response) or 0.0)
            except Exception:  # unknown price: count tokens, not dollars
                cost = 0.0
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        details = getattr(usage, "completion_tokens_details", None)
        reasoning = int(getattr(details, "reasoning_tokens", 0) or 0) if details is not None else 0
        if reasoning > completion_tokens:
            # Most providers count reasoning inside completion tokens; one that reports them
            # apart still spent them.
            completion_tokens += reasoning
        return Response(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=completion_tokens,
            cost=cost,
            provider=provider,
            reasoning_tokens=reasoning,
        )

    async def _local_score(self, request: Request) -> Response:
        """The mean log-probability per token of `request.score_target`, as the response's text."""
        from .likelihood import score_local
        from .local import PROVIDER, resolve_model_path

        name = request.model[len(LOCAL_PREFIX) :]
        resolve_model_path(name)
        raw = await asyncio.to_thread(score_local, name, request.messages, request.score_target or "", self.local)
        return Response(
            text=repr(raw["logprob"]), prompt_tokens=raw["prompt_tokens"] + raw["target_tokens"], provider=PROVIDER
        )

    async def _local_embed(self, request: Request) -> Response:
        """The embedded model's embedding of the request's text, as a JSON list."""
        from .embedding import embed_local
        from .local import PROVIDER

        raw = await asyncio.to_thread(embed_local, request.model[len(LOCAL_PREFIX) :], request.messages[-1]["content"], self.local)
        return Response(text=json.dumps(raw["vector"]), prompt_tokens=raw["tokens"], provider=PROVIDER)

    async def _embed(self, request: Request) -> Response:
        """A provider's embedding through litellm (its key and endpoint as for a completion)."""
        kwargs = {k: v for k, v in request.extra.items() if k in _EMBEDDING_ARGUMENTS}
        try:
            response = await self.litellm.aembedding(
                model=request.model, input=[request.messages[-1]["content"]], timeout=request.timeout, **kwargs)
        except Exception as exc:
            ours = _our_error_in_chain(exc)
            if ours is not None:
                raise ours from None
            raise
        item = response.data[0]
        vector = item["embedding"] if isinstance(item, dict) else item.embedding
        usage = getattr(response, "usage", None)
        hidden = getattr(response, "_hidden_params", None) or {}
        return Response(
            text=json.dumps([float(x) for x in vector]), prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            cost=float(hidden.get("response_cost") or 0.0), provider=hidden.get("custom_llm_provider") or self._provider(request.model),
        )

    async def _local(self, request: Request) -> Response:
        """The embedded model, straight to its pool: litellm's wrapping costs ~6 ms a call."""
        from .local import PROVIDER, complete_local, resolve_model_path

        name = request.model[len(LOCAL_PREFIX) :]
        resolve_model_path(name)  # a missing file: the user's mistake, not a failure to retry
        params = {
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "stop": request.stop,
            "response_format": request.response_format,
            "top_p": request.extra.get("top_p"),
        }
        raw = await asyncio.to_thread(complete_local, name, request.messages, params, self.local)
        usage = raw.get("usage") or {}
        return Response(
            text=raw["choices"][0]["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0) or 0),
            completion_tokens=int(usage.get("completion_tokens", 0) or 0),
            cost=0.0,
            provider=PROVIDER,
        )

    def estimate_cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars for these token counts at litellm's price of `model` (0 when it has none)."""
        if model.startswith(LOCAL_PREFIX) or not known_price(self.litellm, model):
            return 0.0
        try:
            prompt_cost, completion_cost = self.litellm.cost_per_token(
                model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception:
            return 0.0
        return float(prompt_cost + completion_cost)

    def price_known(self, model: str) -> bool:
        """Whether dollars can be counted for `model` (litellm prices it, or it is the embedded one)."""
        if model.startswith(LOCAL_PREFIX):
            return True
        return known_price(self.litellm, model)

    def _provider(self, model: str) -> str:
        provider = self._providers.get(model)
        if provider is None:
            try:
                provider = self.litellm.get_llm_provider(model)[1]
            except Exception:
                provider = model.split("/", 1)[0] if "/" in model else ""
            self._providers[model] = provider
        return provider


def _our_error_in_chain(exc: BaseException) -> ConfigError | LLMError | None:
    """The first ConfigError or LLMError among `exc` and its causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (ConfigError, LLMError)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def classify(exc: BaseException, model: str) -> LLMError:
    """Turns any provider exception into an LLMError that says whether to retry."""
    if isinstance(exc, LLMError):
        return exc
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = None
    provider = getattr(exc, "llm_provider", "") or (model.split("/", 1)[0] if "/" in model else "")
    name = type(exc).__name__
    reason = _reason(exc)
    if "Authentication" in name or _CREDENTIALS.search(reason):
        status = status if status in (401, 403) else 401  # no key, or a key refused: retrying cannot help
    timeout_like = isinstance(exc, TimeoutError) or "Timeout" in name or "APIConnectionError" in name
    retryable = status not in (401, 403) and (
        timeout_like or status in (408, 409, 429) or (status is not None and status >= 500)
    )
    # Scrubbed here, where every provider failure becomes ours: a provider that echoes the key in
    # its error body cannot leak it into a trace, an event, the store, a report or the terminal.
    return LLMError(
        scrub_text(reason), provider=provider, model=model, status=status, retryable=retryable,
        retry_after=retry_after(_headers(exc)),
    )


def _attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # httpx raises RuntimeError on .response when there is none
        return None


def _headers(exc: BaseException) -> Any:
    for source in (_attr(exc, "response"), exc):
        for name in ("headers", "litellm_response_headers"):
            headers = _attr(source, name)
            if headers:
                return headers
    return {}


# litellm prefixes messages with its class names: "litellm.RateLimitError: RateLimitError:
# OpenAIException - rate limited". Keep the provider's own words.
_PREFIX = re.compile(r"^(?:litellm\.)?\w+(?:Error|Exception|Timeout)(?::| -)\s*")


# What providers say when a key is missing or refused, whatever status their library gives it.
_CREDENTIALS = re.compile(r"missing credentials|api[_ ]?key|invalid x-api-key|incorrect api key|unauthori[sz]ed", re.I)
_REASON_LENGTH = 300


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0]
    while True:
        shorter = _PREFIX.sub("", first, count=1)
        if shorter == first or not shorter:
            break
        first = shorter
    if len(first) <= _REASON_LENGTH:
        return first
    cut = first[:_REASON_LENGTH].rsplit(" ", 1)[0]  # never mid-word
    return cut.rstrip(" ,;:") + " ..."
