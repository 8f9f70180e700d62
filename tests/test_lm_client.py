"""The LM client: levels, defaults, concurrency bounds, in-flight joins, errors."""

import asyncio

import pytest

from graphopt.errors import ConfigError, LLMError
from graphopt.lm import LM, Completion, LevelConfig, LMConfig
from graphopt.testing import FakeModel
from graphopt.lm.wire import Request, Response


class CountingModel(FakeModel):
    """A FakeModel that records how many calls were in flight at once."""

    def __init__(self, **kw):
        super().__init__(default="ok", **kw)
        self.in_flight = 0
        self.max_in_flight = 0

    async def send(self, request: Request) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super().send(request)
        finally:
            self.in_flight -= 1


def _msg(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_complete_returns_a_completion_with_usage():
    lm = LM(transport=FakeModel(default="one two"), cache_dir=None)
    result = asyncio.run(lm.complete("program", _msg("a b c")))
    assert result == Completion("one two", False, 3, 2)


def test_unknown_level_is_a_config_error():
    lm = LM(transport=FakeModel(default="x"), cache_dir=None)
    with pytest.raises(ConfigError, match="unknown level 'programme'"):
        asyncio.run(lm.complete("programme", _msg("x")))


def test_per_model_concurrency_bound_holds():
    fake = CountingModel(latency=0.03)
    lm = LM(LMConfig(program=LevelConfig(model="fake/m", concurrency=3)), transport=fake, cache_dir=None)

    async def main():
        await asyncio.gather(*(lm.complete("program", _msg(str(i))) for i in range(20)))

    asyncio.run(main())
    assert fake.calls == 20
    assert fake.max_in_flight == 3


def test_levels_sharing_a_model_share_its_bound():
    fake = CountingModel(latency=0.03)
    same = LevelConfig(model="fake/shared", concurrency=4)
    lm = LM(LMConfig(program=same, optimizer=same, meta=same), transport=fake, cache_dir=None)

    async def main():
        await asyncio.gather(
            *(lm.complete(level, _msg(f"{level} {i}")) for level in ("program", "optimizer", "meta") for i in range(8))
        )

    asyncio.run(main())
    assert fake.max_in_flight == 4


def test_different_models_have_separate_bounds():
    fake = CountingModel(latency=0.05)
    config = LMConfig(
        program=LevelConfig(model="fake/a", concurrency=2),
        optimizer=LevelConfig(model="fake/b", concurrency=2),
    )
    lm = LM(config, transport=fake, cache_dir=None)

    async def main():
        await asyncio.gather(*(lm.complete(lvl, _msg(f"{lvl}{i}")) for lvl in ("program", "optimizer") for i in range(6)))

    asyncio.run(main())
    assert fake.max_in_flight == 4


def test_level_defaults_fill_unset_parameters_and_caller_values_win():
    fake = FakeModel(default="x")
    config = LMConfig(program=LevelConfig(model="fake/m", temperature=0.3, max_tokens=11, seed=5, extra={"top_p": 0.5}))
    lm = LM(config, transport=fake, cache_dir=None)

    async def main():
        await lm.complete("program", _msg("defaults"))
        await lm.complete("program", _msg("caller"), temperature=0.0, max_tokens=3, seed=None, stop=["\n"])

    asyncio.run(main())
    first, second = fake.requests
    assert (first.model, first.temperature, first.max_tokens, first.seed, first.stop) == ("fake/m", 0.3, 11, 5, None)
    assert first.extra == {"top_p": 0.5}
    assert (second.temperature, second.max_tokens, second.seed, second.stop) == (0.0, 3, None, ["\n"])


def test_samples_at_temperature_above_zero_get_distinct_seeds():
    fake = FakeModel(default="x")
    lm = LM(LMConfig(program=LevelConfig(model="fake/m", seed=7)), transport=fake, cache_dir=None)

    async def main():
        for _ in range(3):
            await lm.complete("program", _msg("same"), temperature=1.0)

    asyncio.run(main())
    assert [r.seed for r in fake.requests] == [7, 8, 9]


def test_messages_are_copied_so_callers_cannot_change_a_sent_request():
    fake = FakeModel(default="x")
    lm = LM(transport=fake, cache_dir=None)
    messages = _msg("original")
    asyncio.run(lm.complete("program", messages))
    messages[0]["content"] = "changed"
    assert fake.requests[0].messages[0]["content"] == "original"


def test_non_retryable_error_is_raised_once_without_retry():
    class Refusing(FakeModel):
        async def send(self, request):
            self.requests.append(request)
            raise LLMError("bad request", provider="fake", status=400)

    fake = Refusing()
    lm = LM(transport=fake, cache_dir=None)
    with pytest.raises(LLMError) as info:
        asyncio.run(lm.complete("program", _msg("x")))
    assert info.value.status == 400 and not info.value.retryable
    assert fake.calls == 1


def test_config_error_from_the_transport_is_not_retried_or_wrapped():
    class Misconfigured(FakeModel):
        async def send(self, request):
            self.requests.append(request)
            raise ConfigError("GGUF file not found: /nope.gguf")

    fake = Misconfigured()
    with pytest.raises(ConfigError):
        asyncio.run(LM(transport=fake, cache_dir=None).complete("program", _msg("x")))
    assert fake.calls == 1


def test_check_models_asks_the_transport_for_every_level():
    seen = []

    class Checking(FakeModel):
        def check_model(self, model):
            seen.append(model)

    config = LMConfig().with_models(program="fake/p", optimizer="fake/o", meta=None, judge="fake/j")
    LM(config, transport=Checking(), cache_dir=None).check_models()
    assert seen == ["fake/p", "fake/o", config.meta.model, "fake/j"]


def test_one_client_serves_several_event_loops():
    lm = LM(LMConfig(program=LevelConfig(model="fake/m", concurrency=2)), transport=FakeModel(default="x"), cache_dir=None)
    for i in range(3):  # each asyncio.run is a new loop: semaphores must not leak across them
        assert asyncio.run(lm.complete("program", _msg(str(i)))).text == "x"
