"""canonical_hash: linear in the graph's size, and the same hashes as before for graphs of ordinary size."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict

import pytest

from graphopt.graph.canonical import _digest, _node_label, canonical_hash
from graphopt.graph.io import builtin_graph_names, load_graph
from graphopt.graph.spec import INPUT_NODE, EdgeSpec, GraphSpec, NodeSpec


def hash_before(spec: GraphSpec) -> str:
    """The algorithm as it was (refinement rounds until settled, up to one per node)."""
    labels = {INPUT_NODE: "input"}
    wired = defaultdict(set)
    for e in spec.edges:
        wired[e.target_node].add(e.target_port)
    for node in spec.nodes:
        labels.setdefault(node.id, _digest(_node_label(node, wired[node.id])))
    for node_id in ({e.source_node for e in spec.edges} | {e.target_node for e in spec.edges}) - labels.keys():
        labels[node_id] = "missing"
    neighbours = defaultdict(list)
    for e in spec.edges:
        neighbours[e.source_node].append(("out", e.source_port, e.target_port, e.target_node))
        neighbours[e.target_node].append(("in", e.source_port, e.target_port, e.source_node))
    classes = len(set(labels.values()))
    for _ in range(len(labels)):
        labels = {
            n: _digest([label, sorted((d, sp, tp, labels[o]) for d, sp, tp, o in neighbours[n])])
            for n, label in labels.items()
        }
        if len(set(labels.values())) == classes:
            break
        classes = len(set(labels.values()))
    edges = sorted((labels[e.source_node], e.source_port, e.target_port, labels[e.target_node]) for e in spec.edges)
    return _digest([sorted(labels.values()), edges])[:32]


def chain(n: int, prefix: str = "p", params_at: dict[int, dict] | None = None) -> GraphSpec:
    """input -> p0 -> p1 -> ... -> p{n-1}, all paraphrase nodes."""
    params_at = params_at or {}
    nodes = [NodeSpec(id=f"{prefix}{i}", op="paraphrase", params=params_at.get(i, {})) for i in range(n)]
    edges = [EdgeSpec(source="input.program", target=f"{prefix}0.candidates")]
    edges += [EdgeSpec(source=f"{prefix}{i}.candidates", target=f"{prefix}{i + 1}.candidates") for i in range(n - 1)]
    return GraphSpec(name=f"chain{n}", nodes=nodes, edges=edges)


def random_dag(rng: random.Random, n: int) -> GraphSpec:
    """A random DAG of paraphrase/ensemble nodes hanging off `input`."""
    nodes = [NodeSpec(id=f"n{i}", op=rng.choice(["paraphrase", "ensemble"]), params={}) for i in range(n)]
    edges = {("input.program", "n0.candidates")}
    for i in range(1, n):
        for j in rng.sample(range(i), k=min(i, rng.randint(1, 2))):
            edges.add((f"n{j}.candidates", f"n{i}.candidates"))
    return GraphSpec(name="dag", nodes=nodes, edges=[EdgeSpec(source=s, target=t) for s, t in sorted(edges)])


# Resume finds a scored graph by its hash in the run store: a hash that changes makes every stored
# score unreachable, so the values are pinned as literals (computed once, never by the code under test).
PINNED_BUILTIN = {
    "bootstrap": "9d5e5b0f7ab3450e454b125cbe05f958",
    "ensemble": "9ada592326d96d60ac16ce43a006c5aa",
    "fewshot": "163f6291c96b9f843542cd228c46489e",
    "fewshot_format": "67660c47d58e32ff2362203178f002ba",
    "fewshot_rs": "d8b54bf88eef548f51b52ec9ffd213a8",
    "knn": "b0576d8b9492b05f45b82d7c5ae25e48",
    "opro": "bc66b4f8cca920f7dd51e1330c5185a2",
    "tgd": "333f088d75ff023630259efa108426d1",
    "tgd_select": "f0bbd960e5798c3ae00537802b9d1cd0",
    "vote": "947000b3b4319dcd1a615fa86465923b",
}
PINNED_CHAIN = {
    1: "d6bf763bb1ad1da41966ee2ce1f41f79",
    2: "54b5c8b460c4e30338e9ea930fe9d154",
    5: "fc51d477545bc95413d51ab0832a3f1f",
    20: "4ee719781584200b81ff8a42d4ba873e",
    30: "3b2818ea8c00db6f219718d5718c6e6e",
    3000: "4ed9fe60cc70a0dd3242c87a9662b289",
}
# sha256 of the 30 hashes of random_dag(Random(0)), space-separated, in order.
PINNED_RANDOM_DAGS = "61dc06cf89d05dee411fe3d4c595d6628f8da4f02c9054061d0186a7154e5ba0"


def test_every_builtin_graph_has_a_pinned_hash():
    assert set(builtin_graph_names()) == set(PINNED_BUILTIN)


@pytest.mark.parametrize("name", sorted(PINNED_BUILTIN))
def test_builtin_graphs_keep_the_hash_they_had(name):
    spec = load_graph(name)
    assert canonical_hash(spec) == PINNED_BUILTIN[name]
    assert hash_before(spec) == PINNED_BUILTIN[name]


@pytest.mark.parametrize("n", [1, 2, 5, 20, 30])
def test_chains_of_ordinary_length_keep_the_hash_they_had(n):
    assert canonical_hash(chain(n)) == hash_before(chain(n)) == PINNED_CHAIN[n]


def test_random_small_dags_keep_the_hash_they_had():
    rng = random.Random(0)
    hashes = []
    for _ in range(30):
        spec = random_dag(rng, rng.randint(2, 12))
        hashes.append(canonical_hash(spec))
        assert hashes[-1] == hash_before(spec)
    assert hashlib.sha256(" ".join(hashes).encode()).hexdigest() == PINNED_RANDOM_DAGS


def test_a_3000_node_chain_is_hashed_ignoring_names_and_telling_lengths_and_params_apart():
    base = canonical_hash(chain(3000))
    assert base == PINNED_CHAIN[3000]
    assert canonical_hash(chain(3000, prefix="renamed_")) == base
    assert canonical_hash(chain(2999)) != base
    assert canonical_hash(chain(3000, params_at={1500: {"n": 2}})) != base
    # Where in the chain the different node sits is structure too.
    assert canonical_hash(chain(3000, params_at={1500: {"n": 2}})) != canonical_hash(chain(3000, params_at={1501: {"n": 2}}))


def test_a_long_chain_hash_does_not_depend_on_node_or_edge_order():
    spec = chain(400)
    data = spec.model_dump()
    random.Random(1).shuffle(data["nodes"])
    data["edges"].reverse()
    assert canonical_hash(GraphSpec.model_validate(data)) == canonical_hash(spec)


def test_a_long_cycle_gets_a_hash_that_ignores_names():
    def ring(prefix: str) -> GraphSpec:
        spec = chain(2000, prefix)
        closing = EdgeSpec(source=f"{prefix}1999.candidates", target=f"{prefix}0.candidates")
        return spec.model_copy(update={"edges": [*spec.edges, closing]})

    assert canonical_hash(ring("a")) == canonical_hash(ring("b"))
    assert canonical_hash(ring("a")) != canonical_hash(chain(2000, "a"))


def test_params_added_later_leave_the_hash_alone_at_their_default_and_change_it_otherwise():
    spec = load_graph("fewshot")
    def with_params(**extra):
        nodes = [n.model_copy(update={"params": {**n.params, **extra}}) if n.op == "fewshot" else n for n in spec.nodes]
        return spec.model_copy(update={"nodes": nodes})
    assert canonical_hash(with_params(choose="random", order="drawn")) == PINNED_BUILTIN["fewshot"]
    assert canonical_hash(with_params(choose="greedy")) != PINNED_BUILTIN["fewshot"]
