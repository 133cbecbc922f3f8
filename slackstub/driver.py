"""`SlackDriver`: what Slack itself sends to the bot (slash commands, modal submissions, option look-ups, button
clicks), as signed HTTP requests shaped like Slack's, with triggers and response_urls issued by a `SlackStub`.

By default every request comes from one user of the installing workspace, in a channel the bot is in. An `origin`
(see `SlackDriver.origin`) makes the driver send the shapes Slack sends from elsewhere: Enterprise Grid, org-wide
installs, Slack Connect (user.team_id ≠ team.id). The end-to-end tests keep those shapes as JSON fixtures."""

from __future__ import annotations

import functools
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from slackstub.server import Recorded, SlackStub, SlackStubError
from slackstub.signing import FORM_CONTENT_TYPE, signed_headers

VERIFICATION_TOKEN = "leadbot-local-verification-token"
ACK_DEADLINE_S = 3.0  # Slack shows the user an error when the app takes longer to answer


class DriverError(SlackStubError):
    """The driver cannot do what it was asked: no element with that action_id, no input block for an answer, an
    interaction without a response_url or trigger_id, or the bot's answer gives it nothing to go on (its views.open
    failed, an options request got no options). Waits that time out raise `NoAnswer` instead."""


@dataclass
class Interaction:
    """One request Slack sent the bot and the bot's HTTP answer (its ack)."""

    status: int
    body: str
    json: dict[str, Any] | None  # the ack body when it is a JSON object, else None
    response_url: str | None
    trigger_id: str | None
    elapsed: float  # seconds until the ack arrived

    @property
    def acked_in_time(self) -> bool:
        """Whether Slack would have accepted the ack (answered with 2xx within 3 s)."""
        return 200 <= self.status < 300 and self.elapsed <= ACK_DEADLINE_S


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One for every driver: each httpx.Client would load the CA bundle (~30 ms), and tests start many drivers."""
    return httpx.create_ssl_context()


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _is_view(container: dict[str, Any]) -> bool:
    return container.get("type") in ("modal", "home")


def _option_lists(element: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from element.get("options") or []
    for group in element.get("option_groups") or []:
        yield from group.get("options") or []


def _elements(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The interactive elements of a block: an input's element, an actions block's elements, an accessory."""
    if isinstance(block.get("element"), dict):
        yield block["element"]
    if block.get("type") == "actions":
        yield from (e for e in block.get("elements") or [] if isinstance(e, dict))
    if isinstance(block.get("accessory"), dict):
        yield block["accessory"]


def _find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for block in blocks:
        for element in _elements(block):
            if element.get("action_id") == action_id:
                return block, element
    known = sorted({e["action_id"] for b in blocks for e in _elements(b) if e.get("action_id")})
    raise DriverError(f"no element with action_id {action_id!r}; the blocks have {known}")


def _text(obj: Any) -> str:
    return obj.get("text", "") if isinstance(obj, dict) else str(obj or "")


def _selected_option(element: dict[str, Any], value: str) -> dict[str, Any]:
    for option in _option_lists(element):
        if option.get("value") == value:
            return {"text": option.get("text") or _plain(value), "value": value}
    initial = element.get("initial_option")
    if isinstance(initial, dict) and initial.get("value") == value:
        return {"text": initial.get("text") or _plain(value), "value": value}
    return {"text": _plain(value), "value": value}


def _state_value(element: dict[str, Any], answer: str | None) -> dict[str, Any]:
    """The state.values entry Slack reports for an input element holding `answer` (None: left empty)."""
    kind = element.get("type", "plain_text_input")
    if answer == "":
        answer = None
    if kind in ("static_select", "external_select", "radio_buttons"):
        return {"type": kind, "selected_option": _selected_option(element, answer) if answer is not None else None}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        values = [v.strip() for v in answer.split(",")] if answer is not None else []
        return {"type": kind, "selected_options": [_selected_option(element, v) for v in values if v]}
    if kind == "users_select":
        return {"type": kind, "selected_user": answer}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": answer}
    if kind == "channels_select":
        return {"type": kind, "selected_channel": answer}
    if kind == "datepicker":
        return {"type": kind, "selected_date": answer}
    if kind == "timepicker":
        return {"type": kind, "selected_time": answer}
    return {"type": kind, "value": answer}  # plain_text_input, number_input, email/url inputs, ...


