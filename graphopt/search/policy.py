"""The search's decisions, made on evidence: which graphs leave a race, and which graph wins.

Every comparison is *paired*: two graphs scored on the same validation examples are compared
example by example, and the test is the exact one-sided **sign test** on the examples where they
differ (for 0/1 scores this is McNemar's exact test): with `w` examples where A beats B and `l`
where B beats A, the p-value of "A is not better than B" is P(X >= w) for X ~ Binomial(w + l, 1/2).
It assumes nothing about the score distribution and is exact at the tiny sample sizes a search
works with; its price is power: on 4 examples no difference is ever significant at 5% (the
smallest p is 1/16), which is the point: four examples cannot tell a 25% graph from a 0% one.

Racing (`Race`): a graph leaves a race only when the sign test says, at level `alpha`, that it is
worse than the race's leader (the graph with the highest mean on the screen). When fewer graphs
can be cut than successive halving would cut, the screen grows (the evaluator scores the same
graphs' screen programs on more validation examples: `screen_sizes`) and the race is decided
again; once the screen is the whole validation set, every graph not shown to be worse goes on.
Cost never enters: graphs whose scores do not differ all go on.

The winner (`choose_winner`): the best seed graph (highest validation mean; among equal means,
one whose inner loop changed the program, then the simpler, then the older) is the incumbent. A
derived graph (a prompt edit, a mutation, a crossover, a meta-model proposal) replaces it only
when it beats it by the sign test at level `alpha` on the validation examples both were scored
on. Because the challenger is the best of many derived graphs, its validation lead is biased
upwards (the winner's curse); so when the task has validation examples that no selection used,
the challenger must also not lose to the incumbent on them (`confirm`), or the incumbent stays.
Every choice carries a one-line reason that the result table and the report show.

Meta calls (`MetaInvestment`): the meta model gets a first few tries in every search, then
continues only while its proposals gain validation score per token at least as well as the
mutations that would take their slots. Nothing here is sized for one model.

Example:
    >>> sign_test({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}, {"a": 0, "b": 0, "c": 0, "d": 0, "e": 0}).p
    0.03125
    >>> round(sign_test({"a": 1, "b": 0}, {"a": 0, "b": 0}).p, 3)
    0.5
"""

from __future__ import annotations

__all__ = [
    "ALPHA",
    "Comparison",
    "sign_test",
    "Race",
    "RaceDecision",
    "screen_sizes",
    "Entry",
    "Choice",
    "choose_winner",
    "tie_key",
    "Yield",
    "MetaInvestment",
    "yields",
]

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..status import Status

ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of A with B on their shared examples.

    Attributes:
        wins, losses: examples where A scores above / below B.
        n: shared examples; mean: mean of A - B over them.
        p: one-sided sign-test p-value of "A is not better than B" (1.0 when A never wins).
    """

    wins: int
    losses: int
    n: int
    mean: float
    p: float

    def better(self, alpha: float = ALPHA) -> bool:
        """True when A is better than B at level `alpha`."""
        return self.mean > 0 and self.p <= alpha

    def text(self) -> str:
        return f"{self.mean:+.3f} on {self.n} examples ({self.wins} won, {self.losses} lost, p={self.p:.3g})"


def _binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    if k <= 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


def sign_test(a: Mapping[str, float], b: Mapping[str, float]) -> Comparison:
    """The paired sign test of A against B over the example ids both have."""
    shared = sorted(set(a) & set(b))
    diffs = [float(a[k]) - float(b[k]) for k in shared]
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    mean = sum(diffs) / len(diffs) if diffs else 0.0
    return Comparison(wins, losses, len(shared), mean, _binomial_tail(wins, wins + losses) if wins else 1.0)


def _mean(scores: Mapping[str, float]) -> float:
    return sum(scores.values()) / len(scores) if scores else 0.0


def screen_sizes(screen: int, val_limit: int) -> list[int]:
    """The screen's sizes as it grows: doubling from `screen` up to the whole validation set."""
    sizes = [min(screen, val_limit)]
    while sizes[-1] < val_limit:
        sizes.append(min(2 * sizes[-1], val_limit))
    return sizes


