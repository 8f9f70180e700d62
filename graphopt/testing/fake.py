"""A scripted fake model for tests: replies from a list, a substring map, or a function.

Example:
    >>> fake = FakeModel(by_substring={"Sort": "apple banana"}, default="?")
    >>> import asyncio
    >>> from graphopt.lm.transport import Request
    >>> asyncio.run(fake.send(Request("fake", [{"role": "user", "content": "Sort: banana apple"}]))).text
    'apple banana'
"""

from __future__ import annotations

__all__ = ["FakeModel"]

import asyncio
import inspect
import json
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ConfigError
from ..lm.wire import Request, Response


class FakeModel:
    """A Transport that answers from a script and records every request it saw.

    Args:
        replies: answers given in order; with `cycle=True` the list repeats, else running out
            raises an error.
        by_substring: {substring: reply}; the first substring found in the prompt wins.
        fn: a function of the request's messages (or of the request, if it takes two arguments
            `(messages, request)`) returning the reply text.
        default: the reply when nothing else matches (None: raise).
        latency: seconds each call takes (asyncio sleep, so calls overlap).
        cost_per_token: dollars per token, to exercise dollar budgets.
        priced: whether its models count as priced (False: like a model litellm has no price for).
        logprob: a function of (messages, target) giving the mean log-probability of `target`
            as the reply (`LM.logprob`); None: the fake cannot score answers (ConfigError).
        embed: a function of a text giving its vector (`LM.embed`); None: the fake cannot
            embed (ConfigError).
    """

    def __init__(
        self,
        replies: Iterable[str] | None = None,
        *,
        by_substring: dict[str, str] | None = None,
        fn: Callable[..., str] | None = None,
        default: str | None = None,
        cycle: bool = False,
        latency: float = 0.0,
        cost_per_token: float = 0.0,
        priced: bool = True,
        logprob: Callable[[list, str], float] | None = None,
        embed: Callable[[str], list[float]] | None = None,
    ):
        self._replies = list(replies) if replies is not None else None
        self._iter = (itertools.cycle(self._replies) if cycle else iter(self._replies)) if self._replies else None
        self.by_substring = dict(by_substring or {})
        self.fn = fn
        self.default = default
        self.latency = latency
        self.cost_per_token = cost_per_token
        self.priced = priced
        self.logprob = logprob
        self.embed = embed
        self.requests: list[Request] = []

    @property
    def calls(self) -> int:
        return len(self.requests)

    def check_model(self, model: str) -> None:
        return None

    def price_known(self, model: str) -> bool:
        return self.priced

    def _reply(self, request: Request) -> str:
        prompt = "\n".join(m.get("content", "") for m in request.messages)
        if self.fn is not None:
            takes_request = len(inspect.signature(self.fn).parameters) >= 2
            return self.fn(request.messages, request) if takes_request else self.fn(request.messages)
        for needle, reply in self.by_substring.items():
            if needle in prompt:
                return reply
        if self._iter is not None:
            try:
                return next(self._iter)
            except StopIteration:
                pass
        if self.default is not None:
            return self.default
        raise ConfigError(f"FakeModel has no reply for prompt: {prompt[:80]!r}")

    async def send(self, request: Request) -> Response:
        self.requests.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        if request.embed:
            if self.embed is None:
                raise ConfigError("this fake model cannot embed texts: give it embed=")
            text = json.dumps([float(x) for x in self.embed(request.messages[-1]["content"])])
        elif request.score_target is not None:
            if self.logprob is None:
                raise ConfigError("this fake model cannot score answers: give it logprob=")
            text = repr(float(self.logprob(request.messages, request.score_target)))
        else:
            text = self._reply(request)
        prompt_tokens = sum(len(m.get("content", "").split()) for m in request.messages)
        completion_tokens = len(text.split())
        return Response(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=(prompt_tokens + completion_tokens) * self.cost_per_token,
            provider="fake",
        )

    def can_embed(self, model: str) -> bool:
        """Whether a level's own model embeds (`LM.embedding_model`): only when the fake was given `embed=`."""
        return self.embed is not None

    def can_score(self, model: str) -> bool:
        """Whether `LM.logprob` works: only when the fake was given `logprob=`."""
        return self.logprob is not None

    def kwargs_seen(self) -> list[dict[str, Any]]:
        return [r.__dict__ for r in self.requests]
