"""What the listeners share: the lead service, the bot's rules, and turning outcomes into Slack messages.

Listeners stay thin: they ack, then hand the parsed command to `Leadbot.execute`, which never raises; anything
unexpected is logged with a reference and the user is told in one sentence.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from commands.blocks import error_message, lead_message
from commands.grammar import WRITE_SUBCOMMANDS, AddLead, Command, RankLead, SetLead, ShowLead
from commands.modals import FormOrigin

from .service import LeadService, UserFacingError

log = logging.getLogger(__name__)

#: Key of the Leadbot object in every Bolt request's context (set by a global middleware in bot.app).
CONTEXT_KEY = "leadbot"
#: A form submission must be answered within 3 s; pre-checks that take longer are left to the command itself.
FORM_CHECK_BUDGET_S = 2.0
WRITES_DISABLED = (
    "Changing leads is switched off for this leadbot: whoever runs it must set LEADBOT_ALLOW_ALL_WRITERS=true "
    "(per-user permissions are not available yet). /lead show works."
)


def subcommand_of(command: Command) -> str:
    return {AddLead: "add", RankLead: "rank", ShowLead: "show", SetLead: "set"}[type(command)]


@dataclass(slots=True)
class Leadbot:
    service: LeadService
    allow_writes: bool = False
    form_check_budget: float = FORM_CHECK_BUDGET_S

    @property
    def default_region(self) -> str | None:
        """The country national phone numbers belong to (LEADBOT_DEFAULT_REGION), shared with the service."""
        return self.service.default_region

    def refusal(self, subcommand: str) -> str | None:
        """Why this subcommand may not run here, or None when it may."""
        if subcommand in WRITE_SUBCOMMANDS and not self.allow_writes:
            return WRITES_DISABLED
        return None

    async def execute(self, command: Command, *, user_id: str | None, replace_original: bool) -> dict:
        """Run a command and return the reply message; never raises."""
        started = time.perf_counter()
        subcommand = subcommand_of(command)
        outcome = "ok"
        try:
            report = await self.service.run(command)
            return lead_message(report, replace_original=replace_original)
        except UserFacingError as failure:
            outcome = "refused"
            return error_message(failure.message, replace_original=replace_original)
        except Exception:  # the edge: whatever broke, the user gets a sentence and the bot goes on
            outcome = "crashed"
            reference = uuid.uuid4().hex[:8]
            log.exception("/lead %s failed unexpectedly (reference %s)", subcommand, reference)
            return error_message(
                f"Something went wrong inside leadbot (reference {reference}); check the lead with /lead show "
                "before trying again.",
                replace_original=replace_original,
            )
        finally:
            log.info(
                "/lead %s by %s list=%s lead=%s: %s in %.0f ms",
                subcommand,
                user_id or "?",
                mask(command.list_ref),
                mask(getattr(command, "lead_ref", getattr(command, "uid", ""))),
                outcome,
                (time.perf_counter() - started) * 1000,
            )

    async def precheck(self, command: Command) -> dict[str, str]:
        """Field errors a form can show in place (unknown lead, duplicate uid, unknown list), within the budget.

        Only answers about a field become field errors. A check that takes longer, or a babelforce failure, is
        dropped: the form closes and the command itself runs and reports whatever happens.
        """
        try:
            async with asyncio.timeout(self.form_check_budget):
                if isinstance(command, AddLead):
                    await self.service.check_uid_free(command.list_ref, command.uid)
                    return {}
                lead = await self.service.check_lead_exists(command.list_ref, command.lead_ref)
                if isinstance(command, SetLead) and command.uid is not None and command.uid != lead.uid:
                    await self.service.check_uid_free(command.list_ref, command.uid, for_set=True)
        except TimeoutError:
            log.info("form pre-check took over %.1f s; the command will report instead", self.form_check_budget)
        except UserFacingError as failure:
            if failure.field:
                return {failure.field: failure.message}
            log.info("form pre-check could not ask babelforce (%s); the command will report", failure.message)
        except Exception:  # a bug in a check must not block the form: the command itself will report
            log.exception("form pre-check failed unexpectedly")
        return {}


async def deliver(
    message: dict, *, response_url: str | None, client: AsyncWebClient | None, channel_id: str | None, user_id: str
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


def origin_of(view: dict) -> FormOrigin:
    return FormOrigin.decode(view.get("private_metadata"))


# Digits with the separators people type in phone numbers (+49 151-000 (0)40), not inside a hex id.
_PHONE_LIKE = re.compile(r"(?<![0-9a-fA-F])\+?\d[\d\s\-./()]*\d(?![0-9a-fA-F])")
MASK_MIN_DIGITS = 6


def mask(text: str) -> str:
    """For logs: keep references readable but hide phone numbers (6+ digits, separators allowed: last 2 kept)."""
    text = " ".join(str(text).split())[:60]

    def hide(match: re.Match[str]) -> str:
        digits = [char for char in match.group() if char.isdigit()]
        if len(digits) < MASK_MIN_DIGITS:
            return match.group()
        return "•" * (len(digits) - 2) + "".join(digits[-2:])

    return _PHONE_LIKE.sub(hide, text)
