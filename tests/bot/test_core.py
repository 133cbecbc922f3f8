"""The bot's edge: masking phone numbers in logs, which libraries may log at DEBUG, and a clean shutdown."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import SecretStr

from babelforce import BabelforceClient, ClientCredentials
from bot.audit import AuditLog
from bot.masking import mask
from bot.permissions import AccessPolicy, Gatekeeper
from bot.pipeline import Leadbot
from bot.run import CHATTY_LOGGERS, configure_logging
from bot.service import LeadService


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+4915100000040", "•••••••••••40"),
        ("+49-151-0000-0040", "•••••••••••40"),
        ("+49 1510 000 0040", "•••••••••••40"),
        ("0151-2345-6789", "••••••••••89"),
        ("(030) 1234567", "(••••••••67"),  # the digits are what matters
        ("lead-40", "lead-40"),
        ("uuid_100", "uuid_100"),
        ("Spring leads", "Spring leads"),
        ("aa220078503dc86b01504585279e6933", "aa220078503dc86b01504585279e6933"),  # a lead id is not a number
        ("12345", "12345"),  # too short to be a phone number
    ],
)
def test_mask_hides_phone_numbers_however_they_are_written(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_debug_logging_keeps_slack_and_http_libraries_at_info() -> None:
    saved = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    try:
        configure_logging("DEBUG")
        for name in ("slack_sdk", "slack_bolt", "httpcore"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.INFO, name
        configure_logging("WARNING")
        assert logging.getLogger("slack_sdk").getEffectiveLevel() == logging.WARNING
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_shutdown_lets_background_work_finish_before_closing_babelforce() -> None:
    """The audit channel line of the last change is not lost when the server stops right after it."""

    async def scenario() -> list[str]:
        events: list[str] = []
        client = BabelforceClient(base_url="http://127.0.0.1:9", credentials=ClientCredentials("i", SecretStr("s")))
        audit = AuditLog(":memory:")
        leadbot = Leadbot(LeadService(client), audit=audit, gate=Gatekeeper(AccessPolicy.open(), None))

        async def slow_line() -> None:
            await asyncio.sleep(0.2)
            events.append("line posted")

        leadbot.in_background(slow_line(), "a test line")
        await leadbot.shutdown()
        events.append("closed")
        audit.close()
        return events

    assert asyncio.run(scenario()) == ["line posted", "closed"]


def test_replies_share_one_session_per_loop_until_shutdown_closes_it() -> None:
    """Every reply to a response_url goes on one kept-alive session (a new connection and TLS handshake per reply
    cost CPU in a burst); shutdown closes it, and a later reply gets a fresh one."""

    async def scenario() -> None:
        client = BabelforceClient(base_url="http://127.0.0.1:9", credentials=ClientCredentials("i", SecretStr("s")))
        audit = AuditLog(":memory:")
        leadbot = Leadbot(LeadService(client), audit=audit, gate=Gatekeeper(AccessPolicy.open(), None))
        first = leadbot.reply_session()
        assert leadbot.reply_session() is first and not first.closed
        await leadbot.shutdown()
        assert first.closed
        second = leadbot.reply_session()
        assert second is not first and not second.closed
        await second.close()
        audit.close()

    asyncio.run(scenario())
