"""The log-probability of a given answer under a prompt, on the embedded model.

A dense score: where exact match gives 0 to a program that almost answers, the mean log-probability
per token of the target answer still ranks it above one that is far off. llama.cpp evaluates the
chat prompt once, then the target's tokens one by one, reading the next-token distribution each
time; the instance's cache is cleared before and after, so generation elsewhere is unaffected.
"""

from __future__ import annotations

__all__ = ["score_local"]

import math
import threading
from typing import Any

from ..errors import LLMError
from .config import LocalConfig

_formatters: dict[int, Any] = {}
_lock = threading.Lock()


def _formatter(llama: Any) -> Any:
    """The model's own chat template (from its GGUF metadata), as llama-cpp-python applies it."""
    with _lock:
        found = _formatters.get(id(llama))
        if found is None:
            from llama_cpp import llama_chat_format

            model = llama._model
            found = _formatters[id(llama)] = llama_chat_format.Jinja2ChatFormatter(
                template=llama.metadata["tokenizer.chat_template"],
                eos_token=model.token_get_text(llama.token_eos()),
                bos_token=model.token_get_text(llama.token_bos()),
            )
        return found


def _log_softmax_at(logits: Any, token: int) -> float:
    import numpy as np

    values = np.asarray(logits, dtype=np.float64)
    top = float(values.max())
    return float(values[token]) - (top + math.log(float(np.exp(values - top).sum())))


def _score(llama: Any, messages: list[dict], target: str) -> tuple[float, int, int]:
    import numpy as np

    formatted = _formatter(llama)(messages=messages)
    prompt = llama.tokenize(formatted.prompt.encode(), add_bos=not formatted.added_special, special=True)
    answer = llama.tokenize(target.encode(), add_bos=False, special=False) or [llama.token_eos()]
    if len(prompt) + len(answer) > llama.n_ctx():
        raise LLMError(
            f"prompt and answer are {len(prompt) + len(answer)} tokens, more than the context "
            f"({llama.n_ctx()}); raise local.n_ctx or shorten the prompt", provider="local", status=400, retryable=False,
        )
    llama.reset()
    try:
        llama.eval(prompt)
        total = 0.0
        for token in answer:
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
            total += _log_softmax_at(logits, token)
            llama.eval([token])
    finally:
        llama.reset()
    return total / len(answer), len(prompt), len(answer)


def score_local(model: str, messages: list[dict], target: str, config: LocalConfig | None = None) -> dict[str, Any]:
    """Mean log-probability per token of `target` as the assistant's reply to `messages`.

    Returns:
        {"logprob": float, "prompt_tokens": int, "target_tokens": int}.
    """
    from .local import LocalModels, _prompt_text, resolve_model_path

    pool = LocalModels.pool(resolve_model_path(model), config)
    logprob, prompt_tokens, target_tokens = pool.run(_prompt_text(messages), lambda llama: _score(llama, messages, target))
    return {"logprob": logprob, "prompt_tokens": prompt_tokens, "target_tokens": target_tokens}
