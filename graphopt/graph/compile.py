"""Compiling a valid GraphSpec into a LangGraph `StateGraph`: one optimizer step = one `ainvoke`.

Each spec node becomes one async LangGraph node that reads its input ports from the state
(see `graphopt.graph.state`), runs its operator and writes each output to the channels of the
ports it feeds. A node waits for all of its upstream nodes (a LangGraph join edge), so nodes
of the same depth run concurrently on the event loop. The step's `StepContext` (LM client,
task, minibatch) travels in the run config, `config["configurable"]["graphopt_ctx"]`, never in
a global.

Example:
    >>> from graphopt.graph.io import load_graph
    >>> compiled = compile_graph(load_graph("tgd"))
    >>> type(compiled.graph).__name__
    'CompiledStateGraph'
"""

from __future__ import annotations

__all__ = ["CTX_KEY", "StepResult", "CompiledOptimizer", "compile_graph"]

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from ..errors import CompileError, GraphoptError, RunError, SpecError, is_bug
from ..lm import sample_place
from ..operators.base import Dropped, Operator, StepContext
from ..operators.registry import get_operator
from ..types import Attempt, Trace
from ..program.model import Program
from .spec import INPUT_NODE, GraphSpec, NodeSpec
from .state import OUTPUTS_KEY, REDUCERS, is_port_value, state_schema, summarize
from .validate import check

CTX_KEY = "graphopt_ctx"


@dataclass
class StepResult:
    """What one optimizer step produced.

    Attributes:
        candidates: the exit node's Candidates output, best first when the graph ranks them.
        dropped: replies the nodes could not use, each with its node and reason.
        node_outputs: node id -> {port: summary of its value, "seconds": run time}.
    """

    candidates: list[Program]
    dropped: list[Dropped] = field(default_factory=list)
    node_outputs: dict[str, Any] = field(default_factory=dict)


class CompiledOptimizer:
    """A compiled optimizer graph. `graph` is the LangGraph object; `step` runs it once.

    Attributes:
        spec: the spec it was compiled from.
        graph: a `langgraph.graph.state.CompiledStateGraph`, usable on its own with
            `graph.ainvoke(compiled.initial_state(...), config=compiled.config(ctx))`.
        operators: node id -> the operator instance (params and prompt overrides applied).
        exit: the id of the exit node; `exit_port` its Candidates output.
    """

    def __init__(self, spec: GraphSpec, graph: Any, operators: dict[str, Operator], exit_node: str, exit_port: str):
        self.spec = spec
        self.graph = graph
        self.operators = operators
        self.exit = exit_node
        self.exit_port = exit_port

    def initial_state(self, program: Program, traces: list[Trace], history: list[Attempt]) -> dict[str, Any]:
        """The state a step starts from: the `input` ports' values put on the channels they feed."""
        values: dict[str, Any] = {"program": [program], "traces": list(traces), "history": list(history)}
        state: dict[str, Any] = {OUTPUTS_KEY: {INPUT_NODE: values}}
        for edge in self.spec.edges:
            if edge.source_node != INPUT_NODE:
                continue
            value = values[edge.source_port]
            if edge.target in state:  # two input ports feeding one many-edge port
                port = self.operators[edge.target_node].inputs[edge.target_port]
                value = REDUCERS[port.type](state[edge.target], value)
            state[edge.target] = value
        return state

    def config(self, ctx: StepContext) -> RunnableConfig:
        """The run config carrying `ctx` to every node."""
        return {"configurable": {CTX_KEY: ctx}, "recursion_limit": len(self.operators) + 10}

    async def step(
        self, ctx: StepContext, program: Program, traces: list[Trace], history: list[Attempt]
    ) -> StepResult:
        """Runs the graph once on the current program, its minibatch traces and the history.

        Raises:
            BudgetExceeded: a budget cap was reached inside a node.
            RunError: a node failed or returned values that do not match its declared outputs.
        """
        final = await self.graph.ainvoke(self.initial_state(program, traces, history), config=self.config(ctx))
        outputs = final.get(OUTPUTS_KEY, {})
        for node_id, values in outputs.items():
            if node_id in self.operators:  # summaries again, now with every minibatch score known
                op = self.operators[node_id]
                fresh = {port: summarize(op.outputs[port].type, v, ctx.scores) for port, v in values.items()}
                ctx.node_outputs[node_id] = {**ctx.node_outputs.get(node_id, {}), **fresh}
        exit_outputs = outputs.get(self.exit, {})
        return StepResult(
            candidates=list(exit_outputs.get(self.exit_port, [])),
            dropped=list(ctx.dropped),
            node_outputs=dict(ctx.node_outputs),
        )


