"""The response cache: one call per distinct request, samples at temperature > 0, reruns free."""

import asyncio
import sqlite3

import pytest

from graphopt.errors import LLMError
from graphopt.lm import LM, LevelConfig, LMConfig
from graphopt.testing import FakeModel
from graphopt.lm.cache import ResponseCache, request_key
from graphopt.lm.wire import Request
from graphopt.lm.secrets import is_secret_key

MSG = [{"role": "user", "content": "Sort: pear apple"}]


def _counter_fake(**kw) -> FakeModel:
    # A different reply per call, so a cached answer is recognisable.
    fake = FakeModel(fn=lambda messages: f"reply {fake.calls}", **kw)
    return fake


def test_identical_requests_make_one_model_call(tmp_path):
    fake = _counter_fake()
    lm = LM(transport=fake, cache_dir=tmp_path)

    async def main():
        first = await lm.complete("program", MSG, temperature=0)
        second = await lm.complete("program", MSG, temperature=0)
        return first, second

    first, second = asyncio.run(main())
    assert fake.calls == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.text == first.text
    assert lm.ledger.level("program").cache_hits == 1


def test_different_parameters_are_different_requests(tmp_path):
    fake = _counter_fake()
    lm = LM(transport=fake, cache_dir=tmp_path)

    async def main():
        await lm.complete("program", MSG, temperature=0, max_tokens=10)
        await lm.complete("program", MSG, temperature=0, max_tokens=20)
        await lm.complete("program", MSG, temperature=0, stop=["\n"])

    asyncio.run(main())
    assert fake.calls == 3


def test_temperature_above_zero_samples_are_separate_calls_with_distinct_keys(tmp_path):
    fake = _counter_fake()
    lm = LM(transport=fake, cache_dir=tmp_path)

    async def main():
        return [await lm.complete("program", MSG, temperature=0.8) for _ in range(3)]

    results = asyncio.run(main())
    assert fake.calls == 3
    assert [r.text for r in results] == ["reply 1", "reply 2", "reply 3"]
    assert not any(r.cached for r in results)
    with sqlite3.connect(tmp_path / "responses.sqlite") as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM responses")]
    assert len(set(keys)) == 3


def test_rerun_on_the_same_cache_dir_makes_no_calls_and_replays_samples_in_order(tmp_path):
    def work(lm: LM):
        async def main():
            greedy = await lm.complete("program", MSG, temperature=0)
            samples = [await lm.complete("program", MSG, temperature=0.7) for _ in range(3)]
            return [greedy.text] + [s.text for s in samples]

        return asyncio.run(main())

    first_fake = _counter_fake()
    first = work(LM(transport=first_fake, cache_dir=tmp_path))
    assert first_fake.calls == 4

    second_fake = _counter_fake()
    second_lm = LM(transport=second_fake, cache_dir=tmp_path)
    second = work(second_lm)
    assert second_fake.calls == 0
    assert second == first
    assert second_lm.ledger.total().calls == 0
    assert second_lm.ledger.total().cache_hits == 4


def test_cache_off_sends_every_call_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake = _counter_fake()
    lm = LM(transport=fake, cache_dir=None)

    async def main():
        for _ in range(3):
            await lm.complete("program", MSG, temperature=0)

    asyncio.run(main())
    assert fake.calls == 3
    assert list(tmp_path.iterdir()) == []


def test_concurrent_identical_temperature_zero_requests_share_one_call(tmp_path):
    fake = _counter_fake(latency=0.05)
    lm = LM(transport=fake, cache_dir=tmp_path)

    async def main():
        return await asyncio.gather(*(lm.complete("program", MSG, temperature=0) for _ in range(10)))

    results = asyncio.run(main())
    assert fake.calls == 1
    assert {r.text for r in results} == {"reply 1"}
    assert sum(not r.cached for r in results) == 1
    assert lm.ledger.level("program").cache_hits == 9


