"""The Home tab in the Slack stand-in: views.publish validates and stores a `home` view per user, as Slack does, and
`app_home_opened` reaches an app as Slack sends it: a signed Events API envelope over HTTP, or over Socket Mode."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localserve import BackgroundServer
from slackstub import SlackDriver, SlackStub
from tests.support import run

SECRET = "home-secret"
USER = "U0SUPERVISOR"


def home(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "home", "blocks": list(blocks) or [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]}


def client(stub: SlackStub) -> AsyncWebClient:
    return AsyncWebClient(token=stub.bot_token, base_url=stub.api_url)


def publish_error(stub: SlackStub, **arguments: Any) -> tuple[str, list[str]]:
    with pytest.raises(SlackApiError) as caught:
        run(lambda: client(stub).views_publish(**arguments))
    response = caught.value.response
    return response["error"], (response.get("response_metadata") or {}).get("messages", [])


# ---------------------------------------------------------------------- views.publish


def test_views_publish_stores_one_home_view_per_user(stub: SlackStub) -> None:
    first = run(lambda: client(stub).views_publish(user_id=USER, view=home()))["view"]
    assert first["type"] == "home" and first["id"].startswith("V") and first["hash"]
    assert stub.home_view(USER) == first
    assert stub.home_view("U0SOMEONE") is None
    again = run(lambda: client(stub).views_publish(user_id=USER, view=home(), hash=first["hash"]))["view"]
    assert again["id"] == first["id"]  # the user's Home tab, updated in place
    other = run(lambda: client(stub).views_publish(user_id="W0OTHER", view=home()))["view"]
    assert other["id"] != first["id"]


def test_views_publish_refuses_what_slack_refuses(stub: SlackStub) -> None:
    assert publish_error(stub, user_id="", view=home()) == ("invalid_arguments", ["invalid `user_id`"])
    assert publish_error(stub, user_id="supervisor", view=home())[0] == "invalid_arguments"
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}
    error, messages = publish_error(stub, user_id=USER, view=modal)
    assert error == "invalid_arguments" and "/view/type" in messages[0]
    too_many = home(*({"type": "divider"} for _ in range(101)))
    assert publish_error(stub, user_id=USER, view=too_many)[0] == "invalid_arguments"
    published = run(lambda: client(stub).views_publish(user_id=USER, view=home()))["view"]
    assert publish_error(stub, user_id=USER, view=home(), hash="1.stale") == ("hash_conflict", [])
    assert stub.home_view(USER) == published  # a refused publish changes nothing


def test_views_publish_needs_the_home_tab_enabled_and_the_bot_token() -> None:
    with SlackStub(home_tab_enabled=False) as stub:
        assert publish_error(stub, user_id=USER, view=home()) == ("not_enabled", [])
        wrong = AsyncWebClient(token="xoxb-nope", base_url=stub.api_url)
        with pytest.raises(SlackApiError) as caught:
            run(lambda: wrong.views_publish(user_id=USER, view=home()))
        assert caught.value.response["error"] == "invalid_auth"


def test_the_event_carries_the_published_view(stub: SlackStub) -> None:
    event = stub.app_home_opened(USER)
    assert event["type"] == "app_home_opened" and event["user"] == USER and event["tab"] == "home"
    assert event["channel"].startswith("D") and "view" not in event
    published = run(lambda: client(stub).views_publish(user_id=USER, view=home()))["view"]
    assert stub.app_home_opened(USER)["view"] == published
    assert "view" not in stub.app_home_opened(USER, tab="messages")
    envelope = stub.event_callback(event)
    assert envelope["type"] == "event_callback" and envelope["event"] == event
    assert envelope["team_id"] == stub.team_id and envelope["api_app_id"] == stub.app_id
    assert envelope["event_id"].startswith("Ev") and envelope["authorizations"][0]["is_bot"] is True


# ---------------------------------------------------------------------- the event, over HTTP, to a real Bolt app


class HomeApp:
    """A Bolt app that publishes a Home view with a button on app_home_opened, and notes what it got."""

    def __init__(self, stub: SlackStub) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        app = AsyncApp(client=AsyncWebClient(token=stub.bot_token, base_url=stub.api_url), signing_secret=SECRET)

        @app.event("app_home_opened")
        async def opened(event: dict[str, Any], client: AsyncWebClient) -> None:
            self.note("event", event)
            if event.get("tab") == "home":
                button = {"type": "button", "action_id": "refresh", "text": {"type": "plain_text", "text": "Refresh"}}
                await client.views_publish(
                    user_id=event["user"], view=home({"type": "actions", "block_id": "a", "elements": [button]})
                )

        @app.action("refresh")
        async def refresh(ack: Any, body: dict[str, Any]) -> None:
            self.note("action", body)
            await ack()

        handler = AsyncSlackRequestHandler(app)

        async def events(request: Request) -> Response:
            return await handler.handle(request)

        self.server = BackgroundServer(Starlette(routes=[Route("/slack/events", events, methods=["POST"])]))

    def note(self, kind: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.seen.append((kind, body))

    def wait(self, kind: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [body for seen, body in self.seen if seen == kind]
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"the app got {len(found)} {kind}(s), not {count}")


@pytest.fixture
def home_app(stub: SlackStub) -> Iterator[tuple[HomeApp, SlackDriver]]:
    app = HomeApp(stub)
    with app.server, SlackDriver(stub, app.server.base_url + "/slack/events", SECRET) as driver:
        yield app, driver


def test_opening_the_home_tab_over_http(stub: SlackStub, home_app: tuple[HomeApp, SlackDriver]) -> None:
    app, driver = home_app
    seen = len(stub.events)
    opened = driver.open_home()
    assert opened.status == 200 and opened.acked_in_time
    [event] = app.wait("event")
    assert event["type"] == "app_home_opened" and event["user"] == USER and event["tab"] == "home"
    view = stub.wait_home_view(USER, after=seen)
    assert stub.home_view(USER) == view
    # the second visit's event carries the view published the first time
    seen = len(stub.events)
    driver.open_home()
    assert app.wait("event", 2)[1]["view"]["id"] == view["id"]
    stub.wait_home_view(USER, after=seen)


def test_a_click_on_the_home_tab_comes_from_the_view(stub: SlackStub, home_app: tuple[HomeApp, SlackDriver]) -> None:
    app, driver = home_app
    seen = len(stub.events)
    driver.open_home()
    view = stub.wait_home_view(USER, after=seen)
    click = driver.click(view, "refresh")
    assert click.status == 200 and click.response_url is None  # a Home tab has no response_url
    [body] = app.wait("action")
    assert body["container"] == {"type": "view", "view_id": view["id"]}
    assert body["view"]["type"] == "home" and "response_url" not in body


def test_the_messages_tab_sends_the_event_too(stub: SlackStub, home_app: tuple[HomeApp, SlackDriver]) -> None:
    app, driver = home_app
    driver.open_home(tab="messages")
    [event] = app.wait("event")
    assert event["tab"] == "messages"
    assert stub.calls("views.publish") == []


def test_a_forged_event_is_refused(home_app: tuple[HomeApp, SlackDriver], stub: SlackStub) -> None:
    app, _ = home_app
    with SlackDriver(stub, app.server.base_url + "/slack/events", "not-the-secret") as forger:
        assert forger.open_home().status == 401
    assert app.seen == []


# ---------------------------------------------------------------------- the event, over Socket Mode


def test_opening_the_home_tab_over_socket_mode() -> None:
    with SlackStub(app_token="xapp-home") as stub:

        async def main() -> dict[str, Any]:
            received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            socket = SocketModeClient(app_token="xapp-home", web_client=AsyncWebClient(base_url=stub.api_url))

            async def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
                await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
                await received.put({"type": request.type, "payload": request.payload})

            socket.socket_mode_request_listeners.append(listener)
            await asyncio.wait_for(socket.connect(), 5)
            try:
                envelope_id = await asyncio.to_thread(stub.socket_send_event, stub.app_home_opened(USER))
                got = await asyncio.wait_for(received.get(), 5)
                await asyncio.to_thread(stub.wait_socket_ack, envelope_id)
                return got
            finally:
                await socket.close()

        got = run(main)
    assert got["type"] == "events_api"
    assert got["payload"]["type"] == "event_callback"
    assert got["payload"]["event"]["type"] == "app_home_opened" and got["payload"]["event"]["user"] == USER
