"""Retries through the real litellm path against the stub server: what is retried, how long
the client waits, and what a caller gets when a call fails for good."""

import asyncio
import time

import pytest

from graphopt.errors import LLMError
from graphopt.lm import LM, LevelConfig, LMConfig
from graphopt.testing import FakeModel
from graphopt.testing.stub_server import Failure, StubServer
from graphopt.lm.transport import classify

MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def server():
    from graphopt.lm.wire import import_litellm

    import_litellm()  # seconds, once: keep it out of the timed tests
    with StubServer(reply="fine") as stub:
        # litellm's first call sets up clients lazily (slow under load): keep it out of the
        # tests that time attempts against a 0.3 s timeout.
        asyncio.run(_lm(stub).complete("program", [{"role": "user", "content": "warm-up"}]))
        yield stub


@pytest.fixture
def stub(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")
    server.reset()
    yield server
    server.reset()


def _lm(stub: StubServer, *, timeout: float = 10.0, max_retries: int = 3, backoff_base: float = 0.01) -> LM:
    level = LevelConfig(model="openai/stub-model", timeout=timeout, extra={"api_base": stub.base_url})
    config = LMConfig(program=level, max_retries=max_retries, backoff_base=backoff_base)
    return LM(config, cache_dir=None)


def _gaps(stub: StubServer) -> list[float]:
    times = stub.received_at
    return [b - a for a, b in zip(times, times[1:])]


def test_429_with_retry_after_is_honoured_then_succeeds(stub):
    stub.fail(Failure(429, retry_after=0.2))
    lm = _lm(stub)
    result = asyncio.run(lm.complete("program", MSG))
    assert result.text == "fine"
    assert stub.statuses == [429, 200]
    assert _gaps(stub)[0] >= 0.2  # backoff_base alone would wait ~0.01 s
    usage = lm.ledger.level("program")
    assert (usage.calls, usage.errors) == (1, 1)


def test_503_is_retried_with_growing_backoff(stub):
    stub.fail(503, 503)
    lm = _lm(stub, backoff_base=0.05)
    assert asyncio.run(lm.complete("program", MSG)).text == "fine"
    assert stub.statuses == [503, 503, 200]
    first, second = _gaps(stub)
    assert first >= 0.025  # 0.05 s with jitter in [0.5, 1]
    assert second >= 0.05  # 0.10 s with jitter


def test_timeout_is_retried(stub):
    stub.fail(Failure(status=None, delay=1.5))  # answers, but too late
    lm = _lm(stub, timeout=0.3)
    started = time.perf_counter()
    assert asyncio.run(lm.complete("program", MSG)).text == "fine"
    assert time.perf_counter() - started < 1.5
    assert stub.calls == 2
    assert lm.ledger.level("program").errors == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "Incorrect API key provided"), (400, "Invalid value for 'temperature': must be <= 2")],
)
def test_client_errors_fail_at_once_with_provider_status_and_reason(stub, status, message):
    stub.fail(Failure(status, message=message))
    lm = _lm(stub)
    with pytest.raises(LLMError) as info:
        asyncio.run(lm.complete("program", MSG))
    error = info.value
    assert (error.status, error.provider, error.retryable) == (status, "openai", False)
    assert message in error.reason
    assert not error.reason.startswith("litellm.")  # litellm's class-name prefixes are cut
    assert error.model == "openai/stub-model"
    assert stub.calls == 1  # no retry
    assert f"status {status}" in str(error)


def test_retries_exhausted_raise_a_retryable_error(stub):
    stub.fail(500, 500, 500, 500)
    lm = _lm(stub, max_retries=2)
    with pytest.raises(LLMError) as info:
        asyncio.run(lm.complete("program", MSG))
    assert (info.value.status, info.value.retryable) == (500, True)
    assert stub.calls == 3  # the first attempt and two retries
    assert lm.ledger.level("program").errors == 3
    assert lm.ledger.level("program").calls == 0


def test_retry_after_is_capped_by_backoff_max():
    class SlowDown(FakeModel):
        async def send(self, request):
            self.requests.append(request)
            if self.calls == 1:
                raise LLMError("slow down", provider="fake", status=429, retryable=True, retry_after=60)
            return await super().send(request)

    lm = LM(LMConfig(backoff_max=0.05), transport=SlowDown(default="ok"), cache_dir=None)
    started = time.perf_counter()
    assert asyncio.run(lm.complete("program", MSG)).text == "ok"
    assert time.perf_counter() - started < 1.0


def test_classify_reads_retry_after_ms_and_marks_timeouts_retryable():
    class Response:
        headers = {"retry-after-ms": "250"}

    class RateLimited(Exception):
        status_code = 429
        llm_provider = "openai"
        response = Response()

    error = classify(RateLimited("rate limited"), "openai/x")
    assert (error.status, error.retryable, error.retry_after, error.provider) == (429, True, 0.25, "openai")
    timeout = classify(TimeoutError(), "ollama/qwen")
    assert timeout.retryable and timeout.provider == "ollama" and timeout.reason == "TimeoutError"


def test_a_call_abandoned_by_its_timeout_is_still_charged_as_an_estimate(stub):
    stub.fail(Failure(None, delay=1.0))
    level = LevelConfig(
        model="openai/stub-model", timeout=0.3, api_base=stub.base_url, max_tokens=40,
        input_price_per_million=1000, output_price_per_million=2000,
    )  # fmt: skip
    lm = LM(LMConfig(program=level, max_retries=0), cache_dir=None)
    prompt = [{"role": "user", "content": "x" * 400}]
    with pytest.raises(LLMError):
        asyncio.run(lm.complete("program", prompt))
    row = lm.ledger.rows[("program", "openai/stub-model (timed out, estimated)")]
    assert (row.prompt_tokens, row.completion_tokens, row.calls) == (100, 40, 0)
    assert row.cost == pytest.approx((100 * 1000 + 40 * 2000) / 1e6)
    assert lm.ledger.level("program").tokens == 140  # counted toward the level's caps
