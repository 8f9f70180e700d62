"""The search's journal of proposals: which graph each proposal slot produced, kept in the store.

Every place where the search asks for a new graph (a child slot of a generation, a prompt-edit
candidate of a round) has a key such as ``"gen2/child1"``. The first time, the proposal is made
(perhaps by the meta model) and its outcome written as an event: the candidate it registered, or
the reasons it was rejected. A resumed search finds the key and takes the outcome from the store
instead of asking again, so it rebuilds the same population whether or not the response cache
still has the meta model's replies.
"""

from __future__ import annotations

__all__ = ["Journal", "keyed_rng"]

import random
from typing import Any

from ..store import RunStore

_KINDS = ("proposal", "rejected_proposal")


def keyed_rng(base: int, key: str) -> random.Random:
    """A generator seeded by (base, key): the same draws for a slot however the run got there."""
    return random.Random(f"{base}/{key}")


class Journal:
    """Proposal outcomes by key, read from the store once and appended as they happen."""

    def __init__(self, store: RunStore):
        self.store = store
        self.entries: dict[str, dict[str, Any]] = {}
        for event in store.events():
            payload = event.payload
            if event.kind in _KINDS and isinstance(payload, dict) and isinstance(payload.get("key"), str):
                self.entries[payload["key"]] = {**payload, "accepted": event.kind == "proposal"}

    def get(self, key: str) -> dict[str, Any] | None:
        """The recorded outcome of a slot: {"accepted": bool, "candidate"?, "kind", "reasons"?}."""
        return self.entries.get(key)

    def accepted(self, key: str, candidate_id: str, kind: str, usage: dict[str, Any] | None = None) -> None:
        """Records the candidate a slot produced and what making it cost (`Ledger.to_dict()`)."""
        payload = {"key": key, "candidate": candidate_id, "kind": kind, **({"usage": usage} if usage else {})}
        self.store.add_event("proposal", payload)
        self.entries[key] = {**payload, "accepted": True}

    def rejected(self, key: str, kind: str, reasons: list[str]) -> None:
        payload = {"key": key, "kind": kind, "reasons": [r[:500] for r in reasons[:5]]}
        self.store.add_event("rejected_proposal", payload)
        self.entries[key] = {**payload, "accepted": False}
