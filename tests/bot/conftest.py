"""End-to-end fixtures: the real Bolt app served over HTTP on loopback, the babelforce sandbox behind it, and the
Slack stand-in in front of it (it issues triggers and response_urls and records what the bot sends to Slack)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from babelforce import BabelforceClient, ClientCredentials, RetryPolicy
from bot.app import EVENTS_PATH, build_app, http_app
from bot.audit import AuditLog
from bot.finder import DEFAULT_MAX_LISTS
from bot.permissions import AccessPolicy, Gatekeeper
from bot.pipeline import Leadbot
from bot.service import LeadService
from commands.blocks import ACTION_APPLY_ANYWAY, BLOCK_CONFIRM, BLOCK_PROGRESS
from localserve import BackgroundServer
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from slackstub import Interaction, SlackDriver, SlackStub
from tests.support import SandboxControl

FAST_RETRY = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.5)


@dataclass
class Bot:
    """One bot under test and everything around it."""

    sandbox: SandboxServer
    control: SandboxControl
    stub: SlackStub
    driver: SlackDriver
    server: BackgroundServer
    leadbot: Leadbot
    signing_secret: str

    def command(self, text: str) -> Interaction:
        return self.driver.command(text)

    def ask(self, text: str, timeout: float = 15.0) -> dict[str, Any]:
        """Run `/lead text` and return the bot's final answer: the ack when it is final, else the reply."""
        interaction = self.driver.command(text)
        assert interaction.status == 200, interaction.body
        assert interaction.acked_in_time, f"ack took {interaction.elapsed:.2f} s"
        if interaction.json and not is_progress(interaction.json):
            return interaction.json
        return self.driver.replies(interaction, count=1, timeout=timeout)[0]

    def apply(self, text: str, timeout: float = 15.0) -> dict[str, Any]:
        """Run `/lead text`; the bot must ask "apply anyway?" first (asserted, with nothing written yet); click
        Apply anyway and return the lead card it answers with."""
        interaction = self.driver.command(text)
        assert interaction.status == 200, interaction.body
        question = self.driver.replies(interaction, count=1, timeout=timeout)[0]
        assert is_question(question), f"expected an 'apply anyway?' question, got: {texts(question)}"
        click = self.driver.click(question, ACTION_APPLY_ANYWAY)
        assert click.status == 200 and click.acked_in_time
        return self.driver.replies(click, count=1, timeout=timeout)[0]

    def lead(self, uid: str, list_id: str = DEMO_LIST_ID) -> Any:
        """The sandbox's own record of a lead (not through the bot), or None."""
        with self.sandbox.state.lock:
            for lead in self.sandbox.state.iter_leads(list_id):
                if lead.uid == uid:
                    return lead
        return None

    def lead_count(self, list_id: str = DEMO_LIST_ID) -> int:
        with self.sandbox.state.lock:
            return sum(1 for _ in self.sandbox.state.iter_leads(list_id))


def is_progress(message: dict[str, Any]) -> bool:
    return any(block.get("block_id") == BLOCK_PROGRESS for block in message.get("blocks", []))


def is_question(message: dict[str, Any]) -> bool:
    """An "apply anyway?" question (a change that would not affect dialling now, not made yet)."""
    return any(block.get("block_id") == BLOCK_CONFIRM for block in message.get("blocks", []))


def texts(message: dict[str, Any]) -> str:
    """Every text of a message's blocks, joined: what a reader sees, for assertions on wording."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") in {"mrkdwn", "plain_text"} and isinstance(value.get("text"), str):
                parts.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(message.get("blocks", []))
    return "\n".join(parts)


def block(message: dict[str, Any], block_id: str) -> dict[str, Any]:
    for candidate in message.get("blocks", []):
        if candidate.get("block_id") == block_id:
            return candidate
    raise AssertionError(f"no block {block_id!r} in {[b.get('block_id') for b in message.get('blocks', [])]}")


def start_bot(
    sandbox: SandboxServer,
    *,
    allow_writes: bool = True,
    default_region: str | None = None,
    policy: AccessPolicy | None = None,
    audit_path: str | Path = ":memory:",
    audit_channel: str | None = None,
    find_max_lists: int = DEFAULT_MAX_LISTS,
) -> Iterator[Bot]:
    """`allow_writes`: everyone may write (LEADBOT_ALLOW_ALL_WRITERS) or nobody; `policy` overrides it."""
    signing_secret = secrets.token_hex(16)
    client = BabelforceClient(
        base_url=sandbox.base_url, credentials=ClientCredentials("sandbox", SecretStr("sandbox")), retry=FAST_RETRY
    )
    audit = AuditLog(audit_path)
    with SlackStub() as stub:
        gate = Gatekeeper(
            policy or AccessPolicy(allow_all_writers=allow_writes),
            AsyncWebClient(token=stub.bot_token, base_url=stub.api_url),
        )
        leadbot = Leadbot(
            LeadService(client, default_region=default_region),
            audit=audit,
            gate=gate,
            audit_channel=audit_channel,
            find_max_lists=find_max_lists,
        )
        bolt = build_app(leadbot, bot_token=stub.bot_token, signing_secret=signing_secret, slack_api_url=stub.api_url)
        with (
            BackgroundServer(http_app(bolt, on_shutdown=leadbot.shutdown), lifespan="on") as server,
            SlackDriver(stub, server.base_url + EVENTS_PATH, signing_secret) as driver,
        ):
            control = SandboxControl(sandbox.base_url)
            try:
                yield Bot(sandbox, control, stub, driver, server, leadbot, signing_secret)
            finally:
                control.close()
                audit.close()


@pytest.fixture
def bot(sandbox: SandboxServer) -> Iterator[Bot]:
    """The bot with writes allowed, in front of a fresh demo sandbox."""
    yield from start_bot(sandbox)


@pytest.fixture
def bot_factory(sandbox: SandboxServer) -> Iterator[Any]:
    """Start bots with other settings (allow_writes, default_region) in front of the same sandbox."""
    running: list[Iterator[Bot]] = []

    def make(**kwargs: Any) -> Bot:
        generator = start_bot(sandbox, **kwargs)
        running.append(generator)
        return next(generator)

    yield make
    for generator in running:
        generator.close()
