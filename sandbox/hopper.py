"""The dialer's hopper as pure functions: which leads are dialable, in what order, and how a refill works.

Kept apart from the HTTP layer and the state so the ordering rules can be checked as properties on their own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

LIST_ORDERS = ("UP", "DOWN", "UP RANK", "DOWN RANK")

# Leads still to be dialled. Final outcomes (sale, do_not_call, not_interested, ...) are never loaded.
DIALABLE_STATUSES = frozenset({"pending", "new", "callback"})


class HopperLead(Protocol):
    """What the hopper needs to know about a lead (satisfied by `sandbox.state.Lead`)."""

    id: str
    uid: str
    list_id: str
    number: str
    rank: int
    seq: int
    status: str
    call_count: int
    called_since_reset: bool


@dataclass(slots=True, frozen=True)
class HopperEntry:
    """A lead as it was when loaded: later updates to the lead do not touch its entry (the article's point)."""

    lead_id: str
    uid: str
    list_id: str
    number: str
    status: str
    count: int


def is_dialable(lead: HopperLead) -> bool:
    """A lead the dialer may load: a dialable status and not dialled since it was (re)loaded."""
    return lead.status in DIALABLE_STATUSES and not lead.called_since_reset


def order_key(list_order: str) -> Callable[[HopperLead], tuple[int, ...]]:
    """Sort key putting the lead to dial first smallest; `seq` is insertion order and breaks rank ties."""
    if list_order == "UP":
        return lambda lead: (-lead.seq,)
    if list_order == "DOWN":
        return lambda lead: (lead.seq,)
    if list_order == "UP RANK":
        return lambda lead: (-lead.rank, lead.seq)
    if list_order == "DOWN RANK":
        return lambda lead: (lead.rank, lead.seq)
    raise ValueError(f"unknown list order {list_order!r}")


def entry_for(lead: HopperLead) -> HopperEntry:
    return HopperEntry(lead.id, lead.uid, lead.list_id, lead.number, lead.status, lead.call_count)


def refill(hopper: list[HopperEntry], leads: Iterable[HopperLead], list_order: str, size: int) -> list[HopperEntry]:
    """Return the hopper topped up to `size` with the best dialable leads not already in it.

    Entries already loaded keep their places; new ones are appended in dial order. A hopper that already has
    `size` entries is returned unchanged (never reordered). `heapq.nsmallest` keeps this O(n log k).
    """
    missing = size - len(hopper)
    if missing <= 0:
        return hopper
    loaded = {entry.lead_id for entry in hopper}
    candidates = (lead for lead in leads if lead.id not in loaded and is_dialable(lead))
    best = heapq.nsmallest(missing, candidates, key=order_key(list_order))
    return hopper + [entry_for(lead) for lead in best]
