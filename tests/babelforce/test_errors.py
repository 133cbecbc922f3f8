"""What each error the client raises carries besides its sentence: the operation, the HTTP status, babelforce's
reason, and which list, lead or campaign it was about (against the sandbox; two mock-transport tests for a server
that echoes a credential)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr

from babelforce import (
    AddNotCreatedError,
    AmbiguousMatchError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BabelforceClient,
    ClientCredentials,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PasswordLogin,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    StaticToken,
    Timeouts,
    UnauthorizedError,
)
from babelforce.errors import short_reason

pytestmark = pytest.mark.anyio
LEAD_BY_ID = r"/leads/[0-9a-f]{32}$"  # one lead, not the list's leads or its export


async def spring(client: BabelforceClient) -> str:
    return (await client.find_list("Spring leads")).id


async def lead_id(client: BabelforceClient, list_id: str, uid: str) -> str:
    return (await client.find_lead_by_uid(list_id, uid)).id


def context(error: Exception) -> dict[str, object]:
    return {
        name: getattr(error, name) for name in ("operation", "status_code", "list_id", "lead_id", "campaign_id", "uid")
    }


# ---------------------------------------------------------------------- 404: which resource is missing


async def test_an_unknown_lead_is_a_404_for_that_lead(client):
    list_id, missing = await spring(client), uuid.uuid4().hex
    with pytest.raises(NotFoundError) as caught:
        await client.get_lead(list_id, str(uuid.UUID(missing)))  # the dashed spelling: ids come back normalized
    error = caught.value
    assert (error.resource, error.resource_id) == ("lead", missing)
    assert context(error) == {
        "operation": "get_lead",
        "status_code": 404,
        "list_id": list_id,
        "lead_id": missing,
        "campaign_id": None,
        "uid": None,
    }
    assert error.reason == f"Lead {missing} not found in lead-list {list_id}."


@pytest.mark.parametrize("operation", ["update_lead", "delete_lead"])
async def test_a_write_to_an_unknown_lead_names_the_write_and_the_lead(client, operation):
    list_id, missing = await spring(client), uuid.uuid4().hex
    with pytest.raises(NotFoundError) as caught:
        if operation == "update_lead":
            await client.update_lead(list_id, missing, rank=3)
        else:
            await client.delete_lead(list_id, missing)
    error = caught.value
    assert (error.operation, error.resource, error.list_id, error.lead_id) == (operation, "lead", list_id, missing)
    assert error.status_code == 404


@pytest.mark.parametrize("operation", ["get_list", "list_leads", "export_csv", "add_lead"])
async def test_an_unknown_list_is_a_404_for_that_list(client, operation):
    missing = uuid.uuid4().hex
    with pytest.raises(NotFoundError) as caught:
        if operation == "get_list":
            await client.get_list(missing)
        elif operation == "list_leads":
            [lead async for lead in client.iter_leads(missing)]
        elif operation == "export_csv":
            await client.find_lead_by_uid(missing, "lead-1")  # the lookup exports the list first
        else:
            await client.add_lead(missing, uid="new-1", number="+4915100000999", rank=1)
    error = caught.value
    assert (error.operation, error.resource, error.resource_id, error.status_code) == (
        operation,
        "list",
        missing,
        404,
    )
    assert error.lead_id is None
    assert error.reason == f"Lead-list {missing} not found."


@pytest.mark.parametrize("operation", ["get_campaign", "get_hopper"])
async def test_an_unknown_campaign_is_a_404_for_that_campaign(client, operation):
    missing = uuid.uuid4().hex
    with pytest.raises(NotFoundError) as caught:
        await (client.get_campaign(missing) if operation == "get_campaign" else client.get_hopper(missing))
    error = caught.value
    assert (error.operation, error.resource, error.campaign_id, error.status_code) == (
        operation,
        "campaign",
        missing,
        404,
    )


async def test_a_lookup_that_finds_nothing_says_what_was_looked_for(client):
    list_id = await spring(client)
    with pytest.raises(NotFoundError) as by_uid:
        await client.find_lead_by_uid(list_id, "nobody")
    assert (by_uid.value.operation, by_uid.value.resource, by_uid.value.list_id, by_uid.value.uid) == (
        "find_lead",
        "lead",
        list_id,
        "nobody",
    )
    assert by_uid.value.lead_id is None and by_uid.value.reason is None
    with pytest.raises(NotFoundError) as by_name:
        await client.find_list("Winter leads")
    assert (by_name.value.operation, by_name.value.resource, by_name.value.list_id) == ("find_list", "list", None)


async def test_an_id_that_is_no_id_is_not_found_without_an_id(client):
    with pytest.raises(NotFoundError) as caught:
        await client.get_lead("not-an-id", "a" * 32)
    assert (caught.value.operation, caught.value.resource, caught.value.list_id) == ("get_lead", "list", None)


# ---------------------------------------------------------------------- 409, 400, 403, 429, 5xx


async def test_a_duplicate_uid_is_a_409_with_the_servers_reason(client):
    list_id = await spring(client)
    with pytest.raises(ConflictError) as added:
        await client.add_lead(list_id, uid="lead-7", number="+4915100000999", rank=1)
    assert context(added.value) == {
        "operation": "add_lead",
        "status_code": 409,
        "list_id": list_id,
        "lead_id": None,
        "campaign_id": None,
        "uid": "lead-7",
    }
    assert added.value.reason == "A lead with uid lead-7 already exists in this list."
    assert added.value.server_message == added.value.reason  # the former name still answers

    holder = await lead_id(client, list_id, "lead-8")
    with pytest.raises(ConflictError) as renamed:
        await client.update_lead(list_id, holder, uid="lead-7")
    assert (renamed.value.operation, renamed.value.lead_id, renamed.value.uid) == ("update_lead", holder, "lead-7")
    assert renamed.value.status_code == 409


async def test_a_rejected_request_carries_the_servers_reason(client):
    list_id = await spring(client)
    with pytest.raises(InvalidRequestError) as caught:
        await client.add_lead(list_id, uid="too-high", number="+4915100000999", rank=40000)
    error = caught.value
    assert (error.operation, error.status_code, error.list_id, error.uid) == ("add_lead", 400, list_id, "too-high")
    assert error.reason is not None and "rank" in error.reason
    assert error.reason.rstrip(".") in error.message


async def test_a_503_after_the_retries_carries_503(client, control):
    list_id = await spring(client)
    holder = await lead_id(client, list_id, "lead-9")
    control.reset_stats()
    control.faults({"status": 503, "method": "GET", "path": LEAD_BY_ID, "times": None})
    with pytest.raises(ServerError) as caught:
        await client.get_lead(list_id, holder)
    control.clear_faults()
    error = caught.value
    assert (error.operation, error.status_code, error.list_id, error.lead_id) == ("get_lead", 503, list_id, holder)
    assert error.reason == "Simulated 503"
    assert control.count("GET /api/v2/outbound/lists/{id}/leads/{leadId}") == 3  # 1 + 2 retries


async def test_a_429_carries_429_and_the_wait(make_client, control):
    client = make_client(retry=RetryPolicy(max_retries=0))
    control.faults({"status": 429, "retry_after": 2, "method": "GET", "path": r"/outbound/campaigns$"})
    with pytest.raises(RateLimitedError) as caught:
        await client.list_campaigns()
    assert (caught.value.operation, caught.value.status_code, caught.value.retry_after) == ("list_campaigns", 429, 2)


async def test_a_403_names_the_operation(client, control):
    list_id = await spring(client)
    control.faults({"status": 403, "method": "PUT"})
    holder = await lead_id(client, list_id, "lead-3")
    with pytest.raises(PermissionDeniedError) as caught:
        await client.update_lead(list_id, holder, rank=4)
    assert (caught.value.operation, caught.value.status_code, caught.value.lead_id) == ("update_lead", 403, holder)


async def test_an_unreadable_success_is_a_server_error_with_its_2xx_status(make_client):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "bearer", "expires_in": 60})
        return httpx.Response(200, json={"no": "item"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = make_client(base_url="http://babelforce.invalid", http_client=http)
        with pytest.raises(ServerError) as caught:
            await client.get_campaign("c" * 32)
    assert (caught.value.operation, caught.value.status_code, caught.value.campaign_id) == (
        "get_campaign",
        200,
        "c" * 32,
    )


# ---------------------------------------------------------------------- "success": false and detail

LOCKED = {"success": False, "message": "Lead is locked", "detail": "a campaign is dialling it"}


async def test_a_200_saying_success_false_is_a_refused_write_with_its_reason(client, control, sandbox):
    """The spec's envelopes all carry `success`: a 2xx that says false did not happen, whatever its status."""
    list_id = await spring(client)
    holder = await lead_id(client, list_id, "lead-5")
    control.faults({"status": 200, "body": LOCKED, "method": "PUT"})
    with pytest.raises(InvalidRequestError) as caught:
        await client.update_lead(list_id, holder, rank=55)
    error = caught.value
    assert context(error) == {
        "operation": "update_lead",
        "status_code": 200,
        "list_id": list_id,
        "lead_id": holder,
        "campaign_id": None,
        "uid": None,
    }
    assert error.reason == "Lead is locked: a campaign is dialling it"
    assert error.message == f"babelforce answered that it could not update lead {holder}: {error.reason}."
    assert short_reason(error) == "babelforce reported a failure"  # not "HTTP 200"
    assert (await client.get_lead(list_id, holder)).rank == 5


