"""SlackStub speaks what slack_sdk expects: real HTTP on 127.0.0.1 through slack_sdk's own async clients."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from slackstub import NoAnswer, Recorded, SlackStub
from tests.support import run

MODAL = {
    "type": "modal",
    "callback_id": "add_lead",
    "title": {"type": "plain_text", "text": "Add a lead"},
    "submit": {"type": "plain_text", "text": "Add"},
    "private_metadata": '{"channel": "C0CAMPAIGN"}',
    "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Spring leads*"}},
        {
            "type": "input",
            "block_id": "number",
            "label": {"type": "plain_text", "text": "Phone number"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        },
    ],
}


def client(stub: SlackStub, token: str | None = None, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=token or stub.bot_token, base_url=stub.api_url, **kwargs)


def api_error(factory: Callable[[], Awaitable[Any]]) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        run(factory)
    return caught.value


# ---------------------------------------------------------------------- auth


def test_api_url_is_what_slack_sdk_joins_method_names_onto(stub: SlackStub) -> None:
    assert stub.api_url == stub.base_url + "/api/"
    assert stub.base_url.startswith("http://127.0.0.1:")


def test_auth_test_answers_the_bot_identity(stub: SlackStub) -> None:
    response = run(lambda: client(stub).auth_test())
    assert response["ok"] is True
    assert response["team_id"] == "T0LEADBOT"
    assert response["user_id"] == "U0LEADBOT"
    assert response["bot_id"] == "B0LEADBOT"
    assert response["url"].startswith("https://")
    assert stub.calls("auth.test")[0].payload == {}


def test_wrong_token_is_invalid_auth_and_missing_token_not_authed(stub: SlackStub) -> None:
    assert api_error(lambda: client(stub, token="xoxb-someone-else").auth_test()).response["error"] == "invalid_auth"
    no_token = AsyncWebClient(base_url=stub.api_url)
    assert api_error(lambda: no_token.auth_test()).response["error"] == "not_authed"
    raw = httpx.post(stub.api_url + "auth.test", headers={"Authorization": "Bearer nope"})
    assert (raw.status_code, raw.json()) == (200, {"ok": False, "error": "invalid_auth"})


def test_every_answer_to_a_known_token_carries_its_granted_scopes(stub: SlackStub) -> None:
    """Slack's x-oauth-scopes header: the token's scopes, on every Web API answer (x-accepted-oauth-scopes: the
    method's)."""
    answer = run(lambda: client(stub).auth_test())
    assert answer.headers["x-oauth-scopes"] == "commands,chat:write,im:write,usergroups:read"
    posted = run(lambda: client(stub).chat_postMessage(channel="C0CAMPAIGN", text="hi"))
    assert posted.headers["x-accepted-oauth-scopes"] == "chat:write"
    opened = run(lambda: client(stub).apps_connections_open(app_token=stub.app_token))
    assert opened.headers["x-oauth-scopes"] == "connections:write"
    raw = httpx.post(stub.api_url + "auth.test", headers={"Authorization": "Bearer nope"})
    assert "x-oauth-scopes" not in raw.headers  # a token Slack does not know has no scopes to tell


def test_a_method_needing_a_scope_the_token_lacks_answers_missing_scope() -> None:
    with SlackStub(scopes=("commands", "chat:write")) as fewer:
        assert run(lambda: client(fewer).auth_test()).headers["x-oauth-scopes"] == "commands,chat:write"
        refused = api_error(lambda: client(fewer).conversations_open(users="U0ANNA")).response
        assert refused["error"] == "missing_scope"
        assert refused["needed"] == "channels:manage,groups:write,im:write,mpim:write"
        assert refused["provided"] == "commands,chat:write"
        assert refused.headers["x-oauth-scopes"] == "commands,chat:write"
        assert api_error(lambda: client(fewer).usergroups_users_list(usergroup="S1")).response["needed"] == (
            "usergroups:read"
        )
        assert run(lambda: client(fewer).chat_postMessage(channel="C0CAMPAIGN", text="hi"))["ok"] is True


def test_unknown_method(stub: SlackStub) -> None:
    error = api_error(lambda: client(stub).api_call("leads.teleport", json={"x": 1}))
    assert error.response["error"] == "unknown_method"
    assert stub.calls("leads.teleport")[0].payload == {"x": 1}


# ---------------------------------------------------------------------- views


def test_views_open_with_a_fresh_trigger_returns_the_stored_view(stub: SlackStub) -> None:
    trigger = stub.new_trigger()
    response = run(lambda: client(stub).views_open(trigger_id=trigger, view=MODAL))
    view = response["view"]
    assert view["id"].startswith("V")
    assert view["hash"]
    assert view["state"] == {"values": {}}
    assert view["callback_id"] == "add_lead"
    assert view["private_metadata"] == MODAL["private_metadata"]
    assert view["blocks"][1]["block_id"] == "number"
    assert view["blocks"][0]["block_id"], "Slack gives blocks without a block_id a generated one"
    assert stub.view(view["id"]) == view
    call = stub.calls("views.open")[0]
    assert call.payload["trigger_id"] == trigger
    assert call.response == {"ok": True, "view": view}


def test_trigger_ids_are_single_use_known_and_short_lived(stub: SlackStub) -> None:
    web = client(stub)
    trigger = stub.new_trigger()
    run(lambda: web.views_open(trigger_id=trigger, view=MODAL))
    assert api_error(lambda: web.views_open(trigger_id=trigger, view=MODAL)).response["error"] == "exchanged_trigger_id"
    unknown = api_error(lambda: web.views_open(trigger_id="1.2.deadbeef", view=MODAL))
    assert unknown.response["error"] == "invalid_trigger_id"

    short = stub.new_trigger(ttl=0.05)
    time.sleep(0.1)
    expired = api_error(lambda: web.views_open(trigger_id=short, view=MODAL))
    assert expired.response["error"] == "expired_trigger_id"
    assert "expired_trigger_id" in str(expired)


def test_an_invalid_view_is_refused_without_using_up_the_trigger(stub: SlackStub) -> None:
    web = client(stub)
    trigger = stub.new_trigger()
    too_long = {**MODAL, "title": {"type": "plain_text", "text": "A title much longer than Slack allows"}}
    error = api_error(lambda: web.views_open(trigger_id=trigger, view=too_long))
    assert error.response["error"] == "invalid_arguments"
    assert any("/view/title" in m for m in error.response["response_metadata"]["messages"])
    assert run(lambda: web.views_open(trigger_id=trigger, view=MODAL))["ok"]


def test_views_update_by_id_and_hash_and_views_push(stub: SlackStub) -> None:
    web = client(stub)
    opened = run(lambda: web.views_open(trigger_id=stub.new_trigger(), view=MODAL))["view"]
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Lead added"}}
    updated = run(lambda: web.views_update(view_id=opened["id"], hash=opened["hash"], view=changed))["view"]
    assert updated["id"] == opened["id"]
    assert updated["hash"] != opened["hash"]
    assert stub.view(opened["id"])["title"]["text"] == "Lead added"

    stale = api_error(lambda: web.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL))
    assert stale.response["error"] == "hash_conflict"
    assert api_error(lambda: web.views_update(view_id="V0NOPE", view=MODAL)).response["error"] == "not_found"

    pushed = run(lambda: web.views_push(trigger_id=stub.new_trigger(), view=MODAL))["view"]
    assert pushed["id"] != opened["id"]


