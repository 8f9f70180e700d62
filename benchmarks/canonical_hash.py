"""How long `canonical_hash` takes as graphs grow: chains (the worst case of plain refinement) and random DAGs.

Before the switch to path labels a 1000-node chain took about 3 s and a 3000-node one about 100 s
(one refinement round per two nodes, each round over every node); now the time grows linearly.
Also prints, for comparison, plain refinement with no round limit on the sizes where it is still
bearable (`--no-old` skips it).

Verdict: the time per node at the largest size is at most 3x the time per node at the first
size of 300 nodes or more, for chains and for random DAGs (linear up to noise; the old refinement
was quadratic on chains). Exits 1 when it is not.

Usage: `python benchmarks/canonical_hash.py [--sizes 100,1000,3000] [--no-old]`.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import random
import time
from collections import defaultdict

from graphopt.graph.canonical import _digest, _node_label, canonical_hash
from graphopt.graph.spec import INPUT_NODE, EdgeSpec, GraphSpec, NodeSpec


def chain(n: int) -> GraphSpec:
    nodes = [NodeSpec(id=f"p{i}", op="paraphrase") for i in range(n)]
    edges = [EdgeSpec(source="input.program", target="p0.candidates")]
    edges += [EdgeSpec(source=f"p{i}.candidates", target=f"p{i + 1}.candidates") for i in range(n - 1)]
    return GraphSpec(name=f"chain{n}", nodes=nodes, edges=edges)


def random_dag(n: int, seed: int = 0) -> GraphSpec:
    rng = random.Random(seed)
    nodes = [NodeSpec(id=f"n{i}", op=rng.choice(["paraphrase", "ensemble"])) for i in range(n)]
    edges = {("input.program", "n0.candidates")}
    for i in range(1, n):
        for j in rng.sample(range(i), k=min(i, 2)):
            edges.add((f"n{j}.candidates", f"n{i}.candidates"))
    return GraphSpec(name=f"dag{n}", nodes=nodes, edges=[EdgeSpec(source=s, target=t) for s, t in sorted(edges)])


def unbounded_refinement(spec: GraphSpec) -> str:
    """Plain refinement until settled, as before (for the comparison column)."""
    labels = {INPUT_NODE: "input", **{n.id: _digest(_node_label(n)) for n in spec.nodes}}
    neighbours = defaultdict(list)
    for e in spec.edges:
        neighbours[e.source_node].append(("out", e.source_port, e.target_port, e.target_node))
        neighbours[e.target_node].append(("in", e.source_port, e.target_port, e.source_node))
    classes = len(set(labels.values()))
    for _ in range(len(labels)):
        labels = {k: _digest([v, sorted((d, a, b, labels[o]) for d, a, b, o in neighbours[k])]) for k, v in labels.items()}
        if len(set(labels.values())) == classes:
            break
        classes = len(set(labels.values()))
    return _digest(sorted(labels.values()))[:32]


def timed(fn, spec: GraphSpec) -> float:
    started = time.perf_counter()
    fn(spec)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,300,1000,3000,10000")
    parser.add_argument("--no-old", action="store_true", help="skip the unbounded-refinement column")
    args = parser.parse_args(argv)
    canonical_hash(chain(2))  # imports the operators once, outside the timings
    print(f"{'graph':>12} {'nodes':>6} {'canonical_hash s':>17} {'unbounded s':>12}")
    per_node: dict[str, list[tuple[int, float]]] = {"chain": [], "dag": []}
    for n in (int(x) for x in args.sizes.split(",")):
        for kind, spec in (("chain", chain(n)), ("dag", random_dag(n))):
            old = "" if args.no_old or n > 1000 else f"{timed(unbounded_refinement, spec):12.3f}"
            seconds = timed(canonical_hash, spec)
            per_node[kind].append((n, seconds / n))
            print(f"{spec.name:>12} {n:>6} {seconds:17.3f} {old:>12}")
    failed = False
    for kind, rows in per_node.items():
        base = next(((n, t) for n, t in rows if n >= 300), None)
        if base is None or base == rows[-1]:
            print(f"{kind}: give a size of 300 or more and a larger one to judge growth")
            return 2
        ratio = rows[-1][1] / base[1]
        failed = failed or ratio > 3.0
        print(f"{'PASS' if ratio <= 3.0 else 'FAIL'}  {kind}: per-node time at {rows[-1][0]} nodes is {ratio:.2f}x "
              f"that at {base[0]} (linear: <= 3)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
