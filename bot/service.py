"""What each /lead command does against babelforce, and the dialer context its caveat needs. No Slack here.

Every failure leaves as a `UserFacingError` holding one sentence for a supervisor (and, for form pre-checks, the
field at fault). Lists, and which campaign dials which list, change rarely, so that directory is cached for
`directory_ttl` seconds; the lead, the campaign itself and its hopper are read live for every command, because the
caveat must describe the dialer as it is at the time of the change.
"""

from __future__ import annotations

import asyncio
import contextvars
import difflib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TypeVar

from babelforce import errors
from babelforce.client import BabelforceClient, match_list
from babelforce.lookup import ListStandings
from babelforce.models import Campaign, HopperEntry, Lead, LeadList
from commands.blocks import LeadReport
from commands.caveat_text import top_refusal_text
from commands.caveats import (
    NO_EFFECT_NOW,
    Action,
    Caveat,
    CaveatKind,
    DialContext,
    Subject,
    change_caveats,
    lead_state,
    needs_last_hopper_rank,
    removal_caveat,
    top_blocked,
    top_rank,
)
from commands.fields import (
    FIELD_LEAD,
    FIELD_LIST,
    FIELD_RANK,
    FieldError,
    parse_number,
    quote_input,
    relative_rank_refusal,
)
from commands.queue import queue_position

from .explain import UserFacingError, ambiguous_number, list_is_gone, uid_taken, user_error

log = logging.getLogger(__name__)

T = TypeVar("T")
DIRECTORY_TTL_S = 30.0
STANDINGS_MAX_AGE_S = 300.0  # queue positions: an export (the lookup index) this old will do, labelled "about"
# A write's reply: the list's standings are built from its lookup index (when one is at hand) before the write up to
# this many leads: column copies, about 5 ms at 1 000 000 (docs/performance.md), so every index leadbot keeps
# qualifies; without an index the reply says what is known without them (no request, no wait; see _with_queue).
QUEUE_BUILD_MAX_LEADS = 1_000_000
HOPPER_TAIL_MAX_AGE_S = 60.0  # rank of the hopper's last lead (a caveat's bound), reused across commands this long
LIST_OPTIONS_MAX = 100  # Slack shows at most 100 options in a select
AMBIGUOUS_SHOWN = 5  # leads named when a phone number matches several
SUGGEST_CUTOFF = 0.85  # difflib similarity for "did you mean" on list names
SETTLE_BUDGET_S = 5.0  # reading a lead back after a write's answer was lost
# The lookup index a duplicate-number / similar-uid warning trusts: older, it is rebuilt from one export first.
SIMILAR_INDEX_MAX_AGE_S = 60.0


#: A lead's values as the audit trail records them, before and after a change (JSON-able).
Snapshot = dict[str, Any]


def snapshot(lead: Lead) -> Snapshot:
    return {"id": lead.id, "uid": lead.uid, "number": lead.number, "rank": lead.rank, "data": dict(lead.data)}


def lead_record(lead: Lead) -> Snapshot:
    """The whole lead, for the audit record of a remove: what Undo adds back (uid, number, rank, data) and what is
    lost with it for good (status, callCount)."""
    return {**snapshot(lead), "status": lead.status, "callCount": lead.call_count}


def written(lead: Lead, fields: Iterable[str], data_keys: Iterable[str]) -> Snapshot:
    """A lead's values of only what a change writes (plus its id and uid, to name it): what the audit trail keeps
    as a change's before and after, so undo puts back exactly that and never someone else's values."""
    values: Snapshot = {"id": lead.id, "uid": lead.uid}
    values.update({name: getattr(lead, name) for name in fields if name != "uid"})
    values["data"] = {key: lead.data[key] for key in data_keys if key in lead.data}
    return values


_ABSENT = object()


def changed_keys(before: Snapshot, after: Snapshot) -> tuple[list[str], list[str]]:
    """What a recorded change changed: the lead fields (uid, number, rank) and the data keys (set, changed or
    deleted) that differ between its before and after values. Undo puts back exactly these."""
    fields = [name for name in ("uid", "number", "rank") if before.get(name) != after.get(name)]
    old, new = before.get("data") or {}, after.get("data") or {}
    data_keys = sorted(key for key in set(old) | set(new) if old.get(key, _ABSENT) != new.get(key, _ABSENT))
    return fields, data_keys


def predict(before: Lead, changes: dict[str, Any], data: dict[str, str | None]) -> Lead:
    """The lead as it will be once the write is applied, for the caveat asked about before writing."""
    merged = {key: value for key, value in before.data.items() if key not in data or data[key] is not None}
    merged.update({key: value for key, value in data.items() if value is not None})
    return before.model_copy(update={**changes, "data": merged})


