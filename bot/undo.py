"""Undo: put a lead back as it was before an audited change, once, and only while nobody changed it since.

The change's record says what it wrote (before -> after); undo compares the lead now with that after-state, writes
back only what the change changed (the undo of an add deletes the lead; the undo of a remove adds it back, as a new
lead, from the whole lead its record keeps), and records itself in the audit trail under the action "undo" (or
"undo_add", "undo_remove"), pointing at the change it undid.

The Undo button and `/lead undo [#change]` take this one path (`Undo.run`), so a change is undone once however it
is asked: button then command, or two commands.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from babelforce.models import Lead
from commands.blocks import error_message, lead_message, notice_message, undo_add_question
from commands.caveat_text import describe
from commands.fields import change_ref
from commands.remove import NAME as REMOVE
from commands.remove import call_history

from . import metrics
from .audit import AuditError, Change, Outcome
from .replies import NOT_RECORDED, with_note
from .service import Snapshot, UserFacingError, changed_keys, snapshot, written
from .tuning import WRITE_IN_FLIGHT_MAX_S

if TYPE_CHECKING:
    from .pipeline import Leadbot, Request

log = logging.getLogger(__name__)

#: Audit actions of the Undo button: the undo of a rank or set change, of an add (a delete) and of a remove (an add).
UNDO = "undo"
UNDO_ADD = "undo_add"
UNDO_REMOVE = "undo_remove"


class Undo:
    """One Undo click's work, for the Leadbot that received it."""

    def __init__(self, bot: Leadbot) -> None:
        self.bot = bot

    async def command(self, change_id: int | None, *, request: Request, replace_original: bool) -> dict[str, Any]:
        """`/lead undo [#change]`: the change named, or (None) the user's own latest change, then the button's path;
        never raises. The undo of an add asks first (it deletes a lead), with the Undo button as the answer."""
        if change_id is None:
            try:
                latest = await self.bot.audit.latest_change_of(request.actor.user_id)
            except AuditError as failure:
                metrics.audit_error("latest_change_of")
                return error_message(
                    f"leadbot could not read its audit trail: {failure.message}", replace_original=replace_original
                )
            if latest is None:
                return notice_message(
                    "You have made no change through leadbot that could be undone; /lead history shows a lead's "
                    "changes with their numbers.",
                    replace_original=replace_original,
                )
            if latest.undone_by is not None:  # not an older change in its place: a repeated /lead undo undoes once
                return notice_message(await self._already_undone(latest, request), replace_original=replace_original)
            change_id = latest.id
        reply = await self.run(change_id, request=request, client=request.client, delete_confirmed=False)
        return (reply | {"replace_original": True}) if replace_original else reply

    async def _already_undone(self, latest: Change, request: Request) -> str:
        """What `/lead undo` says when the user's latest change is undone already: the next one to take back, by
        number, so that going further back is one deliberate command."""
        assert latest.undone_by is not None
        said = f"Your latest change, {change_ref(latest.id)}, is already undone (by {change_ref(latest.undone_by)})."
        try:
            older = await self.bot.audit.latest_change_of(request.actor.user_id, undoable=True)
        except AuditError:
            metrics.audit_error("latest_change_of")
            older = None
        if older is None:
            return f"{said} Nothing older of yours is left to undo."
        return f"{said} To undo your latest change before it, type /lead undo {change_ref(older.id)}."

    async def run(
        self,
        change_id: int,
        *,
        request: Request,
        client: AsyncWebClient | None = None,
        delete_confirmed: bool = True,
    ) -> dict[str, Any]:
        """Put a lead back as it was before an audited change; never raises. A repeated click undoes once.

        `delete_confirmed`: the user already agreed that undoing an add deletes its lead (the button's dialog);
        otherwise such an undo answers with the question instead of deleting."""
        try:
            return await self._undo(change_id, request, client, delete_confirmed)
        except UserFacingError as failure:
            return error_message(failure.message)
        except AuditError as failure:
            metrics.audit_error("undo")
            return error_message(NOT_RECORDED.format(reason=failure.message))
        except Exception:  # the edge: as in execute
            reference = uuid.uuid4().hex[:8]
            log.exception("undo of change %s failed unexpectedly (reference %s)", change_id, reference)
            return error_message(
                f"Something went wrong inside leadbot (reference {reference}); check the lead with /lead show."
            )

    async def _undo(
        self, change_id: int, request: Request, client: AsyncWebClient | None, delete_confirmed: bool
    ) -> dict:
        """Check the record, then, under the lead's lock: reserve the undo, compare the lead with the change's
        after-state, write back what the change changed, and record it."""
        change = await self.bot.audit.get(change_id)
        if change is None:
            return error_message(
                f"leadbot has no record of change {change_ref(change_id)}, so it cannot undo it; /lead history shows "
                "a lead's changes with their numbers."
            )
        if change.undone_by is not None:
            return notice_message(f"Already undone (by {change_ref(change.undone_by)}); nothing more to do.")
        refusal = _not_undoable(change)
        if refusal:
            return error_message(refusal)
        assert change.list_id is not None and change.lead_id is not None  # _not_undoable checked
        async with self.bot.lead_lock(change.list_id, change.lead_id):
            if change.action == REMOVE:
                return await self._undo_removal(change, request, client)
            return await self._undo_locked(change, request, client, delete_confirmed)

    async def _undo_removal(self, change: Change, request: Request, client: AsyncWebClient | None) -> dict:
        """Add a removed lead back from its record: the same uid, number, rank and data. babelforce gives it a new
        id and it starts as a new lead (status and call count cannot be sent), which the reply says. Refused when
        the list has a lead with that uid again: someone added it back, and a second one would be a duplicate."""
        assert change.list_id is not None
        record = change.before or {}
        uid = record.get("uid")
        if not uid or not record.get("number") or not isinstance(record.get("rank"), int):
            return error_message(
                "leadbot's record of that removal lacks the lead's uid, number or rank; add it by hand."
            )
        lead_list = await self.bot.service.resolve_list(change.list_id)
        attempts = await self.bot.audit.undos_of(change.id)
        if any(attempt.outcome == Outcome.OK for attempt in attempts):
            return notice_message("Already undone; nothing more to do.")
        if any(attempt.outcome == Outcome.PENDING and self._live(attempt) for attempt in attempts):
            return notice_message("This removal is already being undone; nothing more to do.")
        unknown = sum(attempt.outcome in (Outcome.UNKNOWN, Outcome.PENDING) for attempt in attempts)
        existing = await self.bot.service.lead_with_uid(lead_list, uid)
        if existing is not None and not (unknown and _is_readded(record, existing)):
            return error_message(
                f"List {lead_list.name} has a lead with uid {uid} again (added since the removal), so Undo did not add "
                "a second one; see it with /lead show."
            )
        undo_id = await self.bot.audit.begin(
            actor=request.actor,
            action=UNDO_REMOVE,
            command=f"Undo of the remove of {change.at:%Y-%m-%d %H:%M} UTC",
            request_id=f"undo:{change.id}" + (f":{unknown}" if unknown else ""),
            list_id=lead_list.id,
            list_name=lead_list.name,
            lead_uid=uid,
            undo_of=change.id,
        )
        if undo_id is None:  # another process's click got there first
            return notice_message("This removal is already being undone, or was; nothing more to do.")
        if existing is not None:  # an earlier undo whose answer was lost did add it back: say so, mark it undone
            after = snapshot(existing)
            await self.bot.finish(
                undo_id, outcome=Outcome.OK, after=after, lead_id=existing.id, detail="already added back"
            )
            await self._mark_undone(change.id, undo_id)
            return notice_message(f"Lead {uid} is already back in list {lead_list.name} (as a new lead): undone.")
        async with self.bot.attempt(undo_id, lead_list.id, None):
            report = await self.bot.service.readd(lead_list, record)
        after = snapshot(report.lead)
        recorded = await self.bot.finish(
            undo_id,
            outcome=Outcome.OK,
            after=after,
            lead_id=report.lead.id,
            lead_uid=report.lead.uid,
            caveat=describe(report.caveats),
        )
        recorded = await self._mark_undone(change.id, undo_id) and recorded
        self.bot.in_background(
            self.bot.announce(client, request, UNDO_REMOVE, lead_list.name, after, None), "the audit channel line"
        )
        lost = call_history(record.get("status"), record.get("callCount"))
        notes = [f"It has a new id and starts as a new lead: {lost} did not come back."]
        old_place = report.context.hopper_position(change.lead_id) if change.lead_id else None
        if old_place is not None:  # the removed lead's entry, still loaded (babelforce cannot unload it)
            notes.append(
                f"Its old entry is still loaded in the current batch (position {old_place} of "
                f"{len(report.context.hopper or ())}), so this batch may call the number too."
            )
        if not recorded:
            notes.append("leadbot could not complete the audit record of this undo.")
        return lead_message(replace(report, action="undo_remove", notes=(*notes, *report.notes)))

    async def _undo_locked(
        self, change: Change, request: Request, client: AsyncWebClient | None, delete_confirmed: bool
    ) -> dict:
        assert change.list_id is not None and change.lead_id is not None
        lead_list, current = await self.bot.service.current(change.list_id, change.lead_id)
        name = (change.after or {}).get("uid") or change.lead_uid or change.lead_id
        if current is None:
            return error_message(f"Lead {name} no longer exists in list {lead_list.name}; there is nothing to undo.")
        attempts = await self.bot.audit.undos_of(change.id)
        if any(attempt.outcome == Outcome.OK for attempt in attempts):  # done, though its mark did not stick
            return notice_message("Already undone; nothing more to do.")
        if any(attempt.outcome == Outcome.PENDING and self._live(attempt) for attempt in attempts):
            return notice_message("This change is already being undone; nothing more to do.")
        busy = await self._changed_elsewhere(change)
        if busy:
            return error_message(f"Lead {name} is being changed right now (by {busy}); click Undo again in a moment.")
        deleting = change.action == "add"
        if deleting and not delete_confirmed and not _drift(change, snapshot(current)):
            return undo_add_question(change.id, name, lead_list.name)  # its Undo button comes back here, confirmed
        before, after = change.before or {}, change.after or {}
        fields, data_keys = changed_keys(before, after)
        now = written(current, fields, data_keys) if not deleting else snapshot(current)
        # An earlier undo whose outcome is unknown keeps its request id; each such attempt moves the id on, so a
        # new click may try again (the comparison below then sees whether the lead is still as the change left it).
        unknown = sum(attempt.outcome in (Outcome.UNKNOWN, Outcome.PENDING) for attempt in attempts)
        undo_id = await self.bot.audit.begin(
            actor=request.actor,
            action=UNDO_ADD if deleting else UNDO,
            command=f"Undo of the {change.action} of {change.at:%Y-%m-%d %H:%M} UTC ({change_ref(change.id)})"
            + (f", by {request.text}" if request.text.startswith("/lead") else ""),
            request_id=f"undo:{change.id}" + (f":{unknown}" if unknown else ""),
            list_id=lead_list.id,
            list_name=lead_list.name,
            lead_id=current.id,
            lead_uid=current.uid,
            before=now,
            undo_of=change.id,
        )
        if undo_id is None:  # another process's click got there first
            again = await self.bot.audit.get(change.id)
            if again is not None and again.undone_by is not None:
                return notice_message(f"Already undone (by {change_ref(again.undone_by)}); nothing more to do.")
            return notice_message("This change is already being undone; nothing more to do.")
        if not deleting and _restored(change, snapshot(current)):
            # an earlier undo whose answer was lost did apply: say so, and mark the change undone
            await self.bot.finish(undo_id, outcome=Outcome.OK, after=now, detail="already had its earlier values")
            await self._mark_undone(change.id, undo_id)
            return notice_message(f"Lead {name} already has its earlier values: undone.")
        drift = _drift(change, snapshot(current))
        if drift:
            await self.bot.finish(undo_id, outcome=Outcome.FAILED, detail=f"changed since: {drift}")
            then = (
                "so it was not deleted; remove it in babelforce if it must go."
                if deleting
                else "so undo would overwrite that; change it with /lead set."
            )
            return error_message(f"Lead {name} was changed since ({drift}), {then}")
        report = None
        async with self.bot.attempt(undo_id, lead_list.id, current.id):
            if deleting:
                await self.bot.service.remove(lead_list, current)
            else:
                report = await self.bot.service.restore(lead_list, current, before, after)
        restored = None if report is None else written(report.lead, fields, data_keys)
        caveat = None if report is None else describe(report.caveats)
        recorded = await self.bot.finish(undo_id, outcome=Outcome.OK, after=restored, caveat=caveat)
        recorded = await self._mark_undone(change.id, undo_id) and recorded
        note = "" if recorded else " leadbot could not complete the audit record of this undo."
        if report is None:
            self.bot.in_background(
                self.bot.announce(client, request, UNDO_ADD, lead_list.name, now, now), "the audit channel line"
            )
            return notice_message(f"Undone: lead {name} was deleted from list {lead_list.name}.{note}")
        self.bot.in_background(
            self.bot.announce(client, request, UNDO, lead_list.name, restored or {}, now),
            "the audit channel line",
        )
        return lead_message(with_note(report, note.strip()) if note else report)

    async def _mark_undone(self, change_id: int, undo_id: int) -> bool:
        try:
            return await self.bot.audit.mark_undone(change_id, undo_id)
        except AuditError as failure:
            metrics.audit_error("mark_undone")
            log.error("could not mark change %s undone by %s: %s", change_id, undo_id, failure.message)
            return False

    def _live(self, attempt: Change) -> bool:
        """A pending record young enough to be a write still under way (older ones were interrupted)."""
        return (datetime.now(UTC) - attempt.at).total_seconds() < WRITE_IN_FLIGHT_MAX_S

    async def _changed_elsewhere(self, change: Change) -> str:
        """Another write of the lead still in flight (in another leadbot process: this one holds the lead's lock):
        undoing now could interleave with it. Finished changes are judged by comparing values."""
        assert change.list_id is not None
        in_flight = [
            other
            for other in await self.bot.audit.history(change.list_id, lead_id=change.lead_id)
            if other.outcome == Outcome.PENDING and other.undo_of != change.id and self._live(other)
        ]
        if not in_flight:
            return ""
        return in_flight[0].actor.user_id or "someone"