@dataclass(frozen=True)
class RaceDecision:
    """What a race decided at one screen size.

    Attributes:
        cut: graphs shown to be worse than the leader (they leave the race).
        go_on: the others.
        grow: True when the screen should grow before deciding (too few were cut and the
            validation set has examples left); `cut` and `go_on` are then provisional.
        leader: the graph the others were compared with; why: one line per cut graph.
    """

    cut: frozenset[str]
    go_on: frozenset[str]
    grow: bool
    leader: str | None = None
    why: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Race:
    """Successive halving that cannot cut on noise.

    Args:
        promote: the share of a race that successive halving would keep (the rest may be cut).
        alpha: the sign test's level for "worse than the leader".
    """

    promote: float = 0.5
    alpha: float = ALPHA

    def decide(self, screens: Mapping[str, Mapping[str, float]], *, can_grow: bool) -> RaceDecision:
        """Decides a race from each graph's per-example screen scores (all on the same examples).

        Args:
            screens: graph id -> {example id: score}, in the race's order.
            can_grow: whether the screen can still take more validation examples.
        """
        ids = list(screens)
        if not ids:
            return RaceDecision(frozenset(), frozenset(), False)
        leader = max(ids, key=lambda g: (_mean(screens[g]), -ids.index(g)))
        why = {}
        for g in ids:
            if g == leader:
                continue
            comparison = sign_test(screens[leader], screens[g])
            if comparison.better(self.alpha):
                why[g] = f"worse than the leader: {comparison.text()}"
        cut = frozenset(why)
        target = len(ids) - max(1, math.ceil(self.promote * len(ids)))
        grow = can_grow and len(cut) < target
        return RaceDecision(cut, frozenset(ids) - cut, grow, leader, why)


@dataclass(frozen=True)
class Entry:
    """A finished evaluation as the winner's choice sees it.

    Attributes:
        id, name: the candidate's store id and graph name.
        scores: its score on each validation example.
        seed: True for a seed graph (the incumbents); False for anything derived.
        changed: False when its program is the seed program (its inner loop changed nothing).
        nodes: node count (the simpler graph wins among equals); order: registration order.
        confirm: its score on held-out validation examples, when they were measured.
    """

    id: str
    name: str
    scores: Mapping[str, float]
    seed: bool
    changed: bool = True
    nodes: int = 0
    order: int = 0
    confirm: Mapping[str, float] | None = None

    @property
    def mean(self) -> float:
        return _mean(self.scores)


def tie_key(entry: Entry) -> tuple:
    """Best first: the higher mean; among equal means, a changed program, the simpler, the older."""
    return (-round(entry.mean, 12), not entry.changed, entry.nodes, entry.order)


@dataclass(frozen=True)
class Choice:
    """The winner and why it won (one line, for the table and the report)."""

    winner: Entry
    reason: str
    challenger: Entry | None = None


