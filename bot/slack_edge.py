"""The Slack edge: where a listener's reply goes (response_url, else an ephemeral message), running the work that
follows an ack, and reading who asked from Bolt's context. Nothing here knows what a command does."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from commands.modals import FormOrigin

from . import ack_first, logs, metrics
from .permissions import Requester

log = logging.getLogger(__name__)

#: Key of the Leadbot object in every Bolt request's context (set by a global middleware in bot.app).
CONTEXT_KEY = "leadbot"


#: chat.postEphemeral's answers meaning the bot cannot post in that conversation at all (it is not a member, or
#: cannot see it); the user's DM with the app still works then. Other failures (5xx, rate limits) are Slack's
#: trouble, and another call right after would most likely fail too.
NOT_THERE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
#: Slack's limit on blocks in one message (a DM fallback adds one line to the reply).
MESSAGE_MAX_BLOCKS = 50


async def deliver(
    message: dict[str, Any],
    *,
    response_url: str | None,
    client: AsyncWebClient | None,
    channel_id: str | None,
    user_id: str,
    session: aiohttp.ClientSession | None = None,
) -> bool:
    """Post a reply where the user asked; when that cannot be done, in the user's DM with the app, saying why.
    `session`: the connections to post response_url replies on (Leadbot.reply_session); None: a new one per reply.

    1. The response_url (up to 5 posts within 30 minutes).
    2. When it is gone (a form submitted late, a used-up URL): an ephemeral message in the channel. Slack takes
       that only where the bot is a member.
    3. Where the bot is not a member (or the channel is unknown): the user's DM with the app (conversations.open,
       scope im:write; then chat.postMessage, chat:write), opened by a line naming the channel it could not answer
       in, so the user knows where the result went and how to get it in place next time.

    Returns whether Slack took it. Failures are logged, never raised: the work is done either way.
    """
    await ack_first.yield_to_acks()  # in work after an ack, the post waits its turn behind pending acks
    if response_url:
        try:
            response = await AsyncWebhookClient(response_url, session=session).send_dict(message)
        except (aiohttp.ClientError, TimeoutError, OSError) as failure:
            log.warning("reply to response_url failed: %s", type(failure).__name__)
        else:
            if response.status_code == 200:
                return True
            log.warning("response_url refused the reply: HTTP %s", response.status_code)
    if client is None:
        return False
    if channel_id:
        try:
            await client.chat_postEphemeral(
                channel=channel_id, user=user_id, text=message.get("text", ""), blocks=message.get("blocks")
            )
            return True
        except SlackApiError as failure:
            error = failure.response.get("error") if failure.response is not None else None
            if error not in NOT_THERE:
                log.warning("chat.postEphemeral fallback failed: %s", error or "no error code")
                return False
            log.info("chat.postEphemeral in %s refused (%s); answering in the user's DM instead", channel_id, error)
        except (aiohttp.ClientError, TimeoutError, OSError) as failure:
            log.warning("chat.postEphemeral fallback failed: %s", type(failure).__name__)
            return False
    return await _direct_message(client, message, user_id, channel_id)


async def _direct_message(
    client: AsyncWebClient, message: dict[str, Any], user_id: str, channel_id: str | None
) -> bool:
    """The reply in the user's DM with the app, after one line saying why it is there."""
    if channel_id and channel_id[:1] in ("C", "G"):
        why = (
            f"leadbot could not answer you in <#{channel_id}>: it is not a member of that channel (invite it there "
            "to get answers in place), so the answer is here."
        )
    else:  # a DM between people, or no channel known
        why = (
            "leadbot could not answer you where you asked (it cannot post in that conversation), so the answer is here."
        )
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": why}]}
    blocks = list(message.get("blocks") or [])
    if len(blocks) < MESSAGE_MAX_BLOCKS:
        blocks.insert(0, note)
    try:
        opened = await client.conversations_open(users=user_id)
        dm = (opened.get("channel") or {}).get("id")
        if not isinstance(dm, str) or not dm:
            log.warning("conversations.open named no DM: the user got no answer")
            return False
        await client.chat_postMessage(channel=dm, text=f"{why} {message.get('text', '')}".strip(), blocks=blocks)
        return True
    except SlackApiError as failure:
        error = failure.response.get("error") if failure.response is not None else None
        log.warning("the DM fallback failed too (%s): the user got no answer", error or "no error code")
    except (aiohttp.ClientError, TimeoutError, OSError) as failure:
        log.warning("the DM fallback failed too (%s): the user got no answer", type(failure).__name__)
    return False


async def after_ack(work: Awaitable[object], what: str, *, yields: bool = True) -> None:
    """Run work that follows an ack (Leadbot.in_background starts it as a task), letting nothing escape: a failure
    after the ack is logged with its context, never raised into Bolt or the loop.

    `yields`: the work takes turns behind requests awaiting their ack (bot.ack_first); False for work on Slack's own
    clock, such as opening a form (its trigger_id dies 3 s after the user pressed enter).
    """
    ack_first.yielding(yields)  # this task's own: it may be started by work that yields, or by a request
    await ack_first.yield_to_acks()
    try:
        await work
    except Exception:  # the edge after the ack: log with context, keep the ack, keep serving
        log.exception("work after the ack of %s failed", what)