@dataclass(frozen=True, slots=True)
class Plan:
    """A write ready to send: what it changes, and the caveats that say it would not affect dialling now."""

    command: Any  # the registered write command it carries out (a dataclass; held as-is for "apply anyway?")
    action: Action  # how the caveats speak of it: "add", "rank" or "set"
    lead_list: LeadList
    context: DialContext
    before: Lead | None  # None for an add
    changes: dict[str, Any] = field(default_factory=dict)  # uid / number / rank, only those that differ
    data: dict[str, str | None] = field(default_factory=dict)  # data keys that differ (None deletes)
    notes: tuple[str, ...] = ()
    unchanged: bool = False
    blocking: tuple[Caveat, ...] = ()  # NO_EFFECT_NOW caveats predicted for this change: worth a question
    predicted: tuple[Caveat, ...] = ()  # every caveat predicted, shown with the question
    new_lead: Lead | None = None  # an add: the lead to create
    removal: bool = False  # a remove: apply deletes `before`; always asked about first
    explained: tuple[Caveat, ...] = ()  # facts behind a value leadbot chose (rank … top), shown with the result

    @property
    def asks(self) -> bool:
        """Whether the write waits for the user's yes: it would do nothing for dialling now, or it deletes a lead."""
        return bool(self.blocking) or self.removal


@dataclass(slots=True)
class _Cached:
    value: Any
    at: float


@dataclass(frozen=True, slots=True)
class _Dialling:
    """The directory's answer for one list: which campaign dials it, or why that is unknown."""

    campaign: Campaign | None
    error: str | None = None