def _make_node(node: NodeSpec, op: Operator, ports: list[str], feeds: dict[str, list[str]]):
    """The LangGraph node function of one spec node.

    Args:
        node: the spec node.
        op: its operator instance.
        ports: its connected input ports (their channels are "<node>.<port>").
        feeds: output port -> the input channels it feeds downstream.
    """

    async def run_node(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        ctx: StepContext = config["configurable"][CTX_KEY]
        inputs = {port: state[f"{node.id}.{port}"] for port in ports if f"{node.id}.{port}" in state}
        started = time.perf_counter()
        try:
            with sample_place(node.id):
                outputs = await op.run(ctx, inputs)
        except GraphoptError:
            raise
        except Exception as exc:
            if is_bug(exc):
                raise  # graphopt's own code failed: reported as a bug, not as a failing graph
            raise RunError(f"node {node.id} ({node.op}) failed: {type(exc).__name__}: {exc}") from exc
        _check_outputs(node, op, outputs)
        summary: dict[str, Any] = {port: summarize(op.outputs[port].type, v, ctx.scores) for port, v in outputs.items()}
        summary["seconds"] = round(time.perf_counter() - started, 3)
        ctx.node_outputs[node.id] = summary
        update: dict[str, Any] = {OUTPUTS_KEY: {node.id: outputs}}
        for port, channels in feeds.items():
            for channel in channels:
                update[channel] = outputs[port]
        return update

    run_node.__name__ = f"run_{node.id}"
    return run_node


def _check_outputs(node: NodeSpec, op: Operator, outputs: Any) -> None:
    if not isinstance(outputs, dict) or set(outputs) != set(op.outputs):
        got = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
        raise RunError(f"node {node.id} ({node.op}) returned {got}; it declares outputs {sorted(op.outputs)}")
    for port, value in outputs.items():
        if not is_port_value(op.outputs[port].type, value):
            raise RunError(
                f"node {node.id} ({node.op}): output {port!r} should be {op.outputs[port].type}, "
                f"got {type(value).__name__}"
            )


def _build(spec: GraphSpec) -> CompiledOptimizer:
    operators = {n.id: get_operator(n.op)(n.id, n.params, n.prompts) for n in spec.nodes}
    ports: dict[str, list[str]] = defaultdict(list)
    feeds: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    upstream: dict[str, set[str]] = defaultdict(set)
    for edge in spec.edges:
        if edge.target_port not in ports[edge.target_node]:
            ports[edge.target_node].append(edge.target_port)
        if edge.source_node != INPUT_NODE:
            feeds[edge.source_node][edge.source_port].append(edge.target)
            upstream[edge.target_node].add(edge.source_node)
    exit_node = next(n.id for n in spec.nodes if not feeds[n.id])
    exit_port = next(p for p, port in operators[exit_node].outputs.items() if port.type == "Candidates")

    builder = StateGraph(state_schema(spec))
    for node in spec.nodes:
        builder.add_node(node.id, _make_node(node, operators[node.id], ports[node.id], feeds[node.id]))
    for node in spec.nodes:
        before = sorted(upstream[node.id])
        if not before:
            builder.add_edge(START, node.id)
        elif len(before) == 1:
            builder.add_edge(before[0], node.id)
        else:
            builder.add_edge(before, node.id)  # waits for all of them
    builder.add_edge(exit_node, END)
    return CompiledOptimizer(spec, builder.compile(name=spec.name), operators, exit_node, exit_port)


def compile_graph(spec: GraphSpec) -> CompiledOptimizer:
    """Checks a spec and builds its LangGraph `StateGraph`.

    Args:
        spec: the optimizer graph.

    Returns:
        The compiled optimizer; run one step with `await compiled.step(ctx, program, traces, history)`.

    Raises:
        SpecError: the spec is invalid (every problem listed, naming its node, edge or port).
        CompileError: LangGraph refused a spec that passed validation (named with its reason).
    """
    check(spec)
    try:
        return _build(spec)
    except (SpecError, CompileError):
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise CompileError(f"graph {spec.name!r} could not be compiled: {exc}") from exc
