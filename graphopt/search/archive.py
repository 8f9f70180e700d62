"""What the structure search knows about the graphs it has scored, and how it tells a model about them.

`Scored` is one evaluated graph; `Archive` holds them all and writes the compact summary the meta
model reads before it proposes a new graph.

Example:
    >>> from graphopt.graph.spec import GraphSpec, NodeSpec, EdgeSpec
    >>> spec = GraphSpec(name="plain", nodes=[NodeSpec(id="r", op="rewrite")],
    ...                  edges=[EdgeSpec(source="input.program", target="r.candidates")])
    >>> archive = Archive()
    >>> archive.add(Scored(spec, "h1", val_score=0.5, cost_tokens=1200))
    >>> print(archive.summary())  # doctest: +NORMALIZE_WHITESPACE
    1 graph scored (best first):
    [1] plain  val=0.500  tokens=1.2k  hash=h1
        nodes: r=rewrite
        edges: input.program->r.candidates
"""

from __future__ import annotations

__all__ = ["Scored", "Archive", "graph_hash", "compact_graph_text"]

from collections.abc import Mapping, Iterable, Iterator
from dataclasses import dataclass, field

from ..graph.spec import GraphSpec


def graph_hash(spec: GraphSpec) -> str:
    """The spec's canonical hash (invariant under node renaming), from `graphopt.graph.validate`."""
    from ..graph.validate import canonical_hash

    return canonical_hash(spec)


def _fmt_value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def compact_graph_text(spec: GraphSpec, indent: str = "") -> str:
    """Nodes and edges of a spec on two lines, e.g. for a prompt.

    Example: ``nodes: c=critique, r=rewrite(k=2)`` / ``edges: input.program->c.candidates, ...``.
    """
    nodes = []
    for node in spec.nodes:
        params = ",".join(f"{k}={_fmt_value(v)}" for k, v in sorted(node.params.items()))
        nodes.append(f"{node.id}={node.op}" + (f"({params})" if params else ""))
    edges = [f"{e.source}->{e.target}" for e in spec.edges]
    return f"{indent}nodes: {', '.join(nodes)}\n{indent}edges: {', '.join(edges)}"


def _fmt_tokens(tokens: float) -> str:
    if tokens >= 1_000_000:
        return f"{tokens / 1e6:.1f}M"
    if tokens >= 1_000:
        return f"{tokens / 1e3:.1f}k"
    return f"{tokens:g}"


@dataclass(frozen=True)
class Scored:
    """One evaluated optimizer graph.

    Attributes:
        spec: the graph.
        graph_hash: its canonical hash (equal for graphs that differ only in node ids).
        val_score: validation score of the program the inner loop produced with it (higher is better).
        cost_tokens: tokens the evaluation spent (all levels; lower is better).
        candidate_id: the run store's id of this evaluation, when there is one.
        generation: the search generation it was proposed in.
        per_example: its score on each validation example (example id -> score), when known.
        changed: False when its inner loop returned the program it started from.
    """

    spec: GraphSpec
    graph_hash: str
    val_score: float
    cost_tokens: float = 0.0
    candidate_id: str | None = None
    generation: int = 0
    per_example: Mapping[str, float] | None = field(default=None, compare=False, repr=False)
    changed: bool = field(default=True, compare=False)

    @classmethod
    def of(cls, spec: GraphSpec, val_score: float, cost_tokens: float = 0.0, **kwargs) -> Scored:
        """A Scored whose hash is computed from the spec."""
        return cls(spec, graph_hash(spec), val_score, cost_tokens, **kwargs)

    def rank_key(self) -> tuple:
        """Sort key, best first: higher score; among equal scores a graph whose inner loop changed
        the program, then the simpler (fewer nodes), then the older. Cost never decides between
        equal scores: a graph that makes no calls of its own would win every tie."""
        nodes = len(self.spec.nodes) if self.spec is not None else 0
        return (-self.val_score, not self.changed, nodes, self.generation)


class Archive:
    """Every scored graph of a search, in the order they were added.

    A graph scored twice (same hash) keeps both entries; `best_by_hash` keeps its best one.
    """

    def __init__(self, items: Iterable[Scored] = ()):
        self._items: list[Scored] = []
        self._by_hash: dict[str, Scored] = {}
        for item in items:
            self.add(item)

    def add(self, item: Scored) -> None:
        self._items.append(item)
        known = self._by_hash.get(item.graph_hash)
        if known is None or item.rank_key() < known.rank_key():
            self._by_hash[item.graph_hash] = item

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Scored]:
        return iter(self._items)

    def __contains__(self, graph_hash: object) -> bool:
        return graph_hash in self._by_hash

    @property
    def items(self) -> list[Scored]:
        return list(self._items)

    def get(self, graph_hash: str) -> Scored | None:
        """The best entry for a graph hash, or None."""
        return self._by_hash.get(graph_hash)

    def best_by_hash(self) -> list[Scored]:
        """One entry per distinct graph (its best), best first."""
        return sorted(self._by_hash.values(), key=Scored.rank_key)

    def best(self) -> Scored | None:
        ranked = self.best_by_hash()
        return ranked[0] if ranked else None

    def summary(self, max_graphs: int = 8) -> str:
        """Text for the meta model: the best distinct graphs with scores, token costs and structure.

        Args:
            max_graphs: at most this many graphs are listed (the best ones, plus the cheapest if
                it is not among them, so the model sees the cost end of the trade-off too).
        """
        ranked = self.best_by_hash()
        if not ranked:
            return "No graph has been scored yet."
        shown = ranked[:max_graphs]
        cheapest = min(ranked, key=lambda s: (s.cost_tokens, -s.val_score))
        if cheapest not in shown and max_graphs > 1:
            shown = shown[: max_graphs - 1] + [cheapest]
        count = len(ranked)
        head = f"{count} graph{'s' if count != 1 else ''} scored (best first)"
        if count > len(shown):
            head += f", showing {len(shown)}"
        lines = [head + ":"]
        for i, item in enumerate(shown, 1):
            lines.append(
                f"[{i}] {item.spec.name}  val={item.val_score:.3f}  tokens={_fmt_tokens(item.cost_tokens)}"
                f"  hash={item.graph_hash[:12]}"
            )
            lines.append(compact_graph_text(item.spec, indent="    "))
        return "\n".join(lines)
