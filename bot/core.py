"""What the listeners share: the lead service, the bot's rules, and turning outcomes into Slack messages.

Listeners stay thin: they ack, then hand the parsed command to `Leadbot.execute`, which never raises; anything
unexpected is logged with a reference and the user is told in one sentence.

A write goes: permission (the listener, before its ack) -> plan (read the lead and the dialer) -> "apply anyway?"
when the change would do nothing for dialling now -> audit record (pending; no record, no change) -> babelforce ->
audit outcome -> reply with an Undo button. The audit record's request id makes a repeated delivery (Slack retry,
double submit, double click) a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field, replace

import aiohttp
from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from commands.blocks import (
    HistoryEntry,
    LeadReport,
    change_summary,
    confirmation_message,
    error_message,
    history_message,
    lead_message,
    notice_message,
)
from commands.caveats import describe, escape
from commands.grammar import (
    WRITE_SUBCOMMANDS,
    AddLead,
    Command,
    LeadHistory,
    RankLead,
    SetLead,
    ShowLead,
    WriteCommand,
    command_text,
)
from commands.modals import FormOrigin

from .audit import Actor, AuditError, AuditLog, Change, Outcome
from .permissions import AccessPolicy, Denial, Gatekeeper, Requester
from .service import LeadService, Plan, Snapshot, UserFacingError, snapshot

log = logging.getLogger(__name__)

#: Key of the Leadbot object in every Bolt request's context (set by a global middleware in bot.app).
CONTEXT_KEY = "leadbot"
#: A form submission must be answered within 3 s; pre-checks that take longer are left to the command itself.
FORM_CHECK_BUDGET_S = 2.0
#: How long an "apply anyway?" question stays answerable.
CONFIRM_TTL_S = 15 * 60
NOT_RECORDED = "{reason} So leadbot did not make the change: nothing was changed. Tell whoever runs leadbot."
UNDO_SUBCOMMAND = "undo"
APPLY_ANYWAY = "apply"  # the "Apply anyway" button: a write


def subcommand_of(command: Command) -> str:
    return {AddLead: "add", RankLead: "rank", ShowLead: "show", SetLead: "set", LeadHistory: "history"}[type(command)]


def is_write(subcommand: str) -> bool:
    return subcommand in WRITE_SUBCOMMANDS or subcommand in (UNDO_SUBCOMMAND, APPLY_ANYWAY)


@dataclass(frozen=True, slots=True)
class Request:
    """Who asks, and the key that makes a repeated delivery of the same request a no-op (None: no such key)."""

    requester: Requester
    request_id: str | None = None
    text: str = ""  # the command as the user gave it, for the audit trail

    @property
    def actor(self) -> Actor:
        who = self.requester
        return Actor(who.user_id, who.team_id, who.enterprise_id, who.channel_id)


@dataclass(slots=True)
class Leadbot:
    service: LeadService
    audit: AuditLog
    gate: Gatekeeper = field(default_factory=lambda: Gatekeeper(AccessPolicy.open(), None))
    audit_channel: str | None = None  # LEADBOT_AUDIT_CHANNEL: one line per change
    form_check_budget: float = FORM_CHECK_BUDGET_S
    # request ids being handled in this process: a repeated delivery arriving meanwhile is dropped at once
    _in_flight: set[str] = field(default_factory=set)

    @property
    def default_region(self) -> str | None:
        """The country national phone numbers belong to (LEADBOT_DEFAULT_REGION), shared with the service."""
        return self.service.default_region

    # ------------------------------------------------------------------ permission

    async def authorize(self, request: Request, subcommand: str, *, list_ref: str | None = None) -> Denial | None:
        """The gate's answer (None: allowed). A denial is recorded in the audit trail; no babelforce call is made."""
        denial = await self.gate.check(request.requester, write=is_write(subcommand))
        if denial is not None:
            try:
                await self.audit.denied(
                    actor=request.actor,
                    action=subcommand,
                    command=request.text,
                    reason=denial.reason,
                    list_ref=list_ref,
                )
            except AuditError as failure:
                log.warning("could not record a denied /lead %s: %s", subcommand, failure.message)
        return denial

    # ------------------------------------------------------------------ commands

    async def execute(
        self,
        command: Command,
        *,
        request: Request,
        replace_original: bool,
        confirmed: bool = False,
        client: AsyncWebClient | None = None,
    ) -> dict | None:
        """Run a command and return the reply message; never raises. None: a repeated delivery, already handled."""
        started = time.perf_counter()
        subcommand = subcommand_of(command)
        outcome = "ok"
        try:
            if isinstance(command, ShowLead):
                return lead_message(await self.service.show(command), replace_original=replace_original)
            if isinstance(command, LeadHistory):
                return await self._history(command, replace_original=replace_original)
            reply, outcome = await self._write(command, request, replace_original, confirmed, client)
            return reply
        except UserFacingError as failure:
            outcome = "refused"
            return error_message(failure.message, replace_original=replace_original)
        except Exception:  # the edge: whatever broke, the user gets a sentence and the bot goes on
            outcome = "crashed"
            reference = uuid.uuid4().hex[:8]
            log.exception("/lead %s failed unexpectedly (reference %s)", subcommand, reference)
            return error_message(
                f"Something went wrong inside leadbot (reference {reference}); check the lead with /lead show "
                "before trying again.",
                replace_original=replace_original,
            )
        finally:
            log.info(
                "/lead %s by %s list=%s lead=%s: %s in %.0f ms",
                subcommand,
                request.requester.user_id or "?",
                mask(command.list_ref),
                mask(getattr(command, "lead_ref", getattr(command, "uid", ""))),
                outcome,
                (time.perf_counter() - started) * 1000,
            )

    async def _write(
        self,
        command: WriteCommand,
        request: Request,
        replace_original: bool,
        confirmed: bool,
        client: AsyncWebClient | None,
    ) -> tuple[dict | None, str]:
        request_id = request.request_id
        if request_id is not None and (request_id in self._in_flight or await self._reserved(request_id)):
            log.info("request %s was already received: not handled twice", request_id)
            return None, "duplicate"
        if request_id is not None:
            self._in_flight.add(request_id)
        try:
            return await self._plan_and_write(command, request, replace_original, confirmed, client)
        finally:
            self._in_flight.discard(request_id)

    async def _reserved(self, request_id: str) -> bool:
        try:
            return await self.audit.reserved(request_id)
        except AuditError as failure:  # begin() will fail too and refuse the change with the reason
            log.warning("could not check request %s in the audit trail: %s", request_id, failure.message)
            return False

    async def _plan_and_write(
        self,
        command: WriteCommand,
        request: Request,
        replace_original: bool,
        confirmed: bool,
        client: AsyncWebClient | None,
    ) -> tuple[dict | None, str]:
        plan = await self.service.plan(command)
        if plan.unchanged:
            return lead_message(await self.service.apply(plan), replace_original=replace_original), "unchanged"
        if plan.blocking and not confirmed:
            return await self._ask(plan, request, replace_original), "asked"
        before = snapshot(plan.before) if plan.before is not None else None
        try:
            change_id = await self.audit.begin(
                actor=request.actor,
                action=subcommand_of(command),
                command=request.text or command_text(command),
                request_id=request.request_id,
                list_id=plan.lead_list.id,
                list_name=plan.lead_list.name,
                lead_id=plan.before.id if plan.before is not None else None,
                lead_uid=plan.before.uid if plan.before is not None else getattr(command, "uid", None),
                before=before,
            )
        except AuditError as failure:
            log.error("audit trail unavailable, /lead %s refused: %s", subcommand_of(command), failure.message)
            return error_message(
                NOT_RECORDED.format(reason=failure.message), replace_original=replace_original
            ), "unrecorded"
        if change_id is None:
            log.info("request %s was already handled: not applied twice", request.request_id)
            return None, "duplicate"
        try:
            report = await self.service.apply(plan)
        except UserFacingError as failure:
            outcome = Outcome.UNKNOWN if failure.uncertain else Outcome.FAILED
            await self._finish(change_id, outcome=outcome, detail=failure.message)
            raise
        except BaseException:
            await self._finish(change_id, outcome=Outcome.UNKNOWN, detail="leadbot stopped before babelforce answered")
            raise
        recorded = await self._finish(
            change_id,
            outcome=Outcome.OK,
            after=snapshot(report.lead),
            lead_id=report.lead.id,
            lead_uid=report.lead.uid,
            caveat=describe(report.caveats),
        )
        if not recorded:
            report = _with_note(
                report, "leadbot could not complete this change's audit record; it was made all the same."
            )
        await self._announce(
            client, request, subcommand_of(command), plan.lead_list.name, snapshot(report.lead), before
        )
        return lead_message(report, replace_original=replace_original, undo_id=change_id), "ok"

    async def _ask(self, plan: Plan, request: Request, replace_original: bool) -> dict:
        """Hold the command and ask "apply anyway?": the change would do nothing for dialling now."""
        token = secrets.token_urlsafe(12)
        try:
            await self.audit.hold(
                token=token, actor=request.actor, command=command_payload(plan.command), expires_in=CONFIRM_TTL_S
            )
        except AuditError as failure:
            return error_message(NOT_RECORDED.format(reason=failure.message), replace_original=replace_original)
        return confirmation_message(_intent(plan), plan.blocking, token, replace_original=replace_original)

    async def confirm(self, token: str, *, request: Request, client: AsyncWebClient | None = None) -> dict | None:
        """ "Apply anyway" was clicked: run the held command once, without asking again."""
        try:
            payload = await self.audit.claim(token, user_id=request.requester.user_id)
        except AuditError as failure:
            return error_message(NOT_RECORDED.format(reason=failure.message), replace_original=True)
        if payload is None:
            return notice_message(
                "This question has expired, was already answered, or belongs to someone else; nothing was changed "
                "by this click. Type the command again if it is still needed.",
                replace_original=False,  # the first click's answer stays where the question was
            )
        command = command_from_payload(payload)
        keyed = Request(request.requester, f"confirm:{token}", request.text or command_text(command))
        return await self.execute(command, request=keyed, replace_original=True, confirmed=True, client=client)

    async def cancel(self, token: str, *, request: Request) -> dict:
        try:
            cancelled = await self.audit.cancel(token, user_id=request.requester.user_id)
        except AuditError as failure:
            log.warning("could not cancel a held confirmation: %s", failure.message)
            cancelled = False
        if cancelled:
            return notice_message("Cancelled: nothing was changed.", replace_original=True)
        return notice_message("This question was already answered or has expired; this click changed nothing.")

    # ------------------------------------------------------------------ undo

    async def undo(self, change_id: int, *, request: Request, client: AsyncWebClient | None = None) -> dict:
        """Put a lead back as it was before an audited change; never raises. A repeated click undoes once."""
        try:
            return await self._undo(change_id, request, client)
        except UserFacingError as failure:
            return error_message(failure.message)
        except AuditError as failure:
            return error_message(NOT_RECORDED.format(reason=failure.message))
        except Exception:  # the edge: as in execute
            reference = uuid.uuid4().hex[:8]
            log.exception("undo of change %s failed unexpectedly (reference %s)", change_id, reference)
            return error_message(
                f"Something went wrong inside leadbot (reference {reference}); check the lead with /lead show."
            )

    async def _undo(self, change_id: int, request: Request, client: AsyncWebClient | None) -> dict:
        change = await self.audit.get(change_id)
        if change is None:
            return error_message("leadbot has no record of that change, so it cannot undo it.")
        if change.undone_by is not None:
            return notice_message(f"Already undone (change {change.undone_by}); nothing more to do.")
        if change.outcome != Outcome.OK or change.list_id is None or change.lead_id is None:
            return error_message(f"That change was not applied ({change.outcome}), so there is nothing to undo.")
        if change.action in (UNDO_SUBCOMMAND, "delete"):
            return error_message("An undo cannot itself be undone; change the lead again with /lead set.")
        lead_list, current = await self.service.current(change.list_id, change.lead_id)
        name = (change.after or {}).get("uid") or change.lead_uid or change.lead_id
        if current is None:
            return error_message(f"Lead {name} no longer exists in list {lead_list.name}; there is nothing to undo.")
        deleting = change.action == "add"
        undo_id = await self.audit.begin(
            actor=request.actor,
            action="delete" if deleting else UNDO_SUBCOMMAND,
            command=request.text or f"undo of change {change.id}",
            request_id=f"undo:{change.id}",
            list_id=lead_list.id,
            list_name=lead_list.name,
            lead_id=current.id,
            lead_uid=current.uid,
            before=snapshot(current),
            undo_of=change.id,
        )
        if undo_id is None:  # another click got there first
            again = await self.audit.get(change.id)
            if again is not None and again.undone_by is not None:
                return notice_message(f"Already undone (change {again.undone_by}); nothing more to do.")
            return notice_message("This change is already being undone; nothing more to do.")
        drift = _drift(change, snapshot(current))
        if drift:
            await self._finish(undo_id, outcome=Outcome.FAILED, detail=f"changed since: {drift}")
            return error_message(
                f"Lead {name} was changed since ({drift}), so undo would overwrite that; change it with /lead set."
            )
        try:
            if deleting:
                await self.service.remove(lead_list, current)
            else:
                report = await self.service.restore(lead_list, current, change.before or {}, change.after or {})
        except UserFacingError as failure:
            await self._finish(
                undo_id, outcome=Outcome.UNKNOWN if failure.uncertain else Outcome.FAILED, detail=failure.message
            )
            raise
        if deleting:
            await self._finish(undo_id, outcome=Outcome.OK)
            await self.audit.mark_undone(change.id, undo_id)
            await self._announce(client, request, "delete", lead_list.name, snapshot(current), snapshot(current))
            return notice_message(f"Undone: lead {name} was deleted from list {lead_list.name}.")
        await self._finish(undo_id, outcome=Outcome.OK, after=snapshot(report.lead), caveat=describe(report.caveats))
        await self.audit.mark_undone(change.id, undo_id)
        await self._announce(client, request, UNDO_SUBCOMMAND, lead_list.name, snapshot(report.lead), snapshot(current))
        return lead_message(report)

    # ------------------------------------------------------------------ history

    async def _history(self, command: LeadHistory, *, replace_original: bool) -> dict:
        lead_list = await self.service.resolve_list(command.list_ref)
        try:
            lead = await self.service.check_lead_exists(lead_list.id, command.lead_ref)
            lead_id, lead_uid, name = lead.id, lead.uid, lead.uid or lead.id
        except UserFacingError as failure:
            if failure.field is None:
                raise
            # gone from babelforce (e.g. an undone add): its history is still in the audit trail, by uid or id
            lead_id, lead_uid, name = command.lead_ref, command.lead_ref, command.lead_ref
        try:
            changes = await self.audit.history(lead_list.id, lead_id=lead_id, lead_uid=lead_uid)
        except AuditError as failure:
            return error_message(
                f"leadbot could not read its audit trail ({failure.message}).", replace_original=replace_original
            )
        entries = [
            HistoryEntry(
                at=change.at,
                user_id=change.actor.user_id,
                action=change.action,
                summary=_summary(change),
                outcome=str(change.outcome),
                detail=change.detail,
                undone=change.undone_by is not None,
            )
            for change in changes
        ]
        return history_message(lead_list.name, name, entries) | ({"replace_original": True} if replace_original else {})

    # ------------------------------------------------------------------ forms

    async def precheck(self, command: Command) -> dict[str, str]:
        """Field errors a form can show in place (unknown lead, duplicate uid, unknown list), within the budget.

        Only answers about a field become field errors. A check that takes longer, or a babelforce failure, is
        dropped: the form closes and the command itself runs and reports whatever happens.
        """
        try:
            async with asyncio.timeout(self.form_check_budget):
                if isinstance(command, AddLead):
                    await self.service.check_uid_free(command.list_ref, command.uid)
                    return {}
                if isinstance(command, LeadHistory):
                    await self.service.resolve_list(command.list_ref)
                    return {}
                lead = await self.service.check_lead_exists(command.list_ref, command.lead_ref)
                if isinstance(command, SetLead) and command.uid is not None and command.uid != lead.uid:
                    await self.service.check_uid_free(command.list_ref, command.uid, for_set=True)
        except TimeoutError:
            log.info("form pre-check took over %.1f s; the command will report instead", self.form_check_budget)
        except UserFacingError as failure:
            if failure.field:
                return {failure.field: failure.message}
            log.info("form pre-check could not ask babelforce (%s); the command will report", failure.message)
        except Exception:  # a bug in a check must not block the form: the command itself will report
            log.exception("form pre-check failed unexpectedly")
        return {}

    # ------------------------------------------------------------------ audit helpers

    async def _finish(self, change_id: int, **outcome: object) -> bool:
        """Complete an audit record; a failure is logged (the change itself is already made or refused)."""
        try:
            await self.audit.finish(change_id, **outcome)  # type: ignore[arg-type]
        except AuditError as failure:
            log.error("could not complete audit record %s: %s", change_id, failure.message)
            return False
        return True

    async def _announce(
        self,
        client: AsyncWebClient | None,
        request: Request,
        action: str,
        list_name: str,
        after: Snapshot,
        before: Snapshot | None,
    ) -> None:
        """One line per change in LEADBOT_AUDIT_CHANNEL; Slack failing here loses nothing (the record is in SQLite)."""
        if not self.audit_channel or client is None:
            return
        # the channel is read by many: phone numbers are masked there as in logs (the audit trail keeps them whole)
        masked_before, masked_after = _masked_number(before), _masked_number(after)
        what = change_summary(masked_before, masked_after) if action != "delete" else "deleted (undo of its add)"
        name = after.get("uid") or after.get("id")
        line = f"<@{request.requester.user_id}> {action} {escape(str(name))} in {escape(list_name)}: {escape(what)}"
        try:
            await client.chat_postMessage(channel=self.audit_channel, text=line[:3000], unfurl_links=False)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as failure:
            log.warning("audit channel post failed (the audit record is kept): %s", type(failure).__name__)


