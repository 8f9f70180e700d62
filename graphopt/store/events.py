"""The typed events of a run's store: what a resumed search reads back to decide as the first session did, and what the report reads.

Each is a small frozen record with `to_payload` (the JSON stored in the event's payload, key for
key what earlier versions wrote) and `from_payload` (which reads those older payloads too: keys
added later are optional). Other events (a winner's reason, a stop, a bug) are only shown, never
read back, and stay plain payloads.

Example:
    >>> made = ProposalMade("gen1/child0", "c0004", "mutation")
    >>> made.to_payload()
    {'key': 'gen1/child0', 'candidate': 'c0004', 'kind': 'mutation'}
    >>> ProposalMade.from_payload(made.to_payload()) == made
    True
"""

from __future__ import annotations

__all__ = ["ProposalMade", "ProposalRejected", "RaceGraph", "RaceRun", "GenerationDone", "InferenceCost", "Event", "typed"]

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, Union


@dataclass(frozen=True)
class ProposalMade:
    """A proposal slot's outcome: the candidate it registered and what making it cost.

    Attributes:
        key: the slot, e.g. "gen2/child1" or "prompt/c0003/r0/c1".
        candidate: the registered candidate's id.
        kind: its origin ("mutation", "crossover", "llm", "prompt_opt").
        usage: the meta calls of the proposal (`Ledger.to_dict()`), charged to the candidate.
    """

    event: ClassVar[str] = "proposal"
    key: str
    candidate: str
    kind: str
    usage: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        return {"key": self.key, "candidate": self.candidate, "kind": self.kind, **({"usage": self.usage} if self.usage else {})}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ProposalMade:
        return cls(payload["key"], payload["candidate"], payload.get("kind", ""), payload.get("usage") or None)


@dataclass(frozen=True)
class ProposalRejected:
    """A proposal slot that gave no usable graph, with why (at most five reasons, 500 characters each)."""

    event: ClassVar[str] = "rejected_proposal"
    key: str
    kind: str
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", tuple(r[:500] for r in list(self.reasons)[:5]))

    def to_payload(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "reasons": list(self.reasons)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ProposalRejected:
        return cls(payload["key"], payload.get("kind", ""), tuple(payload.get("reasons") or ()))


@dataclass(frozen=True)
class RaceGraph:
    """One graph of a race: its screen's mean and per-example scores, and the decision."""

    candidate: str
    score: float
    scores: dict[str, float]
    promoted: bool
    why: str = ""

    def to_payload(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "score": self.score, "scores": self.scores, "promoted": self.promoted, "why": self.why}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RaceGraph:
        return cls(
            payload["candidate"], float(payload.get("score") or 0.0), dict(payload.get("scores") or {}),
            bool(payload.get("promoted")), payload.get("why", ""),
        )


@dataclass(frozen=True)
class RaceRun:
    """A decided race: its key, the screen's final size, what scored it ("metric" or
    "likelihood"), the leader and every graph that entered. A resumed race takes each graph's
    recorded screen scores from here."""

    event: ClassVar[str] = "race"
    key: str
    screen: int
    by: str
    leader: str | None
    graphs: tuple[RaceGraph, ...] = field(default_factory=tuple)

    def to_payload(self) -> dict[str, Any]:
        return {
            "key": self.key, "screen": self.screen, "by": self.by, "leader": self.leader,
            "graphs": [g.to_payload() for g in self.graphs],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RaceRun:
        return cls(
            payload.get("key", ""), int(payload.get("screen") or 0), payload.get("by", "metric"), payload.get("leader"),
            tuple(RaceGraph.from_payload(g) for g in payload.get("graphs") or ()),
        )


@dataclass(frozen=True)
class GenerationDone:
    """A structure-search generation: its best validation score so far and its population (and,
    after generation 0, its children and the run's usage when it ended)."""

    event: ClassVar[str] = "generation"
    generation: int
    best: float
    population: tuple[str, ...]
    children: tuple[str, ...] | None = None
    usage: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"generation": self.generation, "best": self.best, "population": list(self.population)}
        if self.children is not None:
            payload["children"] = list(self.children)
        if self.usage is not None:
            payload["usage"] = self.usage
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GenerationDone:
        children = payload.get("children")
        return cls(
            int(payload["generation"]), float(payload.get("best") or 0.0), tuple(payload.get("population") or ()),
            tuple(children) if children is not None else None, payload.get("usage"),
        )


@dataclass(frozen=True)
class InferenceCost:
    """What a tested candidate's program costs to use, per answered test example: model calls
    (a vote of 3 makes 3) and program tokens, cache hits included. Read back by the final table
    and the report, which show it beside the accuracy."""

    event: ClassVar[str] = "inference"
    candidate: str
    calls: float
    tokens: float

    def to_payload(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "calls": self.calls, "tokens": self.tokens}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> InferenceCost:
        return cls(payload["candidate"], float(payload["calls"]), float(payload["tokens"]))

    def per_example(self) -> dict[str, float]:
        return {"calls": self.calls, "tokens": self.tokens}


Event = Union[ProposalMade, ProposalRejected, RaceRun, GenerationDone, InferenceCost]

E = TypeVar("E", bound=Event)


def typed(rows: Iterable[Any], *types: type[E]) -> list[E]:
    """The events of these types among stored event rows (`kind`, `payload`), in order, typed; a
    payload that is not one (hand-edited, or from a version that wrote less) is skipped."""
    by_kind = {t.event: t for t in types}
    out = []
    for row in rows:
        cls = by_kind.get(row.kind)
        if cls is None or not isinstance(row.payload, Mapping):
            continue
        try:
            out.append(cls.from_payload(row.payload))
        except (KeyError, TypeError, ValueError):
            continue
    return out