class LeadService:
    """The bot's use of the babelforce client: resolve, read the dialer's state, write, and report."""

    def __init__(
        self,
        client: BabelforceClient,
        *,
        default_region: str | None = None,
        directory_ttl: float = DIRECTORY_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.default_region = default_region
        self._ttl = directory_ttl
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}

    # ------------------------------------------------------------------ the commands

    async def show(self, list_ref: str, lead_ref: str) -> LeadReport:
        lead_list = await self.resolve_list(list_ref)
        lead, context = await self._lead_and_context(lead_list, lead_ref)
        queue = queue_position(lead, context, await self.standings_for(lead_list, context))
        return LeadReport("show", lead_list, lead, context, (lead_state(lead, context),), queue=queue)

    async def lead_and_context(self, lead_list: LeadList, lead_ref: str) -> tuple[Lead, DialContext]:
        """The lead and the dialer's context (campaign and hopper), read side by side (/lead why)."""
        return await self._lead_and_context(lead_list, lead_ref)

    async def campaign_context(self, lead_list: LeadList) -> DialContext:
        """The campaign dialling the list (read live) and its hopper (/lead hopper)."""
        return await self._context_for(lead_list, await self._dialling(lead_list))

    async def standings_for(self, lead_list: LeadList, context: DialContext) -> ListStandings | None:
        """Every lead's rank and status for queue positions: from the lookup index when it is at most
        STANDINGS_MAX_AGE_S old (at most one export per period), and only when a campaign dials the list and its
        hopper was read; None when not needed or the export failed (the queue line then says less)."""
        if not context.dialling or context.hopper is None:
            return None
        try:
            return await self.client.cached_standings(lead_list.id, max_age=STANDINGS_MAX_AGE_S)
        except errors.BabelforceError as failure:
            log.warning("could not read the standings of list %s: %s", lead_list.id, failure)
            return None

    async def _warm_standings(self, lead_list: LeadList, context: DialContext) -> None:
        """Just before a write: build the list's standings from its lookup index when that is cheap (at most
        QUEUE_BUILD_MAX_LEADS leads; never a request), so the write's reply has them at hand. The index keeps the
        written lead in its place in list order either way (babelforce.standings)."""
        if context.dialling:
            await self.client.standings_at_hand(
                lead_list.id, max_age=STANDINGS_MAX_AGE_S, build_up_to=QUEUE_BUILD_MAX_LEADS
            )

    async def _with_queue(self, report: LeadReport) -> LeadReport:
        """A write's reply with where the lead now stands in line, worked out as /lead show does (queue_position)
        from its new values, the hopper read with the write, and the list's standings as this client has them
        (kept in step with its own writes, so "about"). No request is added and nothing waits: standings that are
        not at hand leave the queue line with what is known without them (in the hopper, final, recycling, or
        waiting behind the hopper's leads)."""
        context = report.context
        standings = None
        if context.dialling and context.hopper is not None:
            standings = await self.client.standings_at_hand(report.lead_list.id, max_age=STANDINGS_MAX_AGE_S)
        return replace(report, queue=queue_position(report.lead, context, standings))

    # ------------------------------------------------------------------ writes: plan, then apply

    async def plan_add(
        self, command: Any, *, uid: str, number: str, rank: int, data: dict[str, str] | None = None
    ) -> Plan:
        """Everything an add needs before it is sent: the list, the dialer's context, and the caveats that say the
        new lead would not be dialled now (worth a question)."""
        lead_list = await self.resolve_list(command.list_ref)
        dialling, (warnings, notes) = await asyncio.gather(
            self._dialling(lead_list), self._look_alikes(lead_list, Subject.NEW_LEAD, uid=uid, number=number)
        )
        context = DialContext(lead_list.name, dialling.campaign, campaign_error=dialling.error)
        new_lead = Lead(id="", uid=uid, number=number, rank=rank, data=dict(data or {}))
        dialer = change_caveats("add", None, new_lead, context)
        # the hopper is read after the add (a short hopper takes the lead at once), so before it there is nothing to
        # say about it: a question asked for a warning must not claim the hopper "could not be read"
        caveats = (*warnings, *(caveat for caveat in dialer if caveat.kind != CaveatKind.HOPPER_UNKNOWN))
        blocking = (*warnings, *(caveat for caveat in dialer if caveat.kind == CaveatKind.NOT_DIALLED))
        return Plan(
            command,
            "add",
            lead_list,
            context,
            None,
            notes=notes,
            blocking=blocking,
            predicted=caveats,
            new_lead=new_lead,
        )

    async def plan_update(
        self,
        command: Any,
        *,
        action: Action,
        lead_ref: str,
        uid: str | None = None,
        number: str | None = None,
        rank: int | None = None,
        data: dict[str, str | None] | None = None,
        known: tuple[LeadList, Lead, DialContext] | None = None,
    ) -> Plan:
        """Everything a partial update needs before it is sent: the list, the lead as it is, the dialer's context,
        what would change (only values that differ: a write never rewrites values it does not change), and the
        caveats that say the change would do nothing for dialling now, or that the new number or uid looks like
        another lead's (worth a question). `known`: the list, lead and context the caller has just read."""
        if known is not None:
            lead_list, before, context = known
        else:
            lead_list = await self.resolve_list(command.list_ref)
            before, context = await self._lead_and_context(lead_list, lead_ref)
        requested = {"uid": uid, "number": number, "rank": rank}
        changes: dict[str, Any] = {
            name: value for name, value in requested.items() if value is not None and value != getattr(before, name)
        }
        asked = data or {}
        changed_data = {
            key: value
            for key, value in asked.items()
            if (value is None and key in before.data) or (value is not None and before.data.get(key) != value)
        }
        missing = sorted(key for key, value in asked.items() if value is None and key not in before.data)
        notes = tuple(f"Data variable {key!r} did not exist, so there was nothing to delete." for key in missing)
        if not changes and not changed_data:
            return Plan(command, action, lead_list, context, before, notes=notes, unchanged=True)
        caveats = change_caveats(action, before, predict(before, changes, changed_data), context)
        rank_only = set(changes) == {"rank"} and not changed_data
        blocking = tuple(
            caveat
            for caveat in caveats
            # list order UP/DOWN only makes a pure rank change pointless; a new number or data still counts
            if caveat.kind in NO_EFFECT_NOW and (caveat.kind != CaveatKind.ORDER_IGNORES_RANK or rank_only)
        )
        if "uid" in changes or "number" in changes:
            warnings, checked = await self._look_alikes(
                lead_list, Subject.CHANGE, uid=changes.get("uid"), number=changes.get("number"), lead_id=before.id
            )
            caveats, blocking, notes = (*warnings, *caveats), (*warnings, *blocking), (*notes, *checked)
        return Plan(
            command,
            action,
            lead_list,
            context,
            before,
            changes,
            changed_data,
            notes,
            blocking=blocking,
            predicted=caveats,
        )

    async def plan_remove(self, command: Any, *, lead_ref: str) -> Plan:
        """A remove: the list, the whole lead as it is (the audit record keeps it, for Undo) and where it stands with
        the dialer (the question says whether a loaded batch may still call it). Always asked about first."""
        lead_list = await self.resolve_list(command.list_ref)
        before, context = await self._lead_and_context(lead_list, lead_ref)
        caveat = removal_caveat(before.id, context)
        return Plan(command, "remove", lead_list, context, before, predicted=(caveat,), removal=True)

    async def apply(self, plan: Plan) -> LeadReport:
        """Send the planned write and report what babelforce did and what the dialer will do with it."""
        lead_list, context, before, action = plan.lead_list, plan.context, plan.before, plan.action
        if plan.removal:
            return await self._apply_removal(plan)
        if before is None:
            return await self._add(plan)
        if plan.unchanged:
            return await self._with_queue(
                LeadReport(
                    action,
                    lead_list,
                    before,
                    context,
                    (*plan.explained, lead_state(before, context)),
                    before,
                    unchanged=True,
                    notes=plan.notes,
                )
            )
        await self._warm_standings(lead_list, context)
        write = self.client.update_lead(lead_list.id, before.id, data=plan.data or None, **plan.changes)
        guarded = self._settled(
            lead_list,
            before,
            plan.changes,
            plan.data,
            self._guard(lead_list, write, write=True, lead=before, uid=plan.changes.get("uid"), taken_hint=action),
        )
        (after, recovered), context = await self._write_with_context(
            lead_list, context, action, before, plan.changes.get("rank"), guarded
        )

        caveats = (*plan.explained, *change_caveats(action, before, after, context))
        report = LeadReport(action, lead_list, after, context, caveats, before, notes=plan.notes, recovered=recovered)
        return await self._with_queue(report)

    async def _settled(
        self,
        lead_list: LeadList,
        before: Lead,
        changes: dict[str, Any],
        data: dict[str, Any],
        write: Awaitable[Lead],
    ) -> tuple[Lead, bool]:
        """The written lead, and whether its answer was lost and the write confirmed by reading the lead back.

        A write whose answer never came (timeout, dropped connection) is settled by one GET: every written value
        there -> applied. Otherwise it stays uncertain: a slow babelforce may still apply it after the read, so
        "not applied" is never concluded, only "not there when read".
        """
        try:
            return await write, False
        except UserFacingError as failure:
            if not failure.uncertain:
                raise
            try:
                async with asyncio.timeout(SETTLE_BUDGET_S):
                    now = await self.client.get_lead(lead_list.id, before.id)
            except (errors.BabelforceError, TimeoutError):
                raise failure from None
            if _has_values(now, changes, data):
                log.info("the answer to a write of lead %s was lost; reading it back shows it applied", before.id)
                return now, True
            if all(getattr(now, name) == getattr(before, name) for name in changes) and all(
                now.data.get(key) == before.data.get(key) for key in data
            ):
                raise UserFacingError(
                    "babelforce did not confirm the change, and the lead did not have it when leadbot read it back "
                    "just now; it may still arrive, so check with /lead show before trying again.",
                    uncertain=True,
                ) from None
            raise failure from None

    async def _apply_removal(self, plan: Plan) -> LeadReport:
        """Delete the lead, then read the dialer again: babelforce cannot take a lead out of a loaded batch, so the
        reply must say whether the hopper still holds it (the sandbox models that it does, until it is dialled)."""
        lead_list, lead = plan.lead_list, plan.before
        assert lead is not None  # a remove's plan always reads the lead
        outcome = await self._delete(lead_list, lead)
        notes = plan.notes
        if outcome == "gone":
            notes = (
                "babelforce said the lead was already gone when leadbot deleted it: it was deleted a moment before "
                "(by someone else, or by a retry of this delete whose first answer was lost).",
                *notes,
            )
        context = await self._context_for(lead_list, await self._dialling(lead_list))
        caveat = removal_caveat(lead.id, context, before=plan.context)
        return LeadReport("remove", lead_list, lead, context, (caveat,), notes=notes, recovered=outcome == "recovered")

    async def _delete(self, lead_list: LeadList, lead: Lead) -> str:
        """Delete a lead: "deleted"; "gone" when babelforce says it has no such lead (deleted a moment before, maybe
        by a retry of this very delete); "recovered" when the answer was lost and reading the lead back finds it
        gone. A lost answer with the lead still there is uncertain (a slow babelforce may still delete it)."""
        try:
            await self.client.delete_lead(lead_list.id, lead.id)
            return "deleted"
        except errors.NotFoundError as missing:
            if missing.resource == "lead":
                return "gone"
            raise self._failed(missing, lead_list, write=True, lead=lead) from None
        except errors.BabelforceError as failure:
            error = self._failed(failure, lead_list, write=True, lead=lead)
        if not error.uncertain:
            raise error
        try:
            async with asyncio.timeout(SETTLE_BUDGET_S):
                await self.client.get_lead(lead_list.id, lead.id)
        except errors.NotFoundError as missing:
            if missing.resource != "lead":
                raise error from None
            log.info("the answer to deleting lead %s was lost; reading it back shows it is gone", lead.id)
            return "recovered"
        except (errors.BabelforceError, TimeoutError):
            raise error from None
        raise UserFacingError(
            "babelforce did not confirm the delete, and the lead was still there when leadbot read it back just now; "
            "it may still go, so check with /lead show before trying again.",
            uncertain=True,
        )

    async def _add(self, plan: Plan) -> LeadReport:
        lead_list, new = plan.lead_list, plan.new_lead
        # an add's plan carries the lead to create, with the uid, number and rank the command gave
        assert new is not None and new.uid is not None and new.number is not None and new.rank is not None
        await self._warm_standings(lead_list, plan.context)
        write = self.client.add_lead(lead_list.id, uid=new.uid, number=new.number, rank=new.rank, data=new.data or None)
        result = await self._guard(lead_list, write, write=True, uid=new.uid, taken_hint="add")
        # Read after the add: a hopper below its minimum takes a new lead at once, and the caveat must say so.
        dialling = await self._dialling(lead_list)
        context = await self._context_for(lead_list, dialling)
        if result.lead.campaign_id and (context.campaign is None or context.campaign.id != result.lead.campaign_id):
            context = await self._context_for(lead_list, await self._dialling(lead_list, fresh=True))
        if needs_last_hopper_rank("add", context, result.lead.id, new.rank, (new.uid,)) and context.hopper:
            context = replace(context, last_hopper_rank=await self._rank_of(lead_list, context.hopper[-1]))
        caveats = change_caveats("add", None, result.lead, context)
        recovered = result.recovered
        report = LeadReport("add", lead_list, result.lead, context, caveats, recovered=recovered, notes=plan.notes)
        return await self._with_queue(report)

    # ------------------------------------------------------------------ rank: top, and a signed rank

    async def plan_rank_top(self, command: Any) -> Plan:
        """`/lead rank <list> <lead> top`: the rank that makes the lead head the next batch, worked out from the
        campaign's list order, the hopper and one CSV export of the list (never one GET per lead), then planned as
        any rank change. The plan's command carries the number, so "apply anyway?" holds what it showed; a held
        command whose number the list no longer gives is refused rather than written."""
        lead_list = await self.resolve_list(command.list_ref)
        standings: ListStandings | None = None
        if self.client.is_indexed(lead_list.id):  # the lead is found without an export: read the list only if needed
            before, context = await self._lead_and_context(lead_list, command.lead_ref)
            if top_blocked(context) is None:
                standings = await self._standings(lead_list)
        else:  # finding the lead needs an export anyway: one export serves both (standings first: it holds the lock)
            read, found = await asyncio.gather(
                self._standings(lead_list), self._lead_and_context(lead_list, command.lead_ref), return_exceptions=True
            )
            if isinstance(found, BaseException):
                raise found
            if isinstance(read, BaseException):
                raise read
            (before, context), standings = found, read
        choice = top_blocked(context) or top_rank(before, context, standings or ListStandings())
        if choice.kind == CaveatKind.TOP_REFUSED:
            raise UserFacingError(top_refusal_text(choice))
        target = choice.rank if choice.rank is not None else before.rank
        name = before.uid or before.id
        if command.rank is not None and command.rank != target:
            raise UserFacingError(
                f"The list's ranks changed since you were asked: the top rank for {name} is now {target}, not "
                f"{command.rank}; nothing was changed. Type the command again to see why."
            )
        resolved = replace(command, rank=target)
        plan = await self.plan_update(
            resolved, action="rank", lead_ref=command.lead_ref, rank=target, known=(lead_list, before, context)
        )
        return replace(plan, explained=(choice,), predicted=(choice, *plan.predicted))

    async def _standings(self, lead_list: LeadList) -> ListStandings:
        try:
            return await self.client.lead_standings(lead_list.id)
        except errors.BabelforceError as failure:
            raise self._failed(failure, lead_list) from None

    async def refuse_relative_rank(self, list_ref: str, lead_ref: str, step: int, *, spelled: str = "") -> NoReturn:
        """A rank typed as `+10`: refused (no write), naming the lead's rank and the absolute value it probably
        meant. Raises UserFacingError(field=rank), or the lead's own not-found error."""
        lead = await self.check_lead_exists(list_ref, lead_ref)
        message = relative_rank_refusal(lead.uid or lead.id, lead.rank, step, spelled=spelled)
        raise UserFacingError(message, field=FIELD_RANK)

    # ------------------------------------------------------------------ warnings: a lead that looks the same

    async def _look_alikes(
        self,
        lead_list: LeadList,
        subject: Subject,
        *,
        uid: str | None = None,
        number: str | None = None,
        lead_id: str | None = None,
    ) -> tuple[tuple[Caveat, ...], tuple[str, ...]]:
        """Warnings (DUPLICATE_NUMBER, SIMILAR_UID) for a uid or number about to be written, from the list's lookup
        index (a hit costs one GET); and a note instead when the list could not be checked. `lead_id`: the lead
        being changed, which never counts as another. A uid another lead already has gets no warning: babelforce
        refuses it, and that refusal is what the user is told."""
        if uid is None and number is None:
            return (), ()
        try:
            similar = await self.client.similar_leads(
                lead_list.id, uid=uid, number=number, max_age=SIMILAR_INDEX_MAX_AGE_S, exclude=lead_id
            )
        except errors.BabelforceError as failure:
            log.warning("could not look for leads like the one written in list %s: %s", lead_list.id, failure)
            reason = errors.short_reason(failure)
            what = " and ".join(part for part, given in (("number", number), ("uid", uid)) if given)
            return (), (f"leadbot could not check whether another lead of the list has this {what} ({reason}).",)
        if uid is not None and similar.same_uid:
            # babelforce refuses an equal uid (409): no question about a write that cannot happen; the write goes on
            # to that refusal, which is recorded as failed and names the lead holding the uid
            return (), ()
        warnings: list[Caveat] = []
        if similar.same_number:
            others = tuple(lead.uid or lead.id for lead in similar.same_number)
            warnings.append(Caveat(CaveatKind.DUPLICATE_NUMBER, subject, number=number, others=others))
        if similar.similar_uid:
            others = tuple(lead.uid or lead.id for lead in similar.similar_uid)
            warnings.append(Caveat(CaveatKind.SIMILAR_UID, subject, uid=uid, others=others))
        return tuple(warnings), ()

    # ------------------------------------------------------------------ undo

    async def current(self, list_id: str, lead_id: str) -> tuple[LeadList, Lead | None]:
        """A list and one of its leads as they are now (None when the lead no longer exists), for undo."""
        lead_list = await self.resolve_list(list_id)
        try:
            return lead_list, await self.client.get_lead(lead_list.id, lead_id)
        except errors.BabelforceError as failure:
            if isinstance(failure, errors.NotFoundError) and failure.resource == "lead":
                return lead_list, None
            raise self._failed(failure, lead_list) from None

    async def restore(self, lead_list: LeadList, current: Lead, before: Snapshot, after: Snapshot) -> LeadReport:
        """Undo a recorded change: put back only what it changed (before -> after); a data key it added is deleted,
        one it deleted comes back. Values nobody touched through it, or changed in other keys since, stay."""
        fields, data_keys = changed_keys(before, after)
        changes: dict[str, Any] = {name: before[name] for name in fields if before.get(name) is not None}
        old = before.get("data") or {}
        data: dict[str, Any] = {key: old.get(key) for key in data_keys}  # None (absent before) deletes it
        context = await self._context_for(lead_list, await self._dialling(lead_list))
        if not changes and not data:
            state = (lead_state(current, context),)
            unchanged = LeadReport("undo", lead_list, current, context, state, current, unchanged=True)
            return await self._with_queue(unchanged)
        await self._warm_standings(lead_list, context)
        write = self.client.update_lead(lead_list.id, current.id, data=data or None, **changes)
        guarded = self._settled(
            lead_list,
            current,
            changes,
            data,
            self._guard(lead_list, write, write=True, lead=current, uid=changes.get("uid"), taken_hint="set"),
        )
        (after_undo, recovered), context = await self._write_with_context(
            lead_list, context, "set", current, changes.get("rank"), guarded
        )
        # Compared with itself: a lead already in the hopper is dialled with the values it was loaded with, which
        # are not the values being undone (those came after), so the caveat must not name them as "still used".
        caveats = change_caveats("set", after_undo, after_undo, context)
        report = LeadReport("undo", lead_list, after_undo, context, caveats, current, recovered=recovered)
        return await self._with_queue(report)

    async def remove(self, lead_list: LeadList, lead: Lead) -> None:
        """Delete a lead (undo of an add)."""
        await self._guard(lead_list, self.client.delete_lead(lead_list.id, lead.id), write=True, lead=lead)

    async def readd(self, lead_list: LeadList, record: Snapshot) -> LeadReport:
        """Add a removed lead back from its audit record (undo of a remove): the same uid, number, rank and data.
        babelforce gives it a new id and it starts as a new lead: status and call count cannot be sent."""
        dialling = await self._dialling(lead_list)
        context = DialContext(lead_list.name, dialling.campaign, campaign_error=dialling.error)
        new_lead = Lead(
            id="", uid=record["uid"], number=record["number"], rank=record["rank"], data=dict(record.get("data") or {})
        )
        return await self._add(Plan(None, "add", lead_list, context, None, new_lead=new_lead))

    async def lead_with_uid(self, lead_list: LeadList, uid: str) -> Lead | None:
        """The list's lead with this uid as babelforce has it now (a fresh lookup), or None."""
        try:
            return await self.client.find_lead_by_uid(lead_list.id, uid, fresh=True)
        except errors.BabelforceError as failure:
            if isinstance(failure, errors.NotFoundError) and failure.resource == "lead":
                return None
            raise self._failed(failure, lead_list) from None

    # ------------------------------------------------------------------ form pre-checks

    async def check_uid_free(self, list_ref: str, uid: str, *, for_set: bool = False) -> None:
        """Raise UserFacingError(field=uid) when the list already has this uid (add and set forms)."""
        lead_list = await self.resolve_list(list_ref)
        try:
            existing = await self.client.find_lead_by_uid(lead_list.id, uid)
        except errors.BabelforceError as failure:
            if isinstance(failure, errors.NotFoundError) and failure.resource == "lead":
                return
            raise self._failed(failure, lead_list) from None
        raise uid_taken(uid, None, existing.rank, hint="set" if for_set else "add")

    async def check_lead_exists(self, list_ref: str, lead_ref: str) -> Lead:
        """The lead, or UserFacingError(field=lead) when it cannot be found (rank/show/set forms)."""
        lead_list = await self.resolve_list(list_ref)
        return await self._find_lead(lead_list, lead_ref)

    # ------------------------------------------------------------------ lists

    async def lists(self) -> list[LeadList]:
        return await self._cached("lists", self.client.list_lists)

    async def all_lists(self) -> list[LeadList]:
        """Every lead-list (the cached directory); UserFacingError when babelforce cannot list them."""
        return await self._guard(None, self.lists())

    async def campaigns(self) -> list[Campaign]:
        """Every campaign (the cached directory: which campaign dials which list); BabelforceError on failure."""
        return await self._cached("campaigns", self.client.list_campaigns)

    async def list_options(self, query: str, *, budget: float) -> list[LeadList]:
        """Lists whose name contains the query (case-insensitive), by name, for the form's select.

        Answers within `budget` seconds: a slow directory load goes on in the background (and fills the cache for
        the next request) while this one is answered from the previous, expired directory when there is one.
        """
        try:
            async with asyncio.timeout(budget):
                lists = await self._guard(None, self.lists())
        except TimeoutError:
            stale = self._cache.get("lists")
            if stale is None:
                raise
            lists = stale.value
        wanted = query.strip().casefold()
        found = [lead_list for lead_list in lists if wanted in lead_list.name.casefold()]
        return sorted(found, key=lambda lead_list: lead_list.name.casefold())[:LIST_OPTIONS_MAX]

    async def resolve_list(self, list_ref: str) -> LeadList:
        """A list by id (either spelling) or by name (case-insensitive), from the cached directory.

        A miss refreshes the directory once, so a list created a moment ago is still found.
        """
        lists: list[LeadList] = []
        for attempt in range(2):
            lists = await self._guard(None, self.lists())
            found = _match_list(lists, list_ref)
            if found is not None:
                return found
            if attempt == 0:
                self._forget("lists")
        raise UserFacingError(await self._unknown_list(list_ref, lists), field=FIELD_LIST)

    async def _unknown_list(self, list_ref: str, lists: list[LeadList]) -> str:
        """No such list: suggest a close name, and notice a campaign's name typed instead of its list's."""
        try:
            campaigns = await self._cached("campaigns", self.client.list_campaigns)
        except errors.BabelforceError:
            campaigns = []
        for campaign in campaigns:
            if campaign.name.casefold() == list_ref.strip().casefold() and campaign.lead_list is not None:
                dialled = next((lead_list for lead_list in lists if lead_list.id == campaign.lead_list.id), None)
                if dialled is not None:
                    return (
                        f"{quote_input(list_ref)} is a campaign; it dials list {dialled.name!r}: use that list's name."
                    )
        names = sorted(lead_list.name for lead_list in lists)
        # a typo (Sprng leads), not merely another "... leads": only close matches are suggested
        close = difflib.get_close_matches(
            list_ref.strip().casefold(), [name.casefold() for name in names], n=1, cutoff=SUGGEST_CUTOFF
        )
        if close:
            suggestion = next(name for name in names if name.casefold() == close[0])
            return f"No list named {quote_input(list_ref)}; did you mean {suggestion!r}?"
        known = ", ".join(names[:10]) + (", …" if len(names) > 10 else "") if names else "there are none"
        return f"No list named {quote_input(list_ref)}; the lists are: {known}."

    # ------------------------------------------------------------------ leads

    async def _find_lead(self, lead_list: LeadList, reference: str) -> Lead:
        """A lead by id, uid or number; a number typed as 00…, national or with separators is tried in E.164 too."""
        try:
            return await self._find_exactly(lead_list, reference)
        except UserFacingError as not_found:
            e164 = self._as_e164(reference)
            if e164 is None or e164 == reference.strip() or not_found.field != FIELD_LEAD:
                raise
            try:
                return await self._find_exactly(lead_list, e164)
            except UserFacingError:
                raise not_found from None

    async def _find_exactly(self, lead_list: LeadList, reference: str) -> Lead:
        try:
            return await self.client.find_lead(lead_list.id, reference)
        except errors.AmbiguousMatchError as ambiguous:
            raise await self._ambiguous(lead_list, reference, ambiguous) from None
        except errors.BabelforceError as failure:
            raise self._failed(failure, lead_list, reference=reference) from None

    async def _ambiguous(
        self, lead_list: LeadList, reference: str, ambiguous: errors.AmbiguousMatchError
    ) -> UserFacingError:
        """Name the leads that share the number, so the user can pick one by uid."""
        shown = ambiguous.candidates[:AMBIGUOUS_SHOWN]
        found = await asyncio.gather(*(self.client.get_lead(lead_list.id, c) for c in shown), return_exceptions=True)
        uids = [lead.uid or lead.id for lead in found if isinstance(lead, Lead)]
        return ambiguous_number(lead_list, reference, ambiguous, uids)

    def _as_e164(self, reference: str) -> str | None:
        try:
            return parse_number(reference, self.default_region)
        except FieldError:
            return None

    # ------------------------------------------------------------------ the dialer's context

    async def _lead_and_context(self, lead_list: LeadList, reference: str) -> tuple[Lead, DialContext]:
        """The lead and the dialer's context, read side by side; the lead's own campaignId double-checks which
        campaign dials the list (the directory is cached, and a campaign can take a list over)."""
        dialling = await self._dialling(lead_list)
        lead, context = await asyncio.gather(
            self._find_lead(lead_list, reference), self._context_for(lead_list, dialling)
        )
        known_id = context.campaign.id if context.campaign else None
        if lead.campaign_id and lead.campaign_id != known_id and dialling.error is None:
            log.info("list %s is dialled by campaign %s now; reading again", lead_list.id, lead.campaign_id)
            context = await self._context_for(lead_list, await self._dialling(lead_list, fresh=True))
        return lead, context

    async def _dialling(self, lead_list: LeadList, *, fresh: bool = False) -> _Dialling:
        """Which campaign dials the list (an active one first), per the cached campaign directory."""
        if fresh:
            self._forget("campaigns")
        try:
            campaigns = await self._cached("campaigns", self.client.list_campaigns)
        except errors.BabelforceError as failure:
            log.warning("could not read campaigns for list %s: %s", lead_list.id, failure)
            return _Dialling(None, errors.short_reason(failure))
        dialling = [c for c in campaigns if c.lead_list is not None and c.lead_list.id == lead_list.id]
        dialling.sort(key=lambda campaign: not campaign.active)
        return _Dialling(dialling[0] if dialling else None)

    async def _context_for(self, lead_list: LeadList, dialling: _Dialling) -> DialContext:
        """The campaign (read live) and its hopper, side by side. A campaign that no longer actively dials the
        list sends us back to a fresh directory once; a failure to read it makes the context unknown."""
        if dialling.error is not None:
            return DialContext(lead_list.name, campaign_error=dialling.error)
        if dialling.campaign is None:
            return DialContext(lead_list.name)
        campaign_id = dialling.campaign.id
        campaign, hopper = await asyncio.gather(
            self.client.get_campaign(campaign_id), self.client.get_hopper(campaign_id), return_exceptions=True
        )
        if isinstance(campaign, errors.NotFoundError) or (
            isinstance(campaign, Campaign)
            and (campaign.lead_list is None or campaign.lead_list.id != lead_list.id or not campaign.active)
        ):
            return await self._fresh_context(lead_list)
        if isinstance(campaign, errors.BabelforceError):
            log.warning("could not read campaign %s: %s", campaign_id, campaign)
            return DialContext(lead_list.name, campaign_error=errors.short_reason(campaign))
        if isinstance(campaign, BaseException):
            raise campaign
        if isinstance(hopper, errors.BabelforceError):
            log.warning("could not read the hopper of campaign %s: %s", campaign_id, hopper)
            return DialContext(lead_list.name, campaign, hopper_error=errors.short_reason(hopper))
        if isinstance(hopper, BaseException):
            raise hopper
        return DialContext(lead_list.name, campaign, tuple(hopper))

    async def _fresh_context(self, lead_list: LeadList) -> DialContext:
        """The directory read again (it is itself a live read of every campaign), then that campaign's hopper."""
        dialling = await self._dialling(lead_list, fresh=True)
        if dialling.error is not None:
            return DialContext(lead_list.name, campaign_error=dialling.error)
        campaign = dialling.campaign
        if campaign is None or not campaign.active:
            return DialContext(lead_list.name, campaign)
        try:
            hopper = await self.client.get_hopper(campaign.id)
        except errors.BabelforceError as failure:
            log.warning("could not read the hopper of campaign %s: %s", campaign.id, failure)
            return DialContext(lead_list.name, campaign, hopper_error=errors.short_reason(failure))
        return DialContext(lead_list.name, campaign, tuple(hopper))

    async def _write_with_context(
        self,
        lead_list: LeadList,
        context: DialContext,
        action: Action,
        before: Lead,
        new_rank: int | None,
        write: Awaitable[T],
    ) -> tuple[T, DialContext]:
        """Run the write; meanwhile, when the caveat needs it, read the rank of the hopper's last lead."""
        if not needs_last_hopper_rank(action, context, before.id, new_rank, (before.uid,)) or not context.hopper:
            return await write, context
        written, last_rank = await asyncio.gather(write, self._rank_of(lead_list, context.hopper[-1]))
        return written, replace(context, last_hopper_rank=last_rank)

    async def _rank_of(self, lead_list: LeadList, entry: HopperEntry) -> int | None:
        """The current rank of the lead a hopper entry names (by id, else by this list's uid); None when unknown."""
        try:  # the hopper's last lead: a copy read in the last HOPPER_TAIL_MAX_AGE_S seconds will do
            if entry.id is not None:
                return (await self.client.get_lead(lead_list.id, entry.id, max_age=HOPPER_TAIL_MAX_AGE_S)).rank
            if entry.uid is not None and entry.list_id == lead_list.id:
                return (await self.client.find_lead_by_uid(lead_list.id, entry.uid)).rank
        except errors.BabelforceError as failure:  # only a caveat's detail is lost; the write goes on
            log.warning("could not read the hopper's last lead %s: %s", entry.id or entry.uid, failure)
        return None

    # ------------------------------------------------------------------ errors

    async def _guard(
        self,
        lead_list: LeadList | None,
        call: Awaitable[T],
        *,
        write: bool = False,
        lead: Lead | None = None,
        uid: str | None = None,
        taken_hint: str = "add",
    ) -> T:
        """Await an API call, turning its failure into a UserFacingError (a duplicate uid names the holder)."""
        try:
            return await call
        except errors.ConflictError as conflict:
            if uid is None or lead_list is None:
                raise self._failed(conflict, lead_list, write=write, lead=lead) from None
            rank = await self._rank_of_uid(lead_list, uid)
            raise uid_taken(uid, lead_list, rank, hint=taken_hint) from None
        except errors.BabelforceError as failure:
            raise self._failed(failure, lead_list, write=write, lead=lead) from None

    def _failed(
        self,
        failure: errors.BabelforceError,
        lead_list: LeadList | None,
        *,
        write: bool = False,
        lead: Lead | None = None,
        reference: str | None = None,
    ) -> UserFacingError:
        """The user's sentence for a failed call (bot.explain); a list babelforce says is gone leaves the caches."""
        if lead_list is not None and list_is_gone(failure, lead_list):
            self._forget("lists")
            self._forget("campaigns")
        return user_error(failure, lead_list, write=write, lead=lead, reference=reference)

    async def _rank_of_uid(self, lead_list: LeadList, uid: str) -> int | None:
        try:
            return (await self.client.find_lead_by_uid(lead_list.id, uid, fresh=True)).rank
        except errors.BabelforceError:
            return None

    # ------------------------------------------------------------------ the directory cache

    async def _cached(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """A directory read (lists, campaigns) shared for `directory_ttl` s.

        Concurrent misses share one load and its outcome, success or failure, so a slow babelforce is asked once,
        not once per waiting command. The load is shielded: a caller that gives up (a Slack time budget) does
        not cancel it, so it still fills the cache for the next request.
        """
        entry = self._cache.get(key)
        if entry is not None and self._clock() - entry.at < self._ttl:
            return entry.value
        loading = self._loading.get(key)
        if loading is None:
            # a context of its own: shared by every waiting request, it carries none's log context and never waits
            # its turn behind acks (bot.ack_first) while a request still answering Slack awaits it
            loading = asyncio.get_running_loop().create_task(self._load(key, load), context=contextvars.Context())
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(loading)

    async def _load(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        value = await load()
        self._cache[key] = _Cached(value, self._clock())
        return value

    def _loaded(self, key: str, done: asyncio.Future[Any]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled() and done.exception() is not None:
            log.debug("directory load %s failed: %s", key, type(done.exception()).__name__)  # retrieved: no warning

    def _forget(self, key: str) -> None:
        self._cache.pop(key, None)


def _has_values(lead: Lead, changes: dict[str, Any], data: dict[str, Any]) -> bool:
    """Whether a lead carries every value a write sends (other fields may have moved on since)."""
    if any(getattr(lead, name) != value for name, value in changes.items()):
        return False
    return all(
        lead.data.get(key) == value if value is not None else key not in lead.data for key, value in data.items()
    )


def _match_list(lists: list[LeadList], list_ref: str) -> LeadList | None:
    try:
        return match_list(lists, list_ref)
    except errors.AmbiguousMatchError as ambiguous:
        raise user_error(ambiguous) from None
