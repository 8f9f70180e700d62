"""The usage ledger: per level and model, cache hits, cost, round trip, since()."""

import asyncio

import pytest

from graphopt.lm import LM, Ledger, LevelConfig, LMConfig, Usage

from graphopt.testing import FakeModel


def _msg(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _config() -> LMConfig:
    return LMConfig(
        program=LevelConfig(model="fake/small"),
        optimizer=LevelConfig(model="fake/big"),
        meta=LevelConfig(model="fake/big"),
    )


def test_rows_are_kept_per_level_and_per_model_with_cache_hits_and_cost(tmp_path):
    fake = FakeModel(default="a b", cost_per_token=0.001, latency=0.02)  # 2 prompt words + 2 reply words
    lm = LM(_config(), transport=fake, cache_dir=tmp_path)

    async def main():
        await lm.complete("program", _msg("p one"))
        await lm.complete("program", _msg("p one"))  # cache hit
        await lm.complete("program", _msg("p two"))
        await lm.complete("optimizer", _msg("o one"))
        await lm.complete("meta", _msg("m one"))

    asyncio.run(main())
    rows = lm.ledger.rows
    assert set(rows) == {("program", "fake/small"), ("optimizer", "fake/big"), ("meta", "fake/big")}
    program = rows[("program", "fake/small")]
    assert (program.calls, program.cache_hits, program.tokens) == (2, 1, 8)
    assert program.cost == pytest.approx(0.008)
    assert lm.ledger.level("optimizer").calls == 1
    total = lm.ledger.total()
    assert (total.calls, total.cache_hits, total.tokens) == (4, 1, 16)
    assert total.cost == pytest.approx(0.016)
    # Each of the 4 sent calls sleeps 0.02 s in the fake; the cache hit adds no round trip.
    assert 0.04 <= program.latency < 0.04 + 0.5
    assert 0.08 <= total.latency < 0.08 + 1.0
    assert rows[("optimizer", "fake/big")].latency >= 0.02 and rows[("meta", "fake/big")].latency >= 0.02


def test_to_dict_and_from_dict_round_trip_exactly():
    ledger = Ledger()
    ledger.record("program", "m1", Usage(calls=3, cache_hits=1, prompt_tokens=10, completion_tokens=5, cost=0.5))
    ledger.record("meta", "m2", Usage(calls=1, errors=2, latency=0.25))
    data = ledger.to_dict()
    assert data["levels"]["program"]["tokens"] == 15
    assert data["total"]["calls"] == 4
    again = Ledger.from_dict(data)
    assert again.rows == ledger.rows
    assert again.to_dict() == data


def test_since_gives_only_the_usage_after_a_snapshot():
    ledger = Ledger()
    ledger.record("program", "m", Usage(calls=2, prompt_tokens=4))
    before = ledger.snapshot()
    ledger.record("program", "m", Usage(calls=1, prompt_tokens=3, cache_hits=1))
    ledger.record("optimizer", "m", Usage(calls=1))
    diff = ledger.since(before)
    assert diff.rows[("program", "m")].calls == 1
    assert diff.rows[("program", "m")].prompt_tokens == 3
    assert diff.rows[("program", "m")].cache_hits == 1
    assert diff.rows[("optimizer", "m")].calls == 1
    assert ledger.since(ledger.snapshot()).rows == {}


def test_snapshot_is_independent_of_later_records():
    ledger = Ledger()
    ledger.record("program", "m", Usage(calls=1))
    snap = ledger.snapshot()
    ledger.record("program", "m", Usage(calls=1))
    assert snap.total().calls == 1
    assert ledger.total().calls == 2


def test_failed_attempts_are_counted_as_errors_not_calls():
    class Flaky(FakeModel):
        async def send(self, request):
            if self.calls == 0:
                self.requests.append(request)
                raise TimeoutError("slow")
            return await super().send(request)

    lm = LM(LMConfig(backoff_base=0.001), transport=Flaky(default="ok"), cache_dir=None)
    asyncio.run(lm.complete("program", _msg("x")))
    usage = lm.ledger.level("program")
    assert (usage.calls, usage.errors) == (1, 1)
