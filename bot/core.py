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
import contextlib
import logging
import re
import secrets
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import aiohttp
from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from commands.blocks import (
    HISTORY_SHOWN_MAX,
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
from .permissions import Denial, Gatekeeper, Requester
from .service import LeadService, Plan, Snapshot, UserFacingError, changed_keys, snapshot, written

log = logging.getLogger(__name__)

#: Key of the Leadbot object in every Bolt request's context (set by a global middleware in bot.app).
CONTEXT_KEY = "leadbot"
#: A form submission must be answered within 3 s: the permission check and the field pre-checks share this budget
#: (counted from the submission's arrival); pre-checks that do not fit are left to the command itself.
FORM_CHECK_BUDGET_S = 2.4
#: A denial is recorded before its ack; a busy audit file (another process writing) may not delay the ack longer.
DENIAL_RECORD_BUDGET_S = 0.5
#: How long an "apply anyway?" question stays answerable.
CONFIRM_TTL_S = 15 * 60
#: A pending audit record older than this is an interrupted write, not one under way (a write's deadline is 20 s,
#: a read-back 5 s more).
PENDING_STALE_S = 60.0
NOT_RECORDED = "{reason} Nothing was changed, because leadbot makes no change it cannot record; tell whoever runs it."
UNDO_SUBCOMMAND = "undo"
EXPECTED_KEY = "expected_before"  # in a held command: the lead as it was when the question was asked
APPLY_ANYWAY = "apply"  # the "Apply anyway" button: a write


def subcommand_of(command: Command) -> str:
    return {AddLead: "add", RankLead: "rank", ShowLead: "show", SetLead: "set", LeadHistory: "history"}[type(command)]


def is_write(subcommand: str) -> bool:
    """Whether a request needs a writer: the write subcommands, and the buttons that write (Undo, Apply anyway)."""
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
    gate: Gatekeeper  # required: nobody gets an open gate by forgetting it (the console passes an open one)
    audit_channel: str | None = None  # LEADBOT_AUDIT_CHANNEL: one line per change
    form_check_budget: float = FORM_CHECK_BUDGET_S
    # request ids being handled in this process: a repeated delivery arriving meanwhile is dropped at once
    _in_flight: set[str] = field(default_factory=set)
    # one write at a time per lead in this process, so an undo never interleaves with another change of that lead
    _lead_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    # writes finished in this process, numbered; the number of each lead's latest (a plan older than it is stale)
    _write_seq: int = 0
    _last_write: dict[tuple[str, str], int] = field(default_factory=dict)

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
                async with asyncio.timeout(DENIAL_RECORD_BUDGET_S):  # the write itself goes on in its thread
                    await self.audit.denied(
                        actor=request.actor,
                        action=subcommand,
                        command=request.text,
                        reason=denial.reason,
                        list_ref=list_ref,
                    )
            except AuditError as failure:
                log.warning("could not record a denied /lead %s: %s", subcommand, failure.message)
            except TimeoutError:
                log.warning(
                    "recording a denied /lead %s is slow (audit file busy); it finishes after the ack", subcommand
                )
        return denial

    def lead_lock(self, list_id: str, lead_id: str) -> asyncio.Lock:
        """The lock for writes to one lead (held while its change is recorded, sent and finished)."""
        key = (list_id, lead_id)
        lock = self._lead_locks.get(key)
        if lock is None:
            lock = self._lead_locks[key] = asyncio.Lock()
        return lock

    def _wrote(self, list_id: str, lead_id: str | None) -> None:
        """A write of this lead has ended (whatever its outcome): plans made before it are stale."""
        self._write_seq += 1
        if lead_id is not None:
            self._last_write[(list_id, lead_id)] = self._write_seq

    async def aclose(self, timeout: float = 5.0) -> None:
        """At shutdown: let background work (audit channel lines) finish, for at most `timeout` seconds."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)

    async def shutdown(self) -> None:
        """The HTTP server's shutdown hook: background work first, then babelforce's connections."""
        await self.aclose()
        await self.service.client.aclose()

    def in_background(self, work: Awaitable[None], what: str) -> None:
        """Run work the user need not wait for (the audit channel line); failures are logged by after_ack."""
        task = asyncio.ensure_future(after_ack(work, what))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ commands

    async def execute(
        self,
        command: Command,
        *,
        request: Request,
        replace_original: bool,
        confirmed: bool = False,
        client: AsyncWebClient | None = None,
        expected: Snapshot | None = None,
    ) -> dict | None:
        """Run a command and return the reply message; never raises. None: a repeated delivery, already handled.

        `confirmed`: the user answered "apply anyway" to a question asked when the lead was `expected`."""
        started = time.perf_counter()
        subcommand = subcommand_of(command)
        outcome = "ok"
        try:
            if isinstance(command, ShowLead):
                return lead_message(await self.service.show(command), replace_original=replace_original)
            if isinstance(command, LeadHistory):
                return await self._history(command, replace_original=replace_original)
            reply, outcome = await self._write(command, request, replace_original, confirmed, client, expected)
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
        expected: Snapshot | None,
    ) -> tuple[dict | None, str]:
        """A write, once per request id: a delivery already in flight here or recorded anywhere is dropped.

        Then: read, and (unless nothing changes or the user must confirm) record, write and finish under the
        lead's lock; a plan made while another write of the lead was under way is made again once that one is
        done. An "apply anyway" for a lead that changed since the question asks again rather than overwrite."""
        request_id = request.request_id
        if request_id is not None:
            if request_id in self._in_flight:  # checked and claimed with no await between: no race in-process
                return None, "duplicate"
            self._in_flight.add(request_id)
        try:
            if request_id is not None and await self._reserved(request_id):
                log.info("request %s was already handled: not handled twice", request_id)
                return None, "duplicate"
            planned_at = self._write_seq
            plan = await self.service.plan(command)
            changed = confirmed and _changed_since_asked(plan, expected)
            confirmed = confirmed and not changed
            if plan.before is not None and not plan.unchanged and not (plan.blocking and not confirmed):
                key = (plan.lead_list.id, plan.before.id)
                async with self.lead_lock(*key):
                    if self._last_write.get(key, -1) > planned_at:  # written meanwhile: read it again
                        plan = await self.service.plan(command)
                        changed = changed or (confirmed and _changed_since_asked(plan, expected))
                        confirmed = confirmed and not changed
                    if not plan.unchanged and not (plan.blocking and not confirmed):
                        return await self._record_and_apply(plan, request, replace_original, client)
            if plan.unchanged:
                return lead_message(await self.service.apply(plan), replace_original=replace_original), "unchanged"
            if plan.blocking and not confirmed:
                return await self._ask(plan, request, replace_original, changed=changed), "asked"
            return await self._record_and_apply(plan, request, replace_original, client)  # an add: no lead to lock yet
        finally:
            if request_id is not None:
                self._in_flight.discard(request_id)

    async def _reserved(self, request_id: str) -> bool:
        try:
            return await self.audit.reserved(request_id)
        except AuditError as failure:  # begin() will fail too and refuse the change with the reason
            log.warning("could not check request %s in the audit trail: %s", request_id, failure.message)
            return False

    async def _record_and_apply(
        self, plan: Plan, request: Request, replace_original: bool, client: AsyncWebClient | None
    ) -> tuple[dict | None, str]:
        """The audit record first (no record, no change; a taken request id, no change), then babelforce, then the
        record's outcome; the reply carries an Undo button when the record is complete."""
        command = plan.command
        action = subcommand_of(command)
        keys = (tuple(plan.changes), tuple(plan.data))  # what this change writes: all the record keeps
        before = written(plan.before, *keys) if plan.before is not None else None
        try:
            change_id = await self.audit.begin(
                actor=request.actor,
                action=action,
                command=request.text or command_text(command),
                request_id=request.request_id,
                list_id=plan.lead_list.id,
                list_name=plan.lead_list.name,
                lead_id=plan.before.id if plan.before is not None else None,
                lead_uid=plan.before.uid if plan.before is not None else getattr(command, "uid", None),
                before=before,
            )
        except AuditError as failure:
            log.error("audit trail unavailable, /lead %s refused: %s", action, failure.message)
            message = NOT_RECORDED.format(reason=failure.message)
            return error_message(message, replace_original=replace_original), "unrecorded"
        if change_id is None:
            log.info("request %s was already handled: not applied twice", request.request_id)
            return None, "duplicate"
        async with self._attempt(change_id, plan.lead_list.id, plan.before.id if plan.before is not None else None):
            report = await self.service.apply(plan)
        after = written(report.lead, *keys) if plan.before is not None else snapshot(report.lead)
        recorded = await self._finish(
            change_id,
            outcome=Outcome.OK,
            after=after,
            lead_id=report.lead.id,
            lead_uid=report.lead.uid,
            caveat=describe(report.caveats),
        )
        if not recorded:  # the change is made, but an incomplete record cannot be undone safely: no Undo button
            report = _with_note(
                report, "leadbot could not complete this change's audit record; it was made all the same."
            )
        self.in_background(
            self._announce(client, request, action, plan.lead_list.name, after, before), "the audit channel line"
        )
        return lead_message(report, replace_original=replace_original, undo_id=change_id if recorded else None), "ok"

    async def _ask(self, plan: Plan, request: Request, replace_original: bool, *, changed: bool = False) -> dict:
        """Hold the command (with the lead as it is now) and ask "apply anyway?": the change would do nothing for
        dialling now. `changed`: asked again because the lead changed after the first question."""
        token = secrets.token_urlsafe(12)
        payload = command_payload(plan.command)
        if plan.before is not None:
            payload[EXPECTED_KEY] = snapshot(plan.before)
        try:
            await self.audit.hold(token=token, actor=request.actor, command=payload, expires_in=CONFIRM_TTL_S)
        except AuditError as failure:
            return error_message(NOT_RECORDED.format(reason=failure.message), replace_original=replace_original)
        question = _intent(plan)
        if changed:
            question = f"The lead changed since you were asked. {question}"
        caveats = plan.predicted or plan.blocking
        return confirmation_message(question, caveats, token, replace_original=replace_original)

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
        expected = payload.pop(EXPECTED_KEY, None)
        command = command_from_payload(payload)
        keyed = Request(request.requester, f"confirm:{token}", command_text(command) + " (Apply anyway)")
        return await self.execute(
            command, request=keyed, replace_original=True, confirmed=True, client=client, expected=expected
        )

    async def cancel(self, token: str, *, request: Request) -> dict:
        """ "Cancel" was clicked: drop the held command (only its asker can), replacing the question."""
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
        """Check the record, then, under the lead's lock: reserve the undo, compare the lead with the change's
        after-state, write back what the change changed, and record it."""
        change = await self.audit.get(change_id)
        if change is None:
            return error_message("leadbot has no record of that change, so it cannot undo it.")
        if change.undone_by is not None:
            return notice_message(f"Already undone (change {change.undone_by}); nothing more to do.")
        refusal = _not_undoable(change)
        if refusal:
            return error_message(refusal)
        assert change.list_id is not None and change.lead_id is not None  # _not_undoable checked
        async with self.lead_lock(change.list_id, change.lead_id):
            return await self._undo_locked(change, request, client)

    async def _undo_locked(self, change: Change, request: Request, client: AsyncWebClient | None) -> dict:
        assert change.list_id is not None and change.lead_id is not None
        lead_list, current = await self.service.current(change.list_id, change.lead_id)
        name = (change.after or {}).get("uid") or change.lead_uid or change.lead_id
        if current is None:
            return error_message(f"Lead {name} no longer exists in list {lead_list.name}; there is nothing to undo.")
        attempts = await self.audit.undos_of(change.id)
        if any(attempt.outcome == Outcome.OK for attempt in attempts):  # done, though its mark did not stick
            return notice_message("Already undone; nothing more to do.")
        if any(attempt.outcome == Outcome.PENDING and self._live(attempt) for attempt in attempts):
            return notice_message("This change is already being undone; nothing more to do.")
        busy = await self._changed_elsewhere(change)
        if busy:
            return error_message(f"Lead {name} is being changed right now (by {busy}); click Undo again in a moment.")
        deleting = change.action == "add"
        before, after = change.before or {}, change.after or {}
        fields, data_keys = changed_keys(before, after)
        now = written(current, fields, data_keys) if not deleting else snapshot(current)
        # An earlier undo whose outcome is unknown keeps its request id; each such attempt moves the id on, so a
        # new click may try again (the comparison below then sees whether the lead is still as the change left it).
        unknown = sum(attempt.outcome in (Outcome.UNKNOWN, Outcome.PENDING) for attempt in attempts)
        undo_id = await self.audit.begin(
            actor=request.actor,
            action="delete" if deleting else UNDO_SUBCOMMAND,
            command=f"Undo of the {change.action} of {change.at:%Y-%m-%d %H:%M} UTC",
            request_id=f"undo:{change.id}" + (f":{unknown}" if unknown else ""),
            list_id=lead_list.id,
            list_name=lead_list.name,
            lead_id=current.id,
            lead_uid=current.uid,
            before=now,
            undo_of=change.id,
        )
        if undo_id is None:  # another process's click got there first
            again = await self.audit.get(change.id)
            if again is not None and again.undone_by is not None:
                return notice_message(f"Already undone (change {again.undone_by}); nothing more to do.")
            return notice_message("This change is already being undone; nothing more to do.")
        if not deleting and _restored(change, snapshot(current)):
            # an earlier undo whose answer was lost did apply: say so, and mark the change undone
            await self._finish(undo_id, outcome=Outcome.OK, after=now, detail="already had its earlier values")
            await self._mark_undone(change.id, undo_id)
            return notice_message(f"Lead {name} already has its earlier values: undone.")
        drift = _drift(change, snapshot(current))
        if drift:
            await self._finish(undo_id, outcome=Outcome.FAILED, detail=f"changed since: {drift}")
            then = (
                "so it was not deleted; remove it in babelforce if it must go."
                if deleting
                else "so undo would overwrite that; change it with /lead set."
            )
            return error_message(f"Lead {name} was changed since ({drift}), {then}")
        async with self._attempt(undo_id, lead_list.id, current.id):
            if deleting:
                await self.service.remove(lead_list, current)
            else:
                report = await self.service.restore(lead_list, current, before, after)
        restored = None if deleting else written(report.lead, fields, data_keys)
        caveat = None if deleting else describe(report.caveats)
        recorded = await self._finish(undo_id, outcome=Outcome.OK, after=restored, caveat=caveat)
        recorded = await self._mark_undone(change.id, undo_id) and recorded
        note = "" if recorded else " leadbot could not complete the audit record of this undo."
        if deleting:
            self.in_background(
                self._announce(client, request, "delete", lead_list.name, now, now), "the audit channel line"
            )
            return notice_message(f"Undone: lead {name} was deleted from list {lead_list.name}.{note}")
        self.in_background(
            self._announce(client, request, UNDO_SUBCOMMAND, lead_list.name, restored or {}, now),
            "the audit channel line",
        )
        return lead_message(_with_note(report, note.strip()) if note else report)

    async def _mark_undone(self, change_id: int, undo_id: int) -> bool:
        try:
            return await self.audit.mark_undone(change_id, undo_id)
        except AuditError as failure:
            log.error("could not mark change %s undone by %s: %s", change_id, undo_id, failure.message)
            return False

    def _live(self, attempt: Change) -> bool:
        """A pending record young enough to be a write still under way (older ones were interrupted)."""
        return (datetime.now(UTC) - attempt.at).total_seconds() < PENDING_STALE_S

    async def _changed_elsewhere(self, change: Change) -> str:
        """Another write of the lead still in flight (in another leadbot process: this one holds the lead's lock):
        undoing now could interleave with it. Finished changes are judged by comparing values."""
        assert change.list_id is not None
        in_flight = [
            other
            for other in await self.audit.history(change.list_id, lead_id=change.lead_id)
            if other.outcome == Outcome.PENDING and other.undo_of != change.id and self._live(other)
        ]
        if not in_flight:
            return ""
        return in_flight[0].actor.user_id or "someone"

    # ------------------------------------------------------------------ history

    async def _history(self, command: LeadHistory, *, replace_original: bool) -> dict:
        """The lead's recorded changes, by its id once babelforce finds it (a uid reused by another lead is not
        mixed in); a lead babelforce no longer has (e.g. an undone add) is looked up in the audit trail by the uid
        or id typed, and when that finds nothing either, the user gets babelforce's "no such lead" sentence."""
        lead_list = await self.service.resolve_list(command.list_ref)
        gone = False
        try:
            lead = await self.service.check_lead_exists(lead_list.id, command.lead_ref)
            lead_id, lead_uid, name = lead.id, None, lead.uid or lead.id
        except UserFacingError as not_found:
            if not_found.field is None:
                raise
            lead_id, lead_uid, name, gone = command.lead_ref.strip(), command.lead_ref.strip(), command.lead_ref, True
            missing = not_found
        try:
            # one more than is shown, to say when older changes are left out
            changes = await self.audit.history(
                lead_list.id, lead_id=lead_id, lead_uid=lead_uid, limit=HISTORY_SHOWN_MAX + 1
            )
        except AuditError as failure:
            return error_message(
                f"leadbot could not read its audit trail: {failure.message}", replace_original=replace_original
            )
        if gone and not changes:
            raise missing
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
        title = f"{name} (no longer in babelforce)" if gone else name
        return history_message(lead_list.name, title, entries) | (
            {"replace_original": True} if replace_original else {}
        )

    # ------------------------------------------------------------------ forms

    async def precheck(self, command: Command, *, budget: float | None = None) -> dict[str, str]:
        """Field errors a form can show in place (unknown lead, duplicate uid, unknown list), within the budget
        (default: the whole form budget; a listener passes what its permission check left).

        Only answers about a field become field errors. A check that takes longer, or a babelforce failure, is
        dropped: the form closes and the command itself runs and reports whatever happens.
        """
        budget = self.form_check_budget if budget is None else budget
        if budget <= 0:
            return {}
        try:
            async with asyncio.timeout(budget):
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
            log.info("form pre-check took over %.1f s; the command will report instead", budget)
        except UserFacingError as failure:
            if failure.field:
                return {failure.field: failure.message}
            log.info("form pre-check could not ask babelforce (%s); the command will report", failure.message)
        except Exception:  # a bug in a check must not block the form: the command itself will report
            log.exception("form pre-check failed unexpectedly")
        return {}

    # ------------------------------------------------------------------ audit helpers

    @contextlib.asynccontextmanager
    async def _attempt(self, record_id: int, list_id: str, lead_id: str | None) -> AsyncIterator[None]:
        """Around a babelforce write: a failure finishes its audit record (unknown when babelforce may have applied
        it), and either way the lead counts as written, so plans made before are made again."""
        try:
            yield
        except UserFacingError as failure:
            outcome = Outcome.UNKNOWN if failure.uncertain else Outcome.FAILED
            await self._finish(record_id, outcome=outcome, detail=failure.message)
            raise
        except BaseException:
            await self._finish(record_id, outcome=Outcome.UNKNOWN, detail="leadbot stopped before babelforce answered")
            raise
        finally:
            self._wrote(list_id, lead_id)

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
    """The held command back from `command_payload`'s data."""
    kinds: dict[str, type[WriteCommand]] = {"add": AddLead, "rank": RankLead, "set": SetLead}
    values = dict(payload)
    kind = kinds[values.pop("kind")]
    return kind(**values)


def _intent(plan: Plan) -> str:
    """The change in one line, old → new, for the "apply anyway?" question."""
    command = plan.command
    if isinstance(command, AddLead):
        return f"Add lead {command.uid} to {plan.lead_list.name}"
    before = plan.before
    if before is None:  # rank and set plans always read the lead
        return command_text(command)
    name = before.uid or before.id
    if isinstance(command, RankLead):
        return f"Change the rank of {name} from {before.rank} to {command.rank}"
    changed = [f"{key} {getattr(before, key)} → {value}" for key, value in plan.changes.items()]
    for key, value in plan.data.items():
        old = before.data.get(key)
        if value is None:
            changed.append(f"delete data {key!r} ({old})")
        else:
            changed.append(f"data {key!r} {old if key in before.data else '(new)'} → {value}")
    return f"Change {name}: " + ", ".join(changed)


def _changed_since_asked(plan: Plan, expected: Snapshot | None) -> bool:
    """Whether the lead differs from how it was when "apply anyway?" was asked."""
    return expected is not None and plan.before is not None and snapshot(plan.before) != expected


def _masked_number(values: Snapshot | None) -> Snapshot | None:
    if values is None or not values.get("number"):
        return values
    return {**values, "number": mask(str(values["number"]))}


def _not_undoable(change: Change) -> str | None:
    """Why a recorded change cannot be undone, or None."""
    if change.action in (UNDO_SUBCOMMAND, "delete"):
        return "An undo cannot itself be undone; change the lead again with /lead set."
    if change.outcome == Outcome.UNKNOWN:
        return (
            "babelforce never confirmed that change, so leadbot cannot undo it safely; check the lead with "
            "/lead show and change it with /lead set."
        )
    if change.outcome == Outcome.PENDING:
        return "That change has not finished (or was interrupted); check the lead with /lead show first."
    if change.outcome != Outcome.OK or change.list_id is None or change.lead_id is None:
        return f"That change was not applied ({change.outcome}), so there is nothing to undo."
    return None


def _summary(change: Change) -> str:
    """What a recorded change did (or, when it has no result, what was asked)."""
    if change.action == "delete":
        return "the lead (undo of its add)"
    if change.after is None:
        return change.command or "no result recorded"
    return change_summary(change.before, change.after)


def _restored(change: Change, current: Snapshot) -> bool:
    """Whether the lead already has the change's before-values for everything the change wrote."""
    before = change.before or {}
    fields, data_keys = changed_keys(before, change.after or {})
    old, now = before.get("data") or {}, current.get("data") or {}
    return (
        bool(fields or data_keys)
        and all(current.get(name) == before.get(name) for name in fields)
        and all(now.get(key, _GONE) == old.get(key, _GONE) for key in data_keys)
    )


def _drift(change: Change, current: dict) -> str:
    """What differs between the lead now and the change's recorded after-state (only the values it changed; for
    an add, everything it created)."""
    after, before = change.after or {}, change.before or {}
    new, now = after.get("data") or {}, current.get("data") or {}
    if change.action == "add":
        names, keys = ["uid", "number", "rank"], sorted(new)
    else:
        names, keys = changed_keys(before, after)
    differences = [
        f"{name} is now {current.get(name)}, not {after.get(name)}"
        for name in names
        if current.get(name) != after.get(name)
    ]
    for key in keys:
        if now.get(key, _GONE) != new.get(key, _GONE):
            is_now = "is gone" if key not in now else f"is now {now[key]!r}"
            was = "deleted" if key not in new else repr(new[key])
            differences.append(f"data {key!r} {is_now}, not {was}")
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
    # The acting user's own workspace: in a shared (Slack Connect) channel or a form, team_id is the installing
    # workspace's, so LEADBOT_TEAM_ID must be checked against the actor's.
    return Requester(
        user_id=context.actor_user_id or context.user_id or "",
        team_id=context.actor_team_id or context.team_id,
        enterprise_id=context.actor_enterprise_id or context.enterprise_id,
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
