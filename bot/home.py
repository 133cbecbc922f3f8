"""The Home tab: what leadbot publishes (views.publish) when a user opens it, and after an Undo clicked there.

It shows the campaigns at a glance (active, hopper fill, last alert) and the viewer's own last 10 changes from the
audit trail, with an Undo button on each one they could still undo (the history's rule: `bot.undo.can_undo`, the
lead read live, the viewer a writer). The tab is private to its viewer and in no channel, so LEADBOT_CHANNELS does
not apply to it; LEADBOT_TEAM_ID and LEADBOT_READERS do (a refusal is recorded, and the tab says why).

babelforce requests per opening: those of `/lead campaign` without a name (1, plus 1 per active campaign), plus
one read per distinct lead among the viewer's changes that the record says could be undone (at most 10).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from babelforce import errors
from commands.home_view import CHANGES_SHOWN, HomeCampaign, HomeChange, home_denied, home_view

from . import metrics
from .audit import AuditError, Change
from .explain import UserFacingError
from .history import summary
from .service import Snapshot, snapshot
from .undo import can_undo

if TYPE_CHECKING:
    from .pipeline import Leadbot, Request

log = logging.getLogger(__name__)

#: How the Home tab's own permission check is recorded in the audit trail when it refuses.
HOME = "home"


class Home:
    """Home tabs for one Leadbot."""

    def __init__(self, bot: Leadbot) -> None:
        self.bot = bot

    async def publish(self, client: AsyncWebClient, request: Request, *, notice: str | None = None) -> bool:
        """Build the viewer's Home tab and publish it; whether Slack took it (failures are logged, never raised)."""
        view = await self.view(request, notice=notice)
        try:
            await client.views_publish(user_id=request.requester.user_id, view=view)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as failure:
            error = failure.response.get("error") if isinstance(failure, SlackApiError) and failure.response else None
            log.warning("views.publish of a Home tab failed: %s", error or type(failure).__name__)
            return False
        return True

    async def view(self, request: Request, *, notice: str | None = None) -> dict[str, Any]:
        denial = await self.bot.authorize(request, HOME, channel_rule=False)
        if denial is not None:
            return home_denied(denial.message)
        (campaigns, campaigns_error), (changes, changes_error) = await asyncio.gather(
            self._campaigns(), self._changes(request)
        )
        return home_view(
            campaigns=campaigns,
            changes=changes,
            campaigns_error=campaigns_error,
            changes_error=changes_error,
            alerts_on=self.bot.alerts is not None,
            notice=notice,
            now=datetime.now(UTC),
        )

    async def _campaigns(self) -> tuple[list[HomeCampaign] | None, str | None]:
        try:
            rows = await self.bot.campaigns.overview()
        except UserFacingError as failure:
            return None, failure.message
        alerts = self.bot.alerts
        posted = await alerts.last_alerts() if alerts is not None else {}  # whichever process posted them
        shown = []
        for row in rows:
            last = posted.get(row.campaign.id)
            shown.append(HomeCampaign(row, last.text if last else None, last.at if last else None))
        return shown, None

    async def _changes(self, request: Request) -> tuple[list[HomeChange] | None, str | None]:
        user_id = request.requester.user_id
        try:
            changes = await self.bot.audit.changes_of(user_id, limit=CHANGES_SHOWN)
        except AuditError as failure:
            metrics.audit_error("changes_of")
            return None, failure.message
        undoable = await self._undoable(changes, request)
        return [
            HomeChange(
                ref=change.id,
                at=change.at,
                action=change.action,
                outcome=str(change.outcome),
                lead_name=str((change.after or {}).get("uid") or change.lead_uid or change.lead_id or "a lead"),
                list_name=change.list_name or change.list_id or "a list",
                summary=summary(change),
                undone=change.undone_by is not None,
                undoable=change.id in undoable,
            )
            for change in changes
        ], None

    async def _undoable(self, changes: list[Change], request: Request) -> set[int]:
        """The changes the viewer could undo now: the record allows it (`can_undo` with the lead as recorded), the
        viewer is a writer, and the lead, read live, still has what the change set."""
        candidates = [change for change in changes if can_undo(change, change.after or {"id": change.lead_id})]
        if not candidates:
            return set()
        if await self.bot.gate.check(request.requester, write=True, channel_rule=False) is not None:
            return set()
        keys = {change.id: (change.list_id or "", change.lead_id or "") for change in candidates}
        leads = sorted(set(keys.values()))
        found = await asyncio.gather(*(self._current(list_id, lead_id) for list_id, lead_id in leads))
        current = dict(zip(leads, found, strict=True))
        return {change.id for change in candidates if can_undo(change, current[keys[change.id]])}

    async def _current(self, list_id: str, lead_id: str) -> Snapshot | None:
        try:
            return snapshot(await self.bot.service.client.get_lead(list_id, lead_id))
        except errors.BabelforceError as failure:  # gone, or unreadable now: no button (undo would check anyway)
            log.info("Home tab: lead %s of list %s not read for its Undo button (%s)", lead_id, list_id, failure)
            return None