class SlackDriver:
    """Sends the bot what Slack would, signed with `signing_secret`, to `events_url` (the bot's Request URL).

    Triggers and response_urls come from `stub`, so whatever the bot does with them lands in `stub.events`.
    """

    def __init__(
        self,
        stub: SlackStub,
        events_url: str,
        signing_secret: str,
        *,
        team_id: str = "T0LEADBOT",
        user_id: str = "U0SUPERVISOR",
        user_name: str = "supervisor",
        channel_id: str = "C0CAMPAIGN",
        channel_name: str = "spring-campaign",
        http: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.stub = stub
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = "leadbot-local"
        self.user_id = user_id
        self.user_name = user_name
        self.channel_id = channel_id
        self.channel_name = channel_name
        self.api_app_id = stub.app_id
        self.timeout = timeout
        #: Where requests come from, per request kind ("slash_command", "block_actions", "view_submission",
        #: "block_suggestion"): top-level fields that replace the driver's own (`team`, `user`, `enterprise`,
        #: `is_enterprise_install`, `channel`, ... ; for a slash command `team_id`, `enterprise_id`, `user_id`, ...),
        #: and under "view" fields merged into a submitted view (`team_id`, `app_installed_team_id`). None: the
        #: driver's own user, workspace and channel.
        self.origin: dict[str, dict[str, Any]] | None = None
        self._own_http = http is None
        self.http = http if http is not None else httpx.Client(timeout=timeout, verify=_ssl_context())

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def __enter__(self) -> SlackDriver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ low level

    def post_raw(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST `body` with exactly `headers` to the bot (for forged, stale or malformed requests)."""
        return self.http.post(self.events_url, content=body, headers=headers, timeout=self.timeout)

    def _send(self, body: bytes, *, response_url: str | None, trigger_id: str | None) -> Interaction:
        headers = signed_headers(self.signing_secret, body, content_type=FORM_CONTENT_TYPE)
        started = time.perf_counter()
        response = self.post_raw(body, headers)
        elapsed = time.perf_counter() - started
        parsed: dict[str, Any] | None = None
        if response.content:
            try:
                candidate = response.json()
            except ValueError:
                candidate = None
            parsed = candidate if isinstance(candidate, dict) else None
        return Interaction(
            status=response.status_code,
            body=response.text,
            json=parsed,
            response_url=response_url,
            trigger_id=trigger_id,
            elapsed=elapsed,
        )

    def _from_origin(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """`payload` as sent from the current origin (unchanged without one)."""
        fields = (self.origin or {}).get(kind)
        if not fields:
            return payload
        payload = {**payload, **{key: value for key, value in fields.items() if key != "view"}}
        if isinstance(fields.get("view"), dict) and isinstance(payload.get("view"), dict):
            payload["view"] = {**payload["view"], **fields["view"]}
        return payload

    def _send_payload(self, payload: dict[str, Any], *, follows: Interaction | None = None) -> Interaction:
        """POST an interactivity payload (as sent from the current origin). Without a response_url of its own
        (modals), the returned Interaction carries the one of `follows` (the request that opened the modal), so
        `replies()` reads the bot's answers there."""
        payload = self._from_origin(str(payload.get("type")), payload)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        response_url = payload.get("response_url") or (follows.response_url if follows else None)
        return self._send(body, response_url=response_url, trigger_id=payload.get("trigger_id"))

    def _user(self) -> dict[str, Any]:
        return {"id": self.user_id, "username": self.user_name, "name": self.user_name, "team_id": self.team_id}

    def _team(self) -> dict[str, Any]:
        return {"id": self.team_id, "domain": self.team_domain}

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {
            "type": kind,
            "team": self._team(),
            "user": self._user(),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _current(self, view: dict[str, Any]) -> dict[str, Any]:
        """Slack submits what the user sees: the latest version of the view if the bot updated it since."""
        view_id = view.get("id")
        latest = self.stub.view(view_id) if isinstance(view_id, str) else None
        return latest if latest is not None else json.loads(json.dumps(view))

    # ------------------------------------------------------------------ what a user does

    def command(self, text: str, *, command: str = "/lead") -> Interaction:
        """The user types `{command} {text}` in the channel. An ack that carries a message goes on the stub's
        screen, where it stays: Slack never replaces a slash command's ack (see `SlackStub.screen`)."""
        fields = self.command_fields(text, command=command)
        interaction = self._send(
            urlencode(fields).encode(), response_url=fields["response_url"], trigger_id=fields["trigger_id"]
        )
        if 200 <= interaction.status < 300:
            ack = interaction.json if interaction.json is not None else {"text": interaction.body}
            if ack.get("text") or ack.get("blocks"):
                self.stub.show(
                    fields.get("channel_id"), fields.get("user_id"), ack, "ack", before_posts_to=fields["response_url"]
                )
        return interaction

    def command_fields(
        self,
        text: str,
        *,
        command: str = "/lead",
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, str]:
        """The form fields of a slash command as Slack posts them (fresh response_url and trigger unless given),
        for tests that send the body themselves (replays, retries, odd headers)."""
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": self.channel_id,
            "channel_name": self.channel_name,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
        }
        fields.update({key: str(value) for key, value in self._from_origin("slash_command", {}).items()})
        fields["response_url"] = response_url or self.stub.new_response_url(
            channel_id=fields["channel_id"], user_id=fields["user_id"]
        )
        fields["trigger_id"] = trigger_id or self.stub.new_trigger()
        return fields

    def submit(
        self, view: dict[str, Any] | None, answers: dict[str, str], *, interaction: Interaction | None = None
    ) -> Interaction:
        """The user fills in a modal and presses its submit button.

        `answers` maps an input block's block_id (or its element's action_id) to what the user entered; for
        selects, the chosen option's value (an answer matching no input block raises DriverError). `view` is
        the view as Slack knows it (e.g. `opened_view(...)`; its latest version is submitted if the bot updated it).
        `interaction` is the request whose trigger opened the modal: `view` may then be None, and the returned
        Interaction carries its response_url (Slack's view_submission has none of its own).
        """
        if view is None:
            if interaction is None:
                raise ValueError("submit needs a view, or the interaction that opened one")
            view = self.opened_view(interaction)
        view = self._current(view)
        values: dict[str, dict[str, Any]] = {}
        used: set[str] = set()
        for block in view.get("blocks") or []:
            element = block.get("element")
            if block.get("type") != "input" or not isinstance(element, dict):
                continue
            block_id, action_id = block.get("block_id", ""), element.get("action_id", "")
            key = block_id if block_id in answers else action_id if action_id in answers else None
            answer = answers[key] if key is not None else None
            if key is not None:
                used.add(key)
            values[block_id] = {action_id: _state_value(element, None if answer is None else str(answer))}
        unknown = sorted(set(answers) - used)
        if unknown:
            raise DriverError(f"no input block for answer(s) {unknown}; the view's inputs are {sorted(values)}")
        view["state"] = {"values": values}
        payload = self._envelope("view_submission")
        payload.update({"trigger_id": self.stub.new_trigger(), "view": view, "response_urls": []})
        return self._send_payload(payload, follows=interaction)

    def suggest(
        self, view: dict[str, Any], action_id: str, value: str = "", block_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The user types `value` into an external select: returns the options the bot offered (option groups
        flattened). Raises DriverError when the bot does not answer 200 with options."""
        view = self._current(view) if _is_view(view) else view
        if block_id is None:
            block, _ = _find_element(view.get("blocks") or [], action_id)
            block_id = block.get("block_id", "")
        payload = self._envelope("block_suggestion")
        payload.update({"action_id": action_id, "block_id": block_id, "value": value})
        if _is_view(view):
            payload.update({"container": {"type": "view", "view_id": view.get("id")}, "view": view})
        else:
            payload.update(self._message_context(view))
        interaction = self._send_payload(payload)
        if interaction.status != 200 or interaction.json is None:
            raise DriverError(
                f"block_suggestion for {action_id!r} answered {interaction.status} {interaction.body[:200]!r}"
            )
        options = list(interaction.json.get("options") or [])
        for group in interaction.json.get("option_groups") or []:
            options.extend(group.get("options") or [])
        return options

    def click(
        self,
        message_or_view: dict[str, Any] | None,
        action_id: str,
        value: str | None = None,
        *,
        interaction: Interaction | None = None,
    ) -> Interaction:
        """The user clicks the button `action_id` in a message (e.g. a reply on a response_url) or a view.

        `value` overrides the button's value. With `message_or_view=None`, the latest reply to `interaction`
        (or else the view its trigger opened) is clicked. A click in a message gets a fresh response_url; a click
        in a view has none, so the returned Interaction carries `interaction`'s.
        """
        if message_or_view is None:
            if interaction is None:
                raise ValueError("click needs a message or view, or the interaction that produced one")
            message_or_view = self._produced_by(interaction)
        target = self._current(message_or_view) if _is_view(message_or_view) else message_or_view
        block, element = _find_element(target.get("blocks") or [], action_id)
        action: dict[str, Any] = {
            "type": element.get("type", "button"),
            "action_id": action_id,
            "block_id": block.get("block_id", ""),
            "action_ts": f"{time.time():.6f}",
        }
        if "text" in element:
            action["text"] = element["text"]
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            if element.get("type") in ("static_select", "external_select", "overflow", "radio_buttons"):
                action["selected_option"] = _selected_option(element, chosen)
            else:
                action["value"] = chosen
        if "style" in element:
            action["style"] = element["style"]
        payload = self._envelope("block_actions")
        payload["trigger_id"] = self.stub.new_trigger()
        if _is_view(target):
            payload.update({"container": {"type": "view", "view_id": target.get("id")}, "view": target})
        else:
            payload.update(self._message_context(target))
            channel = self._from_origin("block_actions", payload).get("channel") or {}
            user = self._from_origin("block_actions", payload).get("user") or {}
            payload["response_url"] = self.stub.new_response_url(
                channel_id=channel.get("id") if isinstance(channel, dict) else None,
                user_id=user.get("id") if isinstance(user, dict) else None,
                source=self.stub.shown_key(target),  # replace_original acts on the message clicked, if on screen
            )
        payload["actions"] = [action]
        return self._send_payload(payload, follows=interaction)

    def _message_context(self, message: dict[str, Any]) -> dict[str, Any]:
        ts = message.get("ts")
        ephemeral = ts is None and message.get("response_type") != "in_channel"
        message_ts = ts or f"{time.time():.6f}"
        context: dict[str, Any] = {
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": self.channel_id,
                "is_ephemeral": ephemeral,
            },
            "channel": {"id": self.channel_id, "name": self.channel_name},
            "state": {"values": {}},
        }
        if not ephemeral:  # Slack leaves the message out of payloads from ephemeral messages
            context["message"] = {
                "type": "message",
                "user": self.stub.bot_user_id,
                "bot_id": self.stub.bot_id,
                "ts": message_ts,
                "text": message.get("text", ""),
                "blocks": message.get("blocks") or [],
                "team": self.team_id,
            }
        return context

    def _produced_by(self, interaction: Interaction, timeout: float = 5.0) -> dict[str, Any]:
        """The latest reply on the interaction's response_url, or else the view its trigger opened."""
        rid = interaction.response_url.rsplit("/", 1)[-1] if interaction.response_url else None
        trigger_id = interaction.trigger_id

        def produced(e: Recorded) -> bool:
            if e.kind == "response":
                return e.name == rid and e.status == 200
            return e.name in ("views.open", "views.push") and e.payload.get("trigger_id") == trigger_id

        event = self.stub.wait_for(produced, timeout=timeout)
        if event.kind == "response" and interaction.response_url:
            return self.stub.responses(interaction.response_url)[-1]
        return self.opened_view(interaction, timeout=timeout)

    # ------------------------------------------------------------------ what the bot did in response

    def replies(self, interaction: Interaction, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The payloads the bot posted to the interaction's response_url, once there are at least `count`."""
        if not interaction.response_url:
            raise DriverError("this interaction had no response_url")
        return self.stub.wait_responses(interaction.response_url, count=count, timeout=timeout)

    def opened_view(self, interaction: Interaction, timeout: float = 5.0) -> dict[str, Any]:
        """The view the bot opened (views.open, or views.push) with the interaction's trigger_id, as the stub
        stored it (with its id and hash). DriverError if the bot's call failed, NoAnswer if none came in time."""
        trigger_id = interaction.trigger_id
        if not trigger_id:
            raise DriverError("this interaction had no trigger_id")
        event = self.stub.wait_for(
            lambda e: (
                e.kind == "api" and e.name in ("views.open", "views.push") and e.payload.get("trigger_id") == trigger_id
            ),
            timeout=timeout,
        )
        if not event.ok or event.response is None:
            raise DriverError(f"the bot's {event.name} with this trigger failed: {event.summary()} {event.response}")
        return event.response["view"]
