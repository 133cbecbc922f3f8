"""Every lead's rank and status per list (`ListStandings`), kept per lookup index and in step with the writes made
through the client.

Queue positions (`/lead show`, `/lead why`, every write's reply) and the next batch (`/lead hopper`) read the whole
list's standings. They are made from the index's rank and status columns (`LeadIndex.standings`: a few C-level copies,
about a millisecond for 100 000 leads, no step per lead in Python), and kept until the index changes. The index
carries the client's writes (`LeadIndex.upsert` / `discard`): a lead written through the client takes its new rank
and status in the place it already had (a DOWN/UP list's load order does not change with an update); a new lead goes
last (it was loaded last); a deleted one leaves. Standings made before a write are remade from the index after it
(`LeadIndex.version` says when), so they never miss one.

Every `ListStandings` handed out is a snapshot: a later write makes new standings, never changes the ones a caller
holds. Bounded: the standings of the `max_lists` most recently used lists, `max_leads` leads in all (the most recent
list is always kept, however big), and only while their index is.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .lookup import LeadIndex, ListStandings

STANDINGS_LISTS = 4  # lists whose standings are kept
#: Leads whose standings are kept in all (5 bytes a lead beside the index they read ids from); the newest list always.
STANDINGS_LEADS = 1_000_000


@dataclass(slots=True)
class _Entry:
    index: LeadIndex  # the index they were made from: a new index (a new export) makes them stale
    version: int  # the index's version then: a write through the client since makes them stale too
    standings: ListStandings


@dataclass(slots=True)
class StandingsCache:
    """The standings of a few lists, each valid for one LeadIndex object at one version (see the module docstring)."""

    max_lists: int = STANDINGS_LISTS
    max_leads: int = STANDINGS_LEADS
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)

    def get(self, list_id: str, index: LeadIndex) -> ListStandings | None:
        """The standings of this very index, as it is now (remade when it changed since), or None when they were
        not made from it."""
        entry = self._entries.get(list_id)
        if entry is None or entry.index is not index:
            return None
        self._entries.move_to_end(list_id)
        if entry.version != index.version:
            entry.version, entry.standings = index.version, index.standings()
        return entry.standings

    async def of(self, list_id: str, index: LeadIndex) -> ListStandings:
        """The standings of this index: kept ones, or made now (cheap enough for the event loop: see the module
        docstring) and kept."""
        kept = self.get(list_id, index)
        if kept is not None:
            return kept
        version = index.version
        standings = index.standings()
        if index.version == version:  # made at that version (no other thread stored a row meanwhile)
            self._keep(list_id, _Entry(index, version, standings))
        return standings

    def _keep(self, list_id: str, entry: _Entry) -> None:
        self._entries[list_id] = entry
        self._entries.move_to_end(list_id)
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_lists
            or sum(len(kept.standings) for kept in self._entries.values()) > self.max_leads
        ):
            self._entries.popitem(last=False)
