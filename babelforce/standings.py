"""Every lead's rank and status per list (`ListStandings`), built once per lookup index and kept in step with the
writes made through the client.

Queue positions (`/lead show`, `/lead why`, every write's reply) and the next batch (`/lead hopper`) read the whole
list's standings. Building them from the columnar index is a Python loop over every row (about half a second for
100 000 leads), so they are built once per index and then reused until the index is replaced. A lead written
through the client takes its new rank and status in the place it already had (a DOWN/UP list's load order does not
change with an update); a new lead goes last (it was loaded last); a deleted one leaves.

Every `ListStandings` handed out is a snapshot: a later write makes a new list of leads, never changes one a caller
holds. Bounded: the standings of the `max_lists` most recently used lists, `max_leads` leads in all (the most recent
list is always kept, however big), and only while their index is.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from .ids import normalize_id
from .lookup import LeadIndex, LeadStanding, ListStandings
from .models import Lead

STANDINGS_LISTS = 4  # lists whose standings are kept
STANDINGS_LEADS = 1_000_000  # leads whose standings are kept in all (25 MB per 100 000); the newest list always


@dataclass(slots=True)
class _Entry:
    index: LeadIndex  # the index they were built from: a new index (a new export) makes them stale
    leads: list[LeadStanding]
    has_ranks: bool
    has_statuses: bool
    positions: dict[str, int] | None = None  # lead id -> place in `leads`; built on the first write

    def snapshot(self) -> ListStandings:
        return ListStandings(self.leads, has_ranks=self.has_ranks, has_statuses=self.has_statuses)

    def place_of(self, lead_id: str) -> int | None:
        if self.positions is None:
            self.positions = {standing.id: at for at, standing in enumerate(self.leads)}
        return self.positions.get(lead_id)


@dataclass(slots=True)
class StandingsCache:
    """The standings of a few lists, each valid for one LeadIndex object (see the module docstring)."""

    max_lists: int = STANDINGS_LISTS
    max_leads: int = STANDINGS_LEADS
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _building: dict[str, tuple[LeadIndex, asyncio.Future[ListStandings]]] = field(default_factory=dict)
    _writes: dict[str, int] = field(default_factory=dict)  # writes seen per list: a build they overtook is not kept

    def get(self, list_id: str, index: LeadIndex) -> ListStandings | None:
        """The standings built from this very index (and kept in step since), or None."""
        entry = self._entries.get(list_id)
        if entry is None or entry.index is not index:
            return None
        self._entries.move_to_end(list_id)
        return entry.snapshot()

    async def of(self, list_id: str, index: LeadIndex) -> ListStandings:
        """The standings of this index: kept ones, or built once in a worker thread (concurrent callers share the
        build). A build that a write through the client overtook is returned but not kept (it may have missed it)."""
        kept = self.get(list_id, index)
        if kept is not None:
            return kept
        building = self._building.get(list_id)
        if building is None or building[0] is not index:
            future = asyncio.ensure_future(self._build(list_id, index))
            building = (index, future)
            self._building[list_id] = building
            future.add_done_callback(lambda done: self._built(list_id, done))
        return await asyncio.shield(building[1])

    async def _build(self, list_id: str, index: LeadIndex) -> ListStandings:
        writes = self._writes.get(list_id, 0)
        standings = await asyncio.to_thread(index.standings)
        if self._writes.get(list_id, 0) == writes:
            self._entries[list_id] = _Entry(index, standings.leads, standings.has_ranks, standings.has_statuses)
            self._entries.move_to_end(list_id)
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_lists
                or sum(len(entry.leads) for entry in self._entries.values()) > self.max_leads
            ):
                self._entries.popitem(last=False)
        return standings

    def _built(self, list_id: str, done: asyncio.Future[ListStandings]) -> None:
        building = self._building.get(list_id)
        if building is not None and building[1] is done:
            del self._building[list_id]
        if not done.cancelled():
            done.exception()  # retrieved: a failed build is the awaiting caller's error, not a warning

    def upsert(self, list_id: str, lead: Lead) -> None:
        """A lead added or updated through the client: its new rank and status, in its place (last when new). A
        status the answer did not carry stays as the export had it."""
        self._writes[list_id] = self._writes.get(list_id, 0) + 1
        entry = self._entries.get(list_id)
        if entry is None:
            return
        lead_id = normalize_id(lead.id) or lead.id
        at = entry.place_of(lead_id)
        leads = list(entry.leads)  # a new list: snapshots handed out stay as they were
        if at is None:
            assert entry.positions is not None
            entry.positions[lead_id] = len(leads)
            leads.append(LeadStanding(lead_id, lead.uid or "", lead.rank, lead.status))
        else:
            old = leads[at]
            status = lead.status if lead.status is not None else old.status
            leads[at] = LeadStanding(lead_id, lead.uid or old.uid, lead.rank, status)
        entry.leads = leads

    def discard(self, list_id: str, lead_id: str) -> None:
        """A lead deleted through the client."""
        self._writes[list_id] = self._writes.get(list_id, 0) + 1
        entry = self._entries.get(list_id)
        if entry is None:
            return
        lead_id = normalize_id(lead_id) or lead_id
        if entry.place_of(lead_id) is None:
            return
        entry.leads = [standing for standing in entry.leads if standing.id != lead_id]
        entry.positions = None
