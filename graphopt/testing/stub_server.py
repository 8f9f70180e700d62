"""An OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It answers `POST /v1/chat/completions` (and `POST /v1/embeddings`, with a bag-of-words vector:
texts that share words are near) after a fixed latency (an asyncio sleep, so hundreds of
requests can be in flight), records every JSON body it receives (so a test can prove that a
parameter reached the provider), and can be scripted to fail first (429 with Retry-After, 5xx,
401, 400, or a hang longer than the client's timeout) for retry tests.

Route a client to it with model "openai/stub-model", `LevelConfig(extra={"api_base":
server.base_url})` and any value in `OPENAI_API_KEY`.

Example:
    >>> with StubServer(reply="hello", latency=0.01) as server:  # doctest: +SKIP
    ...     server.base_url
    'http://127.0.0.1:40123/v1'

From a shell: `python -m graphopt.testing.stub_server --port 8123 --latency-ms 100`.
"""

from __future__ import annotations

__all__ = ["Failure", "StubServer", "main"]

import argparse
import asyncio
import hashlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Reply = str | Callable[[dict[str, Any]], str]

EMBEDDING_SIZE = 32  # the stub's embedding vectors: one slot per word hash

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class Failure:
    """One scripted answer that is not a success.

    Attributes:
        status: the HTTP status to return (429, 500, 503, 401, 400, ...); None with `delay`
            means "answer normally, but only after `delay` seconds" (to trigger a client timeout).
        retry_after: the value of the Retry-After header, if any (seconds).
        message: the OpenAI-style error message.
        delay: seconds to wait before answering.
    """

    status: int | None = 500
    retry_after: float | None = None
    message: str = ""
    delay: float = 0.0


def _words(text: str) -> int:
    return len(text.split())


def _prompt_text(body: dict[str, Any]) -> str:
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


class StubServer:
    """A chat-completions server with a fixed latency, a scripted reply and scripted failures.

    Args:
        reply: the assistant text, or a function of the request body returning it.
        latency: seconds to wait before each successful answer.
        host: the address to bind; only loopback is sensible (the default).
        port: the port; 0 picks a free one (read it back from `.port` / `.base_url`).
        failures: answers to give first, in order, before succeeding (see `Failure`; a plain
            int is a status).
        record: keep every received body in `.requests` (turn off for long benchmarks).

    Use it as a context manager (it runs in a background thread with its own event loop), or
    `async with` inside a running loop, or call `start()`/`stop()`.
    """

    def __init__(
        self,
        reply: Reply = "ok",
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        failures: Iterable[Failure | int] = (),
        record: bool = True,
    ):
        self.reply = reply
        self.latency = latency
        self.host = host
        self.port = port
        self.record = record
        self.requests: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._failures: deque[Failure] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.fail(*failures)

    # -- scripting -----------------------------------------------------------------------------
    def fail(self, *failures: Failure | int) -> StubServer:
        """Queues failures to return before the next successes (ints are statuses)."""
        with self._lock:
            for item in failures:
                self._failures.append(Failure(status=item) if isinstance(item, int) else item)
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def calls(self) -> int:
        return len(self.received_at)

    def reset(self) -> None:
        """Forgets recorded requests and pending failures."""
        with self._lock:
            self.requests.clear()
            self.received_at.clear()
            self.statuses.clear()
            self._failures.clear()
            self.max_in_flight = self.in_flight

    # -- the handler ---------------------------------------------------------------------------
    def _next_failure(self) -> Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.reply(body) if callable(self.reply) else self.reply
        prompt_tokens = max(1, _words(_prompt_text(body)))
        completion_tokens = max(1, _words(text))
        return {
            "id": f"chatcmpl-stub-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "stub-model",
            "system_fingerprint": "stub",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _embedding(self, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("input")
        text = text[0] if isinstance(text, list) else str(text or "")
        vector = [0.0] * EMBEDDING_SIZE
        for word in text.lower().split():
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % EMBEDDING_SIZE] += 1.0
        tokens = max(1, _words(text))
        return {
            "object": "list", "model": body.get("model") or "stub-model",
            "data": [{"object": "embedding", "index": 0, "embedding": vector}],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error(400, "request body is not JSON")
        with self._lock:
            self.received_at.append(time.perf_counter())
            if self.record:
                self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            failure = self._next_failure()
            if failure is not None:
                if failure.delay:
                    await asyncio.sleep(failure.delay)
                if failure.status is not None:
                    return self._error(failure.status, failure.message, failure.retry_after)
            if self.latency:
                await asyncio.sleep(self.latency)
            with self._lock:
                self.statuses.append(200)
            embeds = request.path.endswith("/embeddings")
            return web.json_response(self._embedding(body) if embeds else self._answer(body))
        finally:
            with self._lock:
                self.in_flight -= 1

    def _error(self, status: int, message: str = "", retry_after: float | None = None) -> web.Response:
        with self._lock:
            self.statuses.append(status)
        kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        error = {"message": message or f"stub error {status}", "type": kind, "param": None, "code": kind}
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        return web.json_response({"error": error}, status=status, headers=headers)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

    # -- lifecycle -----------------------------------------------------------------------------
    async def start_async(self) -> StubServer:
        """Starts serving on the running event loop."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/chat/completions", self._handle)
        app.router.add_post("/v1/embeddings", self._handle)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        sockets = site._server.sockets if site._server else ()  # the only way to read port 0 back
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._runner = runner
        return self

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StubServer:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    def start(self) -> StubServer:
        """Starts serving in a background thread with its own event loop; returns when ready."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop_async())
                loop.close()

        self._thread = threading.Thread(target=run, name="graphopt-stub-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("stub server did not start within 10 s")
        if errors:
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stops the background server (no-op when it was not started with `start`)."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Command line: serve until interrupted; prints the base URL on the first line."""
    parser = argparse.ArgumentParser(prog="python -m graphopt.testing.stub_server", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="delay before each answer")
    parser.add_argument("--reply", default="ok", help="the assistant text of every answer")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    server = StubServer(reply=args.reply, latency=args.latency_ms / 1000, port=args.port, record=False)

    async def serve() -> None:
        async with server:
            print(server.base_url, flush=True)
            if args.duration is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(args.duration)

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
