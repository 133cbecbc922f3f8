"""SlackStub's Socket Mode, spoken to by slack_sdk's own aiohttp SocketModeClient and by a bare aiohttp websocket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from slackstub import NoAnswer, SlackStub
from slackstub.driver import VERIFICATION_TOKEN
from tests.support import run

APP_TOKEN = "xapp-leadbot-local"


@pytest.fixture
def stub() -> Any:
    with SlackStub(app_token=APP_TOKEN) as server:
        yield server


async def open_url(stub: SlackStub, token: str = APP_TOKEN) -> str:
    response = await AsyncWebClient(base_url=stub.api_url).apps_connections_open(app_token=token)
    return response["url"]


@asynccontextmanager
async def raw_socket(stub: SlackStub) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A bare websocket to the stub (no Socket Mode client logic): what arrives is exactly what the stub sent."""
    url = await open_url(stub)
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=False) as ws:
        yield ws


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> dict[str, Any]:
    message = await ws.receive(timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


@asynccontextmanager
async def socket_mode_client(stub: SlackStub, **kwargs: Any) -> AsyncIterator[SocketModeClient]:
    client = SocketModeClient(app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=stub.api_url), **kwargs)
    try:
        await asyncio.wait_for(client.connect(), 5)
        yield client
    finally:
        await client.close()


# ---------------------------------------------------------------------- apps.connections.open


def test_apps_connections_open_gives_a_websocket_url_on_the_stub(stub: SlackStub) -> None:
    url = run(lambda: open_url(stub))
    assert url.startswith(stub.base_url.replace("http://", "ws://") + "/socket-mode/")
    assert stub.calls("apps.connections.open")[0].ok


def test_apps_connections_open_takes_only_the_app_token(stub: SlackStub) -> None:
    def error(token: str) -> str:
        with pytest.raises(SlackApiError) as caught:
            run(lambda: open_url(stub, token))
        return caught.value.response["error"]

    assert error("xapp-someone-else") == "invalid_auth"
    assert error(stub.bot_token) == "not_allowed_token_type"
    raw = httpx.post(stub.api_url + "apps.connections.open")
    assert raw.json() == {"ok": False, "error": "not_authed"}
    # ... and the app token is no bot token
    with pytest.raises(SlackApiError) as caught:
        run(lambda: AsyncWebClient(token=APP_TOKEN, base_url=stub.api_url).auth_test())
    assert caught.value.response["error"] == "not_allowed_token_type"


# ---------------------------------------------------------------------- slack_sdk's SocketModeClient


def test_slack_sdk_client_receives_a_pushed_command_and_its_ack_is_recorded(stub: SlackStub) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], SocketModeRequest, str]:
        messages: list[dict[str, Any]] = []
        received: asyncio.Queue[SocketModeRequest] = asyncio.Queue()

        async def on_message(client: Any, message: dict[str, Any], raw: str | None) -> None:
            messages.append(message)

        async def on_request(client: SocketModeClient, request: SocketModeRequest) -> None:
            await received.put(request)
            response = SocketModeResponse(request.envelope_id, payload={"text": "On it: ranking lead-10"})
            await client.send_socket_mode_response(response)

        async with socket_mode_client(stub) as client:
            client.message_listeners.append(on_message)
            client.socket_mode_request_listeners.append(on_request)
            await asyncio.to_thread(stub.wait_socket_connected, 3)
            envelope_id = await asyncio.to_thread(stub.socket_send_command, 'rank "Spring leads" lead-10 100')
            request = await asyncio.wait_for(received.get(), 3)
            await asyncio.to_thread(stub.wait_socket_ack, envelope_id, 3)
        return messages, request, envelope_id

    messages, request, envelope_id = run(scenario)
    assert request.type == "slash_commands"
    assert request.envelope_id == envelope_id
    assert request.accepts_response_payload is True
    assert request.payload["command"] == "/lead"
    assert request.payload["text"] == 'rank "Spring leads" lead-10 100'
    assert request.payload["token"] == VERIFICATION_TOKEN
    assert request.payload["response_url"].startswith(stub.base_url + "/response/")
    assert request.payload == stub.socket_sent(envelope_id)["payload"]

    ack = stub.wait_socket_ack(envelope_id, 0)
    assert (ack.kind, ack.name, ack.status, ack.ok) == ("socket_ack", envelope_id, 200, True)
    assert ack.payload == {"text": "On it: ranking lead-10"}
    assert "socket_ack" in ack.summary()
    assert messages[0]["type"] == "hello"  # Slack greets every new connection first

    # The command's response_url and trigger_id are the stub's own, ready for the bot to use.
    reply = httpx.post(request.payload["response_url"], json={"text": "lead-10 is first of the next batch"})
    assert reply.status_code == 200
    assert stub.responses(request.payload["response_url"]) == [{"text": "lead-10 is first of the next batch"}]


