"""Demos retrieved per input: the nearest examples of a step's demo pool, by BM25.

A step with a `Retrieval` keeps a pool of worked examples and shows each input the `k` whose
inputs are lexically nearest to it (BM25 over words and single punctuation marks, so bracket
sequences and formulas have tokens too), as in kNN few-shot prompting. A pool example whose
input is the query itself is never shown (no leak when the program runs on its own train
examples). The index is built once per pool and kept for the process.

Example:
    >>> from graphopt.program import Demo
    >>> pool = (Demo(input="sort: pear apple", output="apple pear"),
    ...         Demo(input="close: ( [", output="] )"),
    ...         Demo(input="sort: fig kiwi", output="fig kiwi"))
    >>> [d.output for d in nearest(pool, "close: [ (", 1)]
    ['] )']
"""

from __future__ import annotations

__all__ = ["nearest", "TOKEN_PATTERN"]

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Demo

# Words, and every punctuation mark as a token of its own: "( [ ]" has three tokens.
TOKEN_PATTERN = r"(?u)\w+|[^\w\s]"
_CACHE_SIZE = 64
_indexes: OrderedDict[tuple[Demo, ...], Any] = OrderedDict()
_lock = threading.Lock()


def _tokens(texts: list[str]) -> Any:
    import bm25s

    return bm25s.tokenize(texts, token_pattern=TOKEN_PATTERN, stopwords=None, lower=True, show_progress=False)


def _index(pool: tuple[Demo, ...]) -> Any:
    with _lock:
        if pool in _indexes:
            _indexes.move_to_end(pool)
            return _indexes[pool]
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(_tokens([d.input for d in pool]), show_progress=False)
    with _lock:
        _indexes[pool] = retriever
        while len(_indexes) > _CACHE_SIZE:
            _indexes.popitem(last=False)
    return retriever


def nearest(pool: tuple[Demo, ...], query: str, k: int) -> list[Demo]:
    """The `k` pool demos nearest to `query`, nearest last (closest to the input it precedes).

    Ties in score keep pool order; a demo whose input equals `query` is skipped. With fewer
    than `k` other demos in the pool, all of them are returned.
    """
    others = [i for i, d in enumerate(pool) if d.input.strip() != query.strip()]
    if len(others) <= k:
        chosen = others
    else:
        retriever = _index(pool)
        # Ask for k more than needed: the query itself may be in the pool.
        want = min(len(pool), k + 1)
        ids, scores = retriever.retrieve(_tokens([query]), k=want, show_progress=False, n_threads=1)
        ranked = [(float(s), int(i)) for i, s in zip(ids[0], scores[0])]
        # Stable order for equal scores: pool order (bm25s does not promise one).
        ranked.sort(key=lambda item: (-item[0], item[1]))
        skip = set(range(len(pool))) - set(others)
        chosen = [i for _, i in ranked if i not in skip][:k]
    return [pool[i] for i in reversed(chosen)]
