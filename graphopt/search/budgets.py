"""Search budgets: named presets (tiny, small, medium) and explicit caps, and a dry-run estimate.

A budget fixes every loop size of a search, so a search can be made as small as a test needs,
and caps spend per level; the dry run multiplies the loop sizes out before anything is spent.
"""

from __future__ import annotations

__all__ = ["SearchBudget", "PRESETS", "get_budget", "estimate", "embedded_minutes", "parse_level_caps"]

import math
from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import ConfigError, GraphoptError, did_you_mean
from ..lm.budget import Budget, Caps
from ..sizes import LoopSizes
from .cost import GENERIC, META_CALL_TOKENS, OPTIMIZER_CALL_TOKENS, StepShape, loop_calls, step_shape


class SearchBudget(BaseModel):
    """Loop sizes and spending caps of one search.

    Attributes:
        seeds: built-in graph names (or files) the search starts from.
        inner_steps, minibatch, val_limit: the inner loop run to score one graph.
        screen, promote: racing (loops of two or more steps). A batch of graphs (the seeds, a
            generation's children) is raced first: each gets its first inner-loop step scored
            on `screen` validation examples drawn for the race; a graph leaves only when a
            paired test shows it worse than the leader, and the screen grows while fewer than
            the 1 - `promote` share can be cut (see `policy.Race`). The others continue from
            their screen to the full inner loop and validation set. 0 turns racing off.
        screen_by: what the race compares: "metric" (the task's score per example) or
            "likelihood" (the mean log-probability of each example's target under the screen's
            program: a dense score that tells a 0.3 program from a 0 one on about a third of the
            examples on easy Dyck, `benchmarks/likelihood_race.py`; the embedded program model
            only, programs of one call; otherwise the race falls back to the metric). The
            winner is always chosen on the metric.
        prompt_iterations, prompt_candidates: meta prompt optimization of the leading
            `promote` share of the seed graphs (rounds go on only where edits gained).
        generations, population, children: structure search sizes.
        llm_share, crossover_share: fraction of children proposed by the meta model / by crossover.
        test_limit: test examples used for the final report (test data is read only then).
        calls, tokens, dollars: caps for the whole search (None: none), per level in `levels`.
        wall_time: seconds before the structure search stops (None: no limit).
        patience: generations without improvement before the structure search stops.
        meta_share: a fixed cap on the meta level's share of the run's tokens before the structure
            search asks the meta model for a graph (None, the default: no fixed share; the
            meta model's proposals go on while their measured gain per token pays, see
            `policy.MetaInvestment`, for any model).
        selection: how parents and survivors are picked: "frontier" (per-example Pareto),
            "tournament" (of 3, by mean score then cost) or "pareto" (score against cost).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    seeds: tuple[str, ...] = ("tgd", "tgd_select", "opro", "fewshot")
    inner_steps: int = Field(2, ge=1, le=1000)
    minibatch: int = Field(6, ge=1, le=10000)
    val_limit: int = Field(20, ge=1, le=100000)
    screen: int = Field(0, ge=0, le=100000)
    screen_by: str = "metric"
    promote: float = Field(0.5, gt=0, le=1)
    prompt_iterations: int = Field(1, ge=0, le=100)
    prompt_candidates: int = Field(1, ge=1, le=100)
    generations: int = Field(2, ge=0, le=10000)
    population: int = Field(4, ge=1, le=1000)
    children: int = Field(3, ge=1, le=1000)
    llm_share: float = Field(0.34, ge=0, le=1)
    crossover_share: float = Field(0.2, ge=0, le=1)
    test_limit: int = Field(50, ge=1, le=1000000)
    calls: int | None = None
    tokens: int | None = None
    dollars: float | None = None
    levels: dict[str, Caps] = Field(default_factory=dict)
    wall_time: float | None = None
    patience: int = Field(2, ge=1, le=1000)
    selection: str = "frontier"
    meta_share: float | None = Field(None, ge=0, le=1)

    @field_validator("screen_by")
    @classmethod
    def _known_screen_by(cls, value: str) -> str:
        names = ("metric", "likelihood")
        if value not in names:
            raise ValueError(f"unknown screen_by {value!r}{did_you_mean(value, names)}: use {', '.join(names)}")
        return value

    @field_validator("selection")
    @classmethod
    def _known_selection(cls, value: str) -> str:
        names = ("frontier", "tournament", "pareto")
        if value not in names:
            raise ValueError(f"unknown selection {value!r}{did_you_mean(value, names)}: use {', '.join(names)}")
        return value

    @property
    def loop(self) -> LoopSizes:
        """The inner loop each graph is scored with (its fields keep their names here: they are
        part of every stored run's identity)."""
        return LoopSizes(steps=self.inner_steps, minibatch=self.minibatch, val_limit=self.val_limit)

    def lm_budget(self) -> Budget:
        return Budget(total=Caps(calls=self.calls, tokens=self.tokens, dollars=self.dollars), levels=self.levels)


# Presets are sized in time on the embedded model with two cores: `embedded_minutes` of the dry-run
# estimate (each seed counted by what its nodes make and the demos its programs show, see
# `graphopt.search.cost`) is about 7 (tiny), 49 (small) and 200 (medium) minutes on easy Dyck;
# runs spend about 0.6-0.7 of the upper estimate (the cache, early stops, shorter answers): tiny
# measured 3 to 8 minutes.
PRESETS: dict[str, SearchBudget] = {
    "tiny": SearchBudget(
        name="tiny", seeds=("tgd", "fewshot", "fewshot_rs", "knn"), inner_steps=1, minibatch=4, val_limit=8,
        screen=0, prompt_iterations=1, prompt_candidates=1, generations=1, population=3, children=2,
        test_limit=20, wall_time=900,
    ),
    "small": SearchBudget(
        name="small", seeds=("tgd", "tgd_select", "opro", "fewshot", "fewshot_rs", "knn", "vote", "fewshot_format"),
        inner_steps=2, minibatch=6, val_limit=20,
        screen=6, prompt_iterations=1, prompt_candidates=2, generations=2, population=4, children=3,
        test_limit=50,
    ),
    "medium": SearchBudget(
        name="medium", seeds=("tgd", "tgd_select", "opro", "ensemble", "fewshot", "fewshot_rs", "knn", "vote", "fewshot_format"),
        inner_steps=2, minibatch=8, val_limit=40, screen=10, prompt_iterations=2, prompt_candidates=2, generations=6,
        population=6, children=4, test_limit=100,
    ),
}


def get_budget(name: str, **overrides) -> SearchBudget:
    """A preset by name with some fields replaced (None values are ignored)."""
    base = PRESETS.get(name)
    if base is None:
        raise ConfigError(f"unknown budget {name!r}{did_you_mean(name, PRESETS)}: use {', '.join(PRESETS)}")
    update = {k: v for k, v in overrides.items() if v is not None}
    try:
        return SearchBudget.model_validate({**base.model_dump(), **update})
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        if callable(errors) and errors():
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "budget"
            message = str(first.get("msg", exc)).removeprefix("Value error, ")
            raise ConfigError(f"bad budget setting {where}: {message}") from exc
        raise ConfigError(f"bad budget setting: {str(exc).splitlines()[0]}") from exc


def estimate(budget: SearchBudget, *, prompt_tokens: int, answer_tokens: int = 20) -> dict[str, dict[str, int]]:
    """Upper estimate of calls and tokens per level, before the response cache saves anything.

    Each seed graph's inner loop is counted by what its nodes make (`graphopt.search.cost`: a
    seed of 8 demo sets scores 8 on the minibatch); prompt edits of a seed cost what the seed
    does, and the structure search's children what a generic graph does.

    Args:
        budget: the search budget.
        prompt_tokens: tokens of one program prompt (instruction plus one example).
        answer_tokens: tokens of one program answer.
    """
    from ..graph.io import load_graph

    def shape(seed: str) -> StepShape:
        try:
            return step_shape(load_graph(seed))
        except GraphoptError:  # a seed that does not load: the run refuses it before spending
            return GENERIC

    def loop(seed_shape: StepShape) -> tuple[int, int, int]:
        """(program calls, optimizer calls, program tokens) of one graph's loop and its test."""
        sizes = {"steps": budget.inner_steps, "minibatch": budget.minibatch, "dev": budget.val_limit, "final": budget.val_limit}
        program, optimizer = loop_calls(seed_shape, **sizes)
        per_call = prompt_tokens * (1 + seed_shape.demos) + answer_tokens  # a demo is about one example long
        return program, optimizer, program * per_call

    # A race may cut none of a batch (graphs that do not differ all go on, continuing from their
    # screens), so its upper estimate is the unraced one.
    shapes = [shape(seed) for seed in budget.seeds]
    seeds = [loop(s) for s in shapes]
    # Children descend from the seeds: a generic graph showing as many demos as the seeds do.
    child = loop(replace(GENERIC, demos=child_demos(shapes)))
    # The meta prompt optimizer tries the leading share of the seeds (the dearest, for an upper bound).
    edited = max(1, math.ceil(budget.promote * len(seeds))) if seeds else 0
    per_edit = budget.prompt_iterations * budget.prompt_candidates
    dearest = sorted(seeds, key=lambda s: s[2], reverse=True)[:edited]
    search_graphs = budget.generations * budget.children
    tested = len(seeds) + 1

    def total(i: int) -> int:
        return sum(s[i] for s in seeds) + per_edit * sum(s[i] for s in dearest) + search_graphs * child[i]

    program_calls = total(0) + tested * budget.test_limit
    program_tokens = total(2) + tested * budget.test_limit * (prompt_tokens * (1 + child_demos(shapes)) + answer_tokens)
    optimizer_calls = total(1)
    meta_calls = edited * per_edit * 2 + int(search_graphs * budget.llm_share) * 2
    return {
        "program": {"calls": program_calls, "tokens": program_tokens},
        "optimizer": {"calls": optimizer_calls, "tokens": optimizer_calls * OPTIMIZER_CALL_TOKENS},
        "meta": {"calls": meta_calls, "tokens": meta_calls * META_CALL_TOKENS},
        "graphs": {"calls": len(seeds) + edited * per_edit + search_graphs, "tokens": 0},
    }


def child_demos(shapes: list[StepShape]) -> int:
    return max((s.demos for s in shapes), default=0)


# Seconds per token on the embedded model with two cores, measured on the development machine
# (benchmarks/search_quality.py runs: program calls are short prompts with short answers; the
# optimizer's and meta model's are long generations).
EMBEDDED_SECONDS_PER_TOKEN = {"program": 0.00125, "optimizer": 0.01, "meta": 0.01, "judge": 0.003}


def embedded_minutes(figures: dict[str, dict[str, int]]) -> float:
    """Upper estimate of a search's minutes on the embedded model with two cores, from `estimate`."""
    seconds = sum(figures.get(level, {}).get("tokens", 0) * rate for level, rate in EMBEDDED_SECONDS_PER_TOKEN.items())
    return seconds / 60


def parse_level_caps(items: list[str]) -> dict[str, dict[str, float]]:
    """{"program": {"tokens": 20000}} from ["program.tokens=20000", ...] (the --level-cap flag).

    Raises:
        ConfigError: an unknown level or kind, or a value that is not a number >= 0.
    """
    from ..lm import LEVELS

    kinds = ("calls", "tokens", "dollars")
    caps: dict[str, dict[str, float]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        level, dot, kind = key.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--level-cap {item!r}: write LEVEL.KIND=N, e.g. program.tokens=20000")
        if level not in LEVELS:
            raise ConfigError(f"--level-cap {item!r}: unknown level {level!r}{did_you_mean(level, LEVELS)}: use {', '.join(LEVELS)}")
        if kind not in kinds:
            raise ConfigError(f"--level-cap {item!r}: unknown kind {kind!r}{did_you_mean(kind, kinds)}: use {', '.join(kinds)}")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if number < 0:
            raise ConfigError(f"--level-cap {item!r}: {value!r} is not a number >= 0")
        caps.setdefault(level, {})[kind] = number if kind == "dollars" else int(number)
    return caps
