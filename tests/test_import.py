"""Importing graphopt is cheap and has no side effects; `python -m graphopt --help` is fast."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("litellm", "langgraph", "llama_cpp", "openai", "aiohttp")


def _fresh_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPHOPT_", "XDG_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), PYTHONDONTWRITEBYTECODE="1")
    return env


def _files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_import_is_fast_light_and_creates_no_files(tmp_path):
    env = _fresh_env(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "import graphopt, graphopt.lm, graphopt.program\n"
        "elapsed = time.perf_counter() - t\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'elapsed': elapsed, 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["elapsed"] < 1.0, report
    assert _files_under(tmp_path / "home") == []
    assert _files_under(cwd) == []


def test_help_is_fast_and_does_not_import_litellm(tmp_path):
    env = _fresh_env(tmp_path)
    code = (
        "import sys, runpy\n"
        "sys.argv = ['graphopt', '--help']\n"
        "try:\n"
        "    runpy.run_module('graphopt', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "else:\n"
        "    code = 0\n"
        "print('LITELLM_LOADED' if 'litellm' in sys.modules else 'LITELLM_ABSENT')\n"
        "sys.exit(code)\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: graphopt [OPTIONS] COMMAND")
    assert "LITELLM_ABSENT" in out.stdout
    assert elapsed < 3.0


def test_python_m_graphopt_help_exits_zero(tmp_path):
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "graphopt", "--help"], cwd=tmp_path, env=_fresh_env(tmp_path),
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "graphopt" in out.stdout
    assert time.perf_counter() - started < 3.0