def choose_winner(entries: Sequence[Entry], *, alpha: float = ALPHA) -> Choice:
    """The winner among finished evaluations: the best seed unless a derived graph beats it.

    Raises:
        ValueError: `entries` is empty.
    """
    if not entries:
        raise ValueError("no finished evaluation to choose a winner from")
    seeds = sorted((e for e in entries if e.seed), key=tie_key)
    derived = sorted((e for e in entries if not e.seed), key=tie_key)
    if not seeds:  # nothing to defend: the best derived graph by the same order
        return Choice(derived[0], f"best validation score ({derived[0].mean:.3f}); no seed graph finished")
    incumbent = seeds[0]
    why_seed = f"best seed graph on validation ({incumbent.mean:.3f})"
    if len(seeds) > 1 and tie_key(seeds[1])[0] == tie_key(incumbent)[0]:
        why_seed += "; equal to another seed, kept as " + (
            "its inner loop changed the program" if incumbent.changed and not seeds[1].changed
            else "the simpler or older graph"
        )
    if not derived:
        return Choice(incumbent, why_seed)
    challenger = min(derived, key=lambda e: (-sign_test(e.scores, incumbent.scores).mean, not e.changed, e.nodes, e.order))
    comparison = sign_test(challenger.scores, incumbent.scores)
    if not comparison.better(alpha):
        return Choice(
            incumbent,
            f"{why_seed}; no derived graph beats it by a paired test (best: {challenger.name}, {comparison.text()})",
            challenger,
        )
    if challenger.confirm is not None and incumbent.confirm is not None:
        held_out = sign_test(challenger.confirm, incumbent.confirm)
        if held_out.n and held_out.mean < 0:
            return Choice(
                incumbent,
                f"{why_seed}; {challenger.name} beat it on validation ({comparison.text()}) but not on"
                f" held-out validation examples ({held_out.text()})",
                challenger,
            )
        confirmed = f"; held out: {held_out.text()}" if held_out.n else ""
    else:
        confirmed = ""
    return Choice(
        challenger,
        f"beats the best seed {incumbent.name} by a paired test on validation: {comparison.text()}{confirmed}",
        challenger,
    )


META_ORIGINS = ("llm", "prompt_opt")
OTHER_ORIGINS = ("mutation", "crossover")


@dataclass(frozen=True)
class Yield:
    """What one kind of proposal has returned so far: tries, validation gain and tokens.

    gain: the sum over its finished candidates of how far each rose above its best parent (0
    when it did not, or when it lost its race); tokens: those candidates' work tokens, the meta
    calls that made them included."""

    tries: int = 0
    gain: float = 0.0
    tokens: float = 0.0

    @property
    def rate(self) -> float:
        """Gain per million tokens."""
        return 1e6 * self.gain / self.tokens if self.tokens else 0.0

    def add(self, gain: float, tokens: float) -> Yield:
        return Yield(self.tries + 1, self.gain + max(0.0, gain), self.tokens + tokens)


@dataclass(frozen=True)
class MetaInvestment:
    """Whether the meta model's proposals should go on, from what they gained per token.

    Every search gives the meta model `first_tries` proposals (prompt edits and graphs together),
    so a capable meta model can show what it is worth; after that its proposals continue while
    they gain validation score and gain at least as much per token as mutations and crossovers
    (the alternative use of the same slots). On a model whose meta edits never gain, this stops
    them after the first tries; on one whose edits pay, it never does.
    """

    first_tries: int = 1

    def allows(self, meta: Yield, other: Yield) -> tuple[bool, str]:
        if meta.tries < self.first_tries:
            return True, f"first tries ({meta.tries} of {self.first_tries})"
        if meta.gain <= 0:
            return False, f"{meta.tries} meta proposals gained nothing"
        if other.gain > 0 and meta.rate < other.rate:
            return False, f"meta proposals gain {meta.rate:.3g}/M tokens, mutations {other.rate:.3g}/M"
        return True, f"meta proposals gain {meta.rate:.3g}/M tokens"


def yields(rows: Sequence) -> tuple[Yield, Yield]:
    """(meta, other) yields of a run's candidate rows (`RunStore.candidates()`)."""
    by_id = {row.id: row for row in rows}
    meta, other = Yield(), Yield()
    for row in rows:
        e = row.evaluation
        if row.origin not in META_ORIGINS + OTHER_ORIGINS or e is None or e.status not in (Status.done, Status.screened):
            continue
        parents = [by_id[p].evaluation for p in row.parents or () if p in by_id and by_id[p].evaluation is not None]
        best_parent = max((p.val_score for p in parents if p.val_score is not None), default=0.0)
        gain = (e.val_score or 0.0) - best_parent if e.status == Status.done else 0.0
        levels = (e.usage or {}).get("levels", {})
        tokens = float(sum(u.get("tokens", 0) + u.get("cached_tokens", 0) for u in levels.values()))
        if row.origin in META_ORIGINS:
            meta = meta.add(gain, tokens)
        else:
            other = other.add(gain, tokens)
    return meta, other
