"""A missing or refused key stops at once, for every provider, naming the variable to set."""

from __future__ import annotations

import pytest

from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.lm.transport import LiteLLMTransport, classify


@pytest.mark.parametrize("model, var", [("openai/gpt-4o-mini", "OPENAI_API_KEY"),
                                         ("anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY")])
def test_a_missing_key_is_named_before_any_call(monkeypatch, model, var):
    monkeypatch.delenv(var, raising=False)
    lm = LM(LMConfig(cache_dir=None).with_models(program=model))
    with pytest.raises(ConfigError, match=f"set {var} in the environment"):
        lm.check_keys()
    monkeypatch.setenv(var, "sk-test-not-a-real-key")
    lm.check_keys()  # set: nothing to say


def test_no_key_is_asked_of_the_embedded_model_or_a_self_hosted_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    transport = LiteLLMTransport()
    assert transport.missing_key("local/smollm2", {}) is None
    assert transport.missing_key("openai/my-model", {"api_base": "http://127.0.0.1:8000/v1"}) is None
    assert transport.missing_key("openai/gpt-4o-mini", {}) == "OPENAI_API_KEY"


def test_the_key_of_a_levels_embedding_model_is_checked_too(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = LMConfig(cache_dir=None)
    program = config.program.model_copy(update={"embedding_model": "openai/text-embedding-3-small"})
    lm = LM(config.model_copy(update={"program": program}))  # the program model itself is the embedded one
    with pytest.raises(ConfigError, match="no API key for openai/text-embedding-3-small .*set OPENAI_API_KEY"):
        lm.check_keys()
    with pytest.raises(ConfigError, match="unknown model 'nosuchprovider/x'"):
        LM(config.model_copy(update={"program": program.model_copy(update={"embedding_model": "nosuchprovider/x"})})).check_models()


class MissingCredentials(Exception):
    """What the OpenAI library raises with no key: no status, so it looked like a server error."""


class Refused(Exception):
    status_code = 500


def test_missing_or_refused_credentials_are_fatal_not_retried():
    error = classify(MissingCredentials("Missing credentials. Please pass an `api_key`, or set the `OPENAI_API_KEY`"),
                     "openai/gpt-4o-mini")
    assert error.status == 401 and not error.retryable and error.fatal
    proxied = classify(Refused("Incorrect API key provided"), "openai/gpt-4o-mini")
    assert proxied.fatal
    assert classify(Refused("upstream overloaded"), "openai/gpt-4o-mini").retryable  # a real 500 still retries


def test_long_provider_messages_are_cut_between_words():
    text = "Missing Anthropic API Key - " + "a call is being made to anthropic but no key is set " * 12
    reason = str(classify(MissingCredentials(text), "anthropic/x"))
    body = reason.split("failed: ", 1)[1].split(" ...", 1)[0]
    assert reason.count(" ...") == 1 and text.startswith(body) and text[len(body)] == " "
