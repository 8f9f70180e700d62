"""The fast path for self-hosted OpenAI-compatible servers, against the stub server: it is taken
(litellm is not called), parameters and the key reach the server, usage and dollars are
accounted, failures are retried or not as litellm's would be, and the key stays secret."""

import asyncio
import time

import pytest
from aiohttp import web

from graphopt.errors import ConfigError, LLMError
from graphopt.lm import LM, LevelConfig, LMConfig, Request
from graphopt.lm.openai_http import OpenAIHTTPTransport, _http_error
from graphopt.testing.stub_server import Failure, StubServer
from graphopt.lm.wire import import_litellm

MSG = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sort: pear apple"}]
SECRET = "sk-stub-SECRET-value-77"


class HeaderStub(StubServer):
    """The stub server, also recording each request's headers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers: list[dict[str, str]] = []

    async def _handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        return await super()._handle(request)


@pytest.fixture(scope="module")
def server():
    import_litellm()  # seconds, once: keep it out of the timed tests
    with HeaderStub(reply=lambda body: f"echo {len(body['messages'])}") as stub:
        yield stub


@pytest.fixture
def litellm_calls(monkeypatch):
    """Counts litellm.acompletion calls; they still go through."""
    litellm = import_litellm()
    original = litellm.acompletion
    calls = []

    async def counting(*args, **kwargs):
        calls.append(kwargs)
        return await original(*args, **kwargs)

    monkeypatch.setattr(litellm, "acompletion", counting)
    return calls


@pytest.fixture
def stub(server, monkeypatch, litellm_calls):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")
    server.reset()
    server.headers.clear()
    yield server
    server.reset()


def _lm(stub, *, model="openai/stub-model", timeout=10.0, max_retries=3, cache_dir=None, **level) -> LM:
    extra = {"api_base": stub.base_url, **level.pop("extra", {})}
    config = LMConfig(
        program=LevelConfig(model=model, timeout=timeout, extra=extra, **level),
        max_retries=max_retries,
        backoff_base=0.01,
    )
    return LM(config, cache_dir=cache_dir)


def _run(lm: LM, **kwargs):
    return asyncio.run(lm.complete("program", MSG, **kwargs))


def test_the_fast_path_is_taken_and_litellm_is_not_called(stub, litellm_calls):
    lm = _lm(stub)
    assert _run(lm).text == "echo 2"
    assert litellm_calls == []
    assert stub.calls == 1
    assert lm.ledger.total().calls == 1


def test_parameters_reach_the_server_and_settings_do_not(stub):
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
    lm = _lm(stub, extra={"top_p": 0.25, "api_key": SECRET, "extra_body": {"top_k": 5}})
    _run(lm, temperature=0.7, max_tokens=17, seed=123, stop=["\n\n", "END"], response_format=fmt)
    (body,) = stub.requests
    assert body == {
        "model": "stub-model",
        "messages": MSG,
        "temperature": 0.7,
        "max_tokens": 17,
        "seed": 123,
        "stop": ["\n\n", "END"],
        "response_format": fmt,
        "top_p": 0.25,
        "top_k": 5,
    }


def test_no_seed_and_no_stop_are_left_out(stub):
    _run(_lm(stub, seed=None))
    assert "seed" not in stub.requests[0] and "stop" not in stub.requests[0]


def test_usage_tokens_are_recorded_and_an_unknown_model_costs_nothing(stub):
    lm = _lm(stub)
    result = _run(lm)
    assert (result.prompt_tokens, result.completion_tokens) == (5, 2)  # words, as the stub counts
    usage = lm.ledger.level("program")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cost) == (5, 2, 0.0)


def test_a_priced_model_costs_what_litellm_charges(stub, litellm_calls):
    lm = _lm(stub, model="openai/gpt-4o-mini")
    result = _run(lm)
    expected = import_litellm().cost_per_token(
        model="gpt-4o-mini", prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens
    )
    assert lm.ledger.total().cost == pytest.approx(sum(expected)) and lm.ledger.total().cost > 0
    assert litellm_calls == []


def test_429_with_retry_after_is_honoured_then_succeeds(stub):
    stub.fail(Failure(429, retry_after=0.2))
    lm = _lm(stub)
    assert _run(lm).text == "echo 2"
    assert stub.statuses == [429, 200]
    assert stub.received_at[1] - stub.received_at[0] >= 0.2  # backoff_base alone waits ~0.01 s
    usage = lm.ledger.level("program")
    assert (usage.calls, usage.errors) == (1, 1)


def test_503_is_retried(stub):
    stub.fail(503, 503)
    assert _run(_lm(stub)).text == "echo 2"
    assert stub.statuses == [503, 503, 200]


def test_401_fails_at_once_without_retry(stub):
    stub.fail(Failure(401, message="Incorrect API key provided"))
    with pytest.raises(LLMError) as info:
        _run(_lm(stub))
    error = info.value
    assert (error.status, error.provider, error.retryable) == (401, "openai", False)
    assert error.reason == "Incorrect API key provided"
    assert error.model == "openai/stub-model" and "status 401" in str(error)
    assert stub.calls == 1


def test_retries_exhausted_raise_a_retryable_error(stub):
    stub.fail(500, 500, 500)
    lm = _lm(stub, max_retries=2)
    with pytest.raises(LLMError) as info:
        _run(lm)
    assert (info.value.status, info.value.retryable) == (500, True)
    assert stub.calls == 3 and lm.ledger.level("program").errors == 3


def test_timeout_is_retried(stub):
    stub.fail(Failure(status=None, delay=1.5))  # answers, but too late
    lm = _lm(stub, timeout=0.3)
    started = time.perf_counter()
    assert _run(lm).text == "echo 2"
    assert time.perf_counter() - started < 1.5
    assert stub.calls == 2 and lm.ledger.level("program").errors == 1


def test_a_refused_connection_is_retried_then_fails_as_retryable():
    transport = OpenAIHTTPTransport()
    request = Request("openai/m", MSG, timeout=5, extra={"api_base": "http://127.0.0.1:9/v1"})
    with pytest.raises(LLMError) as info:
        asyncio.run(transport.send(request))
    assert info.value.retryable and info.value.status is None and info.value.provider == "openai"
    level = LevelConfig(model="openai/m", extra={"api_base": "http://127.0.0.1:9/v1"})
    lm = LM(LMConfig(program=level, max_retries=1, backoff_base=0.01), cache_dir=None)
    with pytest.raises(LLMError):
        asyncio.run(lm.complete("program", MSG))
    assert lm.ledger.level("program").errors == 2  # the first attempt and one retry


def test_an_api_base_that_is_not_an_http_url_is_a_config_error():
    lm = LM(LMConfig(program=LevelConfig(model="openai/m", extra={"api_base": "localhost:8000/v1"})), cache_dir=None)
    with pytest.raises(ConfigError, match="not an http"):
        asyncio.run(lm.complete("program", MSG))
    assert lm.ledger.level("program").errors == 0  # not a provider failure, not retried


def test_transport_litellm_forces_litellm_and_is_not_sent(stub, litellm_calls):
    lm = _lm(stub, extra={"transport": "litellm"})
    assert _run(lm).text == "echo 2"
    assert len(litellm_calls) == 1 and "transport" not in litellm_calls[0]
    assert "transport" not in stub.requests[0]


def test_an_unknown_transport_is_a_config_error(stub):
    with pytest.raises(ConfigError, match="unknown transport"):
        _run(_lm(stub, extra={"transport": "grpc"}))
    assert stub.calls == 0


def test_other_models_still_go_through_litellm(stub, litellm_calls):
    # No api_base: a hosted provider, routed by litellm (which finds no network in tests).
    lm = LM(LMConfig(program=LevelConfig(model="openai/stub-model"), max_retries=0), cache_dir=None)
    with pytest.raises(LLMError):
        asyncio.run(lm.complete("program", MSG))
    assert len(litellm_calls) == 1 and stub.calls == 0


def test_api_key_is_sent_as_bearer_but_never_cached_nor_in_errors(stub, tmp_path):
    lm = _lm(stub, extra={"api_key": SECRET}, cache_dir=tmp_path)
    _run(lm)
    assert stub.headers[0]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(stub.requests[0])
    stub.fail(Failure(401, message=f"Incorrect API key provided: {SECRET}"))
    with pytest.raises(LLMError) as info:
        _run(lm, max_tokens=5)  # another request: not a cache hit
    assert SECRET not in str(info.value) and SECRET not in info.value.reason and SECRET not in repr(info.value.args)
    assert "Incorrect API key provided: ***" in info.value.reason
    lm.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(SECRET.encode() not in p.read_bytes() for p in files)


def test_api_key_from_the_environment(stub, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    _run(_lm(stub))
    assert stub.headers[0]["Authorization"] == "Bearer sk-from-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    _run(_lm(stub), max_tokens=3)
    assert "Authorization" not in stub.headers[1]  # self-hosted servers often need none


def test_retry_after_ms_and_non_json_error_bodies():
    error = _http_error(429, b'{"error": {"message": "slow down"}}', {"retry-after-ms": "250"}, "openai/m", None)
    assert (error.retryable, error.retry_after, error.reason) == (True, 0.25, "slow down")
    error = _http_error(502, b"<html>Bad Gateway</html>\n", {}, "openai/m", None)
    assert (error.retryable, error.reason) == (True, "<html>Bad Gateway</html>")
    assert _http_error(400, b"", {}, "openai/m", None).reason == "HTTP 400"
    assert not _http_error(404, b"{}", {}, "openai/m", None).retryable


def test_one_session_per_loop_closed_when_the_loop_ends(stub):
    lm = _lm(stub)
    for i in range(3):
        asyncio.run(lm.complete("program", MSG, max_tokens=10 + i))
        assert lm.transport._http._sessions == {}  # closed by asyncio.run's shutdown
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(lm.complete("program", MSG, max_tokens=50))
        (session, _), = lm.transport._http._sessions.values()
        lm.transport.close()
        assert session.closed and lm.transport._http._sessions == {}
    finally:
        loop.close()
    assert stub.calls == 4


def test_many_calls_share_connections(stub):
    lm = _lm(stub, concurrency=16)

    async def main():
        return await asyncio.gather(*(lm.complete("program", MSG, max_tokens=i + 1) for i in range(64)))

    assert {r.text for r in asyncio.run(main())} == {"echo 2"}
    assert stub.calls == 64 and stub.max_in_flight <= 16