def test_concurrent_joiners_see_the_error_of_the_call_they_joined(tmp_path):
    class Failing(FakeModel):
        async def send(self, request):
            self.requests.append(request)
            await asyncio.sleep(0.05)
            raise LLMError("refused", provider="fake", status=400)

    fake = Failing()
    lm = LM(transport=fake, cache_dir=tmp_path)

    async def main():
        return await asyncio.gather(*(lm.complete("program", MSG) for _ in range(3)), return_exceptions=True)

    results = asyncio.run(main())
    assert fake.calls == 1
    assert all(isinstance(r, LLMError) and r.status == 400 for r in results)
    with pytest.raises(LLMError):  # nothing was cached: the next call tries again
        asyncio.run(lm.complete("program", MSG))
    assert fake.calls == 2


def test_nothing_is_created_until_the_first_write(tmp_path):
    cache = ResponseCache(tmp_path / "sub")
    assert cache.get("missing") is None
    assert not (tmp_path / "sub").exists()
    cache.put("k", {"text": "v"})
    assert cache.get("k") == {"text": "v"}
    cache.close()


def test_api_key_in_extra_never_reaches_the_cache_file(tmp_path):
    secret = "sk-SECRET-do-not-store-1234"
    config = LMConfig(
        program=LevelConfig(
            model="fake/m",
            extra={"api_key": secret, "extra_headers": {"Authorization": f"Bearer {secret}", "X-Trace": "t1"}},
        )
    )
    fake = FakeModel(default="ok")
    lm = LM(config, transport=fake, cache_dir=tmp_path)
    asyncio.run(lm.complete("program", MSG))
    lm.close()
    assert fake.requests[0].extra["api_key"] == secret  # the provider still gets it
    assert secret not in repr(fake.requests[0])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_cache_fields_drop_secret_like_keys_but_keep_parameters():
    request = Request(
        "m",
        MSG,
        extra={
            "api_key": "a",
            "aws_secret_access_key": "b",
            "access_token": "c",
            "vertex_credentials": "d",
            "api_base": "http://127.0.0.1:1/v1",
            "top_p": 0.9,
            "max_completion_tokens": 5,
            "extra_headers": {"Authorization": "Bearer e", "X-Id": "1"},
        },
    )
    extra = request.cache_fields()["extra"]
    assert extra == {
        "api_base": "http://127.0.0.1:1/v1",
        "top_p": 0.9,
        "max_completion_tokens": 5,
        "extra_headers": {"X-Id": "1"},
    }
    other_key = Request("m", MSG, extra={**request.extra, "api_key": "zzz"})
    assert request_key(request.cache_fields()) == request_key(other_key.cache_fields())
    assert is_secret_key("token") and is_secret_key("API_KEY") and not is_secret_key("max_tokens")


def test_level_config_dumps_and_reprs_leave_secrets_out():
    level = LevelConfig(model="openai/x", extra={"api_key": "sk-SECRET-9", "api_base": "http://127.0.0.1:9/v1"})
    assert level.extra["api_key"] == "sk-SECRET-9"  # still sent to the provider
    dumped = LMConfig(program=level).model_dump_json()
    assert "sk-SECRET-9" not in dumped and "127.0.0.1:9" in dumped
    assert "sk-SECRET-9" not in repr(level) and "sk-SECRET-9" not in str(LMConfig(program=level))


def test_joiners_make_the_call_themselves_when_the_owner_is_cancelled(tmp_path):
    fake = _counter_fake(latency=0.1)
    lm = LM(transport=fake, cache_dir=tmp_path)

    async def main():
        owner = asyncio.create_task(lm.complete("program", MSG))
        await asyncio.sleep(0.01)
        joiners = [asyncio.create_task(lm.complete("program", MSG)) for _ in range(3)]
        await asyncio.sleep(0.01)
        owner.cancel()
        results = await asyncio.gather(*joiners)
        return owner, results

    owner, results = asyncio.run(main())
    assert owner.cancelled()
    assert {r.text for r in results} == {"reply 2"}  # one joiner took over; the others joined it
    assert fake.calls == 2
