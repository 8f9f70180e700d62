"""The embedded model's text embeddings, for retrieval by meaning (`LM.embed` with "local/...").

One llama.cpp instance per model file is loaded with embeddings on beside the completion pool,
on first use; calls take turns on it. A model without pooling of its own (a chat model) gives a
vector per token: the text's vector is their mean. A 135M chat
model's mean-pooled states are a weak embedding, but an offline one: a capable setup names a
real embedding model instead (e.g. "openai/text-embedding-3-small").
"""

from __future__ import annotations

__all__ = ["embed_local"]

import threading
from pathlib import Path
from typing import Any

from .config import LocalConfig, local_config_from_env

_instances: dict[Path, tuple[Any, threading.Lock]] = {}
_guard = threading.Lock()


def _instance(path: Path, config: LocalConfig) -> tuple[Any, threading.Lock]:
    with _guard:
        found = _instances.get(path)
        if found is None:
            from .local import load_for_embeddings

            found = _instances[path] = (load_for_embeddings(path, config.n_ctx, config.threads or 1), threading.Lock())
        return found


def embed_local(name: str, text: str, config: LocalConfig | None = None) -> dict[str, Any]:
    """The embedding of `text` by the local model `name` ("smollm2" or a GGUF path).

    Returns:
        {"vector": list of floats, "tokens": the text's token count}.
    """
    from .local import resolve_model_path

    llama, lock = _instance(resolve_model_path(name), config or local_config_from_env())
    with lock:
        tokens = len(llama.tokenize(text.encode(), add_bos=True))
        vector = llama.embed(text)
    if vector and isinstance(vector[0], list):  # one vector per token: mean-pool them
        vector = [sum(column) / len(vector) for column in zip(*vector)]
    return {"vector": [float(x) for x in vector], "tokens": tokens}
