"""End-to-end fixtures: the real Bolt app served over HTTP on loopback, the babelforce sandbox behind it, and the
Slack stand-in in front of it (it issues triggers and response_urls and records what the bot sends to Slack).
The harness itself (`Bot`, `start_bot`, `shared_bot`) is in tests/support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox import SandboxServer
from tests.support import Bot, start_bot


@pytest.fixture
def bot(sandbox: SandboxServer) -> Iterator[Bot]:
    """The bot with writes allowed, in front of a fresh demo sandbox."""
    yield from start_bot(sandbox)


@pytest.fixture
def bot_factory(sandbox: SandboxServer) -> Iterator[Callable[..., Bot]]:
    """Start bots with other settings (allow_writes, default_region) in front of the same sandbox."""
    running: list[Iterator[Bot]] = []

    def make(**kwargs: Any) -> Bot:
        generator = start_bot(sandbox, **kwargs)
        running.append(generator)
        return next(generator)

    yield make
    for generator in running:
        generator.close()