async def test_an_add_answered_success_false_is_refused_not_settled_by_a_lookup(client, control):
    list_id = await spring(client)
    control.reset_stats()
    control.faults({"status": 200, "body": {"success": False, "message": "List is full"}, "method": "POST"})
    with pytest.raises(InvalidRequestError) as caught:
        await client.add_lead(list_id, uid="full-1", number="+4915100000998", rank=3)
    assert (caught.value.operation, caught.value.uid, caught.value.reason) == ("add_lead", "full-1", "List is full")
    assert control.stats()["total"] == 1  # the POST alone: no export to look the uid up, no second POST


@pytest.mark.parametrize(
    "call",
    ["list_lists", "list_campaigns", "get_hopper", "get_lead", "delete_lead", "export_csv", "list_leads"],
)
async def test_every_operation_reads_success_false(client, control, call):
    """Reads too: `{"success": false, "items": []}` is a refusal, never "there are none"."""
    list_id = await spring(client)
    holder = await lead_id(client, list_id, "lead-6")
    campaign = (await client.find_campaign_for_list(list_id)).id
    control.faults({"status": 200, "body": {"success": False, "items": [], "message": "Try later"}})
    calls = {
        "list_lists": lambda: client.list_lists(),
        "list_campaigns": lambda: client.list_campaigns(),
        "get_hopper": lambda: client.get_hopper(campaign),
        "get_lead": lambda: client.get_lead(list_id, holder),
        "delete_lead": lambda: client.delete_lead(list_id, holder),
        "export_csv": lambda: client.export_leads_csv(list_id),
        "list_leads": lambda: _first(client.iter_leads(list_id)),
    }
    with pytest.raises(InvalidRequestError) as caught:
        await calls[call]()
    assert (caught.value.status_code, caught.value.reason) == (200, "Try later")
    assert caught.value.operation == call
    assert (await client.get_lead(list_id, holder)).uid == "lead-6"  # nothing deleted