def command_payload(command: WriteCommand) -> dict:
    """A write command as JSON-able data, to hold it while the user answers "apply anyway?"."""
    return {"kind": subcommand_of(command), **asdict(command)}


def command_from_payload(payload: dict) -> WriteCommand:
    kinds: dict[str, type[WriteCommand]] = {"add": AddLead, "rank": RankLead, "set": SetLead}
    values = dict(payload)
    kind = kinds[values.pop("kind")]
    return kind(**values)


def _intent(plan: Plan) -> str:
    """The change in one line, for the "apply anyway?" question."""
    command = plan.command
    if isinstance(command, AddLead):
        return f"Add lead {command.uid} to {plan.lead_list.name}"
    before = plan.before
    name = (before.uid or before.id) if before is not None else command.lead_ref
    if isinstance(command, RankLead) and before is not None:
        return f"Change the rank of {name} from {before.rank} to {command.rank}"
    changed = [f"{key} → {value}" for key, value in plan.changes.items()]
    changed += [f"{key} → {value}" if value is not None else f"delete {key}" for key, value in plan.data.items()]
    return f"Change {name}: " + ", ".join(changed)


def _masked_number(values: Snapshot | None) -> Snapshot | None:
    if values is None or not values.get("number"):
        return values
    return {**values, "number": mask(str(values["number"]))}


