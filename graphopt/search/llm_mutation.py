"""LLM-guided proposals: the meta model reads the archive and the operator catalogue and writes a graph.

The reply is requested as JSON against a compact schema (plain objects, strings and arrays, no
`$ref`, so llama.cpp can turn it into a grammar) and is only ever *data*: it is parsed, turned
into a `GraphSpec` and validated, never evaluated. An unusable reply gets one repair turn listing
its problems; if the repair fails too, the proposal is rejected with the reasons.

Example:
    >>> import asyncio, random
    >>> from graphopt.lm import LM
    >>> from graphopt.testing import FakeModel
    >>> from graphopt.search.archive import Archive
    >>> reply = ('{"rationale": "plain rewrite", "name": "r", "nodes": [{"id": "r", "op": "rewrite", '
    ...          '"params": []}], "edges": [{"source": "input.program", "target": "r.candidates"}]}')
    >>> lm = LM(transport=FakeModel(replies=[reply]), cache_dir=None)
    >>> proposal = asyncio.run(LLMProposal(lm).propose_graph([], Archive(), random.Random(0)))
    >>> proposal.spec.nodes[0].op, proposal.attempts
    ('rewrite', 1)
"""

from __future__ import annotations

__all__ = [
    "LLMProposal",
    "Proposal",
    "operator_catalogue",
    "graph_proposal_schema",
    "spec_to_proposal",
    "spec_from_proposal",
]

import json
import random
import re
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import LLMError, SpecError
from ..lm import sample_place, usage_scope
from ..graph.spec import INPUT_NODE, INPUT_PORTS, EdgeSpec, GraphSpec, NodeSpec, Provenance
from ..replies import first_json_object
from ..operators.catalogue import operator_catalogue
from ..operators.registry import get_operator, operator_names
from .archive import Archive, Scored, compact_graph_text, graph_hash
from .graph_edit import spec_problems
from .params import clamp_params
from .proposal import Proposed, Slot

if TYPE_CHECKING:
    from ..lm import LM

MUTATION_NAME = "llm"


@dataclass
class Proposal:
    """What one LLM proposal produced.

    Attributes:
        spec: the accepted graph, or None when every attempt was unusable.
        rejected_reasons: the problems of each failed attempt, in order.
        attempts: model calls made (1 + repairs).
    """

    spec: GraphSpec | None
    rejected_reasons: list[str] = field(default_factory=list)
    attempts: int = 0

    @property
    def accepted(self) -> bool:
        return self.spec is not None


def graph_proposal_schema(names: list[str] | None = None) -> dict[str, Any]:
    """The JSON Schema of a proposed graph: plain objects, strings and arrays (grammar-friendly).

    Params are a list of {name, value} with string values (parsed as JSON when they look like it),
    which keeps the schema free of open-ended objects. No `maxLength`/`maxItems`: llama.cpp expands
    them into nested optional rules that make constrained sampling many times slower.
    """

    def obj(props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    string = {"type": "string"}
    param = obj({"name": string, "value": string})
    prompt = obj({"name": string, "text": string})
    # The node-id rule without its length bound (a bounded repeat is slow in llama.cpp's grammar).
    node = obj({"id": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]*$"}, "op": {"type": "string", "enum": list(names or operator_names())},
                "params": {"type": "array", "items": param},
                "prompts": {"type": "array", "items": prompt}})
    edge = obj({"source": string, "target": string})
    return obj({"rationale": string, "name": string,
                "nodes": {"type": "array", "items": node},
                "edges": {"type": "array", "items": edge}})


def spec_to_proposal(spec: GraphSpec) -> dict[str, Any]:
    """A spec in the proposal format (the example the model is shown)."""
    return {
        "rationale": spec.description[:200],
        "name": spec.name,
        "nodes": [
            {"id": n.id, "op": n.op,
             "params": [{"name": k, "value": json.dumps(v) if not isinstance(v, str) else v} for k, v in n.params.items()],
             "prompts": [{"name": k, "text": v} for k, v in n.prompts.items()]}
            for n in spec.nodes
        ],
        "edges": [{"source": e.source, "target": e.target} for e in spec.edges],
    }


