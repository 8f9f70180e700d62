"""The embedded model served on 127.0.0.1 by `python -m llama_cpp.server`, for the DSPy peers.

The server is started with the in-process settings of graphopt's embedded model (the same GGUF
file, context, one thread, batches of `graphopt.lm.local.CHUNK` tokens, logits of the last token
only), and every request carries greedy decoding (temperature 0, top_k 1, repeat_penalty 1.0:
the server's own default penalty is 1.1). `check_exact` then asks the server and the in-process
model the same prompts and reports any answer that differs, so a peer's training-time scores are
the ones graphopt's own evaluation would give.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from graphopt.lm import LM, LMConfig
from graphopt.lm.config import local_config_from_env
from graphopt.lm.local import CHUNK, smollm2_path

GREEDY = {"temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0}


@dataclass
class Server:
    """A running llama_cpp.server: its base URL (…/v1), process and log file."""

    url: str
    process: subprocess.Popen
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(port: int, model: Path | None = None) -> list[str]:
    """The `python -m llama_cpp.server` command line with the in-process model's settings."""
    local = local_config_from_env()
    threads = str(local.threads or 1)
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model or smollm2_path()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(local.n_ctx),
        "--n_batch", str(CHUNK), "--n_ubatch", str(CHUNK), "--n_threads", threads, "--n_threads_batch", threads,
        "--logits_all", "False", "--seed", "0", "--verbose", "False",
    ]  # fmt: skip


@contextlib.contextmanager
def serve(log_dir: Path, timeout: float = 120.0) -> Iterator[Server]:
    """Starts the server, waits until it answers, yields it, and stops it (always)."""
    port = _free_port()
    log = log_dir / "llama_server.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(server_command(port), stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    server = Server(f"http://127.0.0.1:{port}/v1", process, log)
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-400:]
            raise RuntimeError(f"llama_cpp.server exited with {server.process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(server.url + "/models", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server did not answer within {timeout:.0f}s (log: {server.log})")


def chat(url: str, body: dict, timeout: float = 300.0) -> dict:
    """One chat completion from the server (plain HTTP, no client library): the whole JSON reply."""
    request = urllib.request.Request(url + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return json.load(reply)


def ask_server(url: str, messages: list[dict], max_tokens: int, stop: list[str] | None) -> str:
    """One greedy chat completion from the server: its text."""
    body = {"model": "program", "messages": messages, "max_tokens": max_tokens, **GREEDY}
    if stop:
        body["stop"] = stop
    return chat(url, body, timeout=120)["choices"][0]["message"]["content"] or ""


async def check_exact(url: str, prompts: list[tuple[list[dict], int | None, list[str] | None]]) -> list[int]:
    """Indexes of the prompts whose server answer differs from the in-process one (empty: exact).

    Each prompt is (messages, the task's answer length or None, stop strings). In process it goes
    out as graphopt's evaluation sends it (None: the embedded model's default length); to the
    server as the peers' program LM sends it (None: 256). The prompts go to the server in order,
    so later ones reuse the server's cached prefix of earlier ones, as in a real evaluation.
    """
    lm = LM(LMConfig(cache_dir=None))
    try:
        differ = []
        for i, (messages, max_tokens, stop) in enumerate(prompts):
            local = await lm.complete("program", messages, stop=stop, max_tokens=max_tokens)
            if ask_server(url, messages, max_tokens or 256, stop) != local.text:
                differ.append(i)
        return differ
    finally:
        lm.close()
