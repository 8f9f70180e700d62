"""The pool of llama.cpp instances, on stand-in instances: parallel use, loading on demand, prefix routing."""

from __future__ import annotations

import threading
import time

from graphopt.lm.local_pool import LocalPool


class Stand:
    """A stand-in for one llama.cpp instance that records who used it, and when."""

    count = 0

    def __init__(self) -> None:
        Stand.count += 1
        self.name = f"i{Stand.count}"
        self.busy = False
        self.closed = False

    def close(self) -> None:
        self.closed = True


IN_FLIGHT = {"now": 0, "most": 0}
LOCK = threading.Lock()


def use(pool: LocalPool, prompt: str, seconds: float = 0.0) -> str:
    def fn(llama: Stand) -> str:
        assert not llama.busy, "an instance is used by two calls at once"
        llama.busy = True
        with LOCK:
            IN_FLIGHT["now"] += 1
            IN_FLIGHT["most"] = max(IN_FLIGHT["most"], IN_FLIGHT["now"])
        time.sleep(seconds)
        with LOCK:
            IN_FLIGHT["now"] -= 1
        llama.busy = False
        return llama.name

    return pool.run(prompt, fn)


def test_calls_run_in_parallel_on_distinct_instances_loaded_on_demand():
    pool = LocalPool(Stand, size=2)
    assert pool.loaded == 0
    names: list[str] = []
    IN_FLIGHT["most"] = 0
    threads = [threading.Thread(target=lambda: names.append(use(pool, "p", 0.2))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pool.loaded == 2 and len(set(names)) == 2
    assert IN_FLIGHT["most"] == 2  # two at a time: never more than the pool, never one by one


def test_a_call_goes_to_the_free_instance_holding_its_prefix():
    pool = LocalPool(Stand, size=2)
    pool.fill()
    gate = threading.Event()
    first: list[str] = []

    def hold(llama: Stand) -> str:
        gate.wait()
        return llama.name

    # Put program A's prompt on one instance and program B's on the other.
    threads = [
        threading.Thread(target=lambda p=p: first.append(pool.run(p, hold)))
        for p in ("SYSTEM A. example 1", "SYSTEM B. example 1")
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    gate.set()
    for thread in threads:
        thread.join()
    on_a = {use(pool, "SYSTEM A. example 2") for _ in range(3)}
    on_b = {use(pool, "SYSTEM B. example 9") for _ in range(3)}
    assert len(on_a) == 1 and len(on_b) == 1 and on_a != on_b


def test_close_closes_every_instance():
    pool = LocalPool(Stand, size=3)
    pool.fill()
    instances = [inst.llama for inst in pool._all]
    pool.close()
    assert len(instances) == 3 and all(llama.closed for llama in instances)