def test_form_encoded_calls_with_json_string_fields(stub: SlackStub) -> None:
    trigger = stub.new_trigger()
    form = {"trigger_id": trigger, "view": json.dumps(MODAL)}
    response = httpx.post(
        stub.api_url + "views.open", data=form, headers={"Authorization": f"Bearer {stub.bot_token}"}
    ).json()
    assert response["ok"] is True
    assert response["view"]["title"]["text"] == "Add a lead"

    posted = httpx.post(
        stub.api_url + "chat.postMessage",
        data={"token": stub.bot_token, "channel": "C0CAMPAIGN", "blocks": json.dumps(MODAL["blocks"][:1])},
    ).json()
    assert posted["ok"] is True
    assert stub.calls("chat.postMessage")[0].payload["blocks"][0]["type"] == "section"
    assert "token" not in stub.calls("chat.postMessage")[0].payload


# ---------------------------------------------------------------------- messages and channels


def test_chat_post_message_and_ephemeral(stub: SlackStub) -> None:
    web = client(stub)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}]
    posted = run(lambda: web.chat_postMessage(channel="C0CAMPAIGN", text="hello", blocks=blocks))
    assert posted["channel"] == "C0CAMPAIGN"
    assert posted["ts"]
    assert posted["message"]["blocks"] == blocks
    ephemeral = run(lambda: web.chat_postEphemeral(channel="C0CAMPAIGN", user="U0SUPERVISOR", text="psst"))
    assert ephemeral["message_ts"]

    with pytest.warns(UserWarning, match="`text` argument is missing"):
        assert api_error(lambda: web.chat_postMessage(channel="C0CAMPAIGN")).response["error"] == "no_text"
        missing = api_error(lambda: web.chat_postEphemeral(channel="C0CAMPAIGN", user="U0SUPERVISOR"))
    assert missing.response["error"] == "no_text"
    assert [c.ok for c in stub.calls("chat.postMessage")] == [True, False]