def slack_error(failure: SlackApiError) -> str:
    """The error code of a Slack Web API refusal ("invalid_auth", "missing_scope" ...), or "refused" without one."""
    response = failure.response
    return str(response.get("error", "refused")) if response is not None else "refused"


def requester_of(body: dict[str, Any], context: AsyncBoltContext, channel_id: str | None = None) -> Requester:
    """Who sent a Slack request (a slash command, a click, a form, an options request), from its body: the user,
    their own workspace and organisation (`actor_workspace`), and the channel (given, else the body's)."""
    user = body.get("user")
    user_id = (user.get("id") if isinstance(user, dict) else None) or body.get("user_id") or context.user_id or ""
    team_id, enterprise_id = actor_workspace(body)
    return Requester(
        user_id=str(user_id),
        team_id=team_id,
        enterprise_id=enterprise_id,
        channel_id=channel_id or context.channel_id,
    )


def actor_workspace(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The acting user's own workspace (T…) and organisation (E…), None where the request does not tell.

    This is what LEADBOT_TEAM_ID is checked against, so it must not be the workspace the app is installed in, which
    Bolt's context gives for a form (view.app_installed_team_id) and which `team` is for a click in a Slack Connect
    channel. Slack's payloads (api.slack.com, block_actions / view_submission / block_suggestion payloads):
    - a slash command has no user object: its `team_id` / `enterprise_id` are where it was typed, the user's own;
    - interactions carry `user.team_id`, the user's own workspace, or their organisation's id (E…) in Enterprise
      Grid; `team` (null in some org-wide installs, then `view.team_id`) is where the interaction came from.
    The organisation of the request (`team.enterprise_id`, `enterprise.id`) is the user's only when the request came
    from the user's own workspace; a workspace of the request is the user's only when it lies in the user's
    organisation. A partner in a Slack Connect channel therefore counts as their own workspace, never as ours.
    """
    team, enterprise, view = (_object(body, key) for key in ("team", "enterprise", "view"))
    origin_team = _slack_id(team.get("id")) or _slack_id(body.get("team_id")) or _slack_id(view.get("team_id"))
    origin_enterprise = (
        _slack_id(team.get("enterprise_id")) or _slack_id(enterprise.get("id")) or _slack_id(body.get("enterprise_id"))
    )
    user = body.get("user")
    user_team = _slack_id(user.get("team_id")) if isinstance(user, dict) else None
    if user_team is None:  # a slash command (or a payload without the user's team): where it was typed
        return origin_team, origin_enterprise
    if user_team.startswith("E"):  # Enterprise Grid reports the user's organisation
        return (origin_team if origin_enterprise == user_team else None), user_team
    return user_team, (origin_enterprise if origin_team == user_team else None)


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _slack_id(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def origin_of(view: dict) -> FormOrigin:
    return FormOrigin.decode(view.get("private_metadata"))


#: Slack's payload types, as the kinds the ack metric and the logs name.
_KINDS = {
    "block_actions": "action",
    "view_submission": "view",
    "view_closed": "view",
    "block_suggestion": "options",
    "event_callback": "event",
}


def request_context(body: dict[str, Any], arrived: float) -> logs.RequestContext:
    """What the logs and the metrics know of a Slack request from its body alone: its kind, its id and who sent
    it. The id is the audit trail's where there is one (`command:<trigger_id>`, `view:<view id>`), else the
    trigger's or the event's, else a random one."""
    kind = "command" if "command" in body else _KINDS.get(str(body.get("type")), "other")
    view, event = _object(body, "view"), _object(body, "event")
    key = {
        "command": _slack_id(body.get("trigger_id")),
        "view": _slack_id(view.get("id")),
        "action": _slack_id(body.get("trigger_id")),
        "event": _slack_id(body.get("event_id")),
    }.get(kind)
    user = body.get("user")
    user_id = (
        _slack_id(body.get("user_id")) or (_slack_id(user.get("id")) if isinstance(user, dict) else None)
    ) or _slack_id(event.get("user"))
    return logs.RequestContext(
        request_id=f"{kind}:{(key or uuid.uuid4().hex[:12])[:64]}",
        kind=kind,
        user=user_id[:32] if user_id else None,
        arrived=arrived,
    )


def answered(subcommand: str | None = None) -> None:
    """The current request's answer after its ack has reached Slack: its reply latency, counted from its arrival."""
    context = logs.current()
    if context is None or context.arrived is None:
        return
    metrics.replied(
        context.kind or "other", subcommand or context.subcommand or "other", time.perf_counter() - context.arrived
    )
