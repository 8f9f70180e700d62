"""FakeModel: the scripted model unit tests run on."""

import asyncio
import time

import pytest

from graphopt.errors import ConfigError
from graphopt.lm import LM
from graphopt.testing import FakeModel
from graphopt.lm.wire import Request


def _req(text: str, **kw) -> Request:
    return Request("fake", [{"role": "user", "content": text}], **kw)


def _send(fake: FakeModel, text: str, **kw) -> str:
    return asyncio.run(fake.send(_req(text, **kw))).text


def test_replies_are_given_in_order_then_default():
    fake = FakeModel(["a", "b"], default="z")
    assert [_send(fake, "q") for _ in range(4)] == ["a", "b", "z", "z"]


def test_replies_cycle_when_asked():
    fake = FakeModel(["a", "b"], cycle=True)
    assert [_send(fake, "q") for _ in range(5)] == ["a", "b", "a", "b", "a"]


def test_running_out_of_replies_raises_config_error_naming_the_prompt():
    fake = FakeModel(["a"])
    _send(fake, "first")
    with pytest.raises(ConfigError, match="second"):
        _send(fake, "second")


def test_first_matching_substring_wins_over_the_reply_list():
    fake = FakeModel(["listed"], by_substring={"Sort": "sorted", "Dyck": "closed"})
    assert _send(fake, "Dyck: ( [") == "closed"
    assert _send(fake, "Sort: b a") == "sorted"
    assert _send(fake, "other") == "listed"


def test_function_of_messages_or_of_messages_and_request():
    upper = FakeModel(fn=lambda messages: messages[-1]["content"].upper())
    assert _send(upper, "abc") == "ABC"
    with_request = FakeModel(fn=lambda messages, request: f"t={request.temperature}")
    assert _send(with_request, "x", temperature=0.5) == "t=0.5"


def test_records_requests_and_counts_tokens_and_cost():
    fake = FakeModel(default="two words", cost_per_token=0.01)
    response = asyncio.run(fake.send(_req("one two three", max_tokens=9)))
    assert fake.calls == 1
    assert fake.requests[0].max_tokens == 9
    assert fake.kwargs_seen()[0]["max_tokens"] == 9
    assert (response.prompt_tokens, response.completion_tokens) == (3, 2)
    assert response.cost == pytest.approx(0.05)
    assert response.provider == "fake"


def test_latency_overlaps_across_concurrent_calls():
    fake = FakeModel(default="x", latency=0.2)

    async def main():
        await asyncio.gather(*(fake.send(_req(str(i))) for i in range(10)))

    started = time.perf_counter()
    asyncio.run(main())
    assert time.perf_counter() - started < 1.0  # 10 x 0.2 s serially would be 2 s


def test_fake_model_drives_the_lm_client():
    lm = LM(transport=FakeModel(by_substring={"hi": "hello"}), cache_dir=None)
    assert asyncio.run(lm.complete("program", [{"role": "user", "content": "hi"}])).text == "hello"
