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
import contextlib
import contextvars
import signal
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, whether or not an event loop is running in this thread.

    Ctrl-C during the run also ends the embedded model's generations in progress at their next
    token, so the interrupted command stops at once instead of waiting for their answers.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with _interrupt_stops_generation():
            return asyncio.run(coro)
    context = contextvars.copy_context()  # usage scopes and sample places carry over
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphopt-sync") as pool:
        return pool.submit(context.run, asyncio.run, coro).result()


@contextlib.contextmanager
def _interrupt_stops_generation() -> Iterator[None]:
    """While it is open (main thread only), SIGINT first stops local generation, then interrupts."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    from .lm.local import INTERRUPTED

    def handler(signum: int, frame: Any) -> None:
        INTERRUPTED.set()
        signal.default_int_handler(signum, frame)

    INTERRUPTED.clear()
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)