async def _first(leads):
    async for lead in leads:
        return lead
    return None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"detail": "Lead not found"}, "Lead not found"),
        ({"success": False, "message": "Not found", "detail": "no such lead"}, "Not found: no such lead"),
        ({"message": "Lead not found", "detail": "Lead not found."}, "Lead not found"),  # said once
        ({"detail": [{"loc": ["rank"], "msg": "rank too big"}, {"msg": "uid empty"}]}, "rank too big; uid empty"),
        ({"detail": {"title": "Gone", "status": 404}}, "Gone"),
        ({"error": "not_found", "error_description": "Unknown lead"}, "Unknown lead"),
    ],
)
async def test_an_error_reason_reads_detail_in_its_shapes(client, control, body, reason):
    list_id = await spring(client)
    holder = await lead_id(client, list_id, "lead-8")
    control.faults({"status": 404, "body": body, "method": "GET", "path": LEAD_BY_ID})
    with pytest.raises(NotFoundError) as caught:
        await client.get_lead(list_id, holder)
    assert (caught.value.status_code, caught.value.resource, caught.value.reason) == (404, "lead", reason)


# ---------------------------------------------------------------------- no answer


async def test_a_timeout_names_the_operation_and_the_wait_and_has_no_status(make_client, control):
    client = make_client(retry=RetryPolicy(max_retries=0), timeouts=Timeouts(connect=2.0, read=5.0, deadline=0.6))
    list_id = await spring(client)
    holder = await lead_id(client, list_id, "lead-11")
    control.faults({"stall_s": 2, "method": "GET", "path": LEAD_BY_ID})
    with pytest.raises(APITimeoutError) as caught:
        await client.get_lead(list_id, holder)
    error = caught.value
    assert (error.operation, error.list_id, error.lead_id, error.timeout) == ("get_lead", list_id, holder, 0.6)
    assert error.status_code is None and error.reason is None


