"""A lean transport for self-hosted OpenAI-compatible chat endpoints (vLLM, llama.cpp server...).

`LiteLLMTransport` routes a request here when its model starts with "openai/" and its `extra`
has an `api_base`, unless `extra["transport"] == "litellm"`. litellm's chat path costs about
6 ms of CPU per call, which caps one event loop near 160-200 calls/s; this path posts the JSON
itself on one shared aiohttp session (about 0.2 ms per call; httpx measured about 3 ms), so a
local server with many requests in flight is not held back by the client.

What it sends: `POST {api_base}/chat/completions` with model (the part after "openai/"),
messages, temperature, max_tokens, seed, stop, response_format and the other `extra`
parameters. `api_base`/`base_url` make the URL; `api_key` (else $OPENAI_API_KEY) becomes the
`Authorization: Bearer` header and `organization` the OpenAI-Organization header;
`extra_headers` are added as headers and `extra_body` is merged into the body; litellm-only
settings (num_retries, drop_params, ...) are dropped. Dollars come from litellm's price map,
read once per model (0 for a model it does not know). Failures are `LLMError`s saying whether
retrying can help; the client does the retrying.
"""

from __future__ import annotations

__all__ = ["OpenAIHTTPTransport", "PREFIX"]

import asyncio
import json
import os
import sys
from typing import Any

import aiohttp

from ..errors import ConfigError, LLMError
from .secrets import scrub_text
from .wire import Request, Response, import_litellm, retry_after

PREFIX = "openai/"
PROVIDER = "openai"

# Arguments that configure litellm itself or the connection; never part of the JSON body.
_NOT_IN_BODY = frozenset(
    {
        "api_base", "base_url", "api_key", "organization", "extra_headers", "headers", "extra_body",
        "transport", "timeout", "num_retries", "max_retries", "drop_params", "custom_llm_provider",
        "api_version", "metadata", "caching", "mock_response",
    }
)  # fmt: skip
# NonHttpUrlClientError (aiohttp >= 3.10) is not an InvalidURL.
_BAD_URL = tuple(getattr(aiohttp, name) for name in ("InvalidURL", "NonHttpUrlClientError") if hasattr(aiohttp, name))


