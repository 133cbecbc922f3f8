"""Options for the forms' list select, answered from the cached list directory within Slack's 3 s."""

from __future__ import annotations

import logging
import time

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from commands.modals import ACTION_LIST

from .. import ack_first
from ..pipeline import Leadbot
from ..service import UserFacingError
from ..slack_edge import CONTEXT_KEY, origin_of, requester_of
from ..tuning import OPTIONS_BUDGET_S

log = logging.getLogger(__name__)

OPTION_TEXT_MAX = 75  # Slack's limit for an option's text


def register(app: AsyncApp) -> None:
    app.options(ACTION_LIST)(handle_list_options)


async def handle_list_options(ack: AsyncAck, body: dict, context: AsyncBoltContext) -> None:
    """The lists whose name matches what was typed, for someone leadbot serves: list names are read data, so the
    same workspace, channel and reader checks as `/lead show` apply (LEADBOT_TEAM_ID against the user's own
    workspace). A refusal is an empty list, logged, not an audit record: Slack asks on every keystroke."""
    arrived = time.monotonic()
    leadbot: Leadbot = context[CONTEXT_KEY]
    view = body.get("view")
    requester = requester_of(body, context, origin_of(view).channel_id if isinstance(view, dict) else None)
    if await leadbot.gate.check(requester, write=False) is not None:
        await ack(options=[])
        return
    budget = OPTIONS_BUDGET_S - (time.monotonic() - arrived)
    try:
        with ack_first.waiting_elsewhere():  # babelforce's list directory: no CPU of ours meanwhile
            lists = await leadbot.service.list_options(body.get("value") or "", budget=max(budget, 0.1))
    except (TimeoutError, UserFacingError) as failure:
        log.warning("list options unavailable: %s", getattr(failure, "message", "babelforce too slow"))
        await ack(options=[])
        return
    await ack(options=[_option(lead_list.name, lead_list.count, lead_list.id) for lead_list in lists])


def _option(name: str, count: int | None, value: str) -> dict:
    label = f"{name} ({count} leads)" if count is not None else name
    if len(label) > OPTION_TEXT_MAX:
        label = label[: OPTION_TEXT_MAX - 1] + "…"
    return {"text": {"type": "plain_text", "text": label}, "value": value}
