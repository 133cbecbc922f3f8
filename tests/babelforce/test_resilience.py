"""Faults injected through the sandbox's /sandbox/faults: retries, deadlines, token refresh, and adds that are
never doubled. Request counts come from /sandbox/stats, so each test proves how many calls really went out."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from pydantic import SecretStr

from babelforce import (
    AddNotCreatedError,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ClientCredentials,
    PasswordLogin,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    Timeouts,
    UnauthorizedError,
)
from tests.support import SandboxControl

pytestmark = pytest.mark.anyio

LISTS = "GET /api/v2/outbound/lists"
ADD = "POST /api/v2/outbound/lists/{id}/leads"
TOKEN = "POST /oauth/token"


async def spring_id(client) -> str:
    return (await client.find_list("Spring leads")).id


async def count_uid(control, list_id: str, uid: str) -> int:
    csv_text = control.api("GET", f"/api/v2/outbound/lists/{list_id}/leads", params={"format": "csv"}).text
    return sum(1 for line in csv_text.splitlines()[1:] if line.split(",")[1] == uid)


async def test_503_is_retried_then_succeeds(client, control):
    await client.list_lists()  # token fetched
    control.reset_stats()
    control.faults({"status": 503, "method": "GET", "path": r"/outbound/lists$", "times": 2})
    assert len(await client.list_lists()) >= 3
    assert control.count(LISTS) == 3


async def test_retries_stop_after_two_and_the_error_is_one_sentence(client, control):
    await client.list_lists()
    control.reset_stats()
    control.faults({"status": 502, "method": "GET", "path": r"/outbound/lists$", "times": 5})
    with pytest.raises(ServerError) as caught:
        await client.list_lists()
    assert control.count(LISTS) == 3
    assert str(caught.value) == (
        "babelforce had a server error (HTTP 502) when asked to list the lead-lists; try again shortly."
    )


async def test_retry_after_is_honoured(make_client, control):
    bf = make_client(retry=RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=10))
    await bf.list_lists()
    control.faults({"status": 429, "retry_after": 1, "method": "GET", "path": r"/outbound/lists$"})
    started = time.monotonic()
    await bf.list_lists()
    assert time.monotonic() - started >= 0.95


async def test_retry_after_is_capped(make_client, control):
    bf = make_client(retry=RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.2))
    await bf.list_lists()
    control.reset_stats()
    control.faults({"status": 503, "retry_after": 30, "method": "GET", "path": r"/outbound/lists$"})
    started = time.monotonic()
    await bf.list_lists()
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 5  # 30 s asked, 0.2 s cap: waited the cap, not the 10 ms backoff and not 30 s
    assert control.count(LISTS) == 2


async def test_retry_after_longer_than_the_deadline_fails_fast_with_the_wait(make_client, control):
    bf = make_client(timeouts=Timeouts(connect=1, read=2, deadline=2), retry=RetryPolicy(backoff_cap=10))
    await bf.list_lists()
    control.faults({"status": 429, "retry_after": 5, "method": "GET", "path": r"/outbound/lists$"})
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        await bf.list_lists()
    assert time.monotonic() - started < 1.5
    assert caught.value.retry_after == 5
    assert "try again in 5 s" in str(caught.value)


async def test_connection_reset_on_a_get_is_retried(client, control):
    await client.list_lists()
    control.reset_stats()
    control.faults({"reset": "before", "method": "GET", "path": r"/outbound/lists$"})
    assert len(await client.list_lists()) >= 3
    assert control.count(LISTS) == 2


async def test_a_post_answered_503_is_not_retried_and_nothing_is_created(client, control):
    list_id = await spring_id(client)
    control.reset_stats()
    control.faults({"status": 503, "method": "POST", "path": r"/leads$"})
    with pytest.raises(AddNotCreatedError) as caught:
        await client.add_lead(list_id, uid="not-doubled", number="+4915100000321", rank=7)
    assert control.count(ADD) == 1
    assert await count_uid(control, list_id, "not-doubled") == 0
    message = str(caught.value)
    assert "(HTTP 503)" in message and "nothing was created; try again." in message
    assert ". " not in message and "\n" not in message  # one sentence, not the 503's own sentence nested inside


class MangledAnswers(httpx.AsyncBaseTransport):
    """The real transport to the sandbox, but answers to `method` on paths ending in `suffix` lose their `item`
    after the sandbox acted: a 2xx babelforce answer whose body is not the documented shape."""

    def __init__(self, method: str, suffix: str) -> None:
        self._real = httpx.AsyncHTTPTransport()
        self._method, self._suffix = method, suffix

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._real.handle_async_request(request)
        if request.method != self._method or not request.url.path.endswith(self._suffix):
            return response
        await response.aread()
        await response.aclose()
        return httpx.Response(200, json={"success": True}, request=request)

    async def aclose(self) -> None:
        await self._real.aclose()


async def test_add_answered_with_an_unreadable_success_is_settled_not_a_crash(make_client, control):
    """A 2xx without an `item` is a lost answer (the add did happen): looked up and reported, never a KeyError."""
    async with httpx.AsyncClient(transport=MangledAnswers("POST", "/leads")) as http:
        bf = make_client(http_client=http)
        list_id = await spring_id(bf)
        control.reset_stats()
        result = await bf.add_lead(list_id, uid="odd-answer", number="+4915100000325", rank=11)
    assert result.recovered and result.lead.uid == "odd-answer"
    assert control.count(ADD) == 1
    assert await count_uid(control, list_id, "odd-answer") == 1


async def test_an_unreadable_success_on_a_get_is_a_server_error(client, make_client):
    list_id = await spring_id(client)
    campaign = await client.find_campaign_for_list(list_id)
    async with httpx.AsyncClient(transport=MangledAnswers("GET", list_id)) as http:
        with pytest.raises(ServerError, match="could not be read when asked to get list"):
            await make_client(http_client=http).get_list(list_id)
    async with httpx.AsyncClient(transport=MangledAnswers("GET", "/hopper")) as http:
        with pytest.raises(ServerError, match="could not be read when asked to get the hopper"):
            await make_client(http_client=http).get_hopper(campaign.id)  # no `items` is not an empty hopper


async def test_an_add_that_could_not_log_in_was_never_sent_and_says_so(make_client, control):
    """A failed token fetch is not a lost add: nothing to look up, and the error is about logging in."""
    bf = make_client()
    list_id = (await bf.find_list("Spring leads")).id
    fresh = make_client()  # no token yet
    control.reset_stats()
    control.faults({"reset": "after", "path": r"^/oauth/token$", "times": None})
    with pytest.raises(APIConnectionError) as caught:
        await fresh.add_lead(list_id, uid="no-login", number="+4915100000326", rank=12)
    control.clear_faults()
    assert not isinstance(caught.value, AddNotCreatedError)
    assert not caught.value.may_have_reached_server
    assert "log in" in str(caught.value)
    assert control.count(ADD) == 0
    assert control.count("GET /api/v2/outbound/lists/{id}/leads") == 0  # no pointless reconciliation export


async def test_an_add_whose_login_stalls_times_out_as_never_sent(make_client, control):
    bf = make_client()
    list_id = (await bf.find_list("Spring leads")).id
    fresh = make_client(timeouts=Timeouts(connect=1, read=1, deadline=0.8), retry=RetryPolicy(max_retries=0))
    control.reset_stats()
    control.faults({"stall_s": 4, "path": r"^/oauth/token$"})
    with pytest.raises(APITimeoutError) as caught:
        await fresh.add_lead(list_id, uid="slow-login", number="+4915100000327", rank=13)
    assert not caught.value.may_have_reached_server
    assert control.count(ADD) == 0


async def test_lost_answer_to_an_add_is_reconciled_to_exactly_one_lead(client, control):
    list_id = await spring_id(client)
    control.reset_stats()
    control.faults({"reset": "after", "method": "POST", "path": r"/leads$"})
    result = await client.add_lead(list_id, uid="lost-answer", number="+4915100000322", rank=8, data={"k": "v"})
    assert result.recovered
    assert result.lead.uid == "lost-answer" and result.lead.rank == 8
    assert control.count(ADD) == 1
    assert await count_uid(control, list_id, "lost-answer") == 1


async def test_add_reset_before_it_acted_reports_nothing_created(client, control):
    list_id = await spring_id(client)
    control.faults({"reset": "before", "method": "POST", "path": r"/leads$"})
    with pytest.raises(AddNotCreatedError):
        await client.add_lead(list_id, uid="never-arrived", number="+4915100000323", rank=9)
    assert await count_uid(control, list_id, "never-arrived") == 0


async def test_stalled_add_times_out_then_is_found(make_client, control):
    bf = make_client(timeouts=Timeouts(connect=1, read=1, deadline=0.8))
    list_id = await spring_id(bf)
    control.faults({"stall_s": 4, "method": "POST", "path": r"/leads$"})
    result = await bf.add_lead(list_id, uid="slow-add", number="+4915100000324", rank=10)
    assert result.recovered
    assert await count_uid(control, list_id, "slow-add") == 1


async def test_trickling_server_cannot_outlast_the_deadline(make_client, control):
    bf = make_client(timeouts=Timeouts(connect=1, read=1, deadline=1.5), retry=RetryPolicy(max_retries=0))
    await bf.list_lists()
    control.faults({"stall_s": 6, "method": "GET", "path": r"/outbound/lists$"})
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        await bf.list_lists()
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 3.0  # bytes every 0.2 s never trip the 1 s read timeout: only the deadline does
    assert "did not answer within 1.5 s" in str(caught.value)


async def test_fifty_concurrent_calls_with_an_expired_token_fetch_one_token(sandbox_factory, make_client):
    short_lived = sandbox_factory(token_ttl=1)
    ctl = SandboxControl(short_lived.base_url)
    bf = make_client(base_url=short_lived.base_url)
    list_id = await spring_id(bf)
    await asyncio.sleep(1.2)  # token expired for both sides now
    ctl.reset_stats()
    results = await asyncio.gather(*(bf.get_list(list_id) for _ in range(50)))
    assert {lead_list.name for lead_list in results} == {"Spring leads"}
    assert ctl.count(TOKEN) == 1
    assert ctl.count("GET /api/v2/outbound/lists/{id}") == 50
    ctl.close()


async def test_fifty_concurrent_401s_after_server_side_expiry_fetch_one_token(client, control):
    """The client still believes its token is good; all fifty get a 401 at once, and share one refresh."""
    list_id = await spring_id(client)
    control.expire_tokens()
    control.reset_stats()
    results = await asyncio.gather(*(client.get_list(list_id) for _ in range(50)))
    assert {lead_list.name for lead_list in results} == {"Spring leads"}
    assert control.count(TOKEN) == 1
    assert control.count("GET /api/v2/outbound/lists/{id}") == 100  # each: one 401, one retry


async def test_fifty_concurrent_calls_with_refused_credentials_try_to_log_in_once(make_client, control):
    """Waiters share the failed login instead of each repeating it (a burst of bad logins can lock an account)."""
    bf = make_client(credentials=PasswordLogin("demo", SecretStr("wrong-password")))
    control.reset_stats()
    outcomes = await asyncio.gather(*(bf.list_lists() for _ in range(50)), return_exceptions=True)
    assert all(isinstance(outcome, AuthenticationError) for outcome in outcomes)
    assert control.count(TOKEN) == 1
    assert control.count(LISTS) == 0


async def test_a_login_after_a_failed_one_is_tried_again(make_client, control):
    """Sharing a failure is only for the calls that waited on it: a later call logs in afresh."""
    bf = make_client()
    control.faults({"status": 503, "path": r"^/oauth/token$", "times": 3})  # the first login and its 2 retries
    with pytest.raises(ServerError):
        await bf.list_lists()
    assert len(await bf.list_lists()) >= 3


async def test_refused_refresh_token_falls_back_to_one_login_and_a_refused_login_is_not_a_loop(make_client, control):
    bf = make_client(credentials=PasswordLogin("demo", SecretStr("demo")))
    await bf.list_lists()
    control.expire_tokens()
    control.reset_stats()
    control.faults({"status": 400, "path": r"^/oauth/token$"})  # the refresh_token grant is refused once
    assert len(await bf.list_lists()) >= 3
    assert control.count(TOKEN) == 2  # refused refresh, then a password login

    control.expire_tokens()
    control.reset_stats()
    control.faults({"status": 400, "path": r"^/oauth/token$", "times": None})
    with pytest.raises(AuthenticationError):
        await bf.list_lists()
    control.clear_faults()
    assert control.count(TOKEN) == 2  # refresh, then login: then an error, not another round
    assert control.count(LISTS) == 1


async def test_server_side_expiry_refreshes_once_and_retries(client, control):
    await client.list_lists()
    control.expire_tokens()  # the client still believes its token is good: the server answers 401
    control.reset_stats()
    assert len(await client.list_lists()) >= 3
    assert control.count(TOKEN) == 1
    assert control.count(LISTS) == 2


async def test_requests_waiting_for_a_connection_take_the_refreshed_token_not_the_expired_one(make_client, control):
    """Under load the token is taken once a connection slot is free: after a server-side expiry only the calls
    already in flight meet a 401, not every queued one (and the refresh itself needs no slot)."""
    bf = make_client(max_connections=4)
    await bf.list_lists()
    control.expire_tokens()
    control.faults({"method": "GET", "latency_ms": 100, "times": None})
    control.reset_stats()

    answers = await asyncio.gather(*(bf.list_lists() for _ in range(40)))

    control.clear_faults()
    assert all(len(lists) >= 3 for lists in answers)
    assert control.count(TOKEN) == 1
    assert 40 <= control.count(LISTS) <= 40 + 4  # at most the 4 in flight at the expiry were sent twice


async def test_a_second_401_is_an_error_not_a_loop(client, control):
    await client.list_lists()
    control.reset_stats()
    control.faults({"status": 401, "method": "GET", "path": r"/outbound/lists$", "times": None})
    with pytest.raises(UnauthorizedError):
        await client.list_lists()
    assert control.count(LISTS) == 2
    assert control.count(TOKEN) == 1
    control.clear_faults()


async def test_refresh_token_rotation_is_used_for_password_logins(make_client, control):
    bf = make_client(credentials=PasswordLogin("demo", SecretStr("demo")))
    await bf.list_lists()
    first_refresh_token = bf._tokens._refresh_token
    assert first_refresh_token
    control.expire_tokens()
    await bf.list_lists()
    await bf.list_lists()
    assert control.count(TOKEN) == 2  # the login, then one refresh_token grant
    assert control.count(LISTS) == 4
    # Only a refresh_token grant consumes the old refresh token (a second password login would leave it valid).
    reuse = {"grant_type": "refresh_token", "refresh_token": first_refresh_token, "client_id": "manager"}
    answer = httpx.post(f"{control.base_url}/oauth/token", data=reuse)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert bf._tokens._refresh_token not in (None, first_refresh_token)


async def test_unreachable_babelforce_is_one_clear_sentence(make_client):
    bf = make_client(base_url="http://127.0.0.1:9", retry=RetryPolicy(max_retries=1, backoff_base=0.01))
    with pytest.raises(APIConnectionError) as caught:
        await bf.list_lists()
    assert str(caught.value) == "Could not connect to babelforce at 127.0.0.1 to log in."
    assert not caught.value.may_have_reached_server


async def test_no_secret_appears_in_errors_or_logs(make_client, control, log_lines):
    from babelforce import BabelforceError, StaticToken

    token = control.token()
    scenarios = [
        (make_client(credentials=StaticToken(SecretStr(token))), {"status": 401, "times": None}),
        (make_client(credentials=PasswordLogin("demo", SecretStr("demo-wrong-pass"))), None),
        (make_client(credentials=ClientCredentials("sandbox", SecretStr("client-secret-wrong"))), None),
        (make_client(credentials=StaticToken(SecretStr(token))), {"status": 503, "times": None}),
        (make_client(credentials=StaticToken(SecretStr(token))), {"reset": "before", "times": None}),
    ]
    messages = []
    for bf, rule in scenarios:
        control.clear_faults()
        if rule:
            control.faults({"path": r"/outbound/lists$", **rule})
        with pytest.raises(BabelforceError) as caught:
            await bf.list_lists()
        messages.append(str(caught.value))
    control.clear_faults()
    text = "\n".join(messages + log_lines())
    assert len(messages) == 5
    for secret in (token, "demo-wrong-pass", "client-secret-wrong"):
        assert secret not in text


async def test_an_undecodable_answer_is_one_sentence_not_a_crash(make_client):
    """A gzip header on a body that is not gzip: httpx raises DecodingError, which is not a TransportError."""

    def garbled(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "bearer", "expires_in": 60})
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"definitely not gzip")

    transport_client = httpx.AsyncClient(transport=httpx.MockTransport(garbled))
    bf = make_client(base_url="http://babelforce.invalid", http_client=transport_client)
    with pytest.raises(APIConnectionError, match="could not be decoded when asked to list the lead-lists"):
        await bf.list_lists()
    await transport_client.aclose()
