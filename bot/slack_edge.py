"""The Slack edge: where a listener's reply goes (response_url, else an ephemeral message), running the work that
follows an ack, and reading who asked from Bolt's context. Nothing here knows what a command does."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from commands.modals import FormOrigin

from .permissions import Requester

log = logging.getLogger(__name__)

#: Key of the Leadbot object in every Bolt request's context (set by a global middleware in bot.app).
CONTEXT_KEY = "leadbot"


async def deliver(
    message: dict[str, Any],
    *,
    response_url: str | None,
    client: AsyncWebClient | None,
    channel_id: str | None,
    user_id: str,
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
