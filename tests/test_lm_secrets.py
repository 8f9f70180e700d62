"""One secret scrubber: secret-named entries are dropped, secrets inside free text are masked,
and a provider that echoes the key in its error body leaks it nowhere (fast path and litellm)."""

from __future__ import annotations

import asyncio
import json

import pytest

from graphopt.cli import main
from graphopt.errors import LLMError
from graphopt.lm import LM, LevelConfig, LMConfig
from graphopt.replies import first_json_object
from graphopt.lm.secrets import scrub_text, strip_secrets
from graphopt.lm.transport import classify
from graphopt.store import strip_secrets as store_strip_secrets
from graphopt.testing import Failure, StubServer

KEY = "sk-echoed-SECRET-9f8e7d6c5b4a"


def test_strip_secrets_drops_credentials_at_any_depth_and_keeps_counts():
    value = {"api_key": "x1234567", "extra_headers": {"Authorization": "Bearer y"}, "max_tokens": 5, "n": [{"token": "t"}]}
    assert strip_secrets(value) == {"extra_headers": {}, "max_tokens": 5, "n": [{}]}
    assert store_strip_secrets is strip_secrets  # the store uses the same scrubber


def test_scrub_text_masks_environment_secrets_and_key_shapes():
    env = {"MY_SERVICE_TOKEN": "tok-abcdef-123", "HOME": "/root", "SHORT_KEY": "abc"}
    text = "denied for tok-abcdef-123, key sk-proj-abcdefgh12345678, Bearer eyJhbGciOi.x, url ?key=AIzaSyabc123def, home /root abc"
    out = scrub_text(text, env=env)
    assert "tok-abcdef-123" not in out and "sk-proj" not in out and "eyJhbGciOi" not in out and "AIzaSy" not in out
    assert out.endswith("home /root abc")  # not secrets: a non-secret variable, a too-short value
    assert scrub_text("POST https://bob:hunter22@proxy.example/v1 failed", env={}) == "POST https://bob:***@proxy.example/v1 failed"


def test_classify_scrubs_the_message_when_the_error_is_created(monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "acme-key-0123456789")

    class ProviderError(Exception):
        status_code = 401

    error = classify(ProviderError("Incorrect API key provided: acme-key-0123456789"), "acme/model")
    assert "acme-key-0123456789" not in str(error) and "***" in error.reason
    assert error.status == 401 and not error.retryable


@pytest.fixture
def echoing_server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with StubServer(reply="ok") as stub:
        yield stub


@pytest.mark.parametrize("route", ["auto", "litellm"])
def test_a_provider_echoing_the_key_in_its_error_body_never_leaks_it(echoing_server, route):
    echoing_server.fail(Failure(401, message=f"Incorrect API key provided: {KEY}. Find your key at ..."))
    level = LevelConfig(model="openai/stub-model", api_base=echoing_server.base_url, transport=route)
    lm = LM(LMConfig(program=level, max_retries=0), cache_dir=None)
    with pytest.raises(LLMError) as info:
        asyncio.run(lm.complete("program", [{"role": "user", "content": "hi"}]))
    assert info.value.status == 401
    assert KEY not in str(info.value) and KEY not in info.value.reason
    assert "Incorrect API key provided" in info.value.reason


def test_eval_against_an_echoing_provider_prints_and_writes_no_key(echoing_server, tmp_path, capsys):
    echoing_server.fail(*[Failure(401, message=f"Incorrect API key provided: {KEY}")] * 3)
    out = tmp_path / "eval.json"
    code = main([
        "eval", "--task", "word_sorting", "--difficulty", "easy", "--limit", "2", "--no-cache", "--out", str(out),
        "--set", "program.model=openai/stub-model", "--set", f"program.api_base={echoing_server.base_url}",
        "--set", "program.transport=litellm",
    ])
    printed = capsys.readouterr()
    assert code == 2  # a bad key stops the command with one line
    assert "Incorrect API key provided" in printed.err
    assert KEY not in printed.out + printed.err
    assert not out.exists()  # stopped before any result was written
    assert [p for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()] == []


def test_first_json_object_skips_prose_and_broken_braces():
    assert first_json_object('x {not json} then {"a": [1, {"b": 2}]} tail {"c": 3}') == {"a": [1, {"b": 2}]}
    assert first_json_object("```json\n{\"k\": \"v\"}\n```") == {"k": "v"}
    assert first_json_object("{ cut off") is None
    assert json.dumps(first_json_object('{"n": 1}')) == '{"n": 1}'


def test_a_password_in_an_api_base_reaches_no_store_event_or_report(tmp_path):
    from search_fakes import scripted

    from graphopt.graph.io import load_graph
    from graphopt.search.budgets import get_budget
    from graphopt.search.pipeline import run_search
    from graphopt.tasks import get_task
    from graphopt.testing import FakeModel
    from graphopt.viz.report import write_report

    password = "PASSw0rd-in-url-77"
    base = LMConfig(cache_dir=None)
    program = base.program.model_copy(update={"model": "openai/served", "api_base": f"http://me:{password}@127.0.0.1:9/v1"})
    lm = LM(base.model_copy(update={"program": program}), transport=FakeModel(fn=scripted))
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 6, 6), seed=3)
    plan = get_budget("tiny", val_limit=6, test_limit=6, minibatch=3, generations=0, seeds=("tgd",))
    asyncio.run(run_search(task, lm, plan, tmp_path / "run", [load_graph("tgd")]))
    write_report(tmp_path / "run")
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert files and not [p.name for p in files if password.encode() in p.read_bytes()]
    assert b"me:***@127.0.0.1" in (tmp_path / "run" / "run.sqlite").read_bytes()  # kept, masked