def _summary(change: Change) -> str:
    """What a recorded change did (or, when it has no result, what was asked)."""
    if change.action == "delete":
        return "deleted the lead (undo of its add)"
    if change.after is None:
        return f"asked: {change.command}" if change.command else "no result recorded"
    return change_summary(change.before, change.after)


def _drift(change: Change, current: dict) -> str:
    """What differs between the lead now and the change's recorded after-state (only the values it changed)."""
    after, before = change.after or {}, change.before or {}
    names = (
        ("uid", "number", "rank")
        if change.action == "add"
        else [name for name in ("uid", "number", "rank") if before.get(name) != after.get(name)]
    )
    differences = [
        f"{name} is now {current.get(name)}, not {after.get(name)}"
        for name in names
        if current.get(name) != after.get(name)
    ]
    old, new, now = before.get("data") or {}, after.get("data") or {}, current.get("data") or {}
    keys = (
        set(new)
        if change.action == "add"
        else {key for key in set(old) | set(new) if old.get(key, _GONE) != new.get(key, _GONE)}
    )
    differences += [f"data {key} differs" for key in sorted(keys) if now.get(key, _GONE) != new.get(key, _GONE)]
    return "; ".join(differences[:3])


_GONE = object()


def _with_note(report: LeadReport, note: str) -> LeadReport:
    return replace(report, notes=(*report.notes, note))