def test_chat_methods_need_the_bot_in_the_channel_as_slack_does(stub: SlackStub) -> None:
    """Slack refuses chat.postEphemeral / chat.postMessage where the bot is not a member: channel_not_found for a
    channel it cannot see (or a DM between people), not_in_channel for one it was not invited to."""
    web = client(stub)
    stub.add_channel("C0QUIET", "quiet-room", member=False)
    for method in (web.chat_postEphemeral, web.chat_postMessage):
        post = method  # bound per loop turn

        def in_channel(channel: str, post: Any = post) -> Awaitable[Any]:
            return post(channel=channel, user="U0SUPERVISOR", text="psst")

        assert api_error(lambda: in_channel("C0QUIET")).response["error"] == "not_in_channel"
        assert api_error(lambda: in_channel("C0NOWHERE")).response["error"] == "channel_not_found"
        assert api_error(lambda: in_channel("D0PEOPLE01")).response["error"] == "channel_not_found"
        assert run(lambda: in_channel("C0CAMPAIGN"))["ok"]
    stub.remove_bot_from("C0CAMPAIGN")
    assert (
        api_error(lambda: web.chat_postEphemeral(channel="C0CAMPAIGN", user="U0SUPERVISOR", text="x")).response["error"]
        == "not_in_channel"
    )
    assert run(lambda: web.conversations_info(channel="C0CAMPAIGN"))["channel"]["is_member"] is False
    assert run(lambda: web.conversations_info(channel="C0QUIET"))["channel"]["is_member"] is False
    stub.add_channel("C0QUIET", "quiet-room")  # the bot is invited
    assert run(lambda: web.conversations_info(channel="C0QUIET"))["channel"]["is_member"] is True


def test_a_dm_with_the_app_is_opened_with_conversations_open_and_then_posted_to(stub: SlackStub) -> None:
    web = client(stub)
    for method in (web.chat_postMessage, web.chat_postEphemeral):  # a user id is no conversation here
        error = api_error(lambda method=method: method(channel="U0SUPERVISOR", user="U0SUPERVISOR", text="x"))
        assert error.response["error"] == "channel_not_found"
    dm = run(lambda: web.conversations_open(users="U0SUPERVISOR"))["channel"]["id"]
    assert dm.startswith("D") and dm == stub.dm_channel("U0SUPERVISOR")
    assert run(lambda: web.conversations_open(channel=dm))["channel"]["id"] == dm
    assert api_error(lambda: web.api_call("conversations.open", json={})).response["error"] == "users_list_not_supplied"
    assert run(lambda: web.chat_postMessage(channel=dm, text="your result"))["channel"] == dm
    assert run(lambda: web.chat_postEphemeral(channel=dm, user="U0SUPERVISOR", text="again"))["ok"]
    shown = stub.screen(dm, "U0SUPERVISOR")
    assert [(m.message["text"], m.user_id, m.via) for m in shown] == [
        ("your result", None, "chat.postMessage"),
        ("again", "U0SUPERVISOR", "chat.postEphemeral"),
    ]


