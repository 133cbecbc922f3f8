"""The write pipeline, and the one object every listener hands its work to (Leadbot).

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
import os
import secrets
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from commands import registry
from commands.blocks import (
    BLOCK_ERROR,
    change_summary,
    confirmation_message,
    error_message,
    lead_message,
    notice_message,
)
from commands.caveat_text import describe, escape
from commands.grammar import command_text

from . import ack_first, logs, metrics
from .alerts import AlertWatcher
from .audit import Actor, Attempt, AuditError, AuditStore, LeadHolder, LeadTaken, Outcome
from .campaigns import Campaigns
from .finder import DEFAULT_MAX_LISTS, Finder
from .history import History
from .home import Home
from .masking import mask, masked_number
from .permissions import Denial, Gatekeeper, Requester
from .replies import NOT_RECORDED, with_note
from .retention import Retention
from .service import LeadService, Plan, Snapshot, UserFacingError, lead_record, predict, snapshot, written
from .settler import FIRST_LOOK_S, LAST_LOOK_S, SETTLED_PREFIX, Settler
from .slack_edge import after_ack
from .tuning import (
    CONFIRM_TTL_S,
    DENIAL_RECORD_BUDGET_S,
    FORM_CHECK_BUDGET_S,
    REPLY_POST_TIMEOUT_S,
    WRITE_IN_FLIGHT_MAX_S,
)
from .undo import UNDO, UNDO_ADD, UNDO_REMOVE, Undo

log = logging.getLogger(__name__)

#: How often a write waiting for another process's lock on the same lead looks again.
CROSS_PROCESS_LOCK_POLL_S = 0.05

EXPECTED_KEY = "expected_before"  # in a held command: the lead as it was when the question was asked
APPLY_ANYWAY = "apply"  # the "Apply anyway" button: a write, recorded under this action


@dataclass(frozen=True, slots=True)
class Request:
    """Who asks, and the key that makes a repeated delivery of the same request a no-op (None: no such key)."""

    requester: Requester
    request_id: str | None = None
    text: str = ""  # the command as the user gave it, for the audit trail
    # the Slack client that received it, for the audit channel line of a flow of its own (`/lead undo`)
    client: AsyncWebClient | None = field(default=None, compare=False, repr=False)
    # where its answer goes: kept with an audit record, so a write babelforce never confirmed can be followed up
    response_url: str | None = field(default=None, compare=False, repr=False)

    @property
    def reply_to(self) -> dict[str, str | None]:
        who = self.requester
        return {"response_url": self.response_url, "channel_id": who.channel_id, "user_id": who.user_id}

    @property
    def actor(self) -> Actor:
        who = self.requester
        return Actor(who.user_id, who.team_id, who.enterprise_id, who.channel_id)


@dataclass(slots=True)
class LeadHold:
    """A write's hold on a lead (`Leadbot.lead_lock`): what taking its lock found, and whether the lock is still to
    be released (a `finish` given the hold releases it in the same commit as the outcome)."""

    holder: LeadHolder
    locked: bool = False
    reserved: bool = False  # the request id was taken by another attempt meanwhile: answer as a repeated delivery
    change_id: int | None = None  # the attempt recorded with the lock (None: plan again, then record it)
    released: bool = False


@dataclass(slots=True)
class Leadbot:
    service: LeadService
    audit: AuditStore  # SQLite or PostgreSQL (LEADBOT_DB)
    gate: Gatekeeper  # required: nobody gets an open gate by forgetting it (the console passes an open one)
    audit_channel: str | None = None  # LEADBOT_AUDIT_CHANNEL: one line per change
    alerts: AlertWatcher | None = None  # LEADBOT_ALERT_CHANNEL: the campaign watcher (started by start_watching)
    retention: Retention | None = None  # LEADBOT_AUDIT_RETENTION_DAYS: the daily purge (started by start_watching)
    form_check_budget: float = FORM_CHECK_BUDGET_S
    find_max_lists: int = DEFAULT_MAX_LISTS  # LEADBOT_FIND_MAX_LISTS: lists /lead find searches at most
    # the bot's own Slack client, for follow-ups nobody is waiting on (the settler's direct message)
    slack: AsyncWebClient | None = None
    # when the settler looks at a write babelforce never confirmed: (first look, last look), seconds after it
    settle_after: tuple[float, float] = (FIRST_LOOK_S, LAST_LOOK_S)
    history: History = field(init=False)
    finder: Finder = field(init=False)
    settler: Settler = field(init=False)
    campaigns: Campaigns = field(init=False)  # /lead campaign and the Home tab
    home: Home = field(init=False)
    # request ids being handled in this process: a repeated delivery arriving meanwhile is dropped at once
    _in_flight: set[str] = field(default_factory=set)
    # one write at a time per lead in this process, so an undo never interleaves with another change of that lead
    _lead_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _replies: tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession] | None = None
    # writes finished in this process, numbered; the number of each lead's latest (a plan older than it is stale)
    _write_seq: int = 0
    _last_write: dict[tuple[str, str], int] = field(default_factory=dict)
    _process_id: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:6]}")

    def __post_init__(self) -> None:
        if self.service.client.observer is None:  # its babelforce traffic counted in the metrics (bot.metrics)
            self.service.client.observer = metrics.BABELFORCE
        if self.service.client.wait_turn is None:  # work after an ack lets pending acks go first
            self.service.client.wait_turn = ack_first.yield_to_acks
        self.history = History(self)
        self.finder = Finder(self.service, self.find_max_lists)
        first, last = self.settle_after
        self.settler = Settler(self, first_look=first, last_look=last, slack=self.slack)
        self.campaigns = Campaigns(self.service)
        self.home = Home(self)

    @property
    def default_region(self) -> str | None:
        """The country national phone numbers belong to (LEADBOT_DEFAULT_REGION), shared with the service."""
        return self.service.default_region

    # ------------------------------------------------------------------ permission

    async def authorize(
        self, request: Request, subcommand: str, *, list_ref: str | None = None, channel_rule: bool = True
    ) -> Denial | None:
        """The gate's answer (None: allowed). A denial is recorded in the audit trail; no babelforce call is made.
        `channel_rule=False`: from the user's Home tab, which is in no channel (Gatekeeper.check)."""
        logs.annotate(subcommand=subcommand, user=request.requester.user_id or None)
        denial = await self.gate.check(
            request.requester, write=registry.is_write(subcommand), channel_rule=channel_rule
        )
        if denial is not None:
            metrics.command(subcommand, "denied")
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
                metrics.audit_error("denied")
                log.warning("could not record a denied /lead %s: %s", subcommand, failure.message)
            except TimeoutError:
                log.warning(
                    "recording a denied /lead %s is slow (audit file busy); it finishes after the ack", subcommand
                )
        return denial

    @contextlib.asynccontextmanager
    async def lead_lock(
        self,
        list_id: str,
        lead_id: str,
        *,
        request_id: str | None = None,
        mark: int | None = None,
        planned_at: int | None = None,
        attempt: Attempt | None = None,
    ) -> AsyncIterator[LeadHold]:
        """One write of a lead at a time, held while its change is recorded, sent and finished: in this process (an
        asyncio lock) and across every process sharing the audit store (its lead_locks table). Waits for another
        process's write for as long as a write can take, then refuses in one sentence.

        Taking the lock tells too (the hold): whether `request_id` was taken by another attempt (then it is not
        waited for), and whether the lead was written since `mark` (the store's newest record when the plan was made)
        or, in this process, since `planned_at` (its write count then). When neither, `attempt` is recorded with the
        lock, in one commit."""
        key = (list_id, lead_id)
        lock = self._lead_locks.get(key)
        if lock is None:
            lock = self._lead_locks[key] = asyncio.Lock()
        async with lock:
            hold = LeadHold(LeadHolder(list_id, lead_id, f"{self._process_id}:{uuid.uuid4().hex[:8]}"))
            stale = planned_at is not None and self._last_write.get(key, -1) > planned_at  # written here meanwhile
            if stale:
                mark = attempt = None
            deadline = time.monotonic() + WRITE_IN_FLIGHT_MAX_S
            while True:
                taken = await self._take_lead(hold.holder, request_id, mark, attempt)
                if taken.locked or taken.reserved:
                    break
                if time.monotonic() > deadline:
                    raise UserFacingError(
                        "This lead is being changed by another leadbot process right now; try again in a moment."
                    )
                await asyncio.sleep(CROSS_PROCESS_LOCK_POLL_S)
            hold.locked, hold.reserved, hold.change_id = taken.locked, taken.reserved, taken.change_id
            try:
                yield hold
            finally:
                if hold.locked and not hold.released:
                    try:
                        await self.audit.unlock_lead(*hold.holder)
                    except AuditError as failure:  # it lapses at its expiry; the change itself is done
                        metrics.audit_error("unlock_lead")
                        log.warning("could not release the write lock of lead %s: %s", lead_id, failure.message)

    def _wrote(self, list_id: str, lead_id: str | None) -> None:
        """A write of this lead has ended (whatever its outcome): plans made before it are stale."""
        self._write_seq += 1
        if lead_id is not None:
            self._last_write[(list_id, lead_id)] = self._write_seq

    async def start_watching(self) -> None:
        """At start-up, in the serving loop: the campaign alerts, when LEADBOT_ALERT_CHANNEL is set, and the daily
        retention purge of the audit trail (safe in any number of processes)."""
        if self.alerts is not None:
            self.alerts.start()
        if self.retention is not None:
            self.retention.start()

    async def aclose(self, timeout: float = 5.0) -> None:
        """At shutdown: stop the alerts, let background work (audit channel lines) finish, for at most `timeout`
        seconds; the settler stops waiting (the next start's sweep settles what it had left)."""
        await self.settler.aclose()
        if self.alerts is not None:
            await self.alerts.stop()
        if self.retention is not None:
            await self.retention.stop()
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
        if self._replies is not None:
            replies, self._replies = self._replies[1], None
            await replies.close()

    def reply_session(self) -> aiohttp.ClientSession:
        """The connections every reply to a response_url is posted on (Slack's hooks.slack.com): kept alive between
        replies, where slack_sdk's webhook client would open a new session, connection and TLS handshake for each
        (py-spy during a burst: the reply posts took 1.3 ms of CPU each that way, 0.4 ms on one kept session).
        Made in the running loop on first use; aclose closes it."""
        loop = asyncio.get_running_loop()
        if self._replies is None or self._replies[0] is not loop or self._replies[1].closed:
            # as slack_sdk's own webhook session: its 30 s total per post, and no proxy from the environment
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REPLY_POST_TIMEOUT_S), trust_env=False)
            self._replies = (loop, session)
        return self._replies[1]

    async def start(self) -> None:
        """The server's start-up hook: settle, in the background, what an earlier run left unconfirmed; start the
        campaign alerts when LEADBOT_ALERT_CHANNEL is set."""
        self.in_background(self._sweep(), "the start-up settling of unconfirmed writes")
        await self.start_watching()

    async def _sweep(self) -> None:
        await self.settler.sweep()

    async def shutdown(self) -> None:
        """The HTTP server's shutdown hook: background work first, then babelforce's connections."""
        await self.aclose()
        await self.service.client.aclose()

    def in_background(self, work: Awaitable[object], what: str, *, yields: bool = True) -> None:
        """Start work that follows an ack (a command's answer) or that nobody waits for (the audit channel line), in
        a task kept until it ends (aclose waits for it); failures are logged by after_ack. `yields`: it takes turns
        behind requests awaiting their ack (bot.ack_first); False for work on Slack's own clock (opening a form)."""
        task = asyncio.ensure_future(after_ack(work, what, yields=yields))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ commands

    async def execute(
        self,
        command: Any,
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
        subcommand = type(command).__name__
        outcome = "ok"
        try:
            spec = registry.of(command)
            subcommand = spec.name
            logs.annotate(
                request_id=request.request_id,
                user=request.requester.user_id or None,
                subcommand=subcommand,
                list=mask(getattr(command, "list_ref", "")) or None,
                lead_uid=mask(_log_ref(command)) or None,
            )
            if spec.run is not None:  # a read, or a write with its own flow (undo); writers were checked before
                if client is not None and request.client is None:
                    request = replace(request, client=client)
                answer = await spec.run(self, command, request, replace_original)
                outcome = reply_outcome(answer)
                return answer
            reply, outcome = await self._write(spec, command, request, replace_original, confirmed, client, expected)
            return reply
        except UserFacingError as failure:
            outcome = "unknown" if failure.uncertain else "refused"  # unknown: babelforce may have applied it
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
            elapsed_ms = (time.perf_counter() - started) * 1000
            list_ref, lead_ref = mask(getattr(command, "list_ref", "")), mask(_log_ref(command))
            metrics.command(subcommand, outcome)
            log.info(
                "/lead %s by %s list=%s lead=%s: %s in %.0f ms",
                subcommand,
                request.requester.user_id or "?",
                list_ref,
                lead_ref,
                outcome,
                elapsed_ms,
                extra={  # the JSON log's fields (bot.logs)
                    "request_id": request.request_id,
                    "user": request.requester.user_id or None,
                    "subcommand": subcommand,
                    "list": list_ref or None,
                    "lead_uid": lead_ref or None,
                    "outcome": outcome,
                    "duration_ms": round(elapsed_ms, 1),
                },
            )

    async def _write(
        self,
        spec: registry.Subcommand[Any],
        command: Any,
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
            reserved, mark = await self._check_request(request_id)
            if reserved and request_id is not None:
                log.info("request %s was already handled: not handled twice", request_id)
                return await self._handled_before(request_id), "duplicate"
            planned_at = self._write_seq
            plan = await plan_of(spec, self.service, command)
            changed = confirmed and _changed_since_asked(plan, expected)
            confirmed = confirmed and not changed
            if plan.before is not None and not plan.unchanged and not (plan.asks and not confirmed):
                key = (plan.lead_list.id, plan.before.id)
                # Taking the lock also tells whether a Slack retry was taken by another process (worker, replica)
                # while this one read the lead or waited, and whether the lead was written meanwhile; when neither,
                # the record goes in with the lock.
                attempt = self._attempt(plan, request)
                async with self.lead_lock(
                    *key, request_id=request_id, mark=mark, planned_at=planned_at, attempt=attempt
                ) as hold:
                    if hold.reserved and request_id is not None:
                        return await self._handled_before(request_id), "duplicate"
                    if hold.change_id is not None:
                        return await self._record_and_apply(
                            plan, request, replace_original, client, hold=hold, attempt=attempt
                        )
                    # written meanwhile (by this process or another), or not known: plan again from the lead as it is
                    plan = await plan_of(spec, self.service, command)
                    changed = changed or (confirmed and _changed_since_asked(plan, expected))
                    confirmed = confirmed and not changed
                    if not plan.unchanged and not (plan.asks and not confirmed):
                        return await self._record_and_apply(plan, request, replace_original, client, hold=hold)
            elif request_id is not None and await self._reserved(request_id):
                # a Slack retry another process (worker, replica) recorded while this one read the lead: it answers
                return await self._handled_before(request_id), "duplicate"
            if plan.unchanged:
                return lead_message(await self.service.apply(plan), replace_original=replace_original), "unchanged"
            if plan.asks and not confirmed:
                return await self._ask(plan, request, replace_original, changed=changed), "asked"
            return await self._record_and_apply(plan, request, replace_original, client)  # an add: no lead to lock yet
        finally:
            if request_id is not None:
                self._in_flight.discard(request_id)

    async def _handled_before(self, request_id: str) -> dict[str, Any] | None:
        """The answer to a repeated delivery: nothing while its first attempt may still be under way (that one
        answers), else how the first attempt ended, so an attempt a crash interrupted is never met with silence."""
        try:
            first = await self.audit.by_request_id(request_id)
        except AuditError:
            metrics.audit_error("by_request_id")
            return None
        if first is None:
            return None
        age = (datetime.now(UTC) - first.at).total_seconds()
        if first.outcome == Outcome.PENDING and age < WRITE_IN_FLIGHT_MAX_S:
            return None  # still under way: the first attempt answers
        settled_later = (first.detail or "").startswith(SETTLED_PREFIX)
        if first.outcome in (Outcome.OK, Outcome.FAILED, Outcome.DENIED) and not settled_later:
            return None  # its own answer was given: a Slack retry changes nothing and replaces nothing
        ended = {
            Outcome.OK: "it was applied",
            Outcome.FAILED: "it failed and changed nothing",
            Outcome.UNKNOWN: "babelforce never confirmed it; leadbot is checking and will tell you",
            Outcome.PENDING: "it was interrupted; leadbot is checking babelforce and will tell you",
            Outcome.DENIED: "it was refused",
        }[first.outcome]
        return notice_message(
            f"Already handled as change #{first.id}: {ended}. See /lead history for the lead.",
            replace_original=False,  # the first attempt's own answer stays where it is
        )

    async def _take_lead(
        self, holder: LeadHolder, request_id: str | None, mark: int | None, attempt: Attempt | None
    ) -> LeadTaken:
        """The cross-process lock (and its checks, and the record); a store that cannot record it refuses the change
        as it refuses the record."""
        try:
            return await self.audit.take_lead(
                *holder, ttl=WRITE_IN_FLIGHT_MAX_S, request_id=request_id, mark=mark, attempt=attempt
            )
        except AuditError as failure:
            metrics.audit_error("take_lead")
            log.error("audit trail unavailable, a write of lead %s refused: %s", holder.lead_id, failure.message)
            raise UserFacingError(NOT_RECORDED.format(reason=failure.message)) from None

    async def _check_request(self, request_id: str | None) -> tuple[bool, int | None]:
        """Whether the request id is taken, and the store's newest record id: the mark a plan is made against (None:
        not known, so the plan is made again under the lock, to be safe)."""
        try:
            checked = await self.audit.check_request(request_id)
        except AuditError as failure:  # the record will fail too and refuse the change with the reason
            metrics.audit_error("check_request")
            log.warning("could not check request %s in the audit trail: %s", request_id, failure.message)
            return False, None
        return checked.reserved, checked.mark

    async def _reserved(self, request_id: str) -> bool:
        try:
            return await self.audit.reserved(request_id)
        except AuditError as failure:  # begin() will fail too and refuse the change with the reason
            metrics.audit_error("reserved")
            log.warning("could not check request %s in the audit trail: %s", request_id, failure.message)
            return False

    def _attempt(self, plan: Plan, request: Request) -> Attempt:
        """The audit record of a planned write, before it is made: what it writes, the lead before it and the values
        it will leave."""
        command = plan.command
        keys = (tuple(plan.changes), tuple(plan.data))  # what this change writes: all the record keeps
        before = written(plan.before, *keys) if plan.before is not None else None
        # What the write will leave if babelforce applies it, kept from the start: a write interrupted by a crash or
        # never answered is settled later by comparing the lead with it (bot.settler).
        intended = (
            written(predict(plan.before, plan.changes, plan.data), *keys)
            if plan.before is not None and not plan.removal
            else None
        )
        if plan.removal and plan.before is not None:  # a remove keeps the whole lead: Undo adds it back from this
            before = lead_record(plan.before)
        return Attempt(
            actor=request.actor,
            action=registry.of(command).name,
            command=request.text or command_text(command),
            request_id=request.request_id,
            list_id=plan.lead_list.id,
            list_name=plan.lead_list.name,
            lead_id=plan.before.id if plan.before is not None else None,
            lead_uid=plan.before.uid if plan.before is not None else plan.new_lead.uid if plan.new_lead else None,
            before=before,
            intended=intended,
            reply_to=request.reply_to,
        )

    async def _record_and_apply(
        self,
        plan: Plan,
        request: Request,
        replace_original: bool,
        client: AsyncWebClient | None,
        *,
        hold: LeadHold | None = None,
        attempt: Attempt | None = None,
    ) -> tuple[dict | None, str]:
        """The audit record first (no record, no change; a taken request id, no change), then babelforce, then the
        record's outcome; the reply carries an Undo button when the record is complete. `hold`: the lead's lock,
        released with the outcome; the record itself when it went in with the lock (`attempt`: what it recorded, for
        this very plan)."""
        attempt = attempt or self._attempt(plan, request)
        action, before = attempt.action, attempt.before
        keys = (tuple(plan.changes), tuple(plan.data))
        change_id = hold.change_id if hold is not None else None
        if change_id is None:
            try:
                change_id = await self.audit.record(attempt)
            except AuditError as failure:
                metrics.audit_error("begin")
                log.error("audit trail unavailable, /lead %s refused: %s", action, failure.message)
                message = NOT_RECORDED.format(reason=failure.message)
                return error_message(message, replace_original=replace_original), "unrecorded"
        if change_id is None:
            log.info("request %s was already handled: not applied twice", request.request_id)
            return None, "duplicate"
        lead_id = plan.before.id if plan.before is not None else None
        async with self.attempt(change_id, plan.lead_list.id, lead_id, hold=hold):
            report = await self.service.apply(plan)
        after: Snapshot | None = written(report.lead, *keys) if plan.before is not None else snapshot(report.lead)
        if plan.removal:  # the lead is gone: nothing after
            after = None
        recorded = await self.finish(
            change_id,
            hold=hold,
            outcome=Outcome.OK,
            after=after,
            lead_id=report.lead.id,
            lead_uid=report.lead.uid,
            caveat=describe(report.caveats),
        )
        if not recorded:  # the change is made, but an incomplete record cannot be undone safely: no Undo button
            report = with_note(
                report, "leadbot could not complete this change's audit record; it was made all the same."
            )
        self.in_background(
            self.announce(client, request, action, plan.lead_list.name, after, before), "the audit channel line"
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
            metrics.audit_error("hold")
            return error_message(NOT_RECORDED.format(reason=failure.message), replace_original=replace_original)
        ask = registry.of(plan.command).question
        if ask is not None:  # the subcommand words its own question (a remove: the lead's card and Remove)
            message = ask(plan, token, changed)
            return {**message, "replace_original": True} if replace_original else message
        question = _intent(plan)
        if changed:
            question = f"The lead changed since you were asked. {question}"
        caveats = plan.predicted or plan.blocking
        return confirmation_message(question, caveats, token, replace_original=replace_original)

    async def confirm(
        self,
        token: str,
        *,
        request: Request,
        client: AsyncWebClient | None = None,
        button: str = "Apply anyway",
    ) -> dict | None:
        """ "Apply anyway" (or a subcommand's own yes, e.g. Remove lead: `button`) was clicked: run the held command
        once, without asking again."""
        try:
            payload = await self.audit.claim(token, user_id=request.requester.user_id)
        except AuditError as failure:
            metrics.audit_error("claim")
            return error_message(NOT_RECORDED.format(reason=failure.message), replace_original=True)
        if payload is None:
            return notice_message(
                "This question has expired, was already answered, or belongs to someone else; nothing was changed "
                "by this click. Type the command again if it is still needed.",
                replace_original=False,  # the first click's answer stays where the question was
            )
        expected = payload.pop(EXPECTED_KEY, None)
        command = command_from_payload(payload)
        keyed = Request(
            request.requester,
            f"confirm:{token}",
            command_text(command) + f" ({button})",
            response_url=request.response_url,
        )
        return await self.execute(
            command, request=keyed, replace_original=True, confirmed=True, client=client, expected=expected
        )

    async def cancel(self, token: str, *, request: Request) -> dict:
        """ "Cancel" was clicked: drop the held command (only its asker can), replacing the question."""
        try:
            cancelled = await self.audit.cancel(token, user_id=request.requester.user_id)
        except AuditError as failure:
            metrics.audit_error("cancel")
            log.warning("could not cancel a held confirmation: %s", failure.message)
            cancelled = False
        if cancelled:
            return notice_message("Cancelled: nothing was changed.", replace_original=True)
        return notice_message("This question was already answered or has expired; this click changed nothing.")

    # ------------------------------------------------------------------ undo

    async def undo(self, change_id: int, *, request: Request, client: AsyncWebClient | None = None) -> dict[str, Any]:
        """Put a lead back as it was before an audited change; never raises. A repeated click undoes once."""
        reply = await Undo(self).run(change_id, request=request, client=client)
        metrics.command(UNDO, reply_outcome(reply))  # the button (a typed /lead undo is counted by execute)
        return reply

    async def undo_command(self, change_id: int | None, *, request: Request, replace_original: bool) -> dict[str, Any]:
        """`/lead undo [#change]`: the change named, or the user's own latest, by the button's path; never raises."""
        return await Undo(self).command(change_id, request=request, replace_original=replace_original)

    # ------------------------------------------------------------------ audit helpers

    @contextlib.asynccontextmanager
    async def attempt(
        self, record_id: int, list_id: str, lead_id: str | None, *, hold: LeadHold | None = None
    ) -> AsyncIterator[None]:
        """Around a babelforce write: a failure finishes its audit record (unknown when babelforce may have applied
        it; releasing `hold`, the lead's lock, with it), and either way the lead counts as written, so plans made
        before are made again."""
        try:
            yield
        except UserFacingError as failure:
            outcome = Outcome.UNKNOWN if failure.uncertain else Outcome.FAILED
            await self.finish(record_id, hold=hold, outcome=outcome, detail=failure.message)
            if outcome == Outcome.UNKNOWN:  # babelforce will be read again, and the user told how it ended
                self.settler.watch(record_id)
            raise
        except BaseException:
            await self.finish(
                record_id, hold=hold, outcome=Outcome.UNKNOWN, detail="leadbot stopped before babelforce answered"
            )
            raise
        finally:
            self._wrote(list_id, lead_id)

    async def finish(self, change_id: int, *, hold: LeadHold | None = None, **outcome: object) -> bool:
        """Complete an audit record; a failure is logged (the change itself is already made or refused). `hold`: the
        lead's lock, released in the same commit (the write is over)."""
        unlock = hold.holder if hold is not None and hold.locked and not hold.released else None
        try:
            await self.audit.finish(change_id, unlock=unlock, **outcome)  # type: ignore[arg-type]
        except AuditError as failure:
            metrics.audit_error("finish")
            log.error("could not complete audit record %s: %s", change_id, failure.message)
            return False
        if hold is not None and unlock is not None:
            hold.released = True
        return True

    async def announce(
        self,
        client: AsyncWebClient | None,
        request: Request,
        action: str,
        list_name: str,
        after: Snapshot | None,
        before: Snapshot | None,
    ) -> None:
        """One line per change in LEADBOT_AUDIT_CHANNEL; Slack failing here loses nothing (the record is in SQLite)."""
        if not self.audit_channel or client is None:
            return
        # the channel is read by many: phone numbers are masked there as in logs (the audit trail keeps them whole)
        masked_before, masked_after = masked_number(before), masked_number(after)
        if action == UNDO_ADD:
            what = "deleted (undo of its add)"
        elif action == UNDO_REMOVE:
            what = "added back as a new lead (undo of its removal): " + change_summary(None, masked_after)
        elif after is None:  # a remove: the record keeps the whole lead
            what = "removed: " + change_summary(None, masked_before)
        else:
            what = change_summary(masked_before, masked_after)
        named = after or before or {}
        name = named.get("uid") or named.get("id")
        line = f"<@{request.requester.user_id}> {action} {escape(str(name))} in {escape(list_name)}: {escape(what)}"
        try:
            await client.chat_postMessage(channel=self.audit_channel, text=line[:3000], unfurl_links=False)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as failure:
            log.warning("audit channel post failed (the audit record is kept): %s", type(failure).__name__)


def command_payload(command: Any) -> dict[str, Any]:
    """A write command as JSON-able data, to hold it while the user answers "apply anyway?"."""
    return {"kind": registry.of(command).name, **asdict(command)}


def command_from_payload(payload: dict[str, Any]) -> Any:
    """The held command back from `command_payload`'s data (UnknownSubcommand for a kind no module registers)."""
    values = dict(payload)
    spec = registry.get(str(values.pop("kind", "")))
    return spec.command_type(**values)


async def plan(service: LeadService, command: Any) -> Plan:
    """A write command's plan, by its subcommand's own `plan`."""
    return await plan_of(registry.of(command), service, command)


async def plan_of(spec: registry.Subcommand[Any], service: LeadService, command: Any) -> Plan:
    """A write subcommand's plan (a read, or a write with its own flow, has none: reaching here with one is a bug)."""
    if spec.plan is None:
        raise registry.UnknownSubcommand(f"subcommand {spec.name!r} has no plan")
    return await spec.plan(service, command)


def reply_outcome(reply: dict[str, Any] | None) -> str:
    """A finished read's outcome, for the metrics and the log line: refused when its reply is an error message."""
    blocks = (reply or {}).get("blocks") or []
    first = blocks[0] if blocks and isinstance(blocks[0], dict) else {}
    return "refused" if first.get("block_id") == BLOCK_ERROR else "ok"


def _log_ref(command: object) -> str:
    """The lead a command names, for the log line (nothing for a type no module registers)."""
    try:
        return registry.of(command).log_ref(command)
    except registry.UnknownSubcommand:
        return ""


def _intent(plan: Plan) -> str:
    """The change in one line, old → new, for the "apply anyway?" question."""
    before, new = plan.before, plan.new_lead
    if new is not None:
        return f"Add lead {new.uid} to {plan.lead_list.name}"
    if before is None:  # an update's plan always reads the lead
        return command_text(plan.command)
    name = before.uid or before.id
    if plan.action == "rank" and set(plan.changes) == {"rank"} and not plan.data:
        return f"Change the rank of {name} from {before.rank} to {plan.changes['rank']}"
    changed = [f"{key} {getattr(before, key)} → {value}" for key, value in plan.changes.items()]
    for key, value in plan.data.items():
        old = before.data.get(key)
        if value is None:
            changed.append(f"delete data {key!r} ({old})")
        else:
            changed.append(f"data {key!r} {old} → {value}" if key in before.data else f"add data {key!r} = {value}")
    return f"Change {name}: " + ", ".join(changed)


def _changed_since_asked(plan: Plan, expected: Snapshot | None) -> bool:
    """Whether the lead differs from how it was when "apply anyway?" was asked."""
    return expected is not None and plan.before is not None and snapshot(plan.before) != expected