async def test_a_dropped_connection_names_the_operation_and_has_no_status(client, control):
    control.faults({"reset": "before", "method": "GET", "path": r"/outbound/lists$", "times": None})
    with pytest.raises(APIConnectionError) as caught:
        await client.list_lists()
    control.clear_faults()
    assert (caught.value.operation, caught.value.status_code) == ("list_lists", None)


async def test_an_add_whose_answer_was_lost_says_why_and_which_uid(client, control):
    list_id = await spring(client)
    control.faults({"reset": "before", "method": "POST", "path": r"/leads$"})
    with pytest.raises(AddNotCreatedError) as caught:
        await client.add_lead(list_id, uid="dropped", number="+4915100000998", rank=2)
    error = caught.value
    assert (error.operation, error.list_id, error.uid, error.status_code) == ("add_lead", list_id, "dropped", None)
    assert isinstance(error.lost, APIConnectionError) and error.lost.operation == "add_lead"


async def test_a_shared_number_is_ambiguous_with_the_candidates(client, sandbox):
    list_id = await spring(client)
    sandbox.state.add_lead(list_id, "twin-40", "+4915100000040", 1)
    with pytest.raises(AmbiguousMatchError) as caught:
        await client.find_lead(list_id, "+4915100000040")
    error = caught.value
    assert (error.operation, error.resource, error.reference, error.list_id) == (
        "find_lead",
        "lead",
        "+4915100000040",
        list_id,
    )
    assert len(error.candidates) == 2


# ---------------------------------------------------------------------- logging in, and secrets


async def test_a_refused_login_is_the_token_operation_with_the_servers_reason(make_client):
    client = make_client(credentials=ClientCredentials("sandbox", SecretStr("not-the-secret")))
    with pytest.raises(AuthenticationError) as caught:
        await client.get_lead("a" * 32, "b" * 32)
    error = caught.value
    assert (error.operation, error.status_code) == ("token", 400)
    assert error.reason == "Unknown client or wrong client_secret."
    assert error.list_id is None  # the login is shared by every waiting call; it is about none of them


async def test_a_revoked_static_token_is_a_401_for_the_call(make_client):
    client = make_client(credentials=StaticToken(SecretStr("made-up-token-value")))
    with pytest.raises(UnauthorizedError) as caught:
        await client.list_lists()
    assert (caught.value.operation, caught.value.status_code) == ("list_lists", 401)
    assert "made-up-token-value" not in (caught.value.reason or "")


async def test_a_server_echoing_our_bearer_token_does_not_put_it_in_the_reason(make_client):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "s3cr3t-t0ken", "expires_in": 60})
        echoed = f"bad request for {request.headers['Authorization']} (token s3cr3t-t0ken)"
        return httpx.Response(400, json={"detail": echoed})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = make_client(base_url="http://babelforce.invalid", http_client=http)
        with pytest.raises(InvalidRequestError) as caught:
            await client.list_lists()
    error = caught.value
    assert error.reason == "bad request for Bearer [redacted] (token [redacted])"
    assert "s3cr3t-t0ken" not in str(error)


async def test_a_token_endpoint_echoing_the_password_does_not_put_it_in_the_reason(make_client):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_grant", "error_description": "wrong password hunt er2"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = make_client(
            base_url="http://babelforce.invalid",
            http_client=http,
            credentials=PasswordLogin("demo", SecretStr("hunt er2")),
        )
        with pytest.raises(AuthenticationError) as caught:
            await client.list_lists()
    assert (caught.value.operation, caught.value.status_code) == ("token", 401)
    assert caught.value.reason == "wrong password [redacted]"
    assert "hunt er2" not in str(caught.value)


def test_errors_built_the_old_way_still_work():
    """Callers that build errors with the former arguments (tests, fakes) keep working; the new ones default."""
    error = NotFoundError("No lead.", status_code=404, method="GET", path="/x", server_message="gone")
    assert (error.reason, error.server_message, error.resource, error.operation, error.path) == (
        "gone",
        "gone",
        None,
        None,
        "/x",
    )
    assert isinstance(UnauthorizedError("no", status_code=401), APIStatusError | AuthenticationError)
    assert AddNotCreatedError("nothing").lost is None