def can_undo(change: Change, current: Snapshot | None) -> bool:
    """Whether the change would be undone if asked now, judged from its record and the lead as it is (`current`,
    None when gone), without asking babelforce: what earns it an Undo button in /lead history (undo checks again)."""
    return (
        change.undone_by is None
        and _not_undoable(change) is None
        and current is not None
        and current.get("id", change.lead_id) == change.lead_id
        and not _drift(change, current)
    )


def _not_undoable(change: Change) -> str | None:
    """Why a recorded change cannot be undone, or None."""
    if change.action in (UNDO, UNDO_ADD, UNDO_REMOVE):
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
    if wrote_nothing(change):
        return "That change wrote every value back as it was, so there is nothing to undo."
    return None


def wrote_nothing(change: Change) -> bool:
    """A write that left every value it wrote as it was (leadbot's own commands make none: "No change" writes
    nothing; `leadbot doctor --write-check` makes one on purpose). It has nothing to undo."""
    return (
        change.before is not None and change.after is not None and changed_keys(change.before, change.after) == ([], [])
    )


def _is_readded(record: Snapshot, lead: Lead) -> bool:
    """Whether a lead is the removed one added back (same uid, number, rank and data): an earlier undo's work."""
    return (lead.uid, lead.number, lead.rank, lead.data) == (
        record.get("uid"),
        record.get("number"),
        record.get("rank"),
        record.get("data") or {},
    )


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
