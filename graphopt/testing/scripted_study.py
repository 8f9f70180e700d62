"""A small study on the scripted search model, as a process of its own (kill -9 and resume trials, benchmarks).

    python -m graphopt.testing.scripted_study OUT_DIR [--resume] [--latency S] [--parallel N] [--ray N]

`SCRIPTED_STUDY` is the study: two generated tasks, four methods, two seeds and a transfer row.
No response cache, so a resumed study can only skip work through its study store.
"""

from __future__ import annotations

__all__ = ["SCRIPTED_STUDY", "scripted_study", "scripted_config", "main"]

import argparse
import asyncio
import functools
from pathlib import Path

from ..lm import LevelConfig, LMConfig
from ..status import Status
from ..study import LocalCells, RayCells, StudySpec, StudyStore, run_study
from .fake import FakeModel
from .search_model import scripted_search

SCRIPTED_STUDY = {
    "name": "scripted",
    "tasks": [
        {"name": "word_sorting", "difficulty": "easy", "sizes": [10, 6, 8]},
        {"name": "dyck_languages", "difficulty": "easy", "sizes": [10, 6, 8]},
    ],
    "methods": [
        {"name": "zero-shot", "kind": "zero-shot"},
        {"name": "few-shot", "kind": "few-shot", "demos": 2},
        {"name": "tgd", "kind": "graph", "graph": "tgd"},
        {"name": "search", "kind": "search", "budget": "tiny",
         "settings": {"generations": 1, "children": 2, "val_limit": 4, "test_limit": 4, "minibatch": 2, "seeds": ["tgd", "fewshot"]}},
    ],
    "seeds": [0, 1],
    "baseline": "zero-shot",
    "loop": {"steps": 1, "minibatch": 2, "val_limit": 4, "test_limit": 8},
    "transfer": [{"method": "search", "source": "word_sorting", "target": "dyck_languages"}],
}


def scripted_study(**changes) -> StudySpec:
    """The scripted study with some top-level fields replaced."""
    return StudySpec.model_validate({**SCRIPTED_STUDY, **changes})


def scripted_config() -> LMConfig:
    level = LevelConfig(model="fake/scripted")
    return LMConfig(program=level, optimizer=level, meta=level, cache_dir=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A scripted study, for kill and resume trials and benchmarks.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--latency", type=float, default=0.01)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--ray", type=int, default=0, help="run the cells on a local Ray cluster of N workers")
    args = parser.parse_args(argv)
    study, config = scripted_study(), scripted_config()
    if args.ray:
        cells = RayCells(config, num_cpus=args.ray, transport_factory=functools.partial(FakeModel, fn=scripted_search, latency=args.latency))
    else:
        cells = LocalCells(config, FakeModel(fn=scripted_search, latency=args.latency), args.parallel)
    with StudyStore.in_dir(args.out_dir, study.name) as store:
        try:
            asyncio.run(run_study(study, store, cells, args.out_dir.resolve()))
        finally:
            cells.close()
        print(sum(1 for r in store.cells() if r.status == Status.done))


if __name__ == "__main__":
    main()
