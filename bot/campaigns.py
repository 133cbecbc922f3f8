"""What `/lead campaign` and the Home tab read of the campaigns: every campaign with its hopper's fill, or one
campaign with babelforce's live status and per-agent statistics. No Slack here.

Everything is read live (a campaign stops, a hopper drains): the overview costs 1 request for the campaigns plus 1
per active campaign with a list (its hopper); one campaign costs 1 (the campaigns, to find it by name) plus 3 side
by side (status, statistics, hopper). A part that cannot be read is reported as such, never guessed.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Awaitable
from typing import TypeVar

from babelforce import errors
from babelforce.ids import normalize_id
from babelforce.models import Campaign
from commands.campaign import CampaignDetail, CampaignRow, Part
from commands.fields import quote_input

from .explain import UserFacingError, explain, user_error
from .service import LeadService

T = TypeVar("T")

#: difflib similarity for "did you mean" on campaign names (a typo, not merely another campaign)
SUGGEST_CUTOFF = 0.6
NAMES_LISTED = 10


class Campaigns:
    """The campaign reads of one LeadService (its client, and its cached list directory for names)."""

    def __init__(self, service: LeadService) -> None:
        self.service = service

    async def overview(self) -> list[CampaignRow]:
        """Every campaign, active ones first then by name, each with its hopper's fill when it is dialling."""
        campaigns = await self._campaigns()
        dialling = [campaign for campaign in campaigns if campaign.active and campaign.lead_list is not None]
        hoppers = await asyncio.gather(*(self._part(self._hopper_size(c)) for c in dialling))
        fill = {campaign.id: hopper for campaign, hopper in zip(dialling, hoppers, strict=True)}
        rows = [CampaignRow(campaign, fill.get(campaign.id)) for campaign in campaigns]
        return sorted(rows, key=lambda row: (not row.campaign.active, row.campaign.name.casefold()))

    async def detail(self, reference: str) -> CampaignDetail:
        """One campaign by name (any case) or id, with its status, statistics and hopper read side by side."""
        campaign = await self.find(reference)
        client = self.service.client
        status, statistics, hopper = await asyncio.gather(
            self._part(client.get_campaign_status(campaign.id)),
            self._part(client.get_campaign_statistics(campaign.id)),
            self._part(self._hopper_size(campaign)),
        )
        agents = Part(tuple(statistics.value), None) if statistics.value is not None else Part(None, statistics.error)
        return CampaignDetail(campaign, hopper, status, agents)

    async def find(self, reference: str) -> Campaign:
        """The campaign with this id (either spelling) or name (case-insensitive); UserFacingError otherwise."""
        campaigns = await self._campaigns()
        wanted = reference.strip()
        campaign_id = normalize_id(wanted)
        if campaign_id is not None:
            by_id = next((campaign for campaign in campaigns if campaign.id == campaign_id), None)
            if by_id is not None:
                return by_id
        named = [campaign for campaign in campaigns if campaign.name.casefold() == wanted.casefold()]
        if len(named) == 1:
            return named[0]
        if named:
            raise UserFacingError(f"{len(named)} campaigns are named {quote_input(wanted)}; use the campaign id.")
        raise UserFacingError(await self._unknown(wanted, campaigns))

    async def _unknown(self, wanted: str, campaigns: list[Campaign]) -> str:
        """No such campaign, in one sentence: the campaign dialling a list typed instead, a close name, or the
        campaigns there are."""
        dialler = await self._dialler_of_list(wanted, campaigns)
        if dialler is not None:
            return f"{quote_input(wanted)} is a list; did you mean campaign {dialler.name!r}, which dials it?"
        names = sorted((campaign.name for campaign in campaigns), key=str.casefold)
        close = difflib.get_close_matches(wanted.casefold(), [name.casefold() for name in names], 1, SUGGEST_CUTOFF)
        if close:
            suggestion = next(name for name in names if name.casefold() == close[0])
            return f"No campaign named {quote_input(wanted)}; did you mean {suggestion!r}?"
        if not names:
            return f"No campaign named {quote_input(wanted)}; babelforce has no campaigns."
        known = ", ".join(repr(name) for name in names[:NAMES_LISTED]) + (", …" if len(names) > NAMES_LISTED else "")
        return f"No campaign named {quote_input(wanted)}; did you mean one of {known}?"

    async def _dialler_of_list(self, wanted: str, campaigns: list[Campaign]) -> Campaign | None:
        try:
            lists = await self.service.lists()
        except errors.BabelforceError:
            return None
        list_ids = {lead_list.id for lead_list in lists if lead_list.name.casefold() == wanted.casefold()}
        return next((c for c in campaigns if c.lead_list is not None and c.lead_list.id in list_ids), None)

    async def _campaigns(self) -> list[Campaign]:
        try:
            return await self.service.client.list_campaigns()
        except errors.BabelforceError as failure:
            raise user_error(failure) from None

    async def _hopper_size(self, campaign: Campaign) -> int:
        return len(await self.service.client.get_hopper(campaign.id))

    @staticmethod
    async def _part(call: Awaitable[T]) -> Part[T]:
        """A read that may fail on its own: its value, or babelforce's failure in one sentence."""
        try:
            return Part(await call, None)
        except errors.BabelforceError as failure:
            return Part(None, explain(failure))
