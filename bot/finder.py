"""`/lead find`'s search: every list's index (one CSV export per list per FIND_INDEX_MAX_AGE_S, shared with the
uid/number lookups), searched in a worker thread, then one hopper read per campaign whose list has a match shown.

Never a GET per lead. Lists are searched a few at a time; a list that cannot be exported is named in the reply,
the others are still searched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from babelforce import errors
from babelforce.ids import normalize_id
from babelforce.lookup import IndexedLead, LeadIndex, SearchResult
from babelforce.models import Campaign, HopperEntry, LeadList
from commands.find import SHOWN_MAX, FindLeads, FindReport, FoundLead, Hopper

if TYPE_CHECKING:
    from .service import LeadService

log = logging.getLogger(__name__)

#: A list's index is exported again once it is this old (lookups by uid or number use it at any age: they confirm
#: every hit with a GET). Rank and status in a find reply are at most this old; Show reads the lead live.
FIND_INDEX_MAX_AGE_S = 300.0
#: Exports downloaded and parsed at once: a few keep the network busy without holding many big lists half-built.
FIND_CONCURRENCY = 4
DEFAULT_MAX_LISTS = 50


@dataclass(frozen=True, slots=True)
class _Searched:
    lead_list: LeadList
    result: SearchResult
    has_data: bool
    built_at: float


class Finder:
    """The search behind /lead find, over at most `max_lists` lists (LEADBOT_FIND_MAX_LISTS)."""

    def __init__(self, service: LeadService, max_lists: int = DEFAULT_MAX_LISTS) -> None:
        self.service = service
        self.max_lists = max_lists

    async def find(self, command: FindLeads) -> FindReport:
        campaigns = await self._campaigns()
        if command.list_ref:
            lists, left_out = [await self.service.resolve_list(command.list_ref)], 0
        else:
            every = _dialled_first(await self.service.all_lists(), campaigns)
            lists, left_out = every[: self.max_lists], max(0, len(every) - self.max_lists)
        gate = asyncio.Semaphore(FIND_CONCURRENCY)
        outcomes = await asyncio.gather(*(self._search(gate, lead_list, command) for lead_list in lists))
        searched = [outcome for outcome in outcomes if isinstance(outcome, _Searched)]
        failed = tuple((lists[n].name, outcome) for n, outcome in enumerate(outcomes) if isinstance(outcome, str))
        exact = [(s.lead_list, lead) for s in searched for lead in s.result.leads[: s.result.exact]]
        rest = [(s.lead_list, lead) for s in searched for lead in s.result.leads[s.result.exact :]]
        shown = (exact + rest)[:SHOWN_MAX]
        now = time.monotonic()
        return FindReport(
            text=command.text,
            matches=await self._with_hopper(shown, campaigns),
            total=sum(s.result.total for s in searched),
            searched=tuple(s.lead_list.name for s in searched),
            list_ref=command.list_ref,
            left_out=left_out,
            max_lists=self.max_lists,
            failed=failed,
            without_data=tuple(s.lead_list.name for s in searched if not s.has_data),
            oldest_s=max((now - s.built_at for s in searched), default=None),
        )

    async def _search(self, gate: asyncio.Semaphore, lead_list: LeadList, command: FindLeads) -> _Searched | str:
        """One list searched, or why it could not be (a few words, for the reply)."""
        client = self.service.client
        try:
            async with gate:
                index = await client.lead_index(lead_list.id, max_age=FIND_INDEX_MAX_AGE_S)
        except errors.BabelforceError as failure:
            log.warning("/lead find could not export list %s: %s", lead_list.id, failure)
            return _why(failure)
        result = await asyncio.to_thread(_search_index, index, command)
        return _Searched(lead_list, result, index.has_data, index.built_at)

    async def _campaigns(self) -> list[Campaign] | None:
        """The campaign directory (cached), or None when babelforce cannot say which campaign dials which list."""
        try:
            return await self.service.campaigns()
        except errors.BabelforceError as failure:
            log.warning("/lead find could not read the campaigns: %s", failure)
            return None

    async def _with_hopper(
        self, shown: list[tuple[LeadList, IndexedLead]], campaigns: list[Campaign] | None
    ) -> tuple[FoundLead, ...]:
        """Each match with its hopper position: one hopper read per campaign involved, not one per match."""
        dialling = {
            campaign.lead_list.id: campaign
            for campaign in campaigns or ()
            if campaign.active and campaign.lead_list is not None
        }
        involved = {dialling[lead_list.id].id for lead_list, _ in shown if lead_list.id in dialling}
        read = await asyncio.gather(
            *(self.service.client.get_hopper(campaign_id) for campaign_id in involved), return_exceptions=True
        )
        hoppers: dict[str, _Positions | None] = {}
        sizes: dict[str, int] = {}
        for campaign_id, hopper in zip(involved, read, strict=True):
            if isinstance(hopper, errors.BabelforceError):
                log.warning("/lead find could not read the hopper of campaign %s: %s", campaign_id, hopper)
                hoppers[campaign_id] = None
            elif isinstance(hopper, BaseException):
                raise hopper
            else:
                hoppers[campaign_id] = _Positions.of(hopper)
                sizes[campaign_id] = len(hopper)
        found = []
        for lead_list, lead in shown:
            campaign = dialling.get(lead_list.id)
            if campaigns is None:
                found.append(FoundLead(lead_list.id, lead_list.name, lead, Hopper.UNKNOWN))
            elif campaign is None:
                found.append(FoundLead(lead_list.id, lead_list.name, lead, Hopper.NOT_DIALLED))
            elif (positions := hoppers.get(campaign.id)) is None:
                found.append(FoundLead(lead_list.id, lead_list.name, lead, Hopper.UNKNOWN))
            elif (position := positions.of_lead(lead.id, lead_list.id, lead.uid)) is not None:
                found.append(FoundLead(lead_list.id, lead_list.name, lead, Hopper.IN, position, sizes.get(campaign.id)))
            elif positions.unnamed:  # the lead may be one of the entries that name no lead
                found.append(FoundLead(lead_list.id, lead_list.name, lead, Hopper.UNKNOWN))
            else:
                found.append(FoundLead(lead_list.id, lead_list.name, lead, Hopper.OUT, None, sizes.get(campaign.id)))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class _Positions:
    """One hopper read as positions: an entry is a lead by its id, else by its list id + uid (HopperEntry.is_lead);
    `unnamed`: entries that name no lead, so a lead not found may still be loaded."""

    by_id: dict[str, int]
    by_list_uid: dict[tuple[str, str], int]
    unnamed: int

    @classmethod
    def of(cls, hopper: list[HopperEntry]) -> _Positions:
        by_id: dict[str, int] = {}
        by_list_uid: dict[tuple[str, str], int] = {}
        unnamed = 0
        for n, entry in enumerate(hopper, 1):
            position = entry.order if entry.order is not None else n
            if entry.id is not None:
                by_id.setdefault(entry.id, position)
            elif entry.list_id is not None and entry.uid is not None:
                by_list_uid.setdefault((entry.list_id, entry.uid), position)
            else:
                unnamed += 1
        return cls(by_id, by_list_uid, unnamed)

    def of_lead(self, lead_id: str, list_id: str, uid: str | None) -> int | None:
        position = self.by_id.get(lead_id)
        if position is None and uid is not None:
            position = self.by_list_uid.get((list_id, uid))
        return position


def _search_index(index: LeadIndex, command: FindLeads) -> SearchResult:
    return index.search(
        command.text, number=command.number, lead_id=normalize_id(command.text.strip()), limit=SHOWN_MAX
    )


def _dialled_first(lists: list[LeadList], campaigns: list[Campaign] | None) -> list[LeadList]:
    """Lists an active campaign dials first (the customer who calls back was most likely called from one), then the
    rest; each by name."""
    dialled = {c.lead_list.id for c in campaigns or () if c.active and c.lead_list is not None}
    return sorted(lists, key=lambda lead_list: (lead_list.id not in dialled, lead_list.name.casefold()))


def _why(failure: errors.BabelforceError) -> str:
    """Why a list could not be searched, in a few words."""
    if isinstance(failure, errors.NotFoundError):
        return "babelforce no longer has it"
    if isinstance(failure, errors.PermissionDeniedError):
        return "the babelforce account may not export it"
    if isinstance(failure, errors.ServerError) and failure.operation == "export_csv" and failure.status_code == 200:
        return "its export could not be read"
    return f"its export failed ({errors.short_reason(failure)})"
