"""The search's journal of proposals: which graph each proposal slot produced, kept in the store.

Every place where the search asks for a new graph (a child slot of a generation, a prompt-edit
candidate of a round) has a key such as ``"gen2/child1"``. The first time, the proposal is made
(perhaps by the meta model) and its outcome written as an event (`ProposalMade`: the candidate
it registered, or `ProposalRejected`: why it gave none). A resumed search finds the key and takes
the outcome from the store instead of asking again, so it rebuilds the same population whether
or not the response cache still has the meta model's replies.
"""

from __future__ import annotations

__all__ = ["Journal", "keyed_rng"]

import random
from typing import Any

from ..store.events import ProposalMade, ProposalRejected
from .run import Run


def keyed_rng(base: int, key: str) -> random.Random:
    """A generator seeded by (base, key): the same draws for a slot however the run got there."""
    return random.Random(f"{base}/{key}")


class Journal:
    """Proposal outcomes by key, read from the run's store once and written through the run."""

    def __init__(self, run: Run):
        self.run = run
        self.entries: dict[str, ProposalMade | ProposalRejected] = {e.key: e for e in run.events(ProposalMade, ProposalRejected)}

    def get(self, key: str) -> ProposalMade | ProposalRejected | None:
        """The recorded outcome of a slot, or None when it was never made."""
        return self.entries.get(key)

    def accepted(self, key: str, candidate_id: str, kind: str, usage: dict[str, Any] | None = None) -> None:
        """Records the candidate a slot produced and what making it cost (`Ledger.to_dict()`)."""
        self._add(ProposalMade(key, candidate_id, kind, usage or None))

    def rejected(self, key: str, kind: str, reasons: list[str]) -> None:
        self._add(ProposalRejected(key, kind, tuple(reasons)))

    def _add(self, event: ProposalMade | ProposalRejected) -> None:
        self.run.add(event)
        self.entries[event.key] = event
