"""Request signatures: anything not signed with the app's secret within the last 5 minutes is refused with 401
before any listener runs, so it reaches neither Slack nor babelforce. Also the health probe."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.app import HEALTH_PATH
from slackstub.signing import FORM_CONTENT_TYPE, signed_headers
from tests.support import Bot, shared_bot, texts

STALE_S = 6 * 60


@pytest.fixture(scope="module")
def shared() -> Iterator[Bot]:
    yield from shared_bot()


def command_body(bot: Bot, text: str) -> tuple[bytes, str, str]:
    """A slash command body as Slack sends it, with a fresh response_url and trigger from the stub."""
    fields = bot.driver.command_fields(text)
    response_url, trigger_id = fields["response_url"], fields["trigger_id"]
    return urlencode(fields).encode(), response_url, trigger_id


def sign(secret: str, timestamp: str, body: bytes) -> str:
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return signature


def forged(bot: Bot, body: bytes) -> dict[str, str]:
    return signed_headers("not-the-signing-secret", body)


def stale(bot: Bot, body: bytes) -> dict[str, str]:
    return signed_headers(bot.signing_secret, body, timestamp=int(time.time()) - STALE_S)


def from_the_future(bot: Bot, body: bytes) -> dict[str, str]:
    return signed_headers(bot.signing_secret, body, timestamp=int(time.time()) + STALE_S)


def no_headers(bot: Bot, body: bytes) -> dict[str, str]:
    return {"Content-Type": FORM_CONTENT_TYPE}


def no_signature(bot: Bot, body: bytes) -> dict[str, str]:
    headers = signed_headers(bot.signing_secret, body)
    del headers["X-Slack-Signature"]
    return headers


def no_timestamp(bot: Bot, body: bytes) -> dict[str, str]:
    headers = signed_headers(bot.signing_secret, body)
    del headers["X-Slack-Request-Timestamp"]
    return headers


def other_body(bot: Bot, body: bytes) -> dict[str, str]:
    return signed_headers(bot.signing_secret, body.replace(b"lead-40", b"lead-41").replace(b"text=add", b"text=set"))


def non_numeric_timestamp(bot: Bot, body: bytes) -> dict[str, str]:
    """Signed with the right secret over the timestamp it claims: only the timestamp's form is wrong."""
    return {
        "Content-Type": FORM_CONTENT_TYPE,
        "X-Slack-Request-Timestamp": "soon",
        "X-Slack-Signature": sign(bot.signing_secret, "soon", body),
    }


def empty_timestamp(bot: Bot, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": FORM_CONTENT_TYPE,
        "X-Slack-Request-Timestamp": "",
        "X-Slack-Signature": sign(bot.signing_secret, "", body),
    }


def non_ascii_signature(bot: Bot, body: bytes) -> dict[str, Any]:
    """A signature header with a byte outside ASCII (HTTP allows obs-text; servers decode it as latin-1)."""
    headers: dict[str, Any] = signed_headers(bot.signing_secret, body)
    headers["X-Slack-Signature"] = headers["X-Slack-Signature"][:-1].encode() + b"\xe9"
    return headers


def signed_over(bot: Bot, stamp: str, body: bytes) -> dict[str, str]:
    signature = sign(bot.signing_secret, stamp, body)
    return {"Content-Type": FORM_CONTENT_TYPE, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def decimal_timestamp(bot: Bot, body: bytes) -> dict[str, str]:
    """A timestamp with a fraction, correctly signed over it: Slack never sends one."""
    stamp = f"{time.time():.3f}"
    return {
        "Content-Type": FORM_CONTENT_TYPE,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(bot.signing_secret, stamp, body),
    }


def huge_timestamp(bot: Bot, body: bytes) -> dict[str, str]:
    """5000 digits, correctly signed over them: a number no clock gives."""
    stamp = "9" * 5000
    return {
        "Content-Type": FORM_CONTENT_TYPE,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(bot.signing_secret, stamp, body),
    }


BAD_SIGNATURES = [
    forged,
    stale,
    from_the_future,
    no_headers,
    no_signature,
    no_timestamp,
    other_body,
    non_numeric_timestamp,
    empty_timestamp,
    non_ascii_signature,
    decimal_timestamp,
    huge_timestamp,
]


@pytest.mark.parametrize("headers_for", BAD_SIGNATURES)
def test_bad_signature_is_401_and_runs_nothing(shared: Bot, headers_for: Callable[[Bot, bytes], dict]) -> None:
    bot = shared
    bot.control.reset_stats()
    opened_before = len(bot.stub.calls("views.open"))
    sent: list[str] = []

    for text in ('show "Spring leads" lead-40', "add"):  # one would call babelforce, one would open a form
        body, response_url, _ = command_body(bot, text)
        response = bot.driver.post_raw(body, headers_for(bot, body))
        assert response.status_code == 401, (text, response.status_code, response.text)
        sent.append(response_url)

    assert bot.control.stats()["total"] == 0
    # A signed command through to babelforce and back: any stray work from the refused ones is done by now.
    assert "Lead lead-40" in texts(bot.ask('show "Spring leads" lead-40'))
    assert len(bot.stub.calls("views.open")) == opened_before
    for response_url in sent:
        assert bot.stub.responses(response_url) == []
    assert not [e for e in bot.stub.events if e.kind == "response" and e.name in {u.rsplit("/", 1)[-1] for u in sent}]


def test_the_hand_built_command_is_accepted_when_signed_properly(shared: Bot) -> None:
    """The control for the test above: the same body with good headers is served, so 401 means the headers."""
    body, response_url, _ = command_body(shared, 'show "Spring leads" lead-40')

    response = shared.driver.post_raw(body, signed_headers(shared.signing_secret, body))

    assert response.status_code == 200
    assert "position 11 of 20" in texts(shared.stub.wait_responses(response_url)[0])


def test_healthz_answers_200_ok(shared: Bot) -> None:
    response = httpx.get(shared.server.base_url + HEALTH_PATH)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"ok": True}
