"""Parameters a caller sets reach the provider: proven on the JSON bodies the stub server
received through the real litellm path, and on the embedded model's output length."""

import asyncio

import pytest

from graphopt.lm import LM, LevelConfig, LMConfig
from graphopt.testing.stub_server import StubServer

MSG = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sort: pear apple"}]
SECRET = "sk-stub-SECRET-value-42"


@pytest.fixture(scope="module")
def server():
    with StubServer(reply=lambda body: f"echo {len(body['messages'])}") as stub:
        yield stub


@pytest.fixture
def stub(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")
    server.reset()
    return server


def _lm(stub: StubServer, **level) -> LM:
    extra = {"api_base": stub.base_url, **level.pop("extra", {})}
    return LM(LMConfig(program=LevelConfig(model="openai/stub-model", extra=extra, **level)), cache_dir=None)


def test_caller_parameters_reach_the_provider(stub):
    lm = _lm(stub)
    result = asyncio.run(
        lm.complete("program", MSG, temperature=0.7, max_tokens=17, seed=123, stop=["\n\n", "END"])
    )
    assert result.text == "echo 2"
    (body,) = stub.requests
    assert body["model"] == "stub-model"
    assert body["messages"] == MSG
    assert body["temperature"] == 0.7
    assert body["max_tokens"] == 17
    assert body["seed"] == 123
    assert body["stop"] == ["\n\n", "END"]


def test_level_defaults_reach_the_provider(stub):
    lm = _lm(stub, temperature=0.4, max_tokens=33, seed=9, extra={"top_p": 0.25})
    asyncio.run(lm.complete("program", MSG))
    (body,) = stub.requests
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"]) == (0.4, 33, 9, 0.25)
    assert "stop" not in body


def test_temperature_zero_and_no_seed_are_sent_as_given(stub):
    lm = _lm(stub, temperature=0.9, seed=4)
    asyncio.run(lm.complete("program", MSG, temperature=0.0, seed=None))
    (body,) = stub.requests
    assert body["temperature"] == 0.0
    assert "seed" not in body


def test_response_format_reaches_the_provider(stub):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    asyncio.run(_lm(stub).complete("program", MSG, response_format=fmt))
    assert stub.requests[0]["response_format"] == fmt


def test_api_key_in_extra_authenticates_but_is_not_in_the_body(stub):
    asyncio.run(_lm(stub, extra={"api_key": SECRET}).complete("program", MSG))
    assert SECRET not in repr(stub.requests[0])


def test_usage_from_the_provider_is_accounted(stub):
    lm = _lm(stub)
    result = asyncio.run(lm.complete("program", MSG))
    assert (result.prompt_tokens, result.completion_tokens) == (5, 2)  # words, as the stub counts
    assert lm.ledger.level("program").tokens == 7


@pytest.mark.integration
def test_local_max_tokens_limits_the_completion_length(tmp_path):
    lm = LM(LMConfig(), cache_dir=None)
    prompt = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]

    async def main():
        short = await lm.complete("program", prompt, max_tokens=3)
        longer = await lm.complete("program", prompt, max_tokens=10)
        return short, longer

    short, longer = asyncio.run(main())
    assert 0 < short.completion_tokens <= 3
    assert longer.completion_tokens > short.completion_tokens
    assert len(longer.text) > len(short.text)


def test_cost_of_a_priced_model_is_what_litellm_charges(stub):
    from graphopt.lm.wire import import_litellm

    level = LevelConfig(model="openai/gpt-4o-mini", extra={"api_base": stub.base_url})
    lm = LM(LMConfig(program=level), cache_dir=None)
    result = asyncio.run(lm.complete("program", MSG))
    expected = import_litellm().cost_per_token(
        model="gpt-4o-mini", prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens
    )
    assert lm.ledger.total().cost == pytest.approx(sum(expected))
    assert lm.ledger.total().cost > 0


def test_stub_server_answers_an_openai_body_and_holds_hundreds_in_flight():
    import time

    import aiohttp

    async def main(url: str):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def post(i: int):
                body = {"model": "stub-model", "messages": [{"role": "user", "content": f"q {i}"}]}
                async with session.post(f"{url}/chat/completions", json=body) as response:
                    return response.status, await response.json()

            return await asyncio.gather(*(post(i) for i in range(200)))

    with StubServer(reply="sorted words", latency=0.3) as stub:
        started = time.perf_counter()
        results = asyncio.run(main(stub.base_url))
        elapsed = time.perf_counter() - started
        assert stub.max_in_flight >= 100
    assert elapsed < 3.0  # 200 x 0.3 s one after another would take a minute
    status, body = results[0]
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "sorted words"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


def test_stub_server_error_bodies_are_openai_style():
    import json
    import urllib.error
    import urllib.request

    from graphopt.testing.stub_server import Failure

    with StubServer(failures=[Failure(429, retry_after=1.5, message="slow down")]) as stub:
        request = urllib.request.Request(
            f"{stub.base_url}/chat/completions", data=b'{"messages": []}', headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 429
        assert info.value.headers["retry-after"] == "1.5"
        error = json.loads(info.value.read())["error"]
        assert error["message"] == "slow down" and error["type"] == "rate_limit_error"
        with urllib.request.urlopen(request, timeout=5) as response:  # the queue is used up
            assert response.status == 200


def test_stub_server_runs_from_the_command_line():
    import subprocess
    import sys
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "graphopt.testing.stub_server", "--port", "0", "--latency-ms", "0", "--duration", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(
            f"{base_url}/chat/completions",
            data=b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(10)


def test_the_suite_lets_only_loopback_and_unix_sockets_connect():
    import socket

    import conftest

    if conftest.ALLOW_NETWORK:
        pytest.skip("GRAPHOPT_ALLOW_NETWORK=1")
    assert socket.socket.connect is conftest._guarded_connect
    assert conftest._allowed_address(socket.AF_INET, ("127.0.0.1", 80))
    assert conftest._allowed_address(socket.AF_INET6, ("::1", 80, 0, 0))
    assert conftest._allowed_address(socket.AF_UNIX, "/tmp/x.sock")
    assert not conftest._allowed_address(socket.AF_INET, ("192.0.2.1", 443))
    assert not conftest._is_loopback_host("api.openai.com")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(OSError, match="blocked"):
            sock.connect(("192.0.2.1", 443))  # refused by the guard before any packet is sent
