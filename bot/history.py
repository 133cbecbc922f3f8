"""`/lead history`: a lead's recorded changes, read from leadbot's audit trail (babelforce is only asked to find the
lead, so a uid reused by another lead is not mixed in)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commands.blocks import HISTORY_SHOWN_MAX, HistoryEntry, change_summary, error_message, history_message
from commands.remove import NAME as REMOVE
from commands.remove import status_and_calls

from . import metrics
from .audit import AuditError, Change
from .service import Snapshot, UserFacingError, snapshot
from .undo import UNDO_ADD, UNDO_REMOVE, can_undo, wrote_nothing

if TYPE_CHECKING:
    from .permissions import Requester
    from .pipeline import Leadbot


class History:
    """History replies for one Leadbot."""

    def __init__(self, bot: Leadbot) -> None:
        self.bot = bot

    async def reply(
        self, list_ref: str, lead_ref: str, *, replace_original: bool, requester: Requester | None = None
    ) -> dict[str, Any]:
        """The lead's recorded changes, by its id once babelforce finds it (a uid reused by another lead is not
        mixed in); a lead babelforce no longer has (e.g. an undone add) is looked up in the audit trail by the uid
        or id typed, and when that finds nothing either, the user gets babelforce's "no such lead" sentence.

        Each change carries its number; one that `requester`, a writer, could undo now carries an Undo button."""
        lead_list = await self.bot.service.resolve_list(list_ref)
        gone = False
        missing: UserFacingError | None = None
        current: Snapshot | None = None
        try:
            lead = await self.bot.service.check_lead_exists(lead_list.id, lead_ref)
            lead_id, lead_uid, name = lead.id, None, lead.uid or lead.id
            current = snapshot(lead)
        except UserFacingError as not_found:
            if not_found.field is None:
                raise
            lead_id, lead_uid, name, gone = lead_ref.strip(), lead_ref.strip(), lead_ref, True
            missing = not_found
        try:
            # one more than is shown, to say when older changes are left out
            changes = await self.bot.audit.history(
                lead_list.id,
                lead_id=lead_id,
                lead_uid=lead_uid,
                limit=HISTORY_SHOWN_MAX + 1,
                # an add interrupted before it learnt the lead's id (lost answer, crash) is found by its uid
                unfinished_add_uid=None if gone else name,
            )
        except AuditError as failure:
            metrics.audit_error("history")
            return error_message(
                f"leadbot could not read its audit trail: {failure.message}", replace_original=replace_original
            )
        if missing is not None and not changes:
            raise missing
        undoable = {change.id for change in changes if can_undo(change, current)}
        if undoable and not await self._may_write(requester):
            undoable = set()
        entries = [
            HistoryEntry(
                at=change.at,
                user_id=change.actor.user_id,
                action=change.action,
                summary=summary(change),
                outcome=str(change.outcome),
                detail=change.detail,
                undone=change.undone_by is not None,
                ref=change.id,
                undoable=change.id in undoable,
            )
            for change in changes
        ]
        title = f"{name} (no longer in babelforce)" if gone else name
        return history_message(lead_list.name, title, entries) | (
            {"replace_original": True} if replace_original else {}
        )

    async def _may_write(self, requester: Requester | None) -> bool:
        """Whether the viewer passes the writer check the Undo button will make (asked only when a button could
        show; a user group lookup is cached)."""
        return requester is not None and await self.bot.gate.check(requester, write=True) is None


def summary(change: Change) -> str:
    """What a recorded change did (or, when it has no result, what was asked)."""
    if change.action == UNDO_ADD:
        return "the lead (undo of its add)"
    if change.action == UNDO_REMOVE:
        added = f"{change_summary(None, change.after)} " if change.after else "the lead "
        return added + "as a new lead (undo of its removal)"
    if change.action == REMOVE and change.before is not None:  # the record keeps the whole lead
        before = change.before
        return f"{change_summary(None, before)} ({status_and_calls(before.get('status'), before.get('callCount'))})"
    if change.after is None:
        return change.command or "no result recorded"
    if wrote_nothing(change):  # `leadbot doctor --write-check`: the rank written back as it was
        rank = change.before.get("rank") if change.before else None
        return f"nothing (rank {rank} written back as it was)" if rank is not None else "nothing (no values changed)"
    return change_summary(change.before, change.after)
