"""`graphopt config show`, the --config/--set flags on model-calling commands, honest money."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphopt.cli import main
from graphopt.testing import StubServer

PREFIX = "Sort the following words alphabetically: List: "


def sort_reply(body: dict) -> str:
    return " ".join(sorted(body["messages"][-1]["content"].removeprefix(PREFIX).split()))


@pytest.fixture(scope="module")
def server():
    with StubServer(reply=sort_reply) as stub:
        yield stub


def test_config_show_prints_each_setting_with_its_source_and_masks_nothing_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "graphopt.toml").write_text(
        '[program]\nmodel = "openai/local-server"\napi_base = "http://127.0.0.1:8000/v1"\napi_key_env = "LOCAL_SERVER_KEY"\n'
    )
    monkeypatch.setenv("LOCAL_SERVER_KEY", "sk-never-printed-123456")
    monkeypatch.setenv("GRAPHOPT_OPTIMIZER_TEMPERATURE", "0.1")
    assert main(["config", "show", "--set", "program.timeout=9"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]] for line in out.splitlines() if line.count("│") == 4}
    assert rows["program.model"] == ["openai/local-server", "file graphopt.toml"]
    assert rows["program.timeout"] == ["9.0", "flag --set"]
    assert rows["optimizer.temperature"] == ["0.1", "env GRAPHOPT_OPTIMIZER_TEMPERATURE"]
    assert rows["meta.model"] == ["local/smollm2", "default"]
    assert rows["program.api_key_env"][0] == "LOCAL_SERVER_KEY (set)"
    assert rows["program endpoint"][0] == "http://127.0.0.1:8000/v1"
    assert rows["program price"][1] == "none"  # litellm does not price a self-hosted model
    assert "sk-never-printed" not in out


def test_a_typo_in_a_level_or_key_is_one_line_with_did_you_mean_and_exit_2(capsys):
    assert main(["config", "show", "--set", "progam.model=gpt-4o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --set: unknown level 'progam' in 'progam.model' (did you mean 'program'?)"]
    assert main(["eval", "--task", "word_sorting", "--set", "program.temprature=0"]) == 2
    assert "did you mean 'temperature'" in capsys.readouterr().err


def test_an_empty_program_model_is_refused(capsys):
    assert main(["eval", "--task", "word_sorting", "--program-model", ""]) == 2
    err = capsys.readouterr().err
    assert "program.model = '': empty" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_eval_reaches_a_server_through_the_config_file_and_warns_that_its_price_is_unknown(server, tmp_path, capsys):
    config = tmp_path / "server.toml"
    config.write_text(f'[program]\nmodel = "openai/stub-model"\napi_base = "{server.base_url}"\n')
    out = tmp_path / "eval.json"
    assert main(["eval", "--task", "word_sorting", "--difficulty", "easy", "--limit", "4", "--no-cache",
                 "--config", str(config), "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr()
    assert "accuracy 1.000" in printed.out
    assert "warning: no price known for the program model 'openai/stub-model'" in printed.err
    assert "program.input_price_per_million" in printed.err
    row = next(line for line in printed.out.splitlines() if "openai/stub-model" in line and "│" in line)
    assert "$?" in row
    assert json.loads(out.read_text())["accuracy"] == 1.0


def test_max_dollars_on_an_unpriced_model_is_refused_with_the_key_that_fixes_it(server, tmp_path, capsys):
    args = ["optimize", "--graph", "tgd", "--task", "word_sorting", "--difficulty", "easy", "--steps", "0",
            "--val-limit", "2", "--test-limit", "2", "--no-cache", "--out", str(tmp_path / "o"), "--max-dollars", "1",
            "--set", "program.model=openai/stub-model", "--set", f"program.api_base={server.base_url}"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--max-dollars cannot be enforced" in err and "program.input_price_per_million" in err
    assert len(err.splitlines()) == 1


def test_a_price_in_the_settings_is_what_the_ledger_charges(server, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--task", "word_sorting", "--difficulty", "easy", "--limit", "3", "--no-cache", "--out", str(out),
                 "--set", "program.model=openai/stub-model", "--set", f"program.api_base={server.base_url}",
                 "--set", "program.input_price_per_million=1000", "--set", "program.output_price_per_million=2000"]) == 0  # fmt: skip
    assert "warning" not in capsys.readouterr().err
    usage = json.loads(out.read_text())["usage"]["total"]
    expected = (usage["prompt_tokens"] * 1000 + usage["completion_tokens"] * 2000) / 1e6
    assert usage["cost"] == pytest.approx(expected) and usage["cost"] > 0


def test_config_show_says_which_key_each_level_needs_and_whether_it_is_set(monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["config", "show", "--program-model", "gpt-4o-mini"]) == 0
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in capsys.readouterr().out.splitlines()
            if line.count("│") >= 3}
    assert rows["program key"] == "OPENAI_API_KEY (NOT SET)"
    assert rows["optimizer key"] == "none needed (the embedded model)"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    assert main(["config", "show", "--program-model", "gpt-4o-mini"]) == 0
    out = capsys.readouterr().out
    assert "sk-secret-value-123" not in out and "OPENAI_API_KEY (NOT SET)" not in out


def test_a_misspelt_graphopt_variable_is_named_with_the_close_one(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHOPT_PROGRAM_MODLE", "gpt-4o-mini")
    assert main(["config", "show"]) == 0
    err = capsys.readouterr().err
    assert "warning: GRAPHOPT_PROGRAM_MODLE is set but is no graphopt setting (did you mean 'GRAPHOPT_PROGRAM_MODEL'" in err
