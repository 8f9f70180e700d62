"""Provider parameters: only what a provider accepts reaches litellm's request (offline), reasoning
tokens are counted, and the cache key holds the resolved endpoint."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from graphopt.lm import LM, LevelConfig, LMConfig
from graphopt.lm.cache import request_key
from graphopt.lm.providers import resolved_endpoint
from graphopt.lm.transport import LiteLLMTransport
from graphopt.lm.wire import Request
from graphopt.testing import FakeModel

MSG = [{"role": "user", "content": "hi"}]


def _reply(completion_tokens=3, reasoning=0):
    details = SimpleNamespace(reasoning_tokens=reasoning) if reasoning else None
    usage = SimpleNamespace(prompt_tokens=5, completion_tokens=completion_tokens, completion_tokens_details=details)
    message = SimpleNamespace(content="fine")
    return SimpleNamespace(
        choices=[SimpleNamespace(message=message)], usage=usage, _hidden_params={"custom_llm_provider": "x", "response_cost": 0.0}
    )


@pytest.fixture
def sent(monkeypatch):
    """The keyword arguments each litellm.acompletion call got (litellm itself is not called)."""
    transport = LiteLLMTransport()
    calls: list[dict] = []

    async def fake_acompletion(**kwargs):
        calls.append(kwargs)
        return _reply()

    monkeypatch.setattr(transport.litellm, "acompletion", fake_acompletion)

    def send(model: str, **fields) -> dict:
        request = Request(model=model, messages=MSG, temperature=0.2, max_tokens=40, seed=3, stop=["\n"], **fields)
        asyncio.run(transport.send(request))
        return calls[-1]

    return send


def test_an_openai_chat_model_gets_every_sampling_parameter(sent):
    kwargs = sent("gpt-4o-mini")
    assert (kwargs["temperature"], kwargs["max_tokens"], kwargs["seed"], kwargs["stop"]) == (0.2, 40, 3, ["\n"])
    assert "max_completion_tokens" not in kwargs and kwargs["num_retries"] == 0


@pytest.mark.parametrize("model", ["o3-mini", "o1", "gpt-5-mini"])
def test_a_reasoning_model_gets_max_completion_tokens_and_no_temperature(sent, model):
    kwargs = sent(model)
    assert kwargs["max_completion_tokens"] == 40
    assert "temperature" not in kwargs and "max_tokens" not in kwargs


def test_an_anthropic_model_gets_no_seed(sent):
    kwargs = sent("anthropic/claude-3-5-sonnet-20241022")
    assert "seed" not in kwargs
    assert (kwargs["temperature"], kwargs["max_tokens"], kwargs["stop"]) == (0.2, 40, ["\n"])


def test_an_ollama_model_gets_seed_and_temperature(sent):
    kwargs = sent("ollama/qwen2.5:7b", extra={"api_base": "http://127.0.0.1:11434", "top_p": 0.9})
    assert (kwargs["seed"], kwargs["temperature"], kwargs["top_p"], kwargs["api_base"]) == (3, 0.2, 0.9, "http://127.0.0.1:11434")


def test_reasoning_tokens_reported_apart_are_counted(monkeypatch):
    transport = LiteLLMTransport()

    async def fake_acompletion(**kwargs):
        return _reply(completion_tokens=2, reasoning=30)

    monkeypatch.setattr(transport.litellm, "acompletion", fake_acompletion)
    response = asyncio.run(transport.send(Request(model="o3-mini", messages=MSG)))
    assert response.completion_tokens == 32 and response.reasoning_tokens == 30


def test_two_endpoints_with_the_same_model_name_never_share_a_cache_entry(tmp_path):
    def lm_for(base: str) -> tuple[LM, FakeModel]:
        fake = FakeModel(fn=lambda messages: f"from {base}")
        level = LevelConfig(model="openai/same-name", api_base=base)
        return LM(LMConfig(program=level), transport=fake, cache_dir=tmp_path), fake

    first, fake_a = lm_for("http://127.0.0.1:8001/v1")
    assert asyncio.run(first.complete("program", MSG)).text == "from http://127.0.0.1:8001/v1"
    first.close()
    second, fake_b = lm_for("http://127.0.0.1:8002/v1")
    result = asyncio.run(second.complete("program", MSG))
    assert (result.text, result.cached, fake_b.calls) == ("from http://127.0.0.1:8002/v1", False, 1)
    second.close()
    again, fake_c = lm_for("http://127.0.0.1:8001/v1")
    assert asyncio.run(again.complete("program", MSG)).cached and fake_c.calls == 0
    again.close()


def test_an_endpoint_set_in_the_environment_is_part_of_the_cache_key(monkeypatch):
    request = Request(model="openai/m", messages=MSG)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9001/v1")
    one = request_key(request.cache_fields())
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9002/v1")
    assert request_key(request.cache_fields()) != one
    assert resolved_endpoint("ollama/x", {}, {"OLLAMA_API_BASE": "http://h:1/"}) == "OLLAMA_API_BASE=http://h:1"
    assert resolved_endpoint("openai/x", {"api_base": "http://a/v1/"}) == "http://a/v1"


def test_sampling_parameters_and_response_format_change_the_key():
    base = Request(model="m", messages=MSG)
    keys = {
        request_key(Request(model="m", messages=MSG, **change).cache_fields())
        for change in ({}, {"temperature": 0.5}, {"max_tokens": 9}, {"seed": 1}, {"stop": ["x"]},
                       {"response_format": {"type": "json_object"}}, {"extra": {"top_p": 0.5}})
    }  # fmt: skip
    assert len(keys) == 7 and request_key(base.cache_fields()) in keys


@pytest.mark.parametrize(
    ("model", "sent", "absent"),
    [
        ("openai/gpt-4o-mini", {"temperature": 0.2, "max_tokens": 40, "seed": 3}, {"max_completion_tokens"}),
        ("openai/o3-mini", {"max_completion_tokens": 40}, {"temperature", "max_tokens"}),
    ],
)
def test_the_request_litellm_sends_holds_only_accepted_parameters(stub_server, model, sent, absent):
    """Through litellm's real OpenAI client to the stub server: the body on the wire."""
    level = LevelConfig(model=model, api_base=stub_server.base_url, transport="litellm", temperature=0.2, max_tokens=40, seed=3)
    lm = LM(LMConfig(program=level), cache_dir=None)
    assert asyncio.run(lm.complete("program", MSG)).text == "ok"
    (body,) = stub_server.requests
    assert {k: body.get(k) for k in sent} == sent
    assert not absent & body.keys()
