"""The Home tab: `app_home_opened` publishes it; an Undo button clicked on it undoes the change (the Undo button's
one path, bot/undo.py) and publishes the tab again with the outcome on top (a Home tab has no response_url)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from commands.blocks import ACTION_UNDO

from ..pipeline import Leadbot, Request
from ..slack_edge import CONTEXT_KEY, requester_of
from ..undo import UNDO
from .actions import MAX_CHANGE_ID_DIGITS

#: The outcome of an Undo clicked on the Home tab, shown on top of the tab, is cut to this length.
NOTICE_MAX = 500


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(handle_home_opened)
    app.action(ACTION_UNDO, matchers=[_from_home])(handle_home_undo)


async def _from_home(body: dict) -> bool:
    return (body.get("view") or {}).get("type") == "home"


async def handle_home_opened(body: dict, event: dict, client: AsyncWebClient, context: AsyncBoltContext) -> None:
    """Bolt acknowledges the event when this returns, at once: the tab is built and published in the background."""
    if event.get("tab") != "home" or not event.get("user"):
        return  # the Messages tab: nothing to publish
    leadbot: Leadbot = context[CONTEXT_KEY]
    request = Request(requester_of(body, context, None), text="Home tab")
    leadbot.in_background(leadbot.home.publish(client, request), "the Home tab")


async def handle_home_undo(
    ack: AsyncAck, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    leadbot: Leadbot = context[CONTEXT_KEY]
    leadbot.in_background(_undo(leadbot, body, action, client, context), "the Home tab's Undo button")


async def _undo(leadbot: Leadbot, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext) -> None:
    value = str(action.get("value") or "")[: MAX_CHANGE_ID_DIGITS + 1]
    request = Request(requester_of(body, context, None), text=f"undo of change {value} (Home tab)")
    denial = await leadbot.authorize(request, UNDO, channel_rule=False)
    if denial is not None:
        notice = denial.message
    elif not (value.isascii() and value.isdigit() and len(value) <= MAX_CHANGE_ID_DIGITS):
        notice = "This Undo button carries no change leadbot knows; nothing was changed."
    else:
        reply = await leadbot.undo(int(value), request=request, client=client)
        notice = str(reply.get("text") or "")
    if len(notice) > NOTICE_MAX:
        notice = notice[: NOTICE_MAX - 1] + "…"
    await leadbot.home.publish(client, request, notice=f"Undo of #{value}: {notice}")
