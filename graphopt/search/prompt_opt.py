"""The meta prompt optimizer: the meta model rewrites each LLM-backed node's prompts for the task.

For every node whose operator calls the optimizer model, the meta model sees the node's role, its
current prompt, sampled train examples, and what the node produced in recent inner-loop runs
(and whether those steps improved the program), and proposes an edited prompt. A candidate graph
carries the edits of every such node; it is scored by the inner loop and kept if it beats the
current graph on validation.
"""

from __future__ import annotations

__all__ = ["META_PROMPT", "MetaPromptOptimizer", "PromptEdit"]

import asyncio
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import LLMError
from ..graph.spec import GraphSpec, NodeSpec
from ..graph.validate import validate
from ..lm import LM, sample_place, usage_scope
from ..operators.base import Operator, Prompt
from ..operators.registry import get_operator
from ..tasks.base import Task
from ..templates import escape_stray_braces, prompt_placeholders, restore_placeholders
from .evaluator import Evaluator
from .fitness import Fitness
from .generation import run_generation
from .journal import keyed_rng
from .llm_mutation import is_context_overflow
from .proposal import Proposed, Slot

META_PROMPT = Prompt(
    """You improve one prompt of an automatic prompt optimizer. The optimizer is a graph of nodes;
this node is "{node_id}", operator "{op}": {description}
This prompt ("{prompt_name}") is used {prompt_doc}

The optimizer improves a program for this task. Sample training examples:
{examples}

What this node produced in recent optimizer steps:
{recent}

Current prompt:
<<<
{prompt}
>>>

Write an improved version of this prompt, specific to the task above. Keep every placeholder
exactly as written, in braces: {placeholders}. Reply with JSON {{"prompt": "..."}}.""",
    doc="Asks the meta model for an edited node prompt.",
)

_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "edited_prompt",
        "schema": {
            "type": "object",
            "properties": {"prompt": {"type": "string"}},
            "required": ["prompt"],
        },
    },
}




@dataclass
class PromptEdit:
    """One proposed edit of one node prompt, kept or dropped."""

    node: str
    prompt_name: str
    old: str
    new: str
    accepted: bool
    reason: str = ""


@dataclass
class MetaPromptResult:
    """A graph's meta prompt optimization: the best graph, every candidate tried, every edit;
    `stalled` once a round gained nothing (no more rounds go to it)."""

    best: Fitness
    tried: list[Fitness] = field(default_factory=list)
    edits: list[PromptEdit] = field(default_factory=list)
    stalled: bool = False


def llm_nodes(spec: GraphSpec) -> list[tuple[NodeSpec, Operator, list[str]]]:
    """The nodes whose operator calls the optimizer model, with their operator instance and the
    prompts they render in this graph's wiring (the only ones worth editing)."""
    wired: dict[str, set[str]] = {}
    for edge in spec.edges:
        wired.setdefault(edge.target_node, set()).add(edge.target_port)
    out = []
    for node in spec.nodes:
        operator = get_operator(node.op)(node.id, node.params, node.prompts)
        names = [name for name in operator.prompts if name in operator.rendered_prompts(wired.get(node.id, set()))]
        if operator.kind == "llm" and names:
            out.append((node, operator, names))
    return out


def _recent_outputs(node_id: str, history: list[dict[str, Any]], limit: int = 3) -> str:
    lines = []
    for step in history[-limit:]:
        produced = (step.get("node_outputs") or {}).get(node_id)
        if produced is None:
            continue
        improved = "improved the program" if step.get("accepted") else "did not improve the program"
        text = json.dumps(produced, ensure_ascii=False, default=str)
        lines.append(f"- step {step.get('step')}: {text[:600]} ({improved})")
    return "\n".join(lines) or "- (no runs recorded yet)"


def _examples_text(task: Task, rng: random.Random, n: int = 3) -> str:
    sample = rng.sample(task.train, min(n, len(task.train)))
    return "\n".join(f"- input: {ex.input[:300]}\n  answer: {ex.target[:100]}" for ex in sample)