def is_context_overflow(exc: LLMError) -> bool:
    """True for a request too long for the model: graphopt's own meta prompt, not the user's setup."""
    text = str(exc).lower()
    return exc.status in (400, 413) and ("context" in text or "too long" in text or "maximum" in text)


def tuned_prompts_text(spec: GraphSpec, limit: int = 400) -> str:
    """The prompts a graph's nodes override (tuned by the meta prompt optimizer), for a prompt."""
    lines = [
        f"\n  prompt {n.id}.{name}: {text[:limit]!r}" for n in spec.nodes for name, text in sorted(n.prompts.items())
    ]
    return "".join(lines)


def _parse_value(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _proposed_prompts(raw: Any) -> dict[str, str]:
    """Prompt overrides from a proposal: [{"name", "text"}] (or a {name: text} object); blanks skipped."""
    if isinstance(raw, dict):
        raw = [{"name": k, "text": v} for k, v in raw.items()]
    out: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("text"), str):
            if item["text"].strip():
                out[item["name"].strip()] = item["text"]
    return out


def spec_from_proposal(data: Any, parents: list[GraphSpec] = ()) -> tuple[GraphSpec | None, list[str]]:
    """Builds a GraphSpec from parsed proposal JSON; returns (spec or None, problems).

    Accepts the proposal format and GraphSpec's own (params as an object). Nothing in `data` is
    executed; structural problems come from `graphopt.graph.validate`.
    """
    if not isinstance(data, dict):
        return None, ["the reply is not a JSON object with 'nodes' and 'edges'"]
    nodes_in, edges_in = data.get("nodes"), data.get("edges")
    if not isinstance(nodes_in, list) or not isinstance(edges_in, list):
        return None, ["the reply needs a 'nodes' array and an 'edges' array"]
    problems: list[str] = []
    nodes = []
    # A node the proposal keeps from a parent (same id and operator) keeps its tuned prompts.
    inherited = {(n.id, n.op): dict(n.prompts) for p in reversed(list(parents)) for n in p.nodes if n.prompts}
    for i, raw in enumerate(nodes_in):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("op"), str):
            problems.append(f"nodes[{i}]: needs string fields 'id' and 'op'")
            continue
        params = raw.get("params") or {}
        if isinstance(params, list):
            params = {p["name"]: _parse_value(p.get("value")) for p in params if isinstance(p, dict) and isinstance(p.get("name"), str)}
        if not isinstance(params, dict):
            problems.append(f"node {raw['id']!r}: 'params' must be a list of {{name, value}}")
            continue
        op = raw["op"].strip()
        if op in operator_names():
            params = clamp_params(get_operator(op), params)
        node_id = raw["id"].strip()
        prompts = _proposed_prompts(raw.get("prompts")) or inherited.get((node_id, op), {})
        nodes.append(NodeSpec(id=node_id, op=op, params=params, prompts=prompts))
    edges = []
    for i, raw in enumerate(edges_in):
        if not isinstance(raw, dict) or not isinstance(raw.get("source"), str) or not isinstance(raw.get("target"), str):
            problems.append(f"edges[{i}]: needs string fields 'source' and 'target' written node.port")
            continue
        edges.append(EdgeSpec(source=raw["source"].strip(), target=raw["target"].strip()))
    if problems:
        return None, problems
    name = re.sub(r"[^A-Za-z0-9_+-]+", "_", str(data.get("name") or "graph")).strip("_")[:40] or "graph"
    try:
        spec = GraphSpec(
            name=f"llm-{name}",
            description=str(data.get("rationale") or "")[:500],
            nodes=nodes,
            edges=edges,
            provenance=Provenance(parents=[graph_hash(p) for p in parents], mutation=MUTATION_NAME),
        )
    except ValidationError as exc:
        return None, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    problems = spec_problems(spec)
    return (None, problems) if problems else (spec, [])


