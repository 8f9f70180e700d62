"""The embedded model's text embeddings, for retrieval by meaning (`LM.embed` with "local/...").

The embedding pool of `LocalModels` (one llama.cpp instance with embeddings on, beside the
completion pool) gives a chat model's vector per token: the text's vector is their mean. A 135M
chat model's mean-pooled states are a weak embedding, but an offline one: a capable setup names a
real embedding model instead (e.g. "openai/text-embedding-3-small").
"""

from __future__ import annotations

__all__ = ["embed_local"]

from typing import Any

from .config import LocalConfig


def embed_local(name: str, text: str, config: LocalConfig | None = None) -> dict[str, Any]:
    """The embedding of `text` by the local model `name` ("smollm2" or a GGUF path).

    Returns:
        {"vector": list of floats, "tokens": the text's token count}.
    """
    from .local import LocalModels, resolve_model_path

    def embed(llama: Any) -> tuple[list, int]:
        return llama.embed(text), len(llama.tokenize(text.encode(), add_bos=True))

    vector, tokens = LocalModels.pool(resolve_model_path(name), config, embedding=True).run(text, embed)
    if vector and isinstance(vector[0], list):  # one vector per token: mean-pool them
        vector = [sum(column) / len(vector) for column in zip(*vector)]
    return {"vector": [float(x) for x in vector], "tokens": tokens}