def test_disconnect_request_makes_the_client_reconnect(stub: SlackStub) -> None:
    async def scenario() -> tuple[str, str, dict[str, Any]]:
        acks: asyncio.Queue[str] = asyncio.Queue()

        async def on_request(client: SocketModeClient, request: SocketModeRequest) -> None:
            await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
            await acks.put(request.envelope_id)

        async with socket_mode_client(stub) as client:
            client.socket_mode_request_listeners.append(on_request)
            first = await asyncio.to_thread(stub.wait_socket_connected, 3)
            await asyncio.to_thread(stub.socket_disconnect, "refresh_requested")
            second = await asyncio.to_thread(stub.wait_socket_connected, 5, other_than=first)
            envelope_id = await asyncio.to_thread(
                stub.socket_send, {"type": "interactive", "payload": {"type": "block_actions"}}, connection=second
            )
            ack = await asyncio.to_thread(stub.wait_socket_ack, envelope_id, 3)
            assert await acks.get() == envelope_id
            return first, second, ack.payload

    first, second, ack_payload = run(scenario)
    assert first != second
    assert ack_payload == {}  # an ack without a payload
    assert len(stub.calls("apps.connections.open")) == 2
    deadline = time.monotonic() + 3
    while stub.socket_connections and time.monotonic() < deadline:  # the client closes both on its way out
        time.sleep(0.01)
    assert stub.socket_connections == []


# ---------------------------------------------------------------------- the websocket itself


def test_hello_first_then_envelopes_exactly_as_pushed(stub: SlackStub) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], str]:
        async with raw_socket(stub) as ws:
            hello = await receive_json(ws)
            cid = await asyncio.to_thread(stub.wait_socket_connected, 3)
            envelope = {"envelope_id": "env-1", "type": "events_api", "payload": {"event": {"type": "app_mention"}}}
            sent_id = await asyncio.to_thread(stub.socket_send, envelope, connection=cid)
            return hello, await receive_json(ws), sent_id

    hello, pushed, sent_id = run(scenario)
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": stub.app_id}
    assert sent_id == "env-1"
    assert pushed == {"envelope_id": "env-1", "type": "events_api", "payload": {"event": {"type": "app_mention"}}}


def test_pings_are_answered_and_non_acks_ignored(stub: SlackStub) -> None:
    async def scenario() -> aiohttp.WSMessage:
        async with raw_socket(stub) as ws:
            await receive_json(ws)  # hello
            await ws.send_str("not json")
            await ws.send_str('{"type": "no envelope"}')
            await ws.send_str('{"envelope_id": "never-sent", "payload": {"text": "hi"}}')
            await ws.ping(b"sdk-ping-pong:1")
            return await ws.receive(3)

    pong = run(scenario)
    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"sdk-ping-pong:1")
    [ack] = [e for e in stub.events if e.kind == "socket_ack"]
    assert (ack.name, ack.status, ack.payload) == ("never-sent", 404, {"text": "hi"})


def test_a_websocket_url_is_single_use(stub: SlackStub) -> None:
    async def scenario() -> int:
        url = await open_url(stub)
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url) as ws:
                await receive_json(ws)
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await session.ws_connect(url)
            return caught.value.status

    assert run(scenario) == 403


def test_client_leaving_is_noticed_and_sending_then_fails_fast(stub: SlackStub) -> None:
    async def scenario() -> None:
        async with raw_socket(stub) as ws:
            await receive_json(ws)
            await asyncio.to_thread(stub.wait_socket_connected, 3)

    run(scenario)
    with pytest.raises(NoAnswer, match="no Socket Mode client connected"):
        stub.socket_send_command("help", timeout=0.5)
    with pytest.raises(NoAnswer, match="never sent"):
        stub.wait_socket_ack("nope", 0.05)


def test_stopping_the_stub_closes_its_sockets(stub: SlackStub) -> None:
    async def scenario() -> aiohttp.WSMessage:
        async with raw_socket(stub) as ws:
            await receive_json(ws)
            await asyncio.to_thread(stub.wait_socket_connected, 3)
            await asyncio.to_thread(stub.stop)
            return await ws.receive(3)

    closing = run(scenario)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert closing.data == 1001
