"""Running graphopt's coroutines from synchronous code, inside a notebook too.

`asyncio.run` refuses to start under a running event loop (Jupyter, IPython, an async web app).
`run_sync` runs the coroutine there in a worker thread with its own loop, and with `asyncio.run`
elsewhere; inside a loop, `await` the coroutine instead when you can.

Example:
    >>> import asyncio
    >>> async def two():
    ...     return 2
    >>> run_sync(two())
    2
    >>> async def in_a_notebook():
    ...     return run_sync(two())  # a running loop: no "asyncio.run() cannot be called" error
    >>> asyncio.run(in_a_notebook())
    2
"""

from __future__ import annotations

__all__ = ["run_sync"]

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, whether or not an event loop is running in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    context = contextvars.copy_context()  # usage scopes and sample places carry over
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphopt-sync") as pool:
        return pool.submit(context.run, asyncio.run, coro).result()
