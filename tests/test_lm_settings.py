"""Settings: flags > environment > config file > defaults, each value's source, one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphopt.errors import ConfigError
from graphopt.lm.settings import SettingsError, parse_override, resolve_settings

NOWHERE = Path("/nonexistent-dir")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "graphopt.toml"
    path.write_text(text)
    return path


def test_precedence_is_flag_then_env_then_file_then_default(tmp_path):
    path = write(tmp_path, '[program]\nmodel = "openai/from-file"\ntemperature = 0.3\nmax_tokens = 50\ntimeout = 7\n')
    env = {"GRAPHOPT_PROGRAM_TEMPERATURE": "0.4", "GRAPHOPT_PROGRAM_MAX_TOKENS": "60"}
    s = resolve_settings(path, ["program.max_tokens=70"], {"program": "openai/from-flag"}, env=env, cwd=NOWHERE)
    p = s.config.program
    assert (p.model, p.temperature, p.max_tokens, p.timeout, p.concurrency) == ("openai/from-flag", 0.4, 70, 7.0, 8)
    assert s.sources["program.model"] == "flag --program-model"
    assert s.sources["program.max_tokens"] == "flag --set"
    assert s.sources["program.temperature"] == "env GRAPHOPT_PROGRAM_TEMPERATURE"
    assert s.sources["program.timeout"] == f"file {path}"
    assert s.sources["program.concurrency"] == "default"


def test_the_file_is_found_in_the_working_directory_or_through_graphopt_config(tmp_path):
    write(tmp_path, '[optimizer]\nmodel = "gpt-4o-mini"\n')
    assert resolve_settings(env={}, cwd=tmp_path).config.optimizer.model == "gpt-4o-mini"
    other = tmp_path / "other.toml"
    other.write_text('[meta]\nmodel = "gpt-4o"\n')
    s = resolve_settings(env={"GRAPHOPT_CONFIG": str(other)}, cwd=NOWHERE)
    assert s.config.meta.model == "gpt-4o" and s.file == other
    with pytest.raises(ConfigError, match="GRAPHOPT_CONFIG"):
        resolve_settings(env={"GRAPHOPT_CONFIG": str(tmp_path / "missing.toml")}, cwd=NOWHERE)


def test_every_problem_is_one_line_with_a_did_you_mean(tmp_path):
    path = write(tmp_path, '[progam]\nmodel = "x"\n[program]\napi_bse = "http://x"\ntemperature = 5\n')
    with pytest.raises(SettingsError) as info:
        resolve_settings(path, ["optimizer.concurency=2"], env={}, cwd=NOWHERE)
    problems = info.value.problems
    assert any("unknown level 'progam'" in p and "did you mean 'program'" in p for p in problems)
    assert any("unknown key 'api_bse'" in p and "'api_base'" in p for p in problems)
    assert any("unknown key 'concurency'" in p and "'concurrency'" in p for p in problems)
    assert any("program.temperature = 5" in p and "less than or equal to 2" in p for p in problems)
    assert all("\n" not in p for p in problems)


def test_keys_written_in_a_file_or_a_flag_are_refused_with_the_env_fix(tmp_path):
    path = write(tmp_path, '[program]\nmodel = "gpt-4o-mini"\n[program.extra]\napi_key = "sk-in-a-file-123456"\n')
    with pytest.raises(SettingsError, match=r"program.extra.api_key holds a secret.*api_key_env"):
        resolve_settings(path, env={}, cwd=NOWHERE)
    with pytest.raises(SettingsError, match="holds a secret"):
        resolve_settings(overrides=["program.api_key=sk-on-the-command-line"], env={}, cwd=NOWHERE)


def test_an_empty_model_is_refused_not_taken_as_the_embedded_one():
    with pytest.raises(SettingsError, match="program.model = .*: empty: name a model"):
        resolve_settings(models={"program": ""}, env={}, cwd=NOWHERE)
    with pytest.raises(SettingsError, match="empty"):
        resolve_settings(env={"GRAPHOPT_META_MODEL": " "}, cwd=NOWHERE)


def test_api_key_env_names_the_variable_and_the_key_reaches_only_the_request(monkeypatch):
    s = resolve_settings(overrides=["program.model=openai/m", "program.api_key_env=MY_SERVER_KEY"], env={}, cwd=NOWHERE)
    monkeypatch.setenv("MY_SERVER_KEY", "sk-from-env-123456")
    extra = s.config.program.provider_extra()
    assert extra["api_key"] == "sk-from-env-123456"
    assert "sk-from-env" not in repr(s.config) and "sk-from-env" not in s.config.model_dump_json()
    monkeypatch.delenv("MY_SERVER_KEY")
    with pytest.raises(ConfigError, match=r"\$MY_SERVER_KEY, which is not set"):
        s.config.program.provider_extra()


def test_extra_arguments_local_pool_and_cache_settings(tmp_path):
    path = write(tmp_path, 'cache_dir = "off"\nmax_retries = 1\n[program.extra]\ntop_p = 0.5\n[local]\ninstances = 3\n')
    s = resolve_settings(path, ["program.extra.top_k=7", "program.seed=none"], env={}, cwd=NOWHERE)
    assert s.config.program.extra == {"top_p": 0.5, "top_k": 7}
    assert s.config.program.seed is None
    assert (s.config.cache_dir, s.config.max_retries, s.config.local.instances) == (None, 1, 3)
    assert s.values["program.extra.top_k"] == 7 and s.sources["local.instances"] == f"file {path}"


def test_override_values_parse_as_toml_else_text():
    assert parse_override("program.temperature=0.25") == ("program.temperature", 0.25)
    assert parse_override("program.api_base=http://127.0.0.1:8000/v1") == ("program.api_base", "http://127.0.0.1:8000/v1")
    assert parse_override('program.extra.stop=["\\n"]') == ("program.extra.stop", ["\n"])
    with pytest.raises(ConfigError, match="LEVEL.KEY=VALUE"):
        parse_override("program.temperature")


def test_a_non_http_api_base_is_refused():
    with pytest.raises(SettingsError, match="http"):
        resolve_settings(overrides=["program.api_base=127.0.0.1:8000"], env={}, cwd=NOWHERE)


def test_invalid_toml_is_one_config_error(tmp_path):
    path = write(tmp_path, "[program\nmodel=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_settings(path, env={}, cwd=NOWHERE)


def test_every_config_example_in_the_readme_is_valid(tmp_path):
    import re

    readme = Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```toml\n(.*?)```", readme.read_text(), re.S)
    assert len(blocks) >= 4  # OpenAI, Anthropic, a self-hosted server, Ollama
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block)
        settings = resolve_settings(path, env={}, cwd=NOWHERE)
        assert settings.config.program.model != "local/smollm2"
