"""The LM client: per-level models with caching, accounting, budgets, retries and concurrency.

Example:
    >>> import asyncio
    >>> from graphopt.lm import LM
    >>> from graphopt.testing import FakeModel
    >>> lm = LM(transport=FakeModel(replies=["hello"]), cache_dir=None)
    >>> asyncio.run(lm.complete("program", [{"role": "user", "content": "hi"}])).text
    'hello'
"""

from __future__ import annotations

__all__ = ["LM", "Completion"]

import asyncio
import json
import sys
import random
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BudgetExceeded, ConfigError, LLMError
from .budget import Budget
from .cache import ResponseCache, request_key
from .config import DEFAULT_MAX_TOKENS, LEVELS, LMConfig
from .ledger import Ledger, Usage, record_in_scopes
from .places import current_place
from .transport import LiteLLMTransport, classify
from .wire import Request, Response, Transport

_UNSET: Any = object()
# The ledger row of calls abandoned by a timeout: "MODEL (timed out, estimated)".
ESTIMATED = " (timed out, estimated)"


@dataclass(frozen=True)
class Completion:
    text: str
    cached: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LM:
    """Sends chat requests for the levels (program, optimizer, meta, judge) and accounts for every one.

    Args:
        config: models and parameters per level (defaults: the embedded model everywhere).
        transport: where requests go; defaults to litellm. Tests pass a `FakeModel`.
        budget: caps on calls, tokens and dollars; hitting one raises `BudgetExceeded`.
        cache_dir: overrides `config.cache_dir`; None turns the cache off.
    """

    def __init__(
        self,
        config: LMConfig | None = None,
        *,
        transport: Transport | None = None,
        budget: Budget | None = None,
        cache_dir: Path | None = _UNSET,
    ):
        self.config = config or LMConfig()
        self.transport: Transport = transport or LiteLLMTransport(local=self.config.local)
        self.budget = budget or Budget()
        self.ledger = Ledger()
        # Usage of earlier sessions of the same run (set by a resumed search): counts toward caps.
        self.carried = Ledger()
        self.cache = ResponseCache(self.config.cache_dir if cache_dir is _UNSET else cache_dir)
        # Per event loop (a semaphore belongs to one loop) and per model; weak so that the
        # loops of finished asyncio.run() calls are not kept, nor their ids reused by mistake.
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary()
        )
        self._inflight: dict[str, asyncio.Future] = {}
        self._occurrences: dict[tuple[str, str], int] = {}
        self._pending: dict[str, int] = {}  # admitted, not finished: counted against call caps
        self._sending: dict[str, Usage] = {}  # gone out, not answered: their number and prompt tokens

    # -- configuration -------------------------------------------------------------------------
    def model(self, level: str) -> str:
        return self.config.level(level).model

    def embedding_model(self, level: str) -> str | None:
        """The model that embeds texts at `level`: its `embedding_model`, or else its own model where
        the transport says it can embed (a local GGUF model); None: no retrieval by meaning there."""
        cfg = self.config.level(level)
        if cfg.embedding_model:
            return cfg.embedding_model
        can_embed = getattr(self.transport, "can_embed", None)
        return cfg.model if can_embed is not None and can_embed(cfg.model) else None

    def can_score(self, level: str) -> bool:
        """Whether `logprob` works at `level` (the embedded model; a fake given `logprob=`)."""
        check = getattr(self.transport, "can_score", None)
        return bool(check and check(self.model(level)))

    def check_models(self) -> None:
        """Raises ConfigError if a level names a model no provider can serve (no call is made)."""
        check = getattr(self.transport, "check_model", None)
        if check is not None:
            for level in LEVELS:
                check(self.model(level))
                if self.config.level(level).embedding_model:
                    check(self.config.level(level).embedding_model)
        self.check_keys()

    def check_keys(self, levels: tuple[str, ...] = LEVELS) -> None:
        """Raises ConfigError naming the environment variable when a level's model has no key.

        Checked before anything runs, so a missing key stops a command at once, with the fix,
        instead of failing its first call. No call is made; nothing about the key is shown.
        """
        missing = getattr(self.transport, "missing_key", None)
        if missing is None:
            return
        for level in levels:
            cfg = self.config.level(level)
            for model in (cfg.model, cfg.embedding_model):
                var = missing(model, cfg.provider_extra()) if model else None
                if var:
                    raise ConfigError(
                        f"no API key for {model} (the {level} level): set {var} in the environment "
                        f"(export {var}=...), or give the level api_key_env in the settings file"
                    )

    def with_budget(self, budget: Budget) -> LM:
        """The same client (ledger, cache) under another budget."""
        self.budget = budget
        return self

    def _semaphore(self, model: str) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        per_model = self._semaphores.get(loop)
        if per_model is None:
            per_model = self._semaphores[loop] = {}
        sem = per_model.get(model)
        if sem is None:
            limit = max(
                (self.config.level(lvl).concurrency for lvl in LEVELS if self.model(lvl) == model),
                default=8,
            )
            sem = per_model[model] = asyncio.Semaphore(limit)
        return sem

    # -- the call ------------------------------------------------------------------------------
    async def complete(
        self,
        level: str,
        messages: list[dict[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = _UNSET,
        stop: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion at `level`.

        Identical requests at temperature 0 are answered once (from the cache, or by joining the
        call in flight). At temperature > 0 the n-th identical request at the same place (see
        `places`) is a separate sample with its own cache entry, so repeated sampling stays
        diverse while a rerun of the same work, concurrent or resumed, gets the same samples.

        Raises:
            BudgetExceeded: a cap was reached before the call.
            LLMError: the provider failed for good (after retries for retryable errors).
        """
        cfg = self.config.level(level)
        request = Request(
            model=cfg.model,
            messages=[dict(m) for m in messages],
            temperature=cfg.temperature if temperature is None else temperature,
            max_tokens=(cfg.max_tokens or DEFAULT_MAX_TOKENS) if max_tokens is None else max_tokens,
            seed=cfg.seed if seed is _UNSET else seed,
            stop=list(stop) if stop else None,
            response_format=response_format,
            timeout=cfg.timeout,
            extra=cfg.provider_extra(),
        )
        return await self._answer(level, request)

    async def logprob(self, level: str, messages: list[dict[str, str]], target: str) -> float:
        """The mean log-probability per token of `target` as the reply to `messages`, at `level`.

        A dense score for ranking prompts (the embedded model only): cached, accounted, capped and
        retried like a completion (its tokens are prompt tokens).

        Raises:
            ConfigError: the level's model cannot score a given answer.
            BudgetExceeded, LLMError: as `complete`.
        """
        cfg = self.config.level(level)
        request = Request(
            model=cfg.model, messages=[dict(m) for m in messages], temperature=0.0, max_tokens=1, seed=None,
            timeout=cfg.timeout, extra=cfg.provider_extra(), score_target=target,
        )
        return float((await self._answer(level, request)).text)

    async def embed(self, level: str, texts: list[str]) -> list[list[float]]:
        """The vectors of `texts` by the level's embedding model (`embedding_model`; retrieval by meaning).

        One request per text, cached, accounted and capped like a completion.

        Raises:
            ConfigError: the level has no embedding model, or it cannot embed.
            BudgetExceeded, LLMError: as `complete`.
        """
        cfg = self.config.level(level)
        model = self.embedding_model(level)
        if not model:
            raise ConfigError(
                f"retrieval by meaning needs an embedding model at the {level} level: set embedding_model under "
                f"[{level}] in graphopt.toml or --set {level}.embedding_model=MODEL (e.g. local/smollm2, "
                "openai/text-embedding-3-small), or retrieve by words (by: bm25)"
            )
        extra = cfg.provider_extra()
        answers = await asyncio.gather(*(
            self._answer(level, Request(model=model, messages=[{"role": "user", "content": text}], temperature=0.0,
                                        max_tokens=1, seed=None, timeout=cfg.timeout, extra=extra, embed=True))
            for text in texts
        ))
        return [json.loads(a.text) for a in answers]

    async def _answer(self, level: str, request: Request) -> Completion:
        """The request answered from the cache, by joining the same call in flight, or by the provider."""
        base_key = request_key(request.cache_fields())
        if request.temperature > 0:
            place = current_place()
            sample = self._occurrences.get((place, base_key), 0)
            self._occurrences[(place, base_key)] = sample + 1
            key = request_key({"request": base_key, "sample": sample, **({"place": place} if place else {})})
            if (sample or place) and request.seed is not None:
                # A provider that honours seeds would repeat itself; vary it per sample and place.
                offset = sample if not place else int(request_key({"place": place, "sample": sample})[:6], 16)
                request = Request(**{**request.__dict__, "seed": request.seed + offset})
        else:
            key = base_key

        cached = self.cache.get(key)
        if cached is not None:
            tokens = cached.get("prompt_tokens", 0) + cached.get("completion_tokens", 0)
            self._account(level, request.model, Usage(cache_hits=1, cached_tokens=tokens))
            return Completion(cached["text"], True, cached.get("prompt_tokens", 0), cached.get("completion_tokens", 0))

        joined = self._inflight.get(key)
        while joined is not None:
            try:
                response: Response = await asyncio.shield(joined)
            except asyncio.CancelledError:
                if not joined.cancelled():
                    raise  # this caller was cancelled
                # The caller that owned the call was cancelled, not this one: call ourselves
                # (or join whoever took over first).
                joined = self._inflight.get(key)
                continue
            tokens = response.prompt_tokens + response.completion_tokens
            self._account(level, request.model, Usage(cache_hits=1, cached_tokens=tokens))
            return Completion(response.text, True, response.prompt_tokens, response.completion_tokens)

        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            response = await self._send(level, request)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: joiners re-raise it themselves
            raise
        else:
            future.set_result(response)
            self.cache.put(key, response.to_dict())
        finally:
            self._inflight.pop(key, None)
        return Completion(response.text, False, response.prompt_tokens, response.completion_tokens)

    async def _send(self, level: str, request: Request) -> Response:
        self.budget.check(self.ledger, level, self._pending, self.carried)
        prepare = getattr(self.transport, "prepare", None)
        if prepare is not None:
            prepare(request.model)  # e.g. the litellm import: not part of the call's latency or timeout
        self._pending[level] = self._pending.get(level, 0) + 1
        sent: Usage | None = None
        try:
            async with self._semaphore(request.model):
                # Again now that the call may go out: calls queued behind the semaphore passed the
                # first check before the calls ahead of them had spent their tokens or dollars.
                spend = self.budget.caps_spend  # the estimate costs ledger sums and a price lookup per call
                self.budget.check(self.ledger, level, carried=self.carried, sending=self._in_flight() if spend else None)
                if spend:
                    sent = Usage(calls=1, prompt_tokens=_prompt_estimate(request))
                    self._sending.setdefault(level, Usage()).add(sent)
                attempt = 0
                while True:
                    started = time.perf_counter()
                    try:
                        response = await _with_timeout(self.transport.send(request), request.timeout)
                    except (BudgetExceeded, ConfigError):
                        raise
                    except Exception as exc:
                        error = classify(exc, request.model)
                        if _timed_out(exc):
                            self._account_abandoned(level, request)
                        final = not error.retryable or attempt >= self.config.max_retries
                        # errors: failed attempts; failures: calls that failed for good.
                        self._account(level, request.model, Usage(errors=1, failures=int(final)))
                        if final:
                            raise error from exc
                        await asyncio.sleep(self._backoff(attempt, error))
                        attempt += 1
                        continue
                    latency = time.perf_counter() - started
                    break
        finally:
            self._pending[level] -= 1
            if sent is not None:
                left = self._sending[level]
                left.calls, left.prompt_tokens = left.calls - 1, left.prompt_tokens - sent.prompt_tokens
        response = response if request.embed else self._priced(level, response)  # the level's price is its chat model's
        self._account(
            level,
            request.model,
            Usage(
                calls=1,
                prompt_tokens=response.prompt_tokens,
                completion_tokens=response.completion_tokens,
                cost=response.cost,
                latency=latency,
            ),
        )
        return response

    def _account(self, level: str, model: str, usage: Usage) -> None:
        """Records one call (or cache hit, or failed attempt) in the ledger and the open usage scopes."""
        self.ledger.record(level, model, usage)
        record_in_scopes(level, model, usage)

    def _priced(self, level: str, response: Response) -> Response:
        """The response at the config's price, when the level sets one (it replaces litellm's)."""
        cfg = self.config.level(level)
        if not cfg.priced:
            return response
        cost = (
            response.prompt_tokens * cfg.input_price_per_million
            + response.completion_tokens * cfg.output_price_per_million
        ) / 1e6
        return Response(**{**response.__dict__, "cost": cost})

    def _in_flight(self) -> dict[str, Usage]:
        """What the calls gone out and not answered yet are expected to spend, per level: their
        prompts (characters / 4) and, each, the mean completion of the level's answered calls, at
        the level's price (where none is known, the answered calls' mean cost)."""
        expected = {}
        for level, out in self._sending.items():
            if not out.calls:
                continue
            answered = self.ledger.level(level)
            completion = out.calls * answered.completion_tokens // answered.calls if answered.calls else 0
            cost = self.dollars(level, out.prompt_tokens, completion)
            if not cost:  # no price here (or a free model): the answered calls' mean, 0 when free
                cost = out.calls * answered.cost / answered.calls if answered.calls else 0.0
            expected[level] = Usage(prompt_tokens=out.prompt_tokens, completion_tokens=completion, cost=cost)
        return expected

    def _account_abandoned(self, level: str, request: Request) -> None:
        """Charges a call abandoned by its timeout: the provider may still have done (and billed) it.

        Its tokens are estimated (prompt: characters / 4; completion: max_tokens, the most it could
        have produced) and go to a row of their own, "MODEL (timed out, estimated)", which counts
        toward the level's caps like any other.
        """
        prompt = _prompt_estimate(request)
        completion = request.max_tokens
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion, cost=self.dollars(level, prompt, completion) or 0.0)
        self._account(level, request.model + ESTIMATED, usage)

    def dollars(self, level: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What these tokens cost at `level`: the config's price, else litellm's; None when no price is known."""
        cfg = self.config.level(level)
        if cfg.priced:
            return (prompt_tokens * cfg.input_price_per_million + completion_tokens * cfg.output_price_per_million) / 1e6
        if not self.price_known(level):
            return None
        estimate = getattr(self.transport, "estimate_cost", None)
        return estimate(cfg.model, prompt_tokens, completion_tokens) if estimate is not None else 0.0

    def price_known(self, level: str) -> bool:
        """Whether dollars are counted at `level`: a price in the config, or one litellm knows."""
        cfg = self.config.level(level)
        if cfg.priced:
            return True
        known = getattr(self.transport, "price_known", None)
        return True if known is None else bool(known(cfg.model))

    def _backoff(self, attempt: int, error: LLMError) -> float:
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.config.backoff_max)
        delay = self.config.backoff_base * (2**attempt)
        return min(delay, self.config.backoff_max) * (0.5 + random.random() / 2)

    def close(self) -> None:
        """Closes the cache file and the transport's connections (call it outside the event loop)."""
        self.cache.close()
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()


def _prompt_estimate(request: Request) -> int:
    """A request's prompt tokens before the provider counts them: characters / 4."""
    return sum(len(str(m.get("content", ""))) for m in request.messages) // 4


def _timed_out(exc: BaseException) -> bool:
    """True when the call was abandoned by a timeout (ours, or the HTTP client's)."""
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, LLMError):
        return exc.reason.startswith("no answer within")
    return "Timeout" in type(exc).__name__


if sys.version_info >= (3, 11):

    async def _with_timeout(awaitable: Any, seconds: float) -> Any:
        # asyncio.timeout runs the call in the current task; wait_for (3.10) wraps it in a new one.
        async with asyncio.timeout(seconds):
            return await awaitable

else:  # pragma: no cover

    async def _with_timeout(awaitable: Any, seconds: float) -> Any:
        return await asyncio.wait_for(awaitable, seconds)
