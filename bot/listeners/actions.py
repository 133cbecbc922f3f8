"""Buttons on the bot's replies: Undo, "Apply anyway" / "Cancel" for a change that would not affect dialling now, and
"Remove lead" (behind Slack's confirm dialog) for a /lead remove waiting for its yes, and Show on each match of
/lead find.

Each click is acked at once (Slack's 3 s); the permission check and the work follow, and the answer goes to the
click's response_url. Repeated clicks are harmless: the audit trail lets each change be undone and each held
command be applied only once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from babelforce.ids import normalize_id
from commands.blocks import ACTION_APPLY_ANYWAY, ACTION_CANCEL, ACTION_REMOVE, ACTION_UNDO, error_message
from commands.find import ACTION_SHOW_MATCH, show_value
from commands.hopper import ACTION_HOPPER_REFRESH, ShowHopper
from commands.hopper import NAME as HOPPER
from commands.remove import NAME as REMOVE
from commands.show import NAME as SHOW
from commands.show import ShowLead

from ..pipeline import APPLY_ANYWAY, Leadbot, Request
from ..slack_edge import CONTEXT_KEY, answered, deliver, requester_of
from ..undo import UNDO

#: A change id is an SQLite row id: at most 19 digits; a button claiming more is not one of ours.
MAX_CHANGE_ID_DIGITS = 18


def register(app: AsyncApp) -> None:
    app.action(ACTION_UNDO)(_button(_undo, "the Undo button"))
    app.action(ACTION_APPLY_ANYWAY)(_button(_apply_anyway, "the Apply anyway button"))
    app.action(ACTION_CANCEL)(_button(_cancel, "the Cancel button"))
    app.action(ACTION_SHOW_MATCH)(_button(_show_match, "a /lead find Show button"))
    app.action(ACTION_REMOVE)(_button(_remove, "the Remove lead button"))
    app.action(ACTION_HOPPER_REFRESH)(_button(_hopper_refresh, "a /lead hopper Refresh button"))


ButtonWork = Callable[[Leadbot, dict, dict, AsyncWebClient, AsyncBoltContext], Awaitable[None]]


def _button(work: ButtonWork, what: str) -> Callable[..., Awaitable[None]]:
    """A button's listener: the click is acked at once (Slack's 3 s), then `work` runs; a failure after the ack is
    logged naming `what` (Bolt passes the arguments by these parameter names)."""

    async def listener(
        ack: AsyncAck, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        leadbot: Leadbot = context[CONTEXT_KEY]
        leadbot.in_background(work(leadbot, body, action, client, context), what)

    return listener


async def _hopper_refresh(
    leadbot: Leadbot, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """/lead hopper read again, in place of the reply that carried the button."""
    target = normalize_id(str(action.get("value") or ""))
    request = Request(
        requester_of(body, context, _channel(body)),
        text=f"/lead hopper {target} (Refresh)",
        response_url=body.get("response_url"),
    )
    denial = await leadbot.authorize(request, HOPPER, list_ref=target)
    if denial is not None:
        reply: dict | None = error_message(denial.message)
    elif target is None:
        reply = error_message("This Refresh button carries no campaign leadbot knows; run /lead hopper again.")
    else:
        reply = await leadbot.execute(ShowHopper(target), request=request, replace_original=True)
    if reply is not None:
        await _answer(leadbot, reply, body, client, request)


async def _show_match(
    leadbot: Leadbot, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """A match of /lead find: the same card /lead show gives, as a new message (the find reply stays)."""
    ids = show_value(str(action.get("value") or ""))
    list_id, lead_id = (normalize_id(ids[0]), normalize_id(ids[1])) if ids else (None, None)
    request = Request(
        requester_of(body, context, _channel(body)),
        text=f"/lead show {list_id} {lead_id} (find's Show)",
        response_url=body.get("response_url"),
    )
    denial = await leadbot.authorize(request, SHOW, list_ref=list_id)
    if denial is not None:
        reply: dict | None = error_message(denial.message)
    elif list_id is None or lead_id is None:
        reply = error_message("This Show button carries no lead leadbot knows; run /lead find again.")
    else:
        reply = await leadbot.execute(ShowLead(list_id, lead_id), request=request, replace_original=False)
    if reply is not None:
        await _answer(leadbot, reply, body, client, request)


async def _undo(leadbot: Leadbot, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext) -> None:
    value = str(action.get("value") or "")[: MAX_CHANGE_ID_DIGITS + 1]  # a button value is ours; anything else is cut
    request = Request(
        requester_of(body, context, _channel(body)),
        text=f"undo of change {value}",
        response_url=body.get("response_url"),
    )
    denial = await leadbot.authorize(request, UNDO)
    if denial is not None:
        reply = error_message(denial.message)
    elif not (value.isascii() and value.isdigit() and len(value) <= MAX_CHANGE_ID_DIGITS):  # not '²', not 5000 digits
        reply = error_message("This Undo button carries no change leadbot knows; nothing was changed.")
    else:
        reply = await leadbot.undo(int(value), request=request, client=client)
    await _answer(leadbot, reply, body, client, request)


async def _apply_anyway(
    leadbot: Leadbot, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    request = Request(requester_of(body, context, _channel(body)), response_url=body.get("response_url"))
    denial = await leadbot.authorize(request, APPLY_ANYWAY)
    if denial is not None:
        await _answer(leadbot, error_message(denial.message), body, client, request)
        return
    reply = await leadbot.confirm(str(action.get("value") or ""), request=request, client=client)
    if reply is not None:
        await _answer(leadbot, reply, body, client, request)


async def _remove(
    leadbot: Leadbot, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """The held /lead remove, run once (the click's token is its request id: a double click removes once)."""
    request = Request(requester_of(body, context, _channel(body)), response_url=body.get("response_url"))
    denial = await leadbot.authorize(request, REMOVE)
    if denial is not None:
        await _answer(leadbot, error_message(denial.message), body, client, request)
        return
    token = str(action.get("value") or "")
    reply = await leadbot.confirm(token, request=request, client=client, button="Remove lead")
    if reply is not None:
        await _answer(leadbot, reply, body, client, request)


async def _cancel(
    leadbot: Leadbot, body: dict, action: dict, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    request = Request(requester_of(body, context, _channel(body)), response_url=body.get("response_url"))
    reply = await leadbot.cancel(str(action.get("value") or ""), request=request)
    await _answer(leadbot, reply, body, client, request)


def _channel(body: dict) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


async def _answer(leadbot: Leadbot, reply: dict, body: dict, client: AsyncWebClient, request: Request) -> None:
    await deliver(
        reply,
        session=leadbot.reply_session(),
        response_url=body.get("response_url"),
        client=client,
        channel_id=_channel(body),
        user_id=request.requester.user_id,
    )
    answered()
