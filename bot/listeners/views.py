"""Form submissions: field errors in place within Slack's 3 s, then the command runs and replies where it was typed."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from commands.fields import FIELD_LIST
from commands.grammar import Command
from commands.modals import CALLBACK_IDS, SUBCOMMAND_OF_CALLBACK, read_form

from ..core import CONTEXT_KEY, Leadbot, after_ack, deliver, origin_of


def register(app: AsyncApp) -> None:
    for callback_id in CALLBACK_IDS.values():
        app.view(callback_id)(handle_form_submission)


async def handle_form_submission(
    ack: AsyncAck, body: dict, view: dict, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    leadbot: Leadbot = context[CONTEXT_KEY]
    subcommand = SUBCOMMAND_OF_CALLBACK[view["callback_id"]]
    user_id = (body.get("user") or {}).get("id", "")
    refusal = leadbot.refusal(subcommand)
    if refusal:
        await ack(response_action="errors", errors={FIELD_LIST: refusal})
        return
    command = read_form(
        subcommand, (view.get("state") or {}).get("values") or {}, default_region=leadbot.default_region
    )
    if isinstance(command, dict):
        await ack(response_action="errors", errors=command)
        return
    field_errors = await leadbot.precheck(command)
    if field_errors:
        await ack(response_action="errors", errors=field_errors)
        return
    await ack()
    await after_ack(run_form(leadbot, command, view, client, user_id), f"the /lead {subcommand} form")


async def run_form(leadbot: Leadbot, command: Command, view: dict, client: AsyncWebClient, user_id: str) -> None:
    """The form's command, its reply sent where the form was opened from."""
    origin = origin_of(view)
    reply = await leadbot.execute(command, user_id=user_id, replace_original=False)
    await deliver(reply, response_url=origin.response_url, client=client, channel_id=origin.channel_id, user_id=user_id)
