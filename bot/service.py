"""What each /lead command does against babelforce, and the dialer context its caveat needs. No Slack here.

Every failure leaves as a `UserFacingError` holding one sentence for a supervisor (and, for form pre-checks, the
field at fault). Lists and campaigns change rarely, so they are cached for `directory_ttl` seconds; leads and the
hopper are always read live, just before a change, because the caveat must describe the dialer as it is now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from babelforce import errors
from babelforce.client import BabelforceClient
from babelforce.ids import normalize_id
from babelforce.models import Campaign, Lead, LeadList
from commands.blocks import LeadReport
from commands.caveats import DialContext, change_caveats, lead_state, needs_last_hopper_rank
from commands.fields import FIELD_LEAD, FIELD_LIST, FIELD_UID
from commands.grammar import AddLead, Command, RankLead, SetLead, ShowLead

log = logging.getLogger(__name__)

T = TypeVar("T")
DIRECTORY_TTL_S = 30.0
LIST_OPTIONS_MAX = 100  # Slack shows at most 100 options in a select


class UserFacingError(Exception):
    """A failure explained in one sentence; `field` names the form field at fault, when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(slots=True)
class _Cached:
    value: Any
    at: float


class LeadService:
    """The bot's use of the babelforce client: resolve, read the dialer's state, write, and report."""

    def __init__(
        self,
        client: BabelforceClient,
        *,
        directory_ttl: float = DIRECTORY_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._ttl = directory_ttl
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._cache_locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ the commands

    async def run(self, command: Command) -> LeadReport:
        match command:
            case ShowLead():
                return await self.show(command)
            case RankLead():
                return await self.rank(command)
            case AddLead():
                return await self.add(command)
            case SetLead():
                return await self.set(command)
        raise TypeError(f"not a lead command: {type(command).__name__}")

    async def show(self, command: ShowLead) -> LeadReport:
        lead_list = await self.resolve_list(command.list_ref)
        lead, context = await self._lead_and_context(lead_list, command.lead_ref)
        return LeadReport("show", lead_list, lead, context, (lead_state(lead, context),))

    async def rank(self, command: RankLead) -> LeadReport:
        lead_list = await self.resolve_list(command.list_ref)
        before, context = await self._lead_and_context(lead_list, command.lead_ref)
        if before.rank == command.rank:
            return LeadReport(
                "rank", lead_list, before, context, (lead_state(before, context),), before, unchanged=True
            )
        after, context = await self._write_with_context(
            lead_list,
            context,
            before.id,
            command.rank,
            self._guard(lead_list, self.client.update_lead(lead_list.id, before.id, rank=command.rank), write=True),
        )
        return LeadReport("rank", lead_list, after, context, change_caveats("rank", before, after, context), before)

    async def set(self, command: SetLead) -> LeadReport:
        lead_list = await self.resolve_list(command.list_ref)
        before, context = await self._lead_and_context(lead_list, command.lead_ref)
        changes: dict[str, Any] = {}
        if command.uid is not None and command.uid != before.uid:
            changes["uid"] = command.uid
        if command.number is not None and command.number != before.number:
            changes["number"] = command.number
        if command.rank is not None and command.rank != before.rank:
            changes["rank"] = command.rank
        data = {
            key: value
            for key, value in command.data.items()
            if (value is None and key in before.data) or (value is not None and before.data.get(key) != value)
        }
        missing = sorted(key for key, value in command.data.items() if value is None and key not in before.data)
        notes = tuple(f"Data variable {key!r} did not exist, so there was nothing to delete." for key in missing)
        if not changes and not data:
            return LeadReport(
                "set", lead_list, before, context, (lead_state(before, context),), before, unchanged=True, notes=notes
            )
        write = self.client.update_lead(lead_list.id, before.id, data=data or None, **changes)
        after, context = await self._write_with_context(
            lead_list,
            context,
            before.id,
            changes.get("rank"),
            self._guard(lead_list, write, write=True, uid=changes.get("uid")),
        )
        return LeadReport(
            "set", lead_list, after, context, change_caveats("set", before, after, context), before, notes=notes
        )

    async def add(self, command: AddLead) -> LeadReport:
        lead_list = await self.resolve_list(command.list_ref)
        context = await self._dial_context(lead_list)
        write = self.client.add_lead(
            lead_list.id, uid=command.uid, number=command.number, rank=command.rank, data=command.data or None
        )
        result, context = await self._write_with_context(
            lead_list, context, None, command.rank, self._guard(lead_list, write, write=True, uid=command.uid)
        )
        caveats = change_caveats("add", None, result.lead, context)
        return LeadReport("add", lead_list, result.lead, context, caveats, recovered=result.recovered)

    # ------------------------------------------------------------------ form pre-checks

    async def check_uid_free(self, list_ref: str, uid: str) -> None:
        """Raise UserFacingError(field=uid) when the list already has this uid (for the add form)."""
        lead_list = await self.resolve_list(list_ref)
        try:
            existing = await self.client.find_lead_by_uid(lead_list.id, uid)
        except errors.NotFoundError:
            return
        except errors.BabelforceError as failure:
            raise UserFacingError(explain(failure, lead_list)) from None
        raise UserFacingError(_duplicate_uid(uid, lead_list, existing.rank, short=True), field=FIELD_UID)

    async def check_lead_exists(self, list_ref: str, lead_ref: str) -> None:
        """Raise UserFacingError(field=lead) when the lead cannot be found (for the rank/show/set forms)."""
        lead_list = await self.resolve_list(list_ref)
        await self._find_lead(lead_list, lead_ref)

    # ------------------------------------------------------------------ lists

    async def lists(self) -> list[LeadList]:
        return await self._cached("lists", self.client.list_lists)

    async def list_options(self, query: str) -> list[LeadList]:
        """Lists whose name contains the query (case-insensitive), by name, for the form's select."""
        wanted = query.strip().casefold()
        found = [
            lead_list for lead_list in await self._guard(None, self.lists()) if wanted in lead_list.name.casefold()
        ]
        return sorted(found, key=lambda lead_list: lead_list.name.casefold())[:LIST_OPTIONS_MAX]

    async def resolve_list(self, list_ref: str) -> LeadList:
        """A list by id (either spelling) or by name (case-insensitive), from the cached directory.

        A miss refreshes the directory once, so a list created a moment ago is still found.
        """
        for attempt in range(2):
            lists = await self._guard(None, self.lists())
            found = _match_list(lists, list_ref)
            if found is not None:
                return found
            if attempt == 0:
                self._cache.pop("lists", None)
        names = sorted(lead_list.name for lead_list in lists)
        known = ", ".join(names[:10]) + (", …" if len(names) > 10 else "") if names else "there are none"
        raise UserFacingError(f"No list named {_quote(list_ref)}; the lists are: {known}.", field=FIELD_LIST)

    # ------------------------------------------------------------------ internals

    async def _find_lead(self, lead_list: LeadList, reference: str) -> Lead:
        try:
            return await self.client.find_lead(lead_list.id, reference)
        except errors.NotFoundError:
            raise UserFacingError(
                f"No lead with uid, id or number {_quote(reference)} in list {lead_list.name}.", field=FIELD_LEAD
            ) from None
        except errors.AmbiguousMatchError as ambiguous:
            raise UserFacingError(
                f"{len(ambiguous.candidates)} leads in list {lead_list.name} have number {_quote(reference)}; "
                "use the uid or the lead id instead.",
                field=FIELD_LEAD,
            ) from None
        except errors.BabelforceError as failure:
            raise UserFacingError(explain(failure, lead_list)) from None

    async def _lead_and_context(self, lead_list: LeadList, reference: str) -> tuple[Lead, DialContext]:
        """The lead and the dialer's context, read side by side; the lead's own campaignId double-checks which
        campaign dials the list (the directory is cached, a campaign can take over a list)."""
        lead, context = await asyncio.gather(self._find_lead(lead_list, reference), self._dial_context(lead_list))
        dialling_id = context.campaign.id if context.campaign else None
        if lead.campaign_id and dialling_id and lead.campaign_id != dialling_id:
            log.info("list %s moved from campaign %s to %s; reading again", lead_list.id, dialling_id, lead.campaign_id)
            self._cache.pop("campaigns", None)
            context = await self._dial_context(lead_list)
        return lead, context

    async def _dial_context(self, lead_list: LeadList) -> DialContext:
        """The campaign dialling the list and its hopper, both read live.

        Only *which* campaign dials the list comes from the cached directory; the campaign itself (active?
        list order?) and its hopper are fetched now, side by side. When the directory looks stale (the campaign
        no longer dials the list, is gone or not active, or none was known), it is read again once.
        """
        campaign = await self._campaign_from_directory(lead_list)
        if campaign is not None:
            context = await self._live_context(lead_list, campaign.id)
            if context is not None:
                return context
        self._cache.pop("campaigns", None)
        campaign = await self._campaign_from_directory(lead_list)  # fresh: list_campaigns is itself a live read
        if campaign is None or not campaign.active:
            return DialContext(lead_list.name, campaign)
        try:
            hopper = await self.client.get_hopper(campaign.id)
        except errors.BabelforceError as failure:
            log.warning("could not read the hopper of campaign %s: %s", campaign.id, failure)
            return DialContext(lead_list.name, campaign, hopper_error=_short_reason(failure))
        return DialContext(lead_list.name, campaign, tuple(hopper))

    async def _live_context(self, lead_list: LeadList, campaign_id: str) -> DialContext | None:
        """The live campaign and hopper, or None when the campaign no longer actively dials this list."""
        campaign, hopper = await asyncio.gather(
            self.client.get_campaign(campaign_id), self.client.get_hopper(campaign_id), return_exceptions=True
        )
        if isinstance(campaign, errors.NotFoundError):
            return None
        if isinstance(campaign, BaseException):
            if not isinstance(campaign, errors.BabelforceError):
                raise campaign
            log.warning("could not read campaign %s: %s", campaign_id, campaign)
            return DialContext(lead_list.name, hopper_error=_short_reason(campaign))
        if campaign.lead_list is None or campaign.lead_list.id != lead_list.id or not campaign.active:
            return None
        if isinstance(hopper, BaseException):
            if not isinstance(hopper, errors.BabelforceError):
                raise hopper
            log.warning("could not read the hopper of campaign %s: %s", campaign_id, hopper)
            return DialContext(lead_list.name, campaign, hopper_error=_short_reason(hopper))
        return DialContext(lead_list.name, campaign, tuple(hopper))

    async def _campaign_from_directory(self, lead_list: LeadList) -> Campaign | None:
        """The campaign dialling the list (an active one first) per the campaign directory; None when none does
        or the campaigns cannot be read."""
        try:
            campaigns = await self._cached("campaigns", self.client.list_campaigns)
        except errors.BabelforceError as failure:
            log.warning("could not read campaigns for list %s: %s", lead_list.id, failure)
            return None
        dialling = [c for c in campaigns if c.lead_list is not None and c.lead_list.id == lead_list.id]
        dialling.sort(key=lambda campaign: not campaign.active)
        return dialling[0] if dialling else None

    async def _write_with_context(
        self,
        lead_list: LeadList,
        context: DialContext,
        lead_id: str | None,
        new_rank: int | None,
        write: Awaitable[T],
    ) -> tuple[T, DialContext]:
        """Run the write; meanwhile, when the caveat needs it, read the rank of the hopper's last lead."""
        action = "add" if lead_id is None else "rank"
        if not needs_last_hopper_rank(action, context, lead_id, new_rank) or not context.hopper:
            return await write, context
        last = context.hopper[-1]
        written, last_rank = await asyncio.gather(write, self._rank_of(lead_list, last.id))
        return written, DialContext(
            context.list_name, context.campaign, context.hopper, context.hopper_error, last_rank
        )

    async def _rank_of(self, lead_list: LeadList, lead_id: str) -> int | None:
        try:
            return (await self.client.get_lead(lead_list.id, lead_id)).rank
        except errors.BabelforceError as failure:  # only a caveat's detail is lost; the write goes on
            log.warning("could not read the hopper's last lead %s: %s", lead_id, failure)
            return None

    async def _guard(
        self, lead_list: LeadList | None, call: Awaitable[T], *, write: bool = False, uid: str | None = None
    ) -> T:
        """Await an API call, turning its failure into a UserFacingError (a duplicate uid names the holder)."""
        try:
            return await call
        except errors.ConflictError as conflict:
            if uid is None or lead_list is None:
                raise UserFacingError(explain(conflict, lead_list, write=write)) from None
            rank = await self._rank_of_uid(lead_list, uid)
            raise UserFacingError(_duplicate_uid(uid, lead_list, rank), field=FIELD_UID) from None
        except errors.BabelforceError as failure:
            raise UserFacingError(explain(failure, lead_list, write=write)) from None

    async def _rank_of_uid(self, lead_list: LeadList, uid: str) -> int | None:
        try:
            return (await self.client.find_lead_by_uid(lead_list.id, uid, fresh=True)).rank
        except errors.BabelforceError:
            return None

    async def _cached(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """A directory read (lists, campaigns) shared for `directory_ttl` s; concurrent misses load once."""
        entry = self._cache.get(key)
        if entry is not None and self._clock() - entry.at < self._ttl:
            return entry.value
        lock = self._cache_locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._cache.get(key)
            if entry is not None and self._clock() - entry.at < self._ttl:
                return entry.value
            value = await load()
            self._cache[key] = _Cached(value, self._clock())
            return value

    def forget_directory(self) -> None:
        """Drop cached lists and campaigns (e.g. after the sandbox was reseeded)."""
        self._cache.clear()


def explain(failure: errors.BabelforceError, lead_list: LeadList | None, *, write: bool = False) -> str:
    """One sentence for a supervisor: babelforce's error, with list ids replaced by list names."""
    if isinstance(failure, errors.APITimeoutError):
        message = "babelforce did not answer in time"
        if write:
            message += "; the change may or may not have been applied, so check with /lead show before retrying."
        else:
            message += "; nothing was changed, try again in a moment."
        return message
    if isinstance(failure, errors.APIConnectionError):
        message = f"Could not reach babelforce ({_short_reason(failure)})"
        if write and failure.may_have_reached_server:
            return message + "; the change may or may not have been applied, so check with /lead show."
        return message + "; nothing was changed."
    if isinstance(failure, errors.RateLimitedError):
        wait = f" for {failure.retry_after:.0f} s" if failure.retry_after else ""
        return f"babelforce is limiting requests right now; wait{wait} and try again. Nothing was changed."
    if isinstance(failure, errors.AuthenticationError):
        return "babelforce refused leadbot's credentials; ask whoever runs leadbot to check the BABELFORCE_ settings."
    if isinstance(failure, errors.PermissionDeniedError):
        return "babelforce does not allow leadbot's account to do this; ask a babelforce admin for the permission."
    message = failure.message
    if lead_list is not None:
        message = message.replace(f"list {lead_list.id}", f"list {lead_list.name}")
    return message


def _duplicate_uid(uid: str, lead_list: LeadList, rank: int | None, *, short: bool = False) -> str:
    held = f" (rank {rank})" if rank is not None else ""
    if short:
        return f"uid {_quote(uid)} already exists in this list{held}; use /lead rank or /lead set to change it."
    return f"uid {_quote(uid)} already exists in list {lead_list.name}{held} — use /lead rank or /lead set."


def _match_list(lists: list[LeadList], list_ref: str) -> LeadList | None:
    wanted = list_ref.strip()
    list_id = normalize_id(wanted)
    if list_id is not None:
        for lead_list in lists:
            if lead_list.id == list_id:
                return lead_list
    matches = [lead_list for lead_list in lists if lead_list.name.casefold() == wanted.casefold()]
    if len(matches) > 1:
        raise UserFacingError(
            f"{len(matches)} lists are named {_quote(list_ref)}; use the list id instead.", field=FIELD_LIST
        )
    return matches[0] if matches else None


def _quote(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return "'" + (text if len(text) <= limit else text[: limit - 1] + "…") + "'"


def _short_reason(failure: errors.BabelforceError) -> str:
    if isinstance(failure, errors.APITimeoutError):
        return "no answer in time"
    if isinstance(failure, errors.APIStatusError):
        return f"HTTP {failure.status_code}"
    if isinstance(failure, errors.APIConnectionError):
        return "connection failed"
    return type(failure).__name__