def test_conversations_info(stub: SlackStub) -> None:
    web = client(stub)
    info = run(lambda: web.conversations_info(channel="C0CAMPAIGN"))
    assert info["channel"]["name"] == "spring-campaign"
    assert api_error(lambda: web.conversations_info(channel="C0NOWHERE")).response["error"] == "channel_not_found"
    stub.add_channel("C0OTHER", "autumn-campaign")
    assert run(lambda: web.conversations_info(channel="C0OTHER"))["channel"]["name"] == "autumn-campaign"


# ---------------------------------------------------------------------- user groups


def test_usergroups_users_list_answers_the_members_set_for_a_group(stub: SlackStub) -> None:
    web = client(stub)
    stub.set_usergroup("S0SUPERVISORS", ["U0ALICE", "W0BOB"])
    listed = run(
        lambda: web.usergroups_users_list(usergroup="S0SUPERVISORS", include_disabled=False, team_id="T0LEADBOT")
    )
    assert listed["users"] == ["U0ALICE", "W0BOB"]
    call = stub.calls("usergroups.users.list")[0]
    assert call.payload["usergroup"] == "S0SUPERVISORS"
    assert call.payload["team_id"] == "T0LEADBOT"
    assert "include_disabled" in call.payload
    assert call.response == {"ok": True, "users": ["U0ALICE", "W0BOB"]}

    stub.set_usergroup("S0SUPERVISORS", [])  # replaced, not merged
    assert run(lambda: web.usergroups_users_list(usergroup="S0SUPERVISORS"))["users"] == []


def test_usergroups_users_list_refuses_unknown_groups_missing_arguments_and_wrong_tokens(stub: SlackStub) -> None:
    web = client(stub)
    assert api_error(lambda: web.usergroups_users_list(usergroup="S0NOPE")).response["error"] == "no_such_subteam"
    missing = api_error(lambda: web.api_call("usergroups.users.list", params={}))
    assert missing.response["error"] == "invalid_arguments"
    stub.set_usergroup("S0SUPERVISORS", ["U0ALICE"])
    wrong = client(stub, token="xoxb-someone-else")
    assert api_error(lambda: wrong.usergroups_users_list(usergroup="S0SUPERVISORS")).response["error"] == "invalid_auth"
    app_token = client(stub, token=stub.app_token)
    refused = api_error(lambda: app_token.usergroups_users_list(usergroup="S0SUPERVISORS"))
    assert refused.response["error"] == "not_allowed_token_type"
    assert [c.ok for c in stub.calls("usergroups.users.list")] == [False, False, False, False]


def test_usergroups_users_list_honours_queued_faults(stub: SlackStub) -> None:
    web = client(stub)
    stub.set_usergroup("S0SUPERVISORS", ["U0ALICE"])
    stub.fail("usergroups.users.list", status=500)
    stub.fail("usergroups.users.list", status=200, error="missing_scope")
    assert api_error(lambda: web.usergroups_users_list(usergroup="S0SUPERVISORS")).response.status_code == 500
    scope = api_error(lambda: web.usergroups_users_list(usergroup="S0SUPERVISORS"))
    assert (scope.response.status_code, scope.response["error"]) == (200, "missing_scope")
    assert run(lambda: web.usergroups_users_list(usergroup="S0SUPERVISORS"))["users"] == ["U0ALICE"]
    assert [c.status for c in stub.calls("usergroups.users.list")] == [500, 200, 200]