async def deliver(
    message: dict, *, response_url: str | None, client: AsyncWebClient | None, channel_id: str | None, user_id: str
) -> bool:
    """Post a reply to the response_url; when that is gone, as an ephemeral message in the channel.

    Returns whether Slack took it. Failures are logged, never raised: the work is done either way.
    """
    if response_url:
        try:
            response = await AsyncWebhookClient(response_url).send_dict(message)
        except (aiohttp.ClientError, TimeoutError, OSError) as failure:
            log.warning("reply to response_url failed: %s", type(failure).__name__)
        else:
            if response.status_code == 200:
                return True
            log.warning("response_url refused the reply: HTTP %s", response.status_code)
    if client is not None and channel_id:
        try:
            await client.chat_postEphemeral(
                channel=channel_id, user=user_id, text=message.get("text", ""), blocks=message.get("blocks")
            )
            return True
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as failure:
            log.warning("chat.postEphemeral fallback failed: %s", type(failure).__name__)
    return False


async def after_ack(work: Awaitable[object], what: str) -> None:
    """Run a listener's work that follows its ack, letting nothing escape.

    Bolt (async, ack-first) discards an ack already given when its listener raises afterwards, and Slack would
    then show the user a timeout; so every failure after the ack is logged here instead.
    """
    try:
        await work
    except Exception:  # the edge after the ack: log with context, keep the ack, keep serving
        log.exception("work after the ack of %s failed", what)


def requester_of(context: AsyncBoltContext, channel_id: str | None = None) -> Requester:
    """Who sent a Slack request, as Bolt read it from the payload (channel: given, else the payload's)."""
    return Requester(
        user_id=context.user_id or "",
        team_id=context.team_id,
        enterprise_id=context.enterprise_id,
        channel_id=channel_id or context.channel_id,
    )


def origin_of(view: dict) -> FormOrigin:
    return FormOrigin.decode(view.get("private_metadata"))


# Digits with the separators people type in phone numbers (+49 151-000 (0)40), not inside a hex id.
_PHONE_LIKE = re.compile(r"(?<![0-9a-fA-F])\+?\d[\d\s\-./()]*\d(?![0-9a-fA-F])")
MASK_MIN_DIGITS = 6


def mask(text: str) -> str:
    """For logs: keep references readable but hide phone numbers (6+ digits, separators allowed: last 2 kept)."""
    text = " ".join(str(text).split())[:60]

    def hide(match: re.Match[str]) -> str:
        digits = [char for char in match.group() if char.isdigit()]
        if len(digits) < MASK_MIN_DIGITS:
            return match.group()
        return "•" * (len(digits) - 2) + "".join(digits[-2:])

    return _PHONE_LIKE.sub(hide, text)
