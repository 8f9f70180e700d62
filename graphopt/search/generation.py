"""One generation of proposals: journal -> register -> evaluate, for the structure and prompt phases.

A generation is a list of proposal slots, each with a journal key. The slots the journal does not
know are planned (by the caller, in slot order: which proposer, which parents) and proposed
together (the meta model's calls overlap). Then, in slot order, each slot's outcome is journaled
and its graph registered: the journal's outcome for a slot made before a resume, the proposal's
for the others; a slot a budget cap cut is not journaled (a resume with more budget proposes
again). A proposal some of whose model calls failed at the provider (past the client's retries) is
made again, `provider_retries` times, from a fresh plan of its slot; one that still has failed calls
is neither journaled nor registered (a failure is never a decision: a resume proposes again), and
the run stops once failed calls pass `max_error_rate`. The registered graphs are evaluated
together, raced when the caller gives a race key.
"""

from __future__ import annotations

__all__ = ["Generation", "run_generation"]

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExceeded, RunError
from ..graph.spec import GraphSpec
from .evaluator import Evaluator
from ..store.events import ProposalMade
from .fitness import EvalRequest, Fitness
from .proposal import Proposed, Proposer, Slot


@dataclass
class Generation:
    """What a generation gave.

    Attributes:
        results: (slot index, fitness) of every graph evaluated, in slot order.
        proposed: the slot's new proposal, by slot index (slots taken from the journal have none).
        rejected: slots that gave no graph (new or journaled).
        stop: the budget message when a cap cut a proposal, else "".
        unmade: slots whose proposal still had model calls failed at the provider (not journaled).
    """

    results: list[tuple[int, Fitness]] = field(default_factory=list)
    proposed: dict[int, Proposed] = field(default_factory=dict)
    rejected: int = 0
    stop: str = ""
    unmade: int = 0


async def run_generation(
    evaluator: Evaluator,
    keys: Sequence[str],
    plan: Callable[[str], tuple[Proposer, Slot]],
    *,
    generation: int = 0,
    race: str | None = None,
) -> Generation:
    """Proposes, journals, registers and evaluates one generation (see the module docstring).

    Args:
        keys: the slots' journal keys, in slot order.
        plan: the proposer and slot of a key the journal does not know (called in slot order).
        generation: the generation number the graphs are registered with.
        race: race the graphs under this key (see `racing`); None evaluates them all.

    Raises:
        LLMError: a fatal provider error in a proposal or an evaluation.
    """
    made = await _propose({i: plan(key) for i, key in enumerate(keys) if evaluator.journal.get(key) is None})
    for _ in range(evaluator.provider_retries):
        again = [i for i, proposal in made.items() if provider_failures(proposal)]
        if not again:
            break
        evaluator.check_error_rate("a proposal's model calls failed at the provider")
        made.update(await _propose({i: plan(keys[i]) for i in again}))
    out = Generation()
    # Registering and journaling write the store: in a worker thread, off the event loop.
    requests, owners = await asyncio.to_thread(_register, evaluator, keys, made, generation, out)
    if out.unmade:
        evaluator.check_error_rate(f"{out.unmade} proposal(s) whose model calls failed at the provider")
    fitness = await evaluator.evaluate_many(requests, race=race is not None, key=race or "")
    out.results = list(zip(owners, fitness))
    return out


async def _propose(planned: dict[int, tuple[Proposer, Slot]]) -> dict[int, Any]:
    """Each planned slot's proposal (or the exception it raised), by slot index."""
    # Tasks start in the order they are created: the proposals without model calls finish in slot order.
    made = await asyncio.gather(*(proposer.propose(slot) for proposer, slot in planned.values()), return_exceptions=True)
    return dict(zip(planned, made))


def provider_failures(proposal: Any) -> int:
    """How many of a proposal's model calls failed at the provider past the client's retries."""
    usage = proposal.usage if isinstance(proposal, Proposed) else None
    return sum(int(level.get("failures", 0)) for level in (usage or {}).get("levels", {}).values())


def _register(
    evaluator: Evaluator, keys: Sequence[str], made: dict[int, Any], generation: int, out: Generation
) -> tuple[list[EvalRequest], list[int]]:
    """The slots' graphs as registered requests (and the slot of each), in slot order, each journaled."""
    requests, owners = [], []
    journal = evaluator.journal
    for i, key in enumerate(keys):
        proposal = made.get(i)
        if isinstance(proposal, BudgetExceeded):
            out.stop = out.stop or str(proposal)  # not journaled: a resume proposes again
            continue
        if isinstance(proposal, BaseException):
            raise proposal
        if provider_failures(proposal):
            out.unmade += 1  # not journaled: a resume proposes again
            continue
        if proposal is None:  # made before a resume: the journal has its outcome
            entry = journal.get(key)
            if isinstance(entry, ProposalMade):
                requests.append(_replayed(evaluator, entry))
                owners.append(i)
            else:
                out.rejected += 1
            continue
        out.proposed[i] = proposal
        if proposal.spec is None:
            out.rejected += 1
            journal.rejected(key, proposal.origin, list(proposal.reasons))
            continue
        request = EvalRequest(proposal.spec, proposal.parents, proposal.origin, proposal.mutation, generation, charged=proposal.usage)
        row = evaluator.run.register(request.spec, parents=request.parents, origin=request.origin, mutation=request.mutation, generation=generation)
        journal.accepted(key, row.id, proposal.origin, proposal.usage)
        requests.append(request)
        owners.append(i)
    return requests, owners


def _replayed(evaluator: Evaluator, entry: ProposalMade) -> EvalRequest:
    """The request that registered a journaled candidate, with the usage of the proposal that made it."""
    row = evaluator.run.store.candidate(entry.candidate)
    if row is None:
        raise RunError(f"the run's journal names candidate {entry.candidate!r}, which the store lacks")
    return EvalRequest(
        GraphSpec.model_validate(row.spec), tuple(row.parents or ()), row.origin, row.mutation, row.generation,
        charged=entry.usage,
    )