# ---------------------------------------------------------------------- response_url


def test_a_response_url_takes_five_posts_then_says_used_url(stub: SlackStub) -> None:
    url = stub.new_response_url()
    webhook = AsyncWebhookClient(url)

    async def post_six() -> list[tuple[int, str]]:
        results = []
        for i in range(6):
            response = await webhook.send(text=f"reply {i}", replace_original=i > 0)
            results.append((response.status_code, response.body))
        return results

    assert run(post_six) == [(200, "ok")] * 5 + [(404, "used_url")]
    payloads = stub.responses(url)
    assert [p["text"] for p in payloads] == [f"reply {i}" for i in range(5)]
    assert payloads[1]["replace_original"] is True
    rid = url.rsplit("/", 1)[1]
    assert stub.responses(rid) == payloads
    assert [e.status for e in stub.events if e.kind == "response"] == [200] * 5 + [404]


def test_posts_to_a_commands_response_url_never_replace_its_ack(stub: SlackStub) -> None:
    """Slack documents replace_original for messages from interactions; on a slash command's response_url it does
    nothing to the ack, which stays on screen above every reply."""
    url = stub.new_response_url(channel_id="C0CAMPAIGN", user_id="U0SUPERVISOR")
    stub.show("C0CAMPAIGN", "U0SUPERVISOR", {"text": "Received: show lead-40"}, "ack")
    assert httpx.post(url, json={"text": "Lead lead-40", "replace_original": True}).status_code == 200
    assert httpx.post(url, json={"delete_original": True}).status_code == 200  # nothing it may delete
    assert httpx.post(url, json={"text": "for all", "response_type": "in_channel"}).status_code == 200
    shown = stub.screen("C0CAMPAIGN", "U0SUPERVISOR")
    assert [(m.message.get("text"), m.user_id, m.via) for m in shown] == [
        ("Received: show lead-40", "U0SUPERVISOR", "ack"),
        ("Lead lead-40", "U0SUPERVISOR", "response_url"),
        ("for all", None, "response_url"),
    ]
    assert [m.message.get("text") for m in stub.screen("C0CAMPAIGN", "U0SOMEONE")] == ["for all"]


def test_a_response_url_from_a_click_replaces_or_deletes_the_message_clicked(stub: SlackStub) -> None:
    question = {"text": "Apply anyway?", "blocks": []}
    key = stub.show("C0CAMPAIGN", "U0SUPERVISOR", question, "response_url")
    assert stub.shown_key({**question, "replace_original": True}) == key  # found whatever flags it was sent with
    replace = stub.new_response_url(channel_id="C0CAMPAIGN", user_id="U0SUPERVISOR", source=key)
    assert httpx.post(replace, json={"text": "Applied", "replace_original": True}).status_code == 200
    assert httpx.post(replace, json={"text": "a new message"}).status_code == 200  # no flag: a new message
    assert [m.message["text"] for m in stub.screen()] == ["Applied", "a new message"]
    assert httpx.post(replace, json={"delete_original": True}).status_code == 200
    assert [m.message["text"] for m in stub.screen()] == ["a new message"]


def test_unknown_expired_and_empty_response_urls(stub: SlackStub) -> None:
    unknown = httpx.post(stub.base_url + "/response/nope", json={"text": "hi"})
    assert (unknown.status_code, unknown.text) == (404, "invalid_url")

    short = stub.new_response_url(ttl=0.05)
    time.sleep(0.1)
    expired = httpx.post(short, json={"text": "hi"})
    assert (expired.status_code, expired.text) == (404, "expired_url")

    url = stub.new_response_url()
    empty = httpx.post(url, json={"response_type": "ephemeral"})
    assert (empty.status_code, empty.text) == (400, "no_text")
    assert stub.responses(url) == []


