"""The settler: a write babelforce never confirmed is settled from babelforce's own state, and its user is told.

A write whose answer was lost (a timeout, a dropped connection, a gateway's page) is recorded `unknown`; a crash
leaves one `pending`. The settler reads the lead back after babelforce's own deadline has passed, and once more a
little later: the values the write sent are there (it arrived, maybe late), or the lead still has its old values
(it did not arrive), and the audit record gets that outcome. The user who asked gets one follow-up message at the
command's response_url while Slack still takes it, else a direct message from the app. When a late write overtook a
newer change of the same lead, the follow-up says so plainly and offers to apply the newer value again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from commands.blocks import ACTION_APPLY_ANYWAY, ACTION_CANCEL, BLOCK_ACTIONS, BLOCK_NOTICE, change_summary, ephemeral
from commands.caveat_text import escape
from commands.grammar import Invalid, parse

from . import metrics
from .audit import AuditError, Change, Outcome
from .service import UserFacingError, changed_keys, snapshot
from .slack_edge import deliver
from .tuning import CONFIRM_TTL_S, WRITE_IN_FLIGHT_MAX_S

if TYPE_CHECKING:
    from babelforce.models import Lead

    from .pipeline import Leadbot

log = logging.getLogger(__name__)

#: First look: babelforce's own deadline for a call (20 s) and the read-back (5 s) have passed.
FIRST_LOOK_S = 30.0
#: Last look: a write still not there by now is taken as not applied.
LAST_LOOK_S = 120.0
#: Slack takes posts at a response_url for 30 minutes; after that the follow-up is a direct message.
RESPONSE_URL_LIFETIME_S = 30 * 60
_GONE = object()
#: The start of an audit record's detail once the settler settled it (not the write's own answer).
SETTLED_PREFIX = "settled later: "


class _SettledElsewhere(Exception):
    """The record changed since it was read: another process settled it (and tells its user)."""


@dataclass(frozen=True, slots=True)
class Settled:
    """How a check ended: the record's outcome now, and the follow-up message (None: nothing to tell yet)."""

    outcome: Outcome | None
    message: dict[str, Any] | None


