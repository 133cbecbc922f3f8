"""`SlackStub`: the parts of Slack the bot talks to (Web API, response_url, Socket Mode), on a loopback port.

Everything the bot sends is recorded as a `Recorded` event; tests and the console read them from another thread
(`wait_for`, `calls`, `responses`, `wait_responses`, `wait_socket_ack`), so all state sits behind one
`threading.Condition`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from localserve import BackgroundServer

logger = logging.getLogger(__name__)

BOT_ID = "B0LEADBOT"
APP_ID = "A0LEADBOT"
TEAM_DOMAIN = "leadbot-local"

TRIGGER_TTL_S = 3.0
RESPONSE_URL_TTL_S = 30 * 60.0
RESPONSE_URL_USES = 5

# Socket Mode: apps.connections.open hands out a single-use websocket URL; Slack's expire quickly too.
SOCKET_URL_TTL_S = 60.0
SOCKET_SEND_TIMEOUT_S = 5.0
SOCKET_PATH = "/socket-mode/"
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # methods that take the app-level token (xapp-...)

#: The bot scopes of an app installed from manifest.yml: what the stub grants the bot token unless told fewer.
MANIFEST_BOT_SCOPES = ("commands", "chat:write", "im:write", "usergroups:read")
#: What an app-level token is granted (manifest.yml's header: an app-level token with connections:write).
APP_TOKEN_SCOPES = ("connections:write",)
#: The scopes each method accepts (any one will do), from the method's page on api.slack.com; a method not listed
#: needs none (auth.test, views.*). conversations.info (channels:read ...) is not listed: the bot never calls it,
#: the stub answers it for tests of the stub itself.
METHOD_SCOPES = {
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.open": ("channels:manage", "groups:write", "im:write", "mpim:write"),
    "usergroups.users.list": ("usergroups:read",),
    "apps.connections.open": ("connections:write",),
}

# Form-encoded Web API calls carry these arguments as JSON text (slack_sdk does so for form-posted methods).
JSON_FIELDS = frozenset(
    {"view", "blocks", "attachments", "metadata", "user_auth_blocks", "options", "option_groups", "unfurls"}
)
# Slack's own limits on a modal view, checked by views.open / views.update / views.push.
VIEW_TEXT_LIMITS = {"title": 24, "submit": 24, "close": 24}
VIEW_MAX_BLOCKS = 100
VIEW_MAX_PRIVATE_METADATA = 3000
VIEW_MAX_CALLBACK_ID = 255
MESSAGE_MAX_BLOCKS = 50

_ID_ALPHABET = string.ascii_uppercase + string.digits
PERSON_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_BLOCK_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass
class Recorded:
    """One thing the bot sent to Slack: a Web API call (`kind="api"`, `name` = method), a response_url post
    (`kind="response"`, `name` = rid) or a Socket Mode acknowledgement (`kind="socket_ack"`, `name` = envelope_id,
    `payload` = the ack's payload, `{}` when it had none; `status` 404 when no envelope with that id was sent).
    `payload` is the parsed arguments / JSON body (token left out), `at` is `time.monotonic()`; `status` and
    `response` are what the stub answered (`response` is None for response_url posts, whose answer is plain
    text, and for acks, which get no answer)."""

    kind: str
    name: str
    payload: dict[str, Any]
    at: float
    status: int = 200
    response: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        if self.status != 200:
            return False
        return self.response is None or bool(self.response.get("ok"))

    def summary(self) -> str:
        if self.kind == "response":
            outcome = "200" if self.status == 200 else str(self.status)
        else:
            outcome = "ok" if self.ok else f"{self.status} {(self.response or {}).get('error', '')}".strip()
        keys = ",".join(sorted(self.payload))
        return f"{self.kind} {self.name} -> {outcome} ({keys})"


@dataclass
class _Fault:
    status: int
    error: str | None
    remaining: int
    retry_after: float | None


@dataclass
class _Trigger:
    expires_at: float
    used: bool = False


@dataclass
class _ResponseUrl:
    expires_at: float
    uses_left: int
    payloads: list[dict[str, Any]] = field(default_factory=list)
    channel_id: str | None = None  # where its posts show, and to whom (ephemeral unless response_type in_channel)
    user_id: str | None = None
    source: int | None = None  # the shown message replace_original / delete_original act on (interactions only)


@dataclass
class Shown:
    """A message as Slack shows it: in `channel_id`, to `user_id` only when ephemeral (None: to everyone there).
    `via` says how it got there: "ack" (the HTTP answer to a slash command), "response_url", "chat.postEphemeral"
    or "chat.postMessage"; `key` identifies it on screen (a click on it gets a response_url that can replace it)."""

    key: int
    channel_id: str | None
    user_id: str | None
    message: dict[str, Any]
    via: str


@dataclass
class _SentEnvelope:
    envelope: dict[str, Any]
    connection_id: str
    sent_at: float


class _SocketConnection:
    """One accepted Socket Mode websocket. Lives on the server's event loop; other threads reach it through
    `run` (a coroutine run on that loop)."""

    def __init__(self, connection_id: str, websocket: WebSocket, loop: asyncio.AbstractEventLoop) -> None:
        self.id = connection_id
        self.websocket = websocket
        self.loop = loop
        self.opened_at = time.monotonic()
        self.closed = False
        self._send_lock = asyncio.Lock()

    async def send_json(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message))

    async def close(self, code: int, reason: str = "") -> None:
        async with self._send_lock:
            if not self.closed:
                self.closed = True
                await self.websocket.close(code=code, reason=reason)

    def run(self, coroutine: Any, timeout: float) -> Any:
        """Run `coroutine` on the connection's loop from another thread and wait for its result."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coroutine.close()
            raise RuntimeError("SlackStub socket methods block: call them from another thread than the server's")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class SlackStubError(Exception):
    """The Slack stand-in cannot do what it was asked: an unknown response_url, a Socket Mode connection that is not
    open, an envelope it could not send. Library code (the console) catches these; in a test they are failures."""


class NoAnswer(SlackStubError):
    """What a wait was for (a recorded event, posts at a response_url, a Socket Mode client or ack) did not come in
    time; the message lists what was recorded instead."""


class ApiError(Exception):
    """Raised inside a method handler: answers HTTP 200 `{"ok": false, "error": ...}` plus any extras."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _random_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _text_of(value: Any) -> str | None:
    if isinstance(value, dict):
        text = value.get("text")
        return text if isinstance(text, str) else None
    return value if isinstance(value, str) else None


class SlackStub(BackgroundServer):
    """A local stand-in for Slack's side of a Slack app: the Web API under `/api/{method}` and response_urls under
    `/response/{rid}`, served on a free loopback port in a background thread.

    Point `slack_sdk.web.async_client.AsyncWebClient(token, base_url=stub.api_url)` at it; hand out
    `stub.new_trigger()` and `stub.new_response_url()` in the requests you send to the bot (`SlackDriver` does).

    Socket Mode: `apps.connections.open`, called with `app_token`, answers a single-use `ws://` URL on this
    server. A client that connects gets Slack's `hello`; then `socket_send` / `socket_send_command` push envelopes
    to it, and its acks are recorded (`wait_socket_ack`). Stopping the stub closes every socket (code 1001).

    Web API methods: `auth.test`, `views.open`, `views.update`, `views.push`, `views.publish` (a Home tab per
    user: `home_view`), `chat.postMessage`, `chat.postEphemeral`, `conversations.info` (channels from
    `add_channel`), `conversations.open` (a DM with one user), `usergroups.users.list` (groups from
    `set_usergroup`) and `apps.connections.open`; any other method answers `unknown_method`. Each call is recorded,
    checks its token and honours the faults queued with `fail`. As Slack does, every answer to a known token
    carries the token's granted scopes in an `x-oauth-scopes` header (and the method's in `x-accepted-oauth-scopes`),
    and a method the token lacks the scope for answers `missing_scope` with `needed` and `provided`: the bot token
    has `scopes` (manifest.yml's bot scopes unless told fewer), the app token `connections:write`. As in Slack,
    chat.postEphemeral and chat.postMessage work only in channels the bot is a member of (`bot_channels`:
    C0CAMPAIGN from the start, `remove_bot_from` to leave), else `channel_not_found` / `not_in_channel`;
    `conversations.open` with one user id opens that user's DM with the app, where the bot may post.

    `screen()` is what the user sees: a slash command's ack (shown by the driver), posts at response_urls and
    messages sent with chat.*, after Slack's rules on replacing: `replace_original` replaces the message an
    interaction came from, never a slash command's ack, which stays on screen above the reply.

    Events: `app_home_opened(user)` builds the event Slack sends when a user opens the app's Home tab; the driver
    posts it over HTTP (`SlackDriver.event`), `socket_send_event` pushes it over Socket Mode.
    """

    def __init__(
        self,
        bot_token: str = "xoxb-leadbot-local",
        team_id: str = "T0LEADBOT",
        bot_user_id: str = "U0LEADBOT",
        *,
        app_token: str | None = "xapp-leadbot-local",
        scopes: Iterable[str] = MANIFEST_BOT_SCOPES,
        home_tab_enabled: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.app_token = app_token
        self.scopes = tuple(scopes)  # the bot token's granted scopes (x-oauth-scopes)
        self.bot_id = BOT_ID
        self.app_id = APP_ID
        self.events: list[Recorded] = []
        self.channels: dict[str, str] = {"C0CAMPAIGN": "spring-campaign"}
        self.bot_channels: set[str] = {"C0CAMPAIGN"}  # where the bot is a member (chat.* need it, as Slack's do)
        self._shown: list[Shown] = []
        self._posted_at: dict[int, str] = {}  # shown message key -> the response_url (rid) it was posted at
        self._dms: dict[str, str] = {}  # user id -> the id of that user's DM with the app (D...)
        self.usergroups: dict[str, list[str]] = {}  # user group id (S...) -> member user ids
        self.home_tab_enabled = home_tab_enabled  # the manifest's features.app_home.home_tab_enabled
        self._home_views: dict[str, str] = {}  # user id -> the id of their Home view
        self._cond = threading.Condition(threading.RLock())
        self._faults: dict[str, list[_Fault]] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._listeners: list[Callable[[Recorded], None]] = []
        self._counter = 0
        self._socket_urls: dict[str, float] = {}  # connection id -> when its URL expires
        self._sockets: dict[str, _SocketConnection] = {}  # live connections, oldest first
        self._socket_envelopes: dict[str, _SentEnvelope] = {}
        self._sockets_refused = False  # set while stopping: no new connections
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "usergroups.users.list": self._usergroups_users_list,
            "apps.connections.open": self._apps_connections_open,
        }
        app = Starlette(
            routes=[
                Route("/api/{method}", self._api_endpoint, methods=["GET", "POST"]),
                Route("/response/{rid}", self._response_endpoint, methods=["POST"]),
                WebSocketRoute(SOCKET_PATH + "{connection_id}", self._socket_endpoint),
            ]
        )
        super().__init__(app, host=host, port=port, log_level=log_level, name="slackstub")

    # ------------------------------------------------------------------ URLs, triggers, faults

    @property
    def api_url(self) -> str:
        """What `AsyncWebClient(base_url=...)` expects: slack_sdk joins it with the method name via urljoin, so
        it must end with a slash."""
        return self._require_base_url() + "/api/"

    def _require_base_url(self) -> str:
        if not self.base_url:
            raise RuntimeError("SlackStub is not started: call .start() or use it as a context manager first")
        return self.base_url

    def _next(self) -> int:
        with self._cond:
            self._counter += 1
            return self._counter

    def new_trigger(self, ttl: float = TRIGGER_TTL_S) -> str:
        """A fresh trigger_id, usable once by views.open / views.push within `ttl` seconds."""
        trigger_id = f"{self._next()}.{int(time.time())}.{secrets.token_hex(16)}"
        with self._cond:
            self._triggers[trigger_id] = _Trigger(expires_at=time.monotonic() + ttl)
        return trigger_id

    def new_response_url(
        self,
        ttl: float = RESPONSE_URL_TTL_S,
        uses: int = RESPONSE_URL_USES,
        *,
        channel_id: str | None = None,
        user_id: str | None = None,
        source: int | None = None,
    ) -> str:
        """A fresh response_url (full URL): accepts `uses` posts within `ttl` seconds, like Slack's.

        Its posts show in `channel_id` to `user_id` (see `screen`). `source` is the key of the shown message the
        interaction came from (a click on it): `replace_original` / `delete_original` act on that message only.
        A slash command's response_url has none: as in Slack, its posts never replace the command's ack, they are
        shown after it (replace_original is documented for messages from interactions, and does nothing there)."""
        base = self._require_base_url()
        rid = f"{self._next()}-{secrets.token_hex(8)}"
        with self._cond:
            self._response_urls[rid] = _ResponseUrl(
                expires_at=time.monotonic() + ttl,
                uses_left=uses,
                channel_id=channel_id,
                user_id=user_id,
                source=source,
            )
        return f"{base}/response/{rid}"

    def fail(
        self,
        method: str,
        *,
        status: int = 500,
        error: str | None = None,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """Make the next `times` calls of Web API `method` fail: HTTP `status` (with a Retry-After header when
        `retry_after` is given, as Slack does on 429), or with `status=200`, `{"ok": false, "error": error}`.
        Several `fail` calls for one method queue up in order."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._cond:
            self._faults.setdefault(method, []).append(_Fault(status, error, times, retry_after))

    def add_channel(self, channel_id: str, name: str, *, member: bool = True) -> None:
        """Make `conversations.info` know a channel (C0CAMPAIGN / spring-campaign is known from the start), with the
        bot a member of it unless `member` is False."""
        with self._cond:
            self.channels[channel_id] = name
            if member:
                self.bot_channels.add(channel_id)
            else:
                self.bot_channels.discard(channel_id)

    def remove_bot_from(self, channel_id: str) -> None:
        """The bot leaves (or was never invited to) a channel: chat.postEphemeral and chat.postMessage there fail
        with `not_in_channel`, as Slack's do; the channel stays known to conversations.info."""
        with self._cond:
            self.bot_channels.discard(channel_id)

    # ------------------------------------------------------------------ what the user sees

    def show(
        self,
        channel_id: str | None,
        user_id: str | None,
        message: dict[str, Any],
        via: str,
        *,
        before_posts_to: str | None = None,
    ) -> int:
        """Put a message on screen (the driver shows a slash command's ack this way); returns its key.

        `before_posts_to` (a response_url): an ack goes before what the app already posted there, as Slack shows
        an ack first even when the app's reply raced ahead of it (Bolt answers the HTTP request after the listener)."""
        with self._cond:
            key = self._next()
            shown = Shown(key, channel_id, user_id, json.loads(json.dumps(message)), via)
            rid = self._rid(before_posts_to) if before_posts_to else None
            index = next(
                (i for i, entry in enumerate(self._shown) if rid and self._posted_at.get(entry.key) == rid), None
            )
            self._shown.insert(len(self._shown) if index is None else index, shown)
            self._cond.notify_all()
        return key

    def screen(self, channel_id: str | None = None, user_id: str | None = None) -> list[Shown]:
        """The messages shown, oldest first, after every replace and delete: all of them, or those a user sees in
        a channel (the channel's public ones plus that user's ephemeral ones)."""
        with self._cond:
            shown = [json.loads(json.dumps(entry.__dict__)) for entry in self._shown]
        visible = [
            Shown(**entry)
            for entry in shown
            if (channel_id is None or entry["channel_id"] == channel_id)
            and (user_id is None or entry["user_id"] in (None, user_id))
        ]
        return visible

    def shown_key(self, message: dict[str, Any]) -> int | None:
        """The key of the newest shown message equal to `message` (as the bot sent it), or None."""
        with self._cond:
            for entry in reversed(self._shown):
                if entry.message == message or _without_flags(entry.message) == _without_flags(message):
                    return entry.key
        return None

    def _show_posted(self, rid: str, entry: _ResponseUrl, payload: dict[str, Any]) -> None:
        """A post Slack accepted at a response_url, on screen: it replaces or deletes the message the interaction
        came from when it says so and there is one; otherwise it is a new message (a slash command's ack stays)."""
        with self._cond:
            index = next((i for i, shown in enumerate(self._shown) if shown.key == entry.source), None)
            if index is not None and payload.get("delete_original") is True:
                del self._shown[index]
                return
            if index is not None and payload.get("replace_original") is True:
                self._shown[index].message = _without_flags(payload)
                self._shown[index].via = "response_url"
                return
            if payload.get("delete_original") is True and not (payload.get("text") or payload.get("blocks")):
                return  # nothing to delete, nothing to show
            everyone = payload.get("response_type") == "in_channel"
            user_id = None if everyone else entry.user_id
            shown = Shown(self._next(), entry.channel_id, user_id, _without_flags(payload), "response_url")
            self._shown.append(shown)
            self._posted_at[shown.key] = rid

    def set_usergroup(self, group_id: str, user_ids: Iterable[str]) -> None:
        """Make `usergroups.users.list` answer `user_ids` for user group `group_id` (S...), replacing its members.
        Groups not set this way answer `no_such_subteam`."""
        with self._cond:
            self.usergroups[group_id] = list(user_ids)

    def on_record(self, listener: Callable[[Recorded], None]) -> None:
        """Call `listener(recorded)` for every new event. It runs on the server thread: keep it quick."""
        with self._cond:
            self._listeners.append(listener)

    # ------------------------------------------------------------------ reading what was recorded

    def _record(self, recorded: Recorded) -> None:
        with self._cond:
            self.events.append(recorded)
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            try:
                listener(recorded)
            except Exception:  # a console's printing bug must not turn into errors for the bot
                logger.exception("SlackStub on_record listener failed")

    def _summary(self) -> str:
        with self._cond:
            events = list(self.events)
        if not events:
            return "nothing was recorded"
        lines = [f"  {i}. {event.summary()}" for i, event in enumerate(events, 1)]
        return f"{len(events)} recorded event(s):\n" + "\n".join(lines)

    def wait_for(self, predicate: Callable[[Recorded], bool], timeout: float = 5.0, *, after: int = 0) -> Recorded:
        """The first recorded event (already there or arriving within `timeout` s) for which `predicate` holds,
        looking from the `after`-th event on (e.g. `len(stub.events)` taken before an action).

        Raises NoAnswer listing what was recorded when none does in time."""
        deadline = time.monotonic() + timeout
        seen = after
        with self._cond:
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        raise NoAnswer(f"no matching Slack event within {timeout} s; {self._summary()}")

    def calls(self, method: str) -> list[Recorded]:
        """Every recorded call of Web API `method`, in order (failed ones included: see `Recorded.ok`)."""
        with self._cond:
            return [event for event in self.events if event.kind == "api" and event.name == method]

    @staticmethod
    def _rid(rid_or_url: str) -> str:
        marker = "/response/"
        return rid_or_url.rsplit(marker, 1)[1] if marker in rid_or_url else rid_or_url

    def responses(self, rid_or_url: str) -> list[dict[str, Any]]:
        """The payloads a response_url accepted (rejected posts are only in `events`)."""
        rid = self._rid(rid_or_url)
        with self._cond:
            entry = self._response_urls.get(rid)
            return list(entry.payloads) if entry else []

    def wait_responses(self, rid_or_url: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """All payloads of a response_url once it has at least `count` (NoAnswer after `timeout` s)."""
        rid = self._rid(rid_or_url)
        deadline = time.monotonic() + timeout
        with self._cond:
            if rid not in self._response_urls:
                raise SlackStubError(f"unknown response_url {rid_or_url!r}")
            while True:
                payloads = self._response_urls[rid].payloads
                if len(payloads) >= count:
                    return list(payloads)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            got = len(payloads)
        raise NoAnswer(
            f"response_url {rid} got {got} of {count} expected post(s) within {timeout} s; {self._summary()}"
        )

    def view(self, view_id: str) -> dict[str, Any] | None:
        """The current version of a view the bot opened, pushed or updated (None if unknown)."""
        with self._cond:
            view = self._views.get(view_id)
            return json.loads(json.dumps(view)) if view is not None else None

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab the bot last published for a user with views.publish (None: never published)."""
        with self._cond:
            view_id = self._home_views.get(user_id)
        return self.view(view_id) if view_id is not None else None

    def wait_home_view(self, user_id: str, *, after: int = 0, timeout: float = 10.0) -> dict[str, Any]:
        """The Home view of a successful views.publish for `user_id` among the recorded events from index `after`
        on (e.g. `len(stub.events)` taken before opening the tab); NoAnswer when none comes in time."""

        def published(event: Recorded) -> bool:
            return (
                event.kind == "api"
                and event.name == "views.publish"
                and event.ok
                and event.payload.get("user_id") == user_id
            )

        event = self.wait_for(published, timeout=timeout, after=after)
        assert event.response is not None
        return event.response["view"]

    def app_home_opened(self, user_id: str, *, tab: str = "home", channel_id: str | None = None) -> dict[str, Any]:
        """The `app_home_opened` event Slack sends when `user_id` opens a tab of the app (`home` or `messages`) in
        the app's DM channel; it carries the Home view already published for that user, if any."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": channel_id or "D" + user_id[1:],
            "tab": tab,
            "event_ts": f"{time.time():.6f}",
        }
        view = self.home_view(user_id)
        if tab == "home" and view is not None:
            event["view"] = view
        return event

    def event_callback(self, event: dict[str, Any]) -> dict[str, Any]:
        """The Events API's outer envelope around one event, as Slack posts it (and as Socket Mode's payload)."""
        from slackstub.driver import VERIFICATION_TOKEN  # the driver imports this module

        return {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": _random_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    def socket_send_event(
        self, event: dict[str, Any], *, connection: str | None = None, timeout: float = SOCKET_SEND_TIMEOUT_S
    ) -> str:
        """Push an Events API event over Socket Mode (an `events_api` envelope); returns its envelope_id."""
        envelope = {
            "type": "events_api",
            "payload": self.event_callback(event),
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        return self.socket_send(envelope, connection=connection, timeout=timeout)

    def clear(self) -> None:
        """Forget recorded events, the payloads received so far and what is on screen (URLs, triggers, views,
        channels and faults stay)."""
        with self._cond:
            self.events.clear()
            self._shown.clear()
            self._posted_at.clear()
            for entry in self._response_urls.values():
                entry.payloads.clear()

    # ------------------------------------------------------------------ Socket Mode

    @property
    def socket_connections(self) -> list[str]:
        """The ids of the open Socket Mode connections (those that got their hello), oldest first."""
        with self._cond:
            return list(self._sockets)

    def wait_socket_connected(self, timeout: float = 5.0, *, other_than: str | None = None) -> str:
        """The id of the newest open Socket Mode connection (already open or opening within `timeout` s);
        `other_than` skips that one, e.g. to wait for the client to reconnect. NoAnswer when none."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                candidates = [cid for cid in self._sockets if cid != other_than]
                if candidates:
                    return candidates[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        opened = self.calls("apps.connections.open")
        raise NoAnswer(
            f"no Socket Mode client connected within {timeout} s (apps.connections.open was called "
            f"{len(opened)} time(s): {[(e.response or {}).get('error', 'ok') for e in opened]}); {self._summary()}"
        )

    def _socket_connection(self, connection: str | None, timeout: float) -> _SocketConnection:
        cid = connection or self.wait_socket_connected(timeout)
        with self._cond:
            conn = self._sockets.get(cid)
        if conn is None:
            raise SlackStubError(f"Socket Mode connection {cid!r} is not open (open: {self.socket_connections})")
        return conn

    def socket_send(
        self, envelope: dict[str, Any], *, connection: str | None = None, timeout: float = SOCKET_SEND_TIMEOUT_S
    ) -> str:
        """Push `envelope` (a Socket Mode message: `type`, `payload`, `accepts_response_payload`, ...) to a
        connected client and return its `envelope_id` (a fresh one is added when it has none).

        It goes to `connection`, else to the newest open connection, waiting up to `timeout` s for one (as Slack
        sends each envelope to one of an app's connections). Wait for the client's answer with `wait_socket_ack`."""
        envelope = json.loads(json.dumps(envelope))
        envelope.setdefault("envelope_id", str(uuid.uuid4()))
        envelope_id = str(envelope["envelope_id"])
        conn = self._socket_connection(connection, timeout)
        with self._cond:
            self._socket_envelopes[envelope_id] = _SentEnvelope(envelope, conn.id, time.monotonic())
        try:
            conn.run(conn.send_json(envelope), timeout)
        except Exception as exc:
            raise SlackStubError(f"could not send envelope {envelope_id} on connection {conn.id}: {exc!r}") from exc
        return envelope_id

    def socket_send_command(
        self,
        text: str,
        *,
        command: str = "/lead",
        user_id: str = "U0SUPERVISOR",
        user_name: str = "supervisor",
        channel_id: str = "C0CAMPAIGN",
        channel_name: str = "spring-campaign",
        connection: str | None = None,
        timeout: float = SOCKET_SEND_TIMEOUT_S,
    ) -> str:
        """The user types `{command} {text}`, delivered in Socket Mode: a `slash_commands` envelope whose payload
        is what `SlackDriver.command` posts over HTTP, with a fresh response_url and trigger_id from this stub.
        Returns the envelope_id; `socket_sent(envelope_id)["payload"]["response_url"]` is where replies go."""
        from slackstub.driver import VERIFICATION_TOKEN  # the driver imports this module

        payload = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.new_response_url(channel_id=channel_id, user_id=user_id),
            "trigger_id": self.new_trigger(),
        }
        envelope = {"type": "slash_commands", "payload": payload, "accepts_response_payload": True}
        return self.socket_send(envelope, connection=connection, timeout=timeout)

    def socket_sent(self, envelope_id: str) -> dict[str, Any]:
        """The envelope pushed with that id (a copy). KeyError if none was."""
        with self._cond:
            sent = self._socket_envelopes[envelope_id]
            return json.loads(json.dumps(sent.envelope))

    def wait_socket_ack(self, envelope_id: str, timeout: float = 3.0) -> Recorded:
        """The client's acknowledgement of an envelope (`Recorded`, kind "socket_ack"; `.payload` is what the
        ack carried, e.g. a slash command's immediate reply). NoAnswer when none arrives within `timeout` s
        (Slack gives an app 3 s)."""
        try:
            return self.wait_for(lambda e: e.kind == "socket_ack" and e.name == envelope_id, timeout=timeout)
        except NoAnswer as exc:
            with self._cond:
                sent = self._socket_envelopes.get(envelope_id)
                still_open = sent is not None and sent.connection_id in self._sockets
            where = "never sent" if sent is None else "connection still open" if still_open else "connection closed"
            raise NoAnswer(f"no ack for envelope {envelope_id} ({where}): {exc}") from None

    def socket_disconnect(self, reason: str = "refresh_requested", *, connection: str | None = None) -> None:
        """Send Slack's `disconnect` message (reason "warning", "refresh_requested" or "link_disabled"): a
        well-behaved client opens a new connection and then closes this one."""
        conn = self._socket_connection(connection, SOCKET_SEND_TIMEOUT_S)
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "slackstub"}}
        conn.run(conn.send_json(message), SOCKET_SEND_TIMEOUT_S)

    def socket_close(self, connection: str | None = None, *, code: int = 1001, reason: str = "") -> None:
        """Close a Socket Mode connection from the server's side (all of them when `connection` is None)."""
        with self._cond:
            if connection is not None and connection not in self._sockets:
                raise SlackStubError(f"Socket Mode connection {connection!r} is not open (open: {list(self._sockets)})")
            targets = list(self._sockets.values()) if connection is None else [self._sockets[connection]]
        for conn in targets:
            with contextlib.suppress(Exception):  # already gone, or the loop is shutting down
                conn.run(conn.close(code, reason), SOCKET_SEND_TIMEOUT_S)

    def stop(self) -> None:
        """Close every Socket Mode connection (1001, going away), then stop serving."""
        with self._cond:
            self._sockets_refused = True
        self.socket_close()
        super().stop()
        with self._cond:
            self._sockets_refused = False

    async def _socket_endpoint(self, websocket: WebSocket) -> None:
        connection_id = websocket.path_params["connection_id"]
        with self._cond:
            expires_at = self._socket_urls.pop(connection_id, None)
            refused = self._sockets_refused
        if refused or expires_at is None or time.monotonic() > expires_at:
            await websocket.close(code=1008)  # before accept: the handshake is refused with HTTP 403
            return
        await websocket.accept()
        conn = _SocketConnection(connection_id, websocket, asyncio.get_running_loop())
        with self._cond:
            num_connections = len(self._sockets) + 1
        hello = {
            "type": "hello",
            "num_connections": num_connections,
            "debug_info": {"host": "slackstub", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }
        try:
            await conn.send_json(hello)
        except Exception:  # the client went away during the handshake
            logger.debug("Socket Mode client %s left before its hello", connection_id, exc_info=True)
            return
        with self._cond:
            self._sockets[connection_id] = conn
            self._cond.notify_all()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None and message.get("bytes") is not None:
                    text = message["bytes"].decode("utf-8", "replace")
                if text:
                    self._socket_message(connection_id, text)
        except Exception:  # a broken connection: treat it as a disconnect
            logger.debug("Socket Mode connection %s broke", connection_id, exc_info=True)
        finally:
            conn.closed = True
            with self._cond:
                self._sockets.pop(connection_id, None)
                self._cond.notify_all()

    def _socket_message(self, connection_id: str, text: str) -> None:
        """A message from a Socket Mode client: an ack (`{"envelope_id": ..., "payload": ...}`) is recorded;
        anything else is only logged, as Slack ignores it."""
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not isinstance(envelope_id, str) or not envelope_id:
            logger.warning("Socket Mode client %s sent something that is no ack: %.200s", connection_id, text)
            return
        payload = message.get("payload")
        if payload is None:
            payload = {}
        elif not isinstance(payload, dict):
            payload = {"_raw": payload}
        with self._cond:
            sent = self._socket_envelopes.get(envelope_id)
        status = 200 if sent is not None else 404
        if sent is not None and sent.envelope.get("type") == "slash_commands" and _is_message(payload):
            command = sent.envelope.get("payload") or {}
            self.show(  # stays on screen, as in Slack
                command.get("channel_id"),
                command.get("user_id"),
                payload,
                "ack",
                before_posts_to=command.get("response_url"),
            )
        self._record(Recorded("socket_ack", envelope_id, payload, time.monotonic(), status=status))

    # ------------------------------------------------------------------ HTTP endpoints

    async def _api_endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        raw = await request.body()
        args, parse_error = _parse_api_args(request, raw)
        token = _bearer(request.headers.get("authorization"))
        if token is None and isinstance(args.get("token"), str):
            token = args["token"]  # Slack still accepts the token as an argument
        args.pop("token", None)

        status, body, headers = self._answer_api(method, args, token, parse_error)
        self._record(Recorded("api", method, args, time.monotonic(), status=status, response=body))
        return JSONResponse(body, status_code=status, headers=headers)

    def _answer_api(
        self, method: str, args: dict[str, Any], token: str | None, parse_error: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._cond:
            queue = self._faults.get(method)
            fault = queue[0] if queue else None
            if fault is not None and queue is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.pop(0)
        if fault is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(max(0, round(fault.retry_after)))
            default = "ratelimited" if fault.status == 429 else "internal_error"
            return fault.status, {"ok": False, "error": fault.error or default}, headers
        if token is None:
            return 200, {"ok": False, "error": "not_authed"}, {}
        granted = self._granted_scopes(token)
        scope_headers = {} if granted is None else {"x-oauth-scopes": ",".join(granted)}
        if method in METHOD_SCOPES:
            scope_headers["x-accepted-oauth-scopes"] = ",".join(METHOD_SCOPES[method])
        auth_error = self._auth_error(method, token)
        if auth_error is not None:
            return 200, {"ok": False, "error": auth_error}, scope_headers
        accepted = METHOD_SCOPES.get(method)
        if accepted and granted is not None and not set(accepted) & set(granted):
            missing = {
                "ok": False,
                "error": "missing_scope",
                "needed": ",".join(accepted),
                "provided": ",".join(granted),
            }
            return 200, missing, scope_headers
        if parse_error is not None:
            return 200, {"ok": False, "error": parse_error}, scope_headers
        handler = self._methods.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, scope_headers
        try:
            result = handler(args)
        except ApiError as exc:
            return 200, {"ok": False, "error": exc.error, **exc.extra}, scope_headers
        return 200, {"ok": True, **result}, scope_headers

    def _granted_scopes(self, token: str) -> tuple[str, ...] | None:
        """The scopes `token` was granted (None: a token Slack does not know, whose answers carry none)."""
        if secrets.compare_digest(token.encode(), self.bot_token.encode()):
            return self.scopes
        if self.app_token is not None and secrets.compare_digest(token.encode(), self.app_token.encode()):
            return APP_TOKEN_SCOPES
        return None

    def _auth_error(self, method: str, token: str) -> str | None:
        """None when `token` may call `method`: the app-level token for apps.connections.open, else the bot's."""
        is_bot = secrets.compare_digest(token.encode(), self.bot_token.encode())
        is_app = self.app_token is not None and secrets.compare_digest(token.encode(), self.app_token.encode())
        if method in APP_TOKEN_METHODS:
            return None if is_app else "not_allowed_token_type" if is_bot else "invalid_auth"
        return None if is_bot else "not_allowed_token_type" if is_app else "invalid_auth"

    async def _response_endpoint(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        raw = await request.body()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        now = time.monotonic()
        recorded_payload = payload if isinstance(payload, dict) else {"_raw": raw.decode("utf-8", "replace")}
        with self._cond:
            entry = self._response_urls.get(rid)
            if entry is None:
                status, text = 404, "invalid_url"
            elif now > entry.expires_at:
                status, text = 404, "expired_url"
            elif entry.uses_left <= 0:
                status, text = 404, "used_url"
            elif not isinstance(payload, dict):
                status, text = 400, "invalid_payload"
            elif not (payload.get("text") or payload.get("blocks") or payload.get("delete_original")):
                status, text = 400, "no_text"
            elif "blocks" in payload and not (
                isinstance(payload["blocks"], list) and len(payload["blocks"]) <= MESSAGE_MAX_BLOCKS
            ):  # as for chat.postMessage: Slack answers a webhook post with more than 50 blocks 400 invalid_blocks
                status, text = 400, "invalid_blocks"
            else:
                status, text = 200, "ok"
                entry.uses_left -= 1
                entry.payloads.append(payload)
                self._show_posted(rid, entry, payload)
        self._record(Recorded("response", rid, recorded_payload, now, status=status))
        return PlainTextResponse(text, status_code=status)

    # ------------------------------------------------------------------ Web API methods

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "leadbot local",
            "user": "leadbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _exchange_trigger(self, trigger_id: Any) -> None:
        if not isinstance(trigger_id, str) or not trigger_id:
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]}
            )
        with self._cond:
            trigger = self._triggers.get(trigger_id)
            if trigger is None:
                raise ApiError("invalid_trigger_id")
            if trigger.used:
                raise ApiError("exchanged_trigger_id")
            if time.monotonic() > trigger.expires_at:
                raise ApiError("expired_trigger_id")
            trigger.used = True

    def _store_view(
        self, view: dict[str, Any], *, view_id: str | None = None, root_view_id: str | None = None
    ) -> dict[str, Any]:
        with self._cond:
            previous = self._views.get(view_id) if view_id else None
        stored = json.loads(json.dumps(view))
        _fill_block_ids(stored.get("blocks") or [])
        new_id = view_id or _random_id("V")
        stored.update(
            {
                "id": new_id,
                "team_id": self.team_id,
                "type": stored.get("type", "modal"),
                "blocks": stored.get("blocks") or [],
                "private_metadata": stored.get("private_metadata", ""),
                "callback_id": stored.get("callback_id", ""),
                "external_id": stored.get("external_id", ""),
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                "clear_on_close": bool(stored.get("clear_on_close", False)),
                "notify_on_close": bool(stored.get("notify_on_close", False)),
                "close": stored.get("close"),
                "submit": stored.get("submit"),
                "previous_view_id": previous.get("previous_view_id") if previous else None,
                "root_view_id": (previous or {}).get("root_view_id") or root_view_id or new_id,
                "app_id": self.app_id,
                "app_installed_team_id": self.team_id,
                "bot_id": self.bot_id,
            }
        )
        with self._cond:
            self._views[new_id] = stored
        return json.loads(json.dumps(stored))

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _validated_view(args.get("view"))
        self._exchange_trigger(args.get("trigger_id"))
        return {"view": self._store_view(view)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _validated_view(args.get("view"))
        self._exchange_trigger(args.get("trigger_id"))
        return {"view": self._store_view(view)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _validated_view(args.get("view"))
        view_id = args.get("view_id")
        with self._cond:
            if not view_id and args.get("external_id"):
                view_id = next(
                    (vid for vid, v in self._views.items() if v.get("external_id") == args["external_id"]), None
                )
            current = self._views.get(view_id) if view_id else None
        if current is None:
            raise ApiError("not_found")
        expected_hash = args.get("hash")
        if expected_hash and expected_hash != current.get("hash"):
            raise ApiError("hash_conflict")
        return {"view": self._store_view(view, view_id=view_id)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's views.publish: a `home` view for one user (`user_id`), replacing their Home tab; `hash`, when
        given, must be the current one. The Home tab must be enabled for the app (`not_enabled` otherwise)."""
        user_id = args.get("user_id")
        if not isinstance(user_id, str) or not PERSON_ID.fullmatch(user_id):
            raise ApiError("invalid_arguments", response_metadata={"messages": ["invalid `user_id`"]})
        view = _validated_view(args.get("view"))
        if view.get("type") != "home":
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] must be home for views.publish [json-pointer:/view/type]"]},
            )
        if not self.home_tab_enabled:
            raise ApiError("not_enabled")
        with self._cond:
            view_id = self._home_views.get(user_id)
            current = self._views.get(view_id) if view_id else None
        expected_hash = args.get("hash")
        if expected_hash and current is not None and expected_hash != current.get("hash"):
            raise ApiError("hash_conflict")
        stored = self._store_view(view, view_id=view_id)
        with self._cond:
            self._home_views[user_id] = stored["id"]
        return {"view": stored}

    def _message_checks(self, args: dict[str, Any]) -> str:
        channel = args.get("channel")
        if not isinstance(channel, str) or not channel:
            raise ApiError("channel_not_found")
        blocks = args.get("blocks")
        if not (args.get("text") or blocks or args.get("attachments")):
            raise ApiError("no_text")
        if blocks is not None and (not isinstance(blocks, list) or len(blocks) > MESSAGE_MAX_BLOCKS):
            raise ApiError("invalid_blocks")
        return channel

    def _ts(self) -> str:
        return f"{time.time():.6f}"

    def dm_channel(self, user_id: str) -> str:
        """The id of the DM between `user_id` and the app (its Messages tab), opened on first use."""
        with self._cond:
            return self._dms.setdefault(user_id, "D" + user_id.lstrip("UW")[:9].ljust(9, "0"))

    def _where_the_bot_may_post(self, channel: str) -> str:
        """The conversation a chat.* call posts to, or Slack's error: the app's own DMs (opened with
        conversations.open) are open to it; any other channel needs the bot as a member: unknown (or a DM between
        people, or a user id: whether Slack takes one here is not documented for every token, so the stub does not)
        -> channel_not_found, known but not joined -> not_in_channel."""
        with self._cond:
            if channel in self._dms.values():
                return channel
            if channel not in self.channels:
                raise ApiError("channel_not_found")
            if channel not in self.bot_channels:
                raise ApiError("not_in_channel")
        return channel

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._where_the_bot_may_post(self._message_checks(args))
        ts = self._ts()
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": args.get("text", ""),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if key in args:
                message[key] = args[key]
        self.show(channel, None, message, "chat.postMessage")
        return {"channel": channel, "ts": ts, "message": message}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's chat.postEphemeral: only where the bot is a member."""
        channel = self._message_checks(args)
        if not args.get("user"):
            raise ApiError("user_not_found")
        channel = self._where_the_bot_may_post(channel)
        shown: dict[str, Any] = {key: args[key] for key in ("text", "blocks", "attachments") if key in args}
        self.show(channel, str(args["user"]), shown, "chat.postEphemeral")
        return {"message_ts": self._ts()}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's conversations.open for a DM between the app and one user (`users`: one user id), or resuming one
        (`channel`): the D… id that chat.postMessage then posts to. Several users (a group DM) are not modelled."""
        users = [user.strip() for user in str(args.get("users") or "").split(",") if user.strip()]
        channel = args.get("channel")
        if not users and not channel:
            raise ApiError("users_list_not_supplied")
        if channel:
            with self._cond:
                if channel not in self._dms.values():
                    raise ApiError("channel_not_found")
            return {"channel": {"id": channel}}
        if len(users) > 1:
            raise ApiError("method_not_supported_for_channel_type")
        if users[0][:1] not in ("U", "W"):
            raise ApiError("user_not_found")
        return {"channel": {"id": self.dm_channel(users[0])}}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        connection_id = secrets.token_urlsafe(12)
        with self._cond:
            self._socket_urls[connection_id] = time.monotonic() + SOCKET_URL_TTL_S
        ws_base = "ws" + self._require_base_url().removeprefix("http")
        return {"url": f"{ws_base}{SOCKET_PATH}{connection_id}"}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = args.get("channel")
        with self._cond:
            name = self.channels.get(channel_id) if isinstance(channel_id, str) else None
            member = channel_id in self.bot_channels
        if name is None:
            raise ApiError("channel_not_found")
        return {
            "channel": {
                "id": channel_id,
                "name": name,
                "is_channel": True,
                "is_group": False,
                "is_im": False,
                "is_private": False,
                "is_archived": False,
                "is_member": member,
                "context_team_id": self.team_id,
            }
        }

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's usergroups.users.list: `usergroup` (required), `include_disabled` and `team_id` are accepted;
        every group here is enabled, so `include_disabled` changes nothing."""
        group_id = args.get("usergroup")
        if not isinstance(group_id, str) or not group_id:
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: usergroup"]}
            )
        with self._cond:
            members = self.usergroups.get(group_id)
            users = list(members) if members is not None else None
        if users is None:
            raise ApiError("no_such_subteam")
        return {"users": users}


# ---------------------------------------------------------------------- helpers


#: Keys of a response_url post that say how to show it, not what it says.
_POST_FLAGS = ("replace_original", "delete_original", "response_type")


def _is_message(payload: Any) -> bool:
    """Whether an ack's payload is a message to show (text or blocks), not an empty ack."""
    return isinstance(payload, dict) and bool(payload.get("text") or payload.get("blocks"))


def _without_flags(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in _POST_FLAGS}


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _parse_api_args(request: Request, raw: bytes) -> tuple[dict[str, Any], str | None]:
    """Arguments from the query string plus a JSON or form body; JSON-valued form fields decoded."""
    args: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw:
        pass
    elif content_type == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            return args, "invalid_json"
        if not isinstance(body, dict):
            return args, "invalid_json"
        args.update(body)
    elif content_type in ("application/x-www-form-urlencoded", ""):
        args.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    else:
        return args, "invalid_form_data"
    for key in JSON_FIELDS & args.keys():
        value = args[key]
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                args[key] = json.loads(value)
            except ValueError:
                return args, "invalid_arguments" if key != "blocks" else "invalid_blocks_format"
    return args, None


def _validated_view(view: Any) -> dict[str, Any]:
    """Slack's main checks on a view (only the ones a bot realistically trips over)."""
    if not isinstance(view, dict):
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]})
    messages: list[str] = []
    view_type = view.get("type")
    if view_type not in ("modal", "home"):
        messages.append("[ERROR] must be one of modal, home [json-pointer:/view/type]")
    if view_type == "modal" and not _text_of(view.get("title")):
        messages.append("[ERROR] missing required field: title [json-pointer:/view/title]")
    for key, limit in VIEW_TEXT_LIMITS.items():
        text = _text_of(view.get(key))
        if text is not None and len(text) > limit:
            messages.append(f"[ERROR] must be less than {limit + 1} characters [json-pointer:/view/{key}/text]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        messages.append("[ERROR] missing required field: blocks [json-pointer:/view/blocks]")
    elif len(blocks) > VIEW_MAX_BLOCKS:
        messages.append(f"[ERROR] no more than {VIEW_MAX_BLOCKS} items allowed [json-pointer:/view/blocks]")
    elif any(block.get("type") == "input" for block in blocks if isinstance(block, dict)) and not view.get("submit"):
        messages.append("[ERROR] must provide a submit property when using input blocks [json-pointer:/view]")
    if len(str(view.get("private_metadata", ""))) > VIEW_MAX_PRIVATE_METADATA:
        messages.append(
            f"[ERROR] must be less than {VIEW_MAX_PRIVATE_METADATA + 1} characters"
            " [json-pointer:/view/private_metadata]"
        )
    if len(str(view.get("callback_id", ""))) > VIEW_MAX_CALLBACK_ID:
        messages.append(
            f"[ERROR] must be less than {VIEW_MAX_CALLBACK_ID + 1} characters [json-pointer:/view/callback_id]"
        )
    if messages:
        raise ApiError("invalid_arguments", response_metadata={"messages": messages})
    return view


def _fill_block_ids(blocks: list[Any]) -> None:
    """Slack gives blocks without a block_id (and interactive elements without an action_id) generated ones."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if not block.get("block_id"):
            block["block_id"] = "".join(secrets.choice(_BLOCK_ID_ALPHABET) for _ in range(5))
        elements = []
        if block.get("type") == "input" and isinstance(block.get("element"), dict):
            elements.append(block["element"])
        if block.get("type") == "actions":
            elements.extend(e for e in block.get("elements") or [] if isinstance(e, dict))
        if isinstance(block.get("accessory"), dict) and block["accessory"].get("type") != "image":
            elements.append(block["accessory"])
        for element in elements:
            if not element.get("action_id"):
                element["action_id"] = "".join(secrets.choice(_BLOCK_ID_ALPHABET) for _ in range(5))
