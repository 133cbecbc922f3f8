"""The `/lead` slash command: parse, ack within Slack's 3 s with an answer or a receipt line, then do the work.

What the user sees in Slack: help, usage and refusals are the ack itself (one message). A bare subcommand is acked
empty and opens its form. Any other command is acked with "Received: <what was asked>" (commands.blocks
.progress_message says why), and its answer follows as a second message at the response_url: Slack never replaces
a slash command's ack, so the receipt stays above the answer and is worded to read true for good.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from commands import registry
from commands.blocks import error_message, help_message, progress_message
from commands.grammar import Help, Invalid, OpenModal, ParseResult, parse
from commands.modals import FormOrigin, form_view

from .. import metrics
from ..pipeline import Leadbot, Request
from ..slack_edge import CONTEXT_KEY, answered, deliver, requester_of

log = logging.getLogger(__name__)

COMMAND = "/lead"


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(handle_lead_command)


async def handle_lead_command(ack: AsyncAck, command: dict, client: AsyncWebClient, context: AsyncBoltContext) -> None:
    leadbot: Leadbot = context[CONTEXT_KEY]
    text = command.get("text") or ""
    parsed = parse(text, default_region=leadbot.default_region)
    request = Request(
        requester_of(command, context, command.get("channel_id")),
        # Slack resends a request it thinks was lost (X-Slack-Retry-Num) with the same trigger_id: one change only
        request_id=f"command:{command['trigger_id']}" if command.get("trigger_id") else None,
        text=f"{COMMAND} {text}".strip(),
        response_url=command.get("response_url"),
    )
    subcommand = _subcommand(parsed)
    denial = await leadbot.authorize(request, subcommand, list_ref=getattr(parsed, "list_ref", None) or None)
    if denial is not None:
        await ack(error_message(denial.message))
        return
    if isinstance(parsed, Help):
        await ack(help_message(parsed.topic))
        metrics.command("help", "ok")
        return
    if isinstance(parsed, Invalid):
        await ack(error_message(parsed.message, parsed.usage))
        named = parsed.subcommand if parsed.subcommand and registry.find(parsed.subcommand) else "other"
        metrics.command(named, "invalid")  # never the typed word itself: a label's values stay the code's own
        return
    if isinstance(parsed, OpenModal):
        await ack()
        # on Slack's clock (the trigger_id dies 3 s after the user pressed enter): no turn behind other acks
        leadbot.in_background(open_form(client, command, parsed.subcommand), f"/lead {subcommand} (form)", yields=False)
        return
    await ack(progress_message(registry.of(parsed).progress(parsed)))
    leadbot.in_background(run_command(leadbot, parsed, command, client, request), f"/lead {subcommand}")


def _subcommand(parsed: ParseResult) -> str:
    """The subcommand whose permission applies: help and unreadable text need only a reader's."""
    if isinstance(parsed, OpenModal):
        return parsed.subcommand
    if isinstance(parsed, Invalid):
        return parsed.subcommand if parsed.subcommand and registry.is_write(parsed.subcommand) else "help"
    if isinstance(parsed, Help):
        return "help"
    return registry.of(parsed).name


async def run_command(
    leadbot: Leadbot, parsed: registry.TargetsList, command: dict, client: AsyncWebClient, request: Request
) -> None:
    # replace_original=False: on a slash command's response_url Slack does not replace the ack anyway
    reply = await leadbot.execute(parsed, request=request, replace_original=False, client=client)
    if reply is None:  # a repeated delivery of a request already being handled
        return
    await deliver(
        reply,
        session=leadbot.reply_session(),
        response_url=command.get("response_url"),
        client=client,
        channel_id=command.get("channel_id"),
        user_id=command.get("user_id", ""),
    )
    answered()


async def open_form(client: AsyncWebClient, command: dict, subcommand: str) -> None:
    """Open the subcommand's form at once (the trigger_id dies 3 s after the user pressed enter)."""
    origin = FormOrigin(command.get("response_url"), command.get("channel_id"))
    try:
        await client.views_open(trigger_id=command["trigger_id"], view=form_view(subcommand, origin))
    except SlackApiError as failure:
        reason = failure.response.get("error", "unknown error") if failure.response is not None else "unknown error"
        log.warning("views.open for /lead %s failed: %s", subcommand, reason)
        await deliver(
            error_message(
                f"Slack did not open the form ({reason}); type the command with its arguments instead.",
                registry.usage(subcommand),
            ),
            response_url=origin.response_url,
            client=None,
            channel_id=None,
            user_id=command.get("user_id", ""),
        )