class OpenAIHTTPTransport:
    """Sends chat requests straight to an OpenAI-compatible server (no retries: the client's job).

    One aiohttp session per event loop, created on the first call in that loop and closed when
    the loop is shut down by `asyncio.run` (or by `aclose()`/`close()`), so repeated
    `asyncio.run` calls neither share a session across loops nor leave one open.

    Args:
        connections: at most this many connections per event loop (the client's per-model
            concurrency is the real bound).
    """

    def __init__(self, connections: int = 256) -> None:
        self.connections = connections
        self._sessions: dict[asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, Any]] = {}
        self._prices: dict[str, tuple[float, float]] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    # -- the session ---------------------------------------------------------------------------
    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is not None and not entry[0].closed:
            return entry[0]
        for old in [k for k, (s, _) in list(self._sessions.items()) if s.closed or k.is_closed()]:
            del self._sessions[old]  # a session holds its loop: drop finished ones
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connections, limit_per_host=0),
            cookie_jar=aiohttp.DummyCookieJar(),  # an API needs none; a jar costs time per call
            skip_auto_headers=("User-Agent",),
        )
        # A loop finalizes the async generators still alive when it shuts down (asyncio.run
        # does): this one closes the session then, inside its own loop. Advance it to its
        # `yield` now, which registers it with the running loop.
        closer = self._closer(loop, session)
        self._sessions[loop] = (session, closer)
        try:
            closer.__anext__().send(None)
        except StopIteration:
            pass
        return session

    async def _closer(self, loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession):
        try:
            yield
        finally:
            await session.close()
            entry = self._sessions.get(loop)
            if entry is not None and entry[0] is session:
                del self._sessions[loop]

    async def aclose(self) -> None:
        """Closes the session of the running event loop."""
        entry = self._sessions.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].close()

    def close(self) -> None:
        """Closes every session whose loop is not running (a running loop's closes at its end)."""
        for loop, (session, closer) in list(self._sessions.items()):
            if loop.is_running():
                continue
            del self._sessions[loop]
            if not loop.is_closed() and not session.closed:
                loop.run_until_complete(closer.aclose())
            else:  # nothing can be awaited in a closed loop: drop the connections
                connector = session.connector
                session.detach()
                if connector is not None and not connector.closed:
                    connector._close()

    def prepare(self, model: str | None = None) -> None:
        """Loads litellm's price map (seconds, once) before the first call is timed."""
        if "litellm" not in sys.modules:
            import_litellm()

    # -- the call ------------------------------------------------------------------------------
    async def send(self, request: Request) -> Response:
        model = request.model[len(PREFIX) :] if request.model.startswith(PREFIX) else request.model
        extra = request.extra
        base = extra.get("api_base") or extra.get("base_url") or "https://api.openai.com/v1"
        if request.embed:  # the embeddings endpoint: one text in, its vector out
            body: dict[str, Any] = {"model": model, "input": request.messages[-1]["content"]}
        else:
            body = {
                "model": model,
                "messages": request.messages,
                "temperature": request.temperature,
                "max_tokens": request.max_tokens,
            }
            if request.seed is not None:
                body["seed"] = request.seed
            if request.stop:
                body["stop"] = request.stop
            if request.response_format is not None:
                body["response_format"] = request.response_format
        headers = {"Content-Type": "application/json"}
        for name, value in extra.items():
            if name not in _NOT_IN_BODY and not request.embed:  # sampling arguments: not for embeddings
                body[name] = value
        if extra.get("extra_body"):
            body.update(extra["extra_body"])
        key = extra.get("api_key") or os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if extra.get("organization"):
            headers["OpenAI-Organization"] = str(extra["organization"])
        for name in ("headers", "extra_headers"):
            if extra.get(name):
                headers.update({str(k): str(v) for k, v in extra[name].items()})

        timeout = self._timeouts.get(request.timeout)
        if timeout is None:
            timeout = self._timeouts[request.timeout] = aiohttp.ClientTimeout(total=request.timeout)
        url = base.rstrip("/") + ("/embeddings" if request.embed else "/chat/completions")
        try:
            payload = json.dumps(body).encode()
            async with self._session().post(url, data=payload, headers=headers, timeout=timeout) as reply:
                status = reply.status
                raw = await reply.read()
                if status >= 400:
                    raise _http_error(status, raw, reply.headers, request.model, key)
        except asyncio.TimeoutError:  # aiohttp's own timeout (the client's wait_for is outside)
            raise LLMError(
                f"no answer within {request.timeout:g} s", provider=PROVIDER, model=request.model, retryable=True
            ) from None
        except _BAD_URL:  # a mistake in the settings: retrying cannot help
            raise ConfigError(
                f"api_base {base!r} is not an http(s) URL: use e.g. 'http://127.0.0.1:8000/v1'"
            ) from None
        except aiohttp.ClientError as exc:
            reason = _hide(f"connection failed: {type(exc).__name__}: {exc}", key)
            raise LLMError(reason[:300], provider=PROVIDER, model=request.model, retryable=True) from None
        try:
            data = json.loads(raw)
            if request.embed:
                text = json.dumps([float(x) for x in data["data"][0]["embedding"]])
            else:
                text = data["choices"][0]["message"].get("content") or ""
            usage = data.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            # A proxy's HTML page or a cut-off body: usually passing, so worth another try.
            reason = _hide(f"unreadable response (status {status}): {raw[:120].decode(errors='replace')!r}", key)
            raise LLMError(reason, provider=PROVIDER, model=request.model, retryable=True) from None
        per_in, per_out = self._price(model)
        return Response(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=prompt_tokens * per_in + completion_tokens * per_out,
            provider=PROVIDER,
        )

    def _price(self, model: str) -> tuple[float, float]:
        """Dollars per prompt and per completion token from litellm's price map; 0 if unknown."""
        price = self._prices.get(model)
        if price is None:
            litellm = sys.modules.get("litellm") or import_litellm()
            entry = litellm.model_cost.get(model) or litellm.model_cost.get(PREFIX + model) or {}
            try:
                price = (float(entry.get("input_cost_per_token") or 0), float(entry.get("output_cost_per_token") or 0))
            except (TypeError, ValueError):
                price = (0.0, 0.0)
            self._prices[model] = price
        return price


def _hide(text: str, key: str | None) -> str:
    """`text` with the API key (and any other secret) masked, should a server or a library echo it."""
    return scrub_text(text, extra=(key,) if key else ())


def _http_error(status: int, raw: bytes, headers: Any, model: str, key: str | None) -> LLMError:
    """An LLMError from an HTTP error answer: the provider's own message, and whether to retry."""
    try:
        error = json.loads(raw).get("error")
        reason = str(error.get("message") if isinstance(error, dict) else error or "")
    except (ValueError, AttributeError):
        reason = raw.decode(errors="replace")
    lines = _hide(reason, key).strip().splitlines()
    return LLMError(
        lines[0][:300] if lines else f"HTTP {status}",
        provider=PROVIDER,
        model=model,
        status=status,
        retryable=status in (408, 409, 429) or status >= 500,
        retry_after=retry_after(headers),
    )