class Settler:
    """Background checks of unconfirmed writes, for one Leadbot."""

    def __init__(
        self,
        bot: Leadbot,
        *,
        first_look: float = FIRST_LOOK_S,
        last_look: float = LAST_LOOK_S,
        slack: AsyncWebClient | None = None,
        clock: Any = time.time,
    ) -> None:
        self.bot = bot
        self.first_look = first_look
        self.last_look = last_look
        self.slack = slack  # for the direct message when the response_url is gone
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, change_id: int) -> None:
        """Look at an unconfirmed write after the first-look delay, and again at the last look if still open."""
        task = asyncio.ensure_future(self._watch(change_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sweep(self) -> int:
        """At start-up: settle every attempt a crash (or an earlier process) left unconfirmed, and tell its user.
        Returns how many were looked at."""
        try:
            waiting = await self.bot.audit.unsettled(older_than=WRITE_IN_FLIGHT_MAX_S)
        except AuditError as failure:
            metrics.audit_error("unsettled")
            log.error("settler: could not read unconfirmed writes from the audit trail: %s", failure.message)
            return 0
        for change in waiting:
            await self._settle_and_tell(change.id, final=True)
        if waiting:
            log.info("settler: looked at %d write(s) left unconfirmed by an earlier run", len(waiting))
        return len(waiting)

    async def aclose(self) -> None:
        """At shutdown: stop waiting (the next start's sweep settles what is left)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)

    async def _watch(self, change_id: int) -> None:
        await asyncio.sleep(self.first_look)
        if await self._settle_and_tell(change_id, final=False):
            return
        await asyncio.sleep(max(0.0, self.last_look - self.first_look))
        await self._settle_and_tell(change_id, final=True)

    async def _settle_and_tell(self, change_id: int, *, final: bool) -> bool:
        """One look; True when the record is settled (or cannot be). Failures are logged, never raised."""
        try:
            change = await self.bot.audit.get(change_id)
            if change is None or change.outcome not in (Outcome.UNKNOWN, Outcome.PENDING):
                return True
            settled = await self.check(change, final=final)
        except _SettledElsewhere:
            log.info("settler: change %s was settled meanwhile by another leadbot process", change_id)
            return True
        except (AuditError, UserFacingError) as failure:
            log.warning("settler: could not settle change %s yet: %s", change_id, failure.message)
            return False
        except Exception:  # the settler must go on with the other records: log with context
            log.exception("settler: settling change %s failed unexpectedly", change_id)
            return False
        if settled.message is not None:
            await self._tell(change, settled.message)
        return settled.outcome is not None

    async def check(self, change: Change, *, final: bool) -> Settled:
        """Read babelforce and settle one record: OK when its values are there, FAILED when the lead still has its
        old values at the last look; None (look again) otherwise."""
        assert change.list_id is not None
        service = self.bot.service
        lead_list = await service.resolve_list(change.list_id)
        name = change.lead_uid or change.lead_id or "the lead"
        ref = f"#{change.id}"
        if change.lead_id is None:  # an add whose answer never came: is there a lead with its uid now?
            found = await service.lead_with_uid(lead_list, change.lead_uid or "") if change.lead_uid else None
            created_later = next(
                (later for later in await self.bot.audit.later_changes(change) if later.outcome == Outcome.OK), None
            )
            if found is not None and created_later is not None and created_later.lead_id == found.id:
                # the lead is there because a later add of the same uid created it (the user tried again)
                await self._finish(change, Outcome.FAILED, detail=f"not created; the later add #{created_later.id} was")
                return Settled(Outcome.FAILED, None)  # the user has that later add's own answer: nothing to add
            if found is not None:
                await self._finish(change, Outcome.OK, after=snapshot(found), lead_id=found.id, detail="arrived late")
                return Settled(
                    Outcome.OK,
                    _notice(f"Settled {ref}: the add of {name} did arrive; babelforce has the lead now. Undo works."),
                )
            if not final:
                return Settled(None, None)
            await self._finish(change, Outcome.FAILED, detail="babelforce never created it")
            return Settled(
                Outcome.FAILED,
                _notice(
                    f"Settled {ref}: the add of {name} did not arrive; nothing was created. Add it again if needed."
                ),
            )
        _, current = await service.current(change.list_id, change.lead_id)
        after, before = change.after, change.before or {}
        if current is None:
            if not final:
                return Settled(None, None)
            await self._finish(change, Outcome.UNKNOWN, detail="the lead no longer exists")
            return Settled(Outcome.UNKNOWN, _notice(f"Settled {ref}: lead {name} no longer exists in babelforce."))
        now = snapshot(current)
        if after is not None and _has(now, before, after):
            await self._finish(change, Outcome.OK, detail="arrived late")
            newer = await self._overtaken(change, current)
            if newer is not None:
                return Settled(Outcome.OK, await self._overtaken_message(change, newer, current, name))
            return Settled(
                Outcome.OK,
                _notice(f"Settled {ref}: your change of {name} did arrive ({change_summary(before, after)})."),
            )
        if after is not None and _has(now, after, before):  # still the old values
            if not final:
                return Settled(None, None)
            await self._finish(change, Outcome.FAILED, detail="babelforce never applied it")
            return Settled(
                Outcome.FAILED,
                _notice(f"Settled {ref}: your change of {name} did not arrive; the lead is as it was. Try again."),
            )
        if not final:
            return Settled(None, None)
        detail = "babelforce shows other values (changed by someone else)"
        await self._finish(change, Outcome.UNKNOWN, detail=detail)
        return Settled(
            Outcome.UNKNOWN,
            _notice(f"Settled {ref}: lead {name} has neither your values nor its old ones; check it with /lead show."),
        )

    async def _overtaken(self, change: Change, current: Lead) -> Change | None:
        """A newer applied change of the lead whose values the late write replaced, or None."""
        now = snapshot(current)
        for later in reversed(await self.bot.audit.later_changes(change)):
            if later.outcome != Outcome.OK or later.after is None or later.undo_of is not None:
                continue
            if not _has(now, later.before or {}, later.after):
                return later
            return None  # the newest applied change still shows: nothing was overtaken
        return None

    async def _overtaken_message(self, change: Change, newer: Change, current: Lead, name: str) -> dict[str, Any]:
        """Say the late write won, and offer the newer command again (a held question, like "apply anyway?")."""
        shown = change_summary(newer.before, newer.after)
        text = (
            f"Settled #{change.id}: your earlier change of {name} arrived late, after the newer change #{newer.id} "
            f"({shown}), and replaced it: babelforce now has the earlier values."
        )
        command = parse(newer.command.removesuffix(" (form)")) if newer.command else None
        if command is None or isinstance(command, Invalid) or not hasattr(command, "list_ref"):
            return _notice(text + " Type the newer command again to restore it.")
        from .pipeline import EXPECTED_KEY, command_payload  # the pipeline imports this module

        token = secrets.token_urlsafe(12)
        try:
            payload = command_payload(command)
        except LookupError:  # a command no subcommand owns any more: offer nothing
            return _notice(text + " Type the newer command again to restore it.")
        payload[EXPECTED_KEY] = snapshot(current)
        try:
            await self.bot.audit.hold(token=token, actor=newer.actor, command=payload, expires_in=CONFIRM_TTL_S)
        except AuditError:
            metrics.audit_error("hold")
            return _notice(text + " Type the newer command again to restore it.")
        return ephemeral(
            [
                {"type": "section", "block_id": BLOCK_NOTICE, "text": {"type": "mrkdwn", "text": escape(text)}},
                {
                    "type": "actions",
                    "block_id": BLOCK_ACTIONS,
                    "elements": [
                        _button(f"Apply {shown} again"[:75], ACTION_APPLY_ANYWAY, token, "primary"),
                        _button("Leave it", ACTION_CANCEL, token, None),
                    ],
                },
            ],
            text,
        )

    async def _finish(self, change: Change, outcome: Outcome, **fields: Any) -> None:
        """Record the outcome, unless another process (a replica sweeping at the same start) settled it first: then
        that one tells the user, and this check ends here (_SettledElsewhere)."""
        fields["detail"] = f"{SETTLED_PREFIX}{fields.get('detail', '')}"
        if not await self.bot.audit.settle(change, outcome=outcome, **fields):
            raise _SettledElsewhere
        log.info("settler: change %s settled as %s (%s)", change.id, outcome, fields.get("detail", ""))

    async def _tell(self, change: Change, message: dict[str, Any]) -> None:
        """The follow-up: at the command's response_url while Slack takes it, else a direct message."""
        reply_to = change.reply_to or {}
        user_id = str(reply_to.get("user_id") or change.actor.user_id or "")
        url = reply_to.get("response_url")
        fresh = self._clock() - change.at.timestamp() < RESPONSE_URL_LIFETIME_S
        if (
            url
            and fresh
            and await deliver(
                {**message, "replace_original": False},
                session=self.bot.reply_session(),
                response_url=str(url),
                client=None,
                channel_id=None,
                user_id=user_id,
            )
        ):
            return
        if self.slack is None or not user_id:
            log.warning(
                "settler: no way left to tell the user how change %s ended (it is in the audit trail)", change.id
            )
            return
        try:  # a message to the user id lands in the user's direct messages with the app (chat:write)
            await self.slack.chat_postMessage(
                channel=user_id, text=message.get("text", ""), blocks=message.get("blocks")
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as failure:
            log.warning("settler: direct message about change %s failed: %s", change.id, type(failure).__name__)


def _has(now: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether the lead `now` has every value a change from `before` to `after` wrote."""
    fields, keys = changed_keys(before, after)
    if not fields and not keys:
        return False
    data_now, data_after = now.get("data") or {}, after.get("data") or {}
    return all(now.get(name) == after.get(name) for name in fields) and all(
        data_now.get(key, _GONE) == data_after.get(key, _GONE) for key in keys
    )


def _notice(text: str) -> dict[str, Any]:
    return ephemeral(
        [{"type": "section", "block_id": BLOCK_NOTICE, "text": {"type": "mrkdwn", "text": escape(text)}}], text
    )


def _button(text: str, action_id: str, value: str, style: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id}
    button["value"] = value
    if style:
        button["style"] = style
    return button
