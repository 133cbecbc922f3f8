"""The client's observer hook (babelforce.observe): every request, retry and token fetch is told, in the client's
own words and nothing else; an observer that fails does not fail the call."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from babelforce import AuthenticationError, ClientCredentials
from babelforce.observe import CallObserver

pytestmark = pytest.mark.anyio


class Recorder(CallObserver):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_response(self, operation: str, status: str, seconds: float) -> None:
        assert 0 <= seconds < 10
        self.events.append(("response", operation, status))

    def on_retry(self, operation: str, reason: str) -> None:
        self.events.append(("retry", operation, reason))

    def on_token(self, grant: str, result: str) -> None:
        self.events.append(("token", grant, result))


async def test_requests_retries_and_the_token_are_told(make_client, control):
    recorder = Recorder()
    client = make_client(observer=recorder)
    control.faults({"status": 503, "method": "GET", "path": r"/outbound/lists$", "times": 1})
    await client.list_lists()
    assert recorder.events == [
        ("response", "token", "200"),
        ("token", "client_credentials", "ok"),
        ("response", "list_lists", "503"),
        ("retry", "list_lists", "503"),
        ("response", "list_lists", "200"),
    ]


async def test_a_refused_login_and_a_dropped_connection_are_told(make_client, control):
    recorder = Recorder()
    client = make_client(observer=recorder, credentials=ClientCredentials("sandbox", SecretStr("wrong")))
    with pytest.raises(AuthenticationError):
        await client.list_lists()
    assert ("token", "client_credentials", "refused") in recorder.events
    assert ("response", "token", "401") in recorder.events or ("response", "token", "400") in recorder.events

    recorder.events.clear()
    good = make_client(observer=recorder)
    await good.list_lists()
    control.faults({"reset": "before", "method": "GET", "path": r"/outbound/lists$", "times": 1})
    await good.list_lists()
    assert ("response", "list_lists", "network_error") in recorder.events
    assert ("retry", "list_lists", "network_error") in recorder.events


async def test_an_expired_token_is_refreshed_once_and_told_as_a_401_retry(make_client, control):
    recorder = Recorder()
    client = make_client(observer=recorder)
    await client.list_lists()
    control.expire_tokens()
    recorder.events.clear()
    await client.list_lists()
    assert ("retry", "list_lists", "401") in recorder.events
    assert [event for event in recorder.events if event[0] == "token"] == [("token", "client_credentials", "ok")]


async def test_an_observer_that_fails_does_not_fail_the_call(make_client, caplog):
    class Broken(CallObserver):
        def on_response(self, operation: str, status: str, seconds: float) -> None:
            raise RuntimeError("observer bug")

    client = make_client(observer=Broken())
    assert len(await client.list_lists()) >= 1
    assert "observer failed on on_response" in caplog.text


async def test_wait_turn_is_awaited_before_each_request_is_sent_retries_included_and_before_its_answer_is_read(
    make_client, control
):
    """The hook leadbot uses to let Slack's acks go first (bot.ack_first): it runs before a request leaves, every
    time, so a retry waits its turn too, and once more before the answer is read; the token request is not one of
    them (it serves requests already let go)."""
    recorder = Recorder()
    received_before: list[int] = []

    async def wait_turn() -> None:
        recorder.events.append(("before",))
        received_before.append(control.count("GET /api/v2/outbound/lists"))  # what the sandbox had by then

    client = make_client(observer=recorder, wait_turn=wait_turn)
    control.faults({"status": 503, "method": "GET", "path": r"/outbound/lists$", "times": 1})
    await client.list_lists()
    assert recorder.events == [
        ("before",),
        ("response", "token", "200"),
        ("token", "client_credentials", "ok"),
        ("response", "list_lists", "503"),
        ("retry", "list_lists", "503"),
        ("before",),
        ("response", "list_lists", "200"),
        ("before",),  # the answer is read after a turn too
    ]
    assert received_before == [0, 1, 2]
