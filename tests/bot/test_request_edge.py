"""The request edge of `/slack/events`: whatever an unsigned client sends (bodies that are not UTF-8, not JSON, cut
short, huge; repeated signature headers) gets 401 or 413 and one log line, never 500 or a traceback; a signed body
that is not one of Slack's shapes gets 400; and slow connections are closed by the server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator, MutableMapping
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot import ack_first
from bot.app import EVENTS_PATH, MAX_BODY_BYTES
from bot.http_server import DeadlineProtocol, connection_limit
from bot.run import EscapedControlCharacters
from localserve import BackgroundServer
from tests.support import Bot, shared_bot

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def shared() -> Iterator[Bot]:
    yield from shared_bot()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature over raw bytes (slack_sdk's helper decodes the body first, so it cannot sign these)."""
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def post(bot: Bot, body: bytes, *, secret: str | None, content_type: str = FORM, extra: list | None = None) -> int:
    timestamp = str(int(time.time()))
    headers = [("content-type", content_type), ("x-slack-request-timestamp", timestamp)]
    headers.append(("x-slack-signature", signature(secret or "not-the-secret", timestamp, body)))
    headers += extra or []
    response = httpx.post(bot.server.base_url + EVENTS_PATH, content=body, headers=headers, timeout=10)
    return response.status_code


UNSIGNED_BODIES = [
    ("not utf-8", b"text=\xff\xfe\xfd", FORM),
    ("payload not json", b"payload=%7Bnot-json", FORM),
    ("payload a json list", b"payload=" + urlencode({"x": "[1,2]"}).encode()[2:], FORM),
    ("json body a list", b"[1, 2, 3]", "application/json"),
    ("json body not json", b"{nope", "application/json"),
    ("empty", b"", FORM),
]


@pytest.mark.parametrize(("case", "body", "content_type"), UNSIGNED_BODIES, ids=[case[0] for case in UNSIGNED_BODIES])
def test_an_unsigned_request_is_401_whatever_its_body(
    shared: Bot, caplog: pytest.LogCaptureFixture, case: str, body: bytes, content_type: str
) -> None:
    shared.control.reset_stats()
    with caplog.at_level(logging.INFO):
        assert post(shared, body, secret=None, content_type=content_type) == 401
    assert shared.control.stats()["total"] == 0
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]


SIGNED_MALFORMED = [
    ("not utf-8", b"text=\xff\xfe\xfd", FORM),
    ("payload not json", b"payload=%7Bnot-json", FORM),
    ("payload a json list", b"payload=%5B1%2C2%5D", FORM),
    ("two payloads", b"payload=%7B%7D&payload=%7B%7D", FORM),
    ("json body a list", b"[1, 2, 3]", "application/json"),
]


@pytest.mark.parametrize(("case", "body", "content_type"), SIGNED_MALFORMED, ids=[case[0] for case in SIGNED_MALFORMED])
def test_a_signed_body_that_is_no_slack_shape_is_400_without_a_traceback(
    shared: Bot, caplog: pytest.LogCaptureFixture, case: str, body: bytes, content_type: str
) -> None:
    shared.control.reset_stats()
    with caplog.at_level(logging.INFO):
        assert post(shared, body, secret=shared.signing_secret, content_type=content_type) == 400
    assert shared.control.stats()["total"] == 0
    assert not [record for record in caplog.records if record.exc_info]


def test_repeated_signature_headers_are_refused_even_when_one_copy_is_valid(shared: Bot) -> None:
    body = urlencode(shared.driver.command_fields('show "Spring leads" lead-40')).encode()
    timestamp = str(int(time.time()))
    good = signature(shared.signing_secret, timestamp, body)
    for extra in ([("x-slack-signature", "v0=" + "0" * 64)], [("x-slack-request-timestamp", timestamp)]):
        assert post(shared, body, secret=shared.signing_secret, extra=extra) == 401
    # and the same body with one copy of each is accepted: the refusal was the repetition
    headers = {"content-type": FORM, "x-slack-request-timestamp": timestamp, "x-slack-signature": good}
    assert httpx.post(shared.server.base_url + EVENTS_PATH, content=body, headers=headers).status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(shared: Bot) -> None:
    big = b"text=" + b"a" * (MAX_BODY_BYTES + 1)
    assert post(shared, big, secret=shared.signing_secret) == 413


def test_a_body_streamed_past_the_limit_is_cut(shared: Bot) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"a" * 65536

    timestamp = str(int(time.time()))
    headers = {"content-type": FORM, "x-slack-request-timestamp": timestamp, "x-slack-signature": "v0=" + "0" * 64}
    response = httpx.post(shared.server.base_url + EVENTS_PATH, content=chunks(), headers=headers, timeout=10)
    assert response.status_code == 413


# ---------------------------------------------------------------------- the server's own limits


@pytest.fixture
def slow_server(shared: Bot) -> Iterator[BackgroundServer]:
    """The bot's HTTP app on uvicorn with leadbot run's protocol, its arrival deadline shortened for the test."""

    class QuickDeadline(DeadlineProtocol):
        arrival_timeout = 0.5

    with BackgroundServer(shared.server.app, http=QuickDeadline) as server:  # type: ignore[arg-type]
        yield server


def test_a_request_that_trickles_in_is_closed_by_the_server(slow_server: BackgroundServer) -> None:
    host, port = slow_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")  # the rest of the headers never comes
        started = time.monotonic()
        conn.settimeout(5)
        assert conn.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 3


def test_the_connection_cap_stays_below_the_descriptor_limit() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = connection_limit(10**9)
    assert limit < soft or soft == resource.RLIM_INFINITY


# ---------------------------------------------------------------------- logs


def test_control_characters_in_a_log_message_are_escaped() -> None:
    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "user typed %s", ("a\nFAKE LINE\x1b[31m\x00",), None)
    assert EscapedControlCharacters().filter(record)
    assert record.getMessage() == "user typed a\\nFAKE LINE\\x1b[31m\\x00"
    assert json.dumps(record.getMessage())  # one printable line


def test_a_request_whose_body_is_still_coming_holds_no_work_back(shared: Bot) -> None:
    """Work after an ack waits while requests await theirs (bot.ack_first): a client that is not Slack, sending its
    body slowly, must not count as one, or anybody could hold every command's work back."""

    async def scenario() -> tuple[int, int, int]:
        body_sent = asyncio.Event()
        rest = asyncio.Event()
        chunks = [b"text=help&", b"user_id=U1"]
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict:
            if len(chunks) == 1:
                body_sent.set()
                await rest.wait()
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        timestamp = str(int(time.time()))
        scope = {
            "type": "http",
            "method": "POST",
            "path": EVENTS_PATH,
            "raw_path": EVENTS_PATH.encode(),
            "query_string": b"",
            "headers": [
                (b"content-type", FORM.encode()),
                (b"x-slack-request-timestamp", timestamp.encode()),
                (b"x-slack-signature", signature("not-the-secret", timestamp, b"text=help&user_id=U1").encode()),
            ],
        }
        answering = asyncio.ensure_future(shared.server.app(scope, receive, send))
        await body_sent.wait()
        while_coming = ack_first.current().awaiting
        rest.set()
        await answering
        return while_coming, sent[0]["status"], ack_first.current().awaiting

    assert asyncio.run(scenario()) == (0, 401, 0)