def test_a_response_url_refuses_more_than_fifty_blocks_and_keeps_its_use(stub: SlackStub) -> None:
    url = stub.new_response_url()
    block = {"type": "section", "text": {"type": "mrkdwn", "text": "line"}}
    too_many = httpx.post(url, json={"text": "t", "blocks": [block] * 51})
    assert (too_many.status_code, too_many.text) == (400, "invalid_blocks")
    assert stub.responses(url) == []
    fifty = httpx.post(url, json={"text": "t", "blocks": [block] * 50})
    assert (fifty.status_code, fifty.text) == (200, "ok")


def test_wait_responses_sees_posts_from_another_thread(stub: SlackStub) -> None:
    url = stub.new_response_url()

    def later() -> None:
        time.sleep(0.1)
        httpx.post(url, json={"text": "one"})
        httpx.post(url, json={"text": "two"})

    thread = threading.Thread(target=later)
    thread.start()
    try:
        assert [p["text"] for p in stub.wait_responses(url, count=2, timeout=5)] == ["one", "two"]
    finally:
        thread.join()
    with pytest.raises(NoAnswer, match="got 2 of 3"):
        stub.wait_responses(url, count=3, timeout=0.1)


# ---------------------------------------------------------------------- faults


def test_rate_limit_with_retry_after_then_success(stub: SlackStub) -> None:
    stub.fail("auth.test", status=429, retry_after=0)
    web = client(stub, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    assert run(lambda: web.auth_test())["ok"] is True
    first, second = stub.calls("auth.test")
    assert (first.status, first.response) == (429, {"ok": False, "error": "ratelimited"})
    assert second.ok

    stub.fail("auth.test", status=429, retry_after=7)
    raw = httpx.post(stub.api_url + "auth.test", headers={"Authorization": f"Bearer {stub.bot_token}"})
    assert (raw.status_code, raw.headers["retry-after"]) == (429, "7")


def test_server_errors_and_ok_false_errors_for_the_next_calls(stub: SlackStub) -> None:
    web = client(stub)
    stub.fail("chat.postMessage", status=500, times=2)
    stub.fail("chat.postMessage", status=200, error="channel_not_found")
    for _ in range(2):
        assert api_error(lambda: web.chat_postMessage(channel="C0CAMPAIGN", text="x")).response.status_code == 500
    assert api_error(lambda: web.chat_postMessage(channel="C0CAMPAIGN", text="x")).response["error"] == (
        "channel_not_found"
    )
    assert run(lambda: web.chat_postMessage(channel="C0CAMPAIGN", text="x"))["ok"]
    assert [c.status for c in stub.calls("chat.postMessage")] == [500, 500, 200, 200]


# ---------------------------------------------------------------------- recording


def test_wait_for_returns_the_first_match_and_explains_a_timeout(stub: SlackStub) -> None:
    web = client(stub)

    def later() -> None:
        time.sleep(0.1)
        asyncio.run(web.chat_postMessage(channel="C0CAMPAIGN", text="late"))

    thread = threading.Thread(target=later)
    thread.start()
    try:
        found = stub.wait_for(lambda e: e.name == "chat.postMessage", timeout=5)
    finally:
        thread.join()
    assert isinstance(found, Recorded)
    assert (found.kind, found.payload["text"]) == ("api", "late")
    assert found.at <= time.monotonic()

    with pytest.raises(NoAnswer, match=r"1 recorded event\(s\):\n  1\. api chat.postMessage -> ok"):
        stub.wait_for(lambda e: e.name == "views.open", timeout=0.1)

    seen: list[str] = []
    stub.on_record(lambda e: seen.append(e.name))
    stub.clear()
    assert stub.events == []
    with pytest.raises(NoAnswer, match="nothing was recorded"):
        stub.wait_for(lambda e: True, timeout=0.05)
    run(lambda: web.auth_test())
    assert seen == ["auth.test"]


def test_urls_need_a_started_stub() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        SlackStub().new_response_url()
