"""Fixtures for the Slack stand-in's own tests: a fresh SlackStub on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from slackstub import SlackStub


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub() as server:
        yield server
