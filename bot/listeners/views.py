"""Form submissions: field errors in place within Slack's 3 s, then the command runs and replies where it was typed."""

from __future__ import annotations

import re
import time

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from commands import registry
from commands.fields import FIELD_LIST
from commands.grammar import command_text
from commands.modals import FormOrigin, read_form

from .. import ack_first
from ..forms import precheck
from ..pipeline import Leadbot, Request
from ..slack_edge import CONTEXT_KEY, answered, deliver, origin_of, requester_of

#: Every subcommand's form (`lead_<name>_form`), including subcommands registered after the app was built.
FORM_CALLBACK = re.compile(r"^lead_[a-z_]+_form$")


def register(app: AsyncApp) -> None:
    app.view(FORM_CALLBACK)(handle_form_submission)


async def handle_form_submission(
    ack: AsyncAck, body: dict, view: dict, client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    arrived = time.monotonic()  # the permission check and the field pre-checks share one budget
    leadbot: Leadbot = context[CONTEXT_KEY]
    spec = registry.by_callback(view["callback_id"])
    if spec is None:  # a form of a subcommand this version no longer has: say so in place of a silent no-op
        await ack(
            response_action="errors",
            errors={FIELD_LIST: "This form is out of date; close it and type the command again."},
        )
        return
    subcommand = spec.name
    origin = origin_of(view)
    request = Request(
        requester_of(body, context, origin.channel_id),
        # a form submitted twice carries the same view id: the change is made once
        request_id=f"view:{view['id']}" if view.get("id") else None,
        text=f"/lead {subcommand} (form)",
    )
    denial = await leadbot.authorize(request, subcommand)
    if denial is not None:
        await ack(response_action="errors", errors={FIELD_LIST: denial.message})
        return
    command = read_form(
        subcommand, (view.get("state") or {}).get("values") or {}, default_region=leadbot.default_region
    )
    if isinstance(command, dict):
        await ack(response_action="errors", errors=command)
        return
    with ack_first.waiting_elsewhere():  # the pre-checks wait on babelforce: no CPU of ours meanwhile
        field_errors = await precheck(leadbot, command, budget=leadbot.form_check_budget - (time.monotonic() - arrived))
    if field_errors:
        await ack(response_action="errors", errors=field_errors)
        return
    keyed = Request(
        request.requester, request.request_id, command_text(command) + " (form)", response_url=origin.response_url
    )
    await ack()  # nothing that can fail after it: Bolt (process_before_response) would turn the ack into a 500
    leadbot.in_background(run_form(leadbot, command, origin, client, keyed), f"the /lead {subcommand} form")


async def run_form(
    leadbot: Leadbot, command: registry.TargetsList, origin: FormOrigin, client: AsyncWebClient, request: Request
) -> None:
    """The form's command, its reply sent where the form was opened from."""
    reply = await leadbot.execute(command, request=request, replace_original=False, client=client)
    if reply is None:  # the same form submitted again while the first submission is handled
        return
    user_id = request.requester.user_id
    await deliver(
        reply,
        session=leadbot.reply_session(),
        response_url=origin.response_url,
        client=client,
        channel_id=origin.channel_id,
        user_id=user_id,
    )
    answered()