_INPUT_DOCS = {
    "program": "the current program",
    "traces": "its outputs and scores on a minibatch",
    "history": "earlier programs with their validation scores",
}
_INPUTS = ", ".join(f"{INPUT_NODE}.{p} ({t}: {_INPUT_DOCS.get(p, p)})" for p, t in INPUT_PORTS.items())
_RULES = f"""Rules of a graph:
- The reserved node `{INPUT_NODE}` is the entry; do not list it in "nodes". Its outputs: {_INPUTS}.
- An edge goes from an output "node.port" to an input "node.port" of the same type.
- Every input that is not optional must be connected; an input not marked "many" takes at most one edge.
- No cycles; every node must be reachable from `{INPUT_NODE}`.
- Exactly one node has no outgoing edges: the exit. It must output Candidates (the programs the step returns).
- Node ids are short, unique and contain no dots. Params are optional; unknown params are errors."""


class LLMProposal:
    """Asks the meta model for a new graph, given the archive, the catalogue and some parents.

    Args:
        lm: the LM client (calls are made and accounted at `level`).
        level: the LM level to call, "meta" by default.
        max_repairs: repair turns after an unusable reply (the problems are sent back).
        max_graphs: graphs of the archive shown to the model.
        max_tokens: reply length cap (a graph in JSON needs several hundred tokens).
        context: what the meta model should know of the task (its description, examples, the
            best program so far and where it fails), or a function giving it at each proposal.
    """

    def __init__(self, lm: LM, level: str = "meta", max_repairs: int = 1, max_graphs: int = 8,
                 max_tokens: int | None = 1024, context: Callable[[], str] | str = ""):
        self.lm = lm
        self.context = context
        self.level = level
        self.max_repairs = max_repairs
        self.max_graphs = max_graphs
        self.max_tokens = max_tokens

    def messages(self, parents: list[GraphSpec], archive: Archive) -> list[dict[str, str]]:
        """The first request's messages (task, catalogue, rules, archive, parents), cut to fit.

        The parts that can shrink do, in this order, until the prompt fits `prompt_chars()`: the
        parents' tuned prompts, the archive (down to 2 graphs), the task context (down to none).
        """
        names = operator_names()
        context = self.context() if callable(self.context) else self.context
        budget = self.prompt_chars()
        attempts = [(context, self.max_graphs, 400)]
        attempts += [(context, g, 120) for g in (4, 2)] + [(context.split("\nIt gets")[0], 2, 0), ("", 2, 0)]
        for ctx, graphs, prompt_limit in attempts:
            text = self._user_text(names, ctx, archive, parents, graphs, prompt_limit)
            if len(text) <= budget:
                break
        system = ("You design optimizer graphs: typed DAGs of operators that improve a prompt program from its "
                  "failures. You answer with a graph as JSON data.")
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    def prompt_chars(self) -> int:
        """How long the request may be: an embedded model's context window leaves room for the reply."""
        model = self.lm.model(self.level)
        if not model.startswith("local/"):
            return 60_000
        n_ctx = getattr(getattr(self.lm.config, "local", None), "n_ctx", 4096)
        reply = min(self.max_tokens or 512, n_ctx // 2)
        return max(1000, int((n_ctx - reply) * 2.4))  # about 2.4 characters per token in this text

    def _user_text(self, names: list[str], context: str, archive: Archive, parents: list[GraphSpec],
                   max_graphs: int, prompt_limit: int) -> str:
        parts = [
            *([context] if context else []),
            "Operators (name (kind): what it does; typed ports; params):\n" + operator_catalogue(names),
            _RULES,
            "Graphs tried so far, with validation score (higher is better) and token cost:\n"
            + archive.summary(max_graphs),
        ]
        for i, parent in enumerate(parents, 1):
            known = archive.get(graph_hash(parent))
            score = f" (val={known.val_score:.3f}, tokens={known.cost_tokens:g})" if known else ""
            prompts = tuned_prompts_text(parent, prompt_limit) if prompt_limit else ""
            parts.append(f"Parent {i}: {parent.name}{score}\n{compact_graph_text(parent, '  ')}{prompts}")
        parts.append(
            "Propose ONE new graph you expect to reach a higher validation score than the graphs above, "
            "or the same score at a lower token cost. Build on the parents: combine their ideas, add, "
            "remove or rewire operators, or change params. Do not repeat a graph already tried. Reply with "
            'JSON only: {"rationale": one or two sentences, "name": a short name, "nodes": [{"id", "op", '
            '"params": [{"name", "value"}], "prompts": [{"name", "text"}]}], "edges": [{"source", "target"}]}. '
            "A node you keep from a parent (same id and operator) keeps its tuned prompts unless you give new ones."
        )
        return "\n\n".join(parts)

    async def propose(self, slot: Slot) -> Proposed:
        """The meta model's proposer: a graph built on the slot's parents, shown the archive; its
        calls are charged to the graph (a failed call that is not fatal is a rejection).

        Raises:
            BudgetExceeded: a budget cap was reached.
            LLMError: a fatal provider error.
        """
        parents = tuple(p.candidate_id for p in slot.parents if p.candidate_id)
        with usage_scope() as spent, sample_place(slot.key):
            try:
                proposal = await self.propose_graph(slot.parents, slot.archive if slot.archive is not None else Archive(), slot.rng)
            except LLMError as exc:
                if exc.fatal:
                    raise
                return Proposed("llm", None, parents, None, (f"meta call failed: {exc}",), spent.to_dict())
        return Proposed("llm", proposal.spec, parents, "llm_proposal", tuple(proposal.rejected_reasons), spent.to_dict())

    async def propose_graph(self, parents: list[GraphSpec | Scored], archive: Archive, rng: random.Random) -> Proposal:
        """One proposal: a valid new graph, or None with the reasons each attempt was rejected.

        Args:
            parents: graphs (or scored graphs) to build on; may be empty.
            archive: every graph scored so far.
            rng: seeds the model calls, so a rerun asks the same questions.

        Raises:
            BudgetExceeded: a budget cap was reached (a failed model call is a rejection instead).
        """
        specs = [p.spec if isinstance(p, Scored) else p for p in parents]
        messages = self.messages(specs, archive)
        schema = graph_proposal_schema()
        response_format = {"type": "json_schema", "json_schema": {"name": "graph_spec", "schema": schema}}
        taken = {graph_hash(s): s.name for s in specs} | {s.graph_hash: s.spec.name for s in archive}
        reasons: list[str] = []
        attempts = 0
        for _ in range(1 + max(self.max_repairs, 0)):
            attempts += 1
            try:
                reply = await self.lm.complete(self.level, messages, max_tokens=self.max_tokens,
                                               seed=rng.randrange(2**31), response_format=response_format)
            except LLMError as exc:
                if exc.fatal and not is_context_overflow(exc):
                    raise
                reasons.append(f"model call failed: {exc}")
                break
            spec, problems = self._read(reply.text, specs, taken)
            if spec is not None:
                return Proposal(spec, reasons, attempts)
            reasons.append("; ".join(problems))
            # the reply is cut so a repair turn still fits a small model's context window
            messages = [*messages, {"role": "assistant", "content": reply.text[:2000]}, {"role": "user", "content":
                        "That graph cannot be used:\n" + "\n".join(f"- {p}" for p in problems[:12])
                        + "\nReply with a corrected graph as JSON in the same format."}]
        return Proposal(None, reasons, attempts)

    @staticmethod
    def _read(text: str, parents: list[GraphSpec], taken: dict[str, str]) -> tuple[GraphSpec | None, list[str]]:
        try:
            data = json.loads(text)
        except ValueError:
            data = first_json_object(text)
            if not (isinstance(data, dict) and "nodes" in data):
                if text.lstrip().startswith("{"):
                    return None, ["the reply is not complete JSON (was it cut off? keep the graph small)"]
                return None, ["the reply contains no JSON object"]
        try:
            spec, problems = spec_from_proposal(data, parents)
        except (SpecError, ValidationError) as exc:
            return None, [str(exc)]
        if spec is not None:
            same = taken.get(graph_hash(spec))
            if same is not None:
                return None, [f"the graph has the same structure as {same!r}, which was already tried; propose a different one"]
        return spec, problems
