"""Demos retrieved per input: the nearest examples of a step's demo pool, by BM25 or by vectors.

A step with a `Retrieval` keeps a pool of worked examples and shows each input the `k` whose
inputs are lexically nearest to it (BM25 over words and single punctuation marks, so bracket
sequences and formulas have tokens too), as in kNN few-shot prompting. A pool example whose
input is the query itself is never shown (no leak when the program runs on its own train
examples). The index is built once per pool and kept for the process. `nearest_by_vector` ranks
the pool by the cosine of embedding vectors instead (retrieval by meaning; the vectors come from
an embedding model, see `step_messages`), with the same rules.

Example:
    >>> from graphopt.program import Demo
    >>> pool = (Demo(input="sort: pear apple", output="apple pear"),
    ...         Demo(input="close: ( [", output="] )"),
    ...         Demo(input="sort: fig kiwi", output="fig kiwi"))
    >>> [d.output for d in nearest(pool, "close: [ (", 1)]
    ['] )']
"""

from __future__ import annotations

__all__ = ["nearest", "nearest_by_vector", "step_messages", "TOKEN_PATTERN"]

import asyncio
import math
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..lm import LM
    from .model import Demo, Step

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


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _ranked(pool: tuple[Demo, ...], units: list[list[float]], query: str, query_unit: list[float], k: int) -> list[Demo]:
    """`nearest`'s rules over unit vectors: the k highest cosines, ties in pool order, the query's own
    example skipped, nearest last."""
    others = [i for i, d in enumerate(pool) if d.input.strip() != query.strip()]
    cosine = {i: sum(a * b for a, b in zip(units[i], query_unit)) for i in others}
    chosen = sorted(others, key=lambda i: (-cosine[i], i))[:k]
    return [pool[i] for i in reversed(chosen)]


def nearest_by_vector(pool: tuple[Demo, ...], vectors: list[list[float]], query: str, query_vector: list[float], k: int) -> list[Demo]:
    """The `k` pool demos whose vectors have the highest cosine with `query_vector`, nearest last.

    The rules of `nearest`: ties keep pool order, a demo whose input equals `query` is skipped.
    """
    return _ranked(pool, [_unit(v) for v in vectors], query, _unit(query_vector), k)


# A pool's unit vectors, per client and (level, pool): embedded once per client, like a BM25 index
# once per process; one computation at a time per event loop, so the inputs of one evaluation,
# which all ask for the same pool at once, embed it once.
_pool_units: weakref.WeakKeyDictionary[LM, OrderedDict[tuple[str, tuple[Demo, ...]], list[list[float]]]] = (
    weakref.WeakKeyDictionary()
)
_pool_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def _units_of(pool: tuple[Demo, ...], lm: LM, level: str) -> list[list[float]]:
    loop = asyncio.get_running_loop()
    lock = _pool_locks.get(loop)
    if lock is None:
        lock = _pool_locks[loop] = asyncio.Lock()
    async with lock:
        with _lock:
            kept = _pool_units.get(lm)
            if kept is None:
                kept = _pool_units[lm] = OrderedDict()
            if (level, pool) in kept:
                kept.move_to_end((level, pool))
                return kept[(level, pool)]
        units = [_unit(v) for v in await lm.embed(level, [d.input for d in pool])]
        with _lock:
            kept[(level, pool)] = units
            while len(kept) > _CACHE_SIZE:
                kept.popitem(last=False)
        return units


async def step_messages(step: Step, step_input: str, lm: LM, level: str) -> list[dict[str, str]]:
    """`step.messages(step_input)`, the demos of a retrieval by meaning picked by the vectors the
    level's embedding model gives the pool's inputs (once per process) and this input (cached and
    accounted as a call of the program's: part of each answer's cost)."""
    retrieval = step.retrieve
    if retrieval is None or retrieval.by == "bm25":
        return step.messages(step_input)
    units = await _units_of(retrieval.pool, lm, level)
    (query,) = await lm.embed(level, [step_input])
    return step.messages(step_input, _ranked(retrieval.pool, units, step_input, _unit(query), retrieval.k))