class MetaPromptOptimizer:
    """Edits the prompts of a graph's LLM-backed nodes for a task.

    Args:
        lm: the client; proposals use its "meta" level.
        iterations: rounds of proposals; each round starts from the best graph so far.
        candidates: candidate graphs per round.
        template: the meta prompt (editable data).
    """

    def __init__(self, lm: LM, *, iterations: int = 1, candidates: int = 1, template: Prompt = META_PROMPT):
        self.lm = lm
        self.iterations = iterations
        self.candidates = candidates
        self.template = template

    async def propose_prompt(
        self, node: NodeSpec, operator: Operator, prompt_name: str, task: Task, history: list[dict], rng: random.Random
    ) -> PromptEdit:
        """One meta call: an edited text for one prompt of one node, checked before use."""
        current = operator.prompt_texts[prompt_name]
        needed = prompt_placeholders(current)
        message = self.template.fill(
            node_id=node.id,
            op=node.op,
            description=operator.description or operator.name,
            prompt_name=prompt_name,
            prompt_doc=(operator.prompts[prompt_name].doc or "by this node").rstrip(".") + ".",
            examples=_examples_text(task, rng),
            recent=_recent_outputs(node.id, history),
            prompt=current,
            placeholders=", ".join("{" + p + "}" for p in sorted(needed)) or "(none)",
        )
        reply = await self.lm.complete("meta", [{"role": "user", "content": message}], response_format=_SCHEMA)
        text = _parse_prompt(reply.text)
        if text is None:
            return PromptEdit(node.id, prompt_name, current, reply.text, False, "reply has no usable prompt")
        text = escape_stray_braces(text, needed)
        text, restored = restore_placeholders(text, current, needed)
        if text.strip() == current.strip():
            return PromptEdit(node.id, prompt_name, current, text, False, "unchanged")
        note = f"re-added the lines of {sorted(restored)}" if restored else ""
        return PromptEdit(node.id, prompt_name, current, text, True, note)

    async def optimize(
        self,
        start: Fitness,
        evaluator: Evaluator,
        task: Task,
        rng: random.Random | None = None,
        *,
        generation: int = 0,
    ) -> MetaPromptResult:
        """Rounds of prompt edits from `start` (an evaluated graph); returns the best graph found.

        Args:
            rng: seeds the sampled train examples; default: derived from the evaluator's seed.
        """
        (result,) = await self.optimize_many([start], evaluator, task, rng, generation=generation)
        return result

    async def optimize_many(
        self,
        starts: list[Fitness],
        evaluator: Evaluator,
        task: Task,
        rng: random.Random | None = None,
        *,
        generation: int = 0,
    ) -> list[MetaPromptResult]:
        """`optimize` for several graphs at once, in lockstep rounds.

        A round is one generation (`generation.run_generation`): every graph's candidates make
        their meta calls (every prompt of every node) together, then are registered in (graph,
        candidate) order and evaluated together, so store ids do not depend on which call
        returned first. Each candidate has a journal key, so a resumed search takes it from the
        store instead of asking again. A graph whose round gained nothing gets no further rounds.
        Stops early, keeping what it has, when a budget is reached.
        """
        base_seed = rng.getrandbits(64) if rng is not None else evaluator.seed
        results = [MetaPromptResult(best=start) for start in starts]
        for round_no in range(self.iterations):
            work = [  # (result, key): a candidate of each graph still improving, `candidates` each
                (result, f"prompt/{result.best.candidate_id}/r{round_no}/c{i}")
                for result in results if result.best.ok and not result.stalled and llm_nodes(result.best.spec)
                for i in range(self.candidates)
            ]
            if not work:
                break
            slots = {key: Slot(key, base_seed, [result.best], task=task) for result, key in work}
            made = await run_generation(evaluator, list(slots), lambda key: (self, slots[key]), generation=generation)
            before = {id(r): r.best for r in results}
            for i, proposed in made.proposed.items():
                work[i][0].edits.extend(proposed.edits)
            for i, fitness in made.results:
                result = work[i][0]
                result.tried.append(fitness)
                if fitness.ok and fitness.val_score > result.best.val_score:
                    result.best = fitness
            for result in results:  # where the edits gained nothing, no more meta calls go
                result.stalled = result.stalled or result.best is before[id(result)]
            if made.stop or evaluator.exhausted:
                break
        return results

    async def propose(self, slot: Slot) -> Proposed:
        """The prompt-edit proposer: the slot's parent with every prompt of every LLM node edited
        at once, with the usage of its meta calls (charged to the candidate)."""
        (base,) = slot.parents
        pairs = [(node, op, name) for node, op, names in llm_nodes(base.spec) for name in names]
        with usage_scope() as spent, sample_place(slot.key):
            edits = list(await asyncio.gather(*(
                self._edit(node, op, name, slot.task, base.history, keyed_rng(slot.seed, f"{slot.key}/{node.id}/{name}"))
                for node, op, name in pairs
            )))
        kept = [e for e in edits if e.accepted]
        lineage = ("prompt_opt", None, (base.candidate_id,), "meta_prompt")
        if not kept:
            return Proposed(*lineage, ("no usable prompt edit",), {}, tuple(edits))
        candidate = _apply(base.spec, kept)
        problems = validate(candidate)
        if problems:
            for e in kept:
                e.accepted, e.reason = False, "graph invalid after edit: " + problems[0]
            return Proposed(*lineage, ("graph invalid after edit: " + problems[0],), {}, tuple(edits))
        return Proposed("prompt_opt", candidate, (base.candidate_id,), "meta_prompt", (), spent.to_dict(), tuple(edits))

    async def _edit(self, node: NodeSpec, op: Operator, name: str, task: Task, history: list[dict], rng: random.Random) -> PromptEdit:
        try:
            return await self.propose_prompt(node, op, name, task, history, rng)
        except LLMError as exc:
            if exc.fatal and not is_context_overflow(exc):
                raise
            return PromptEdit(node.id, name, op.prompt_texts[name], "", False, f"meta call failed: {exc}")


def _apply(spec: GraphSpec, edits: list[PromptEdit]) -> GraphSpec:
    by_node: dict[str, dict[str, str]] = {}
    for edit in edits:
        by_node.setdefault(edit.node, {})[edit.prompt_name] = edit.new
    nodes = [
        n.model_copy(update={"prompts": {**n.prompts, **by_node[n.id]}}) if n.id in by_node else n
        for n in spec.nodes
    ]
    name = spec.name if spec.name.endswith("+prompts") else f"{spec.name}+prompts"
    return spec.model_copy(update={"nodes": nodes, "name": name})


def _parse_prompt(text: str) -> str | None:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        match = re.search(r"\{.*\}", text or "", re.S)
        if not match:
            return None
        try:
            data = json.loads(match.group())
        except json.JSONDecodeError:
            return None
    if isinstance(data, dict) and isinstance(data.get("prompt"), str) and len(data["prompt"].strip()) >= 20:
        return data["prompt"].strip()
    return None


