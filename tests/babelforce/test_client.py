"""The client against the running sandbox: every operation the bot needs, both id spellings, all three auths."""

from __future__ import annotations

import asyncio
import uuid

import certifi
import pytest
from pydantic import SecretStr

from babelforce import (
    AmbiguousMatchError,
    AuthenticationError,
    BabelforceClient,
    BabelforceError,
    ClientCredentials,
    ConflictError,
    InvalidRequestError,
    ListOrder,
    NotFoundError,
    PasswordLogin,
    StaticToken,
    UnauthorizedError,
)
from babelforce.transport import ShardedTransport

pytestmark = pytest.mark.anyio
CREDENTIALS = ClientCredentials("id", SecretStr("secret"))


def dashed(compact_id: str) -> str:
    return str(uuid.UUID(compact_id))


async def spring(client: BabelforceClient):
    return await client.find_list("Spring leads")


async def test_list_lists_and_find_by_name_case_insensitively(client):
    lists = await client.list_lists()
    names = {lead_list.name for lead_list in lists}
    assert {"Spring leads", "Autumn leads", "Renewals"} <= names
    found = await client.find_list("  sPrInG LEADS ")
    assert found.name == "Spring leads"
    assert found.count == 50
    assert len(found.id) == 32


async def test_find_list_by_id_in_both_spellings(client):
    spring_list = await spring(client)
    assert (await client.find_list(spring_list.id)).name == "Spring leads"
    assert (await client.find_list(dashed(spring_list.id).upper())).name == "Spring leads"
    assert (await client.get_list(dashed(spring_list.id))).id == spring_list.id


async def test_unknown_list_names_the_lists_there_are(client):
    with pytest.raises(NotFoundError) as caught:
        await client.find_list("Winter leads")
    assert "No list named 'Winter leads'" in str(caught.value)
    assert "Spring leads" in str(caught.value)


async def test_get_list_with_unknown_id_is_not_found(client):
    with pytest.raises(NotFoundError, match="No list with id"):
        await client.get_list(uuid.uuid4().hex)


async def test_add_then_get_lead_with_data(client, control):
    spring_list = await spring(client)
    result = await client.add_lead(
        spring_list.id, uid="uuid_100", number="+4916098119998", rank=500, data={"address": "martin mendalde"}
    )
    assert not result.recovered
    lead = result.lead
    assert (lead.uid, lead.number, lead.rank, lead.data) == (
        "uuid_100",
        "+4916098119998",
        500,
        {"address": "martin mendalde"},
    )
    fetched = await client.get_lead(dashed(spring_list.id), dashed(lead.id))
    assert fetched.id == lead.id and fetched.data == {"address": "martin mendalde"}
    assert fetched.status == "pending"


async def test_duplicate_uid_is_a_conflict_and_creates_nothing(client, control):
    spring_list = await spring(client)
    with pytest.raises(ConflictError, match="uid 'lead-7' already exists"):
        await client.add_lead(spring_list.id, uid="lead-7", number="+4915100000999", rank=1)
    assert (await client.get_list(spring_list.id)).count == 50


async def test_rank_out_of_range_is_rejected_with_the_servers_reason(client):
    spring_list = await spring(client)
    with pytest.raises(InvalidRequestError) as caught:
        await client.add_lead(spring_list.id, uid="too-high", number="+4915100000999", rank=40000)
    assert "rank" in str(caught.value)
    assert caught.value.status_code == 400


async def test_partial_update_changes_only_given_fields_and_null_deletes_a_data_key(client):
    spring_list = await spring(client)
    added = (
        await client.add_lead(
            spring_list.id, uid="partial", number="+4915100000777", rank=5, data={"old data": "x", "keep": "yes"}
        )
    ).lead
    updated = await client.update_lead(spring_list.id, added.id, rank=200, data={"new data": "new", "old data": None})
    assert updated.rank == 200
    assert updated.uid == "partial" and updated.number == "+4915100000777"
    assert updated.data == {"keep": "yes", "new data": "new"}
    again = await client.get_lead(spring_list.id, added.id)
    assert again.data == {"keep": "yes", "new data": "new"}


async def test_update_of_unknown_lead_is_not_found(client):
    spring_list = await spring(client)
    with pytest.raises(NotFoundError, match="No lead with id"):
        await client.update_lead(spring_list.id, uuid.uuid4().hex, rank=3)


async def test_find_lead_by_uid_number_and_id(client):
    spring_list = await spring(client)
    by_uid = await client.find_lead_by_uid(spring_list.id, "lead-40")
    assert by_uid.rank == 40
    assert (await client.find_lead(spring_list.id, by_uid.id)).uid == "lead-40"
    assert (await client.find_lead(spring_list.id, dashed(by_uid.id))).uid == "lead-40"
    by_number = await client.find_leads_by_number(spring_list.id, by_uid.number)
    assert [lead.uid for lead in by_number] == ["lead-40"]
    assert (await client.find_lead(spring_list.id, by_uid.number)).uid == "lead-40"
    digits_only = by_uid.number.lstrip("+")
    assert (await client.find_lead(spring_list.id, digits_only)).uid == "lead-40"


async def test_find_lead_that_is_not_there(client):
    spring_list = await spring(client)
    with pytest.raises(NotFoundError, match="No lead with uid 'nobody'"):
        await client.find_lead_by_uid(spring_list.id, "nobody")
    with pytest.raises(NotFoundError):
        await client.find_lead(spring_list.id, "+4917000000000")


async def test_a_repeated_number_is_ambiguous_for_find_lead(client):
    spring_list = await spring(client)
    await client.add_lead(spring_list.id, uid="twin-a", number="+4915199999999", rank=1)
    await client.add_lead(spring_list.id, uid="twin-b", number="4915199999999", rank=1)
    leads = await client.find_leads_by_number(spring_list.id, "+49 151 99999999")
    assert sorted(lead.uid for lead in leads) == ["twin-a", "twin-b"]
    with pytest.raises(AmbiguousMatchError) as caught:
        await client.find_lead(spring_list.id, "+4915199999999")
    assert len(caught.value.candidates) == 2


async def test_renamed_uid_is_found_under_its_new_name_and_not_the_old(client):
    spring_list = await spring(client)
    lead = await client.find_lead_by_uid(spring_list.id, "lead-3")  # builds the index
    await client.update_lead(spring_list.id, lead.id, uid="lead-3-renamed")
    assert (await client.find_lead_by_uid(spring_list.id, "lead-3-renamed")).id == lead.id
    with pytest.raises(NotFoundError):
        await client.find_lead_by_uid(spring_list.id, "lead-3")


async def test_lead_added_by_someone_else_is_found_after_the_index_was_built(client, control):
    spring_list = await spring(client)
    await client.find_lead_by_uid(spring_list.id, "lead-1")  # index built now
    response = control.api(
        "POST",
        f"/api/v2/outbound/lists/{spring_list.id}/leads",
        json={"uid": "late", "number": "+4915100000555", "rank": 9},
    )
    assert response.status_code == 200
    assert (await client.find_lead_by_uid(spring_list.id, "late")).rank == 9


async def test_iter_leads_pages_through_the_whole_list(client):
    spring_list = await spring(client)
    uids = [lead.uid async for lead in client.iter_leads(spring_list.id, page_size=7)]
    assert len(uids) == 50
    assert set(uids) == {f"lead-{n}" for n in range(1, 51)}


async def test_campaign_for_list_and_its_hopper(client):
    spring_list = await spring(client)
    campaign = await client.find_campaign_for_list(spring_list.id)
    assert campaign is not None
    assert campaign.name == "Spring outreach"
    assert campaign.list_order == ListOrder.UP_RANK and campaign.ranks_matter and campaign.active
    assert (await client.get_campaign(dashed(campaign.id))).id == campaign.id
    hopper = await client.get_hopper(campaign.id)
    assert [entry.uid for entry in hopper] == [f"lead-{n}" for n in range(50, 30, -1)]
    assert [entry.order for entry in hopper] == list(range(1, 21))
    assert all(entry.list_id == spring_list.id for entry in hopper)


async def test_hopper_entries_without_an_id_are_read_with_their_list_id_and_uid(client, control, log_lines):
    """The spec makes every hopper field optional: without `id` an entry still names its lead (list id + uid)."""
    spring_list = await spring(client)
    campaign = await client.find_campaign_for_list(spring_list.id)
    assert campaign is not None
    control.faults({"drop_fields": ["id"], "path": "/hopper$", "times": None})
    hopper = await client.get_hopper(campaign.id)
    assert [(entry.id, entry.uid, entry.order) for entry in hopper] == [
        (None, f"lead-{n}", 51 - n) for n in range(50, 30, -1)
    ]
    assert all(entry.identifies_a_lead and entry.list_id == spring_list.id for entry in hopper)
    assert not [line for line in log_lines() if "name no lead" in line]


async def test_hopper_entries_naming_no_lead_are_kept_and_warned_about_once_per_read(client, control, log_lines):
    """One entry that names no lead must not make the whole hopper unreadable: it keeps its place, and each read
    logs one warning for all of them."""
    spring_list = await spring(client)
    campaign = await client.find_campaign_for_list(spring_list.id)
    assert campaign is not None
    control.faults({"drop_fields": ["id", "uid"], "path": "/hopper$", "times": 2})
    for _ in range(2):
        hopper = await client.get_hopper(campaign.id)
        assert len(hopper) == 20 and not any(entry.identifies_a_lead for entry in hopper)
    warnings = [line for line in log_lines() if "name no lead" in line]
    assert (
        warnings
        == [
            f"20 of the 20 entries in the hopper of campaign {campaign.id} name no lead (no id, and no list "
            "id + uid): they are skipped when looking for a lead in the hopper"
        ]
        * 2
    )
    odd = {"success": True, "items": [None, "x", {"order": {"not": "a number"}}, {"id": "a" * 32, "order": "4"}]}
    control.faults({"status": 200, "body": odd, "path": "/hopper$"})
    entries = await client.get_hopper(campaign.id)
    assert [entry.identifies_a_lead for entry in entries] == [True, False, False, False]  # sorted: order 4 first
    assert entries[0].id == "a" * 32


async def test_list_not_dialled_by_any_campaign(client):
    autumn = await client.find_list("Autumn leads")
    assert await client.find_campaign_for_list(autumn.id) is None


async def test_password_grant(make_client):
    bf = make_client(credentials=PasswordLogin("demo", SecretStr("demo")))
    assert len(await bf.list_lists()) >= 3


async def test_static_bearer_token(make_client, control):
    bf = make_client(credentials=StaticToken(SecretStr(control.token())))
    assert len(await bf.list_lists()) >= 3


async def test_wrong_client_secret_is_an_authentication_error(make_client):
    bf = make_client(credentials=ClientCredentials("sandbox", SecretStr("not-the-secret")))
    with pytest.raises(AuthenticationError) as caught:
        await bf.list_lists()
    assert "not-the-secret" not in str(caught.value)
    assert "invalid_client" in str(caught.value)


async def test_wrong_password_is_an_authentication_error(make_client):
    bf = make_client(credentials=PasswordLogin("demo", SecretStr("hunter2-wrong")))
    with pytest.raises(AuthenticationError) as caught:
        await bf.list_lists()
    assert "hunter2-wrong" not in str(caught.value)


async def test_revoked_static_token_says_so(make_client):
    bf = make_client(credentials=StaticToken(SecretStr("made-up-token-value")))
    with pytest.raises(UnauthorizedError) as caught:
        await bf.list_lists()
    assert "BABELFORCE_ACCESS_TOKEN" in str(caught.value)
    assert "made-up-token-value" not in str(caught.value)


async def test_a_deleted_lead_is_not_found_through_the_stale_index(client):
    spring_list = await spring(client)
    lead = await client.find_lead_by_uid(spring_list.id, "lead-5")  # index built with lead-5 in it
    await client.delete_lead(spring_list.id, lead.id)
    with pytest.raises(NotFoundError, match="No lead with uid 'lead-5'"):
        await client.find_lead_by_uid(spring_list.id, "lead-5")
    with pytest.raises(NotFoundError):
        await client.find_lead(spring_list.id, lead.number)


async def test_a_number_repeated_after_the_index_was_built_is_ambiguous(client):
    spring_list = await spring(client)
    first = await client.find_lead_by_uid(spring_list.id, "lead-6")  # index built: lead-6's number is unique
    twin = (await client.add_lead(spring_list.id, uid="twin-of-6", number=first.number, rank=1)).lead
    with pytest.raises(AmbiguousMatchError) as caught:
        await client.find_lead(spring_list.id, first.number)
    assert set(caught.value.candidates) == {first.id, twin.id}


async def test_a_lead_moved_to_another_number_is_found_only_under_the_new_one(client):
    spring_list = await spring(client)
    lead = await client.find_lead_by_uid(spring_list.id, "lead-8")
    old_number = lead.number
    await client.update_lead(spring_list.id, lead.id, number="+4915100000888")
    assert (await client.find_lead(spring_list.id, "+4915100000888")).id == lead.id
    with pytest.raises(NotFoundError):
        await client.find_leads_by_number(spring_list.id, old_number)


async def test_a_lead_with_a_large_data_payload_does_not_break_lookups(client):
    """The CSV export carries `data`; one field over csv's default 128 KiB limit must not sink the index."""
    spring_list = await spring(client)
    await client.add_lead(
        spring_list.id, uid="big-notes", number="+4915100000889", rank=2, data={"notes": "x" * 200_000}
    )
    assert (await client.find_lead_by_uid(spring_list.id, "lead-9")).rank == 9
    assert (await client.find_lead_by_uid(spring_list.id, "big-notes")).data["notes"] == "x" * 200_000


async def test_not_found_messages_stay_on_one_line(client, control):
    """List names come from the server and references from users: neither may break the one-line message."""
    created = control.api("POST", "/api/v2/outbound/lists", json={"name": "Night\nshift"})
    assert created.status_code == 200
    with pytest.raises(NotFoundError) as caught:
        await client.find_list("Winter leads")
    message = str(caught.value)
    assert "\n" not in message and "Night shift" in message
    assert message.startswith("No list named 'Winter leads'; the lists are: ") and message.count(". ") == 0
    spring_list = await spring(client)
    with pytest.raises(NotFoundError) as caught:
        await client.find_leads_by_number(spring_list.id, "+49 170\n0000000")
    assert "\n" not in str(caught.value)


async def test_delete_lead_removes_it_and_it_is_then_not_found(client):
    spring_list = await spring(client)
    lead = await client.find_lead_by_uid(spring_list.id, "lead-5")
    await client.delete_lead(spring_list.id, dashed(lead.id))
    with pytest.raises(NotFoundError):
        await client.find_lead_by_uid(spring_list.id, "lead-5")
    assert (await client.get_list(spring_list.id)).count == 49


async def test_delete_answered_with_an_empty_body_still_succeeds(make_client):
    """The spec gives a delete's answer no shape; a bare 200 must not read as an error (unit test, mock transport)."""
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "bearer", "expires_in": 60})
        assert request.method == "DELETE"
        return httpx.Response(200)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    bf = make_client(base_url="http://babelforce.invalid", http_client=http)
    await bf.delete_lead("a" * 32, "b" * 32)
    await http.aclose()


async def test_get_lead_with_max_age_reuses_a_recent_copy_and_sees_this_clients_writes(client, control):
    spring_list = await spring(client)
    lead = await client.find_lead(spring_list.id, "lead-7")
    control.reset_stats()
    assert (await client.get_lead(spring_list.id, lead.id, max_age=10)).rank == 7  # read by find_lead just now
    assert control.stats()["total"] == 0
    await client.update_lead(spring_list.id, lead.id, rank=70)
    assert (await client.get_lead(spring_list.id, lead.id, max_age=10)).rank == 70  # the write's answer
    assert (await client.get_lead(spring_list.id, lead.id, max_age=0)).rank == 70  # too old: read again
    assert (await client.get_lead(spring_list.id, lead.id)).rank == 70  # no max_age: always live
    assert control.stats()["total"] == 3  # the PUT, then two GETs


async def test_many_concurrent_calls_share_the_sharded_pool(client, control):
    """More calls than connections wait their turn (no queue inside httpx) and every one completes."""
    spring_list = await spring(client)
    leads = await asyncio.gather(*(client.find_lead(spring_list.id, f"lead-{n % 50 + 1}") for n in range(300)))
    assert [lead.uid for lead in leads] == [f"lead-{n % 50 + 1}" for n in range(300)]


async def test_a_slow_read_overtaken_by_this_clients_write_does_not_replace_the_newer_copy(client, control):
    """get_lead(max_age=...) must never answer with a value older than this client's own write."""
    spring_list = await spring(client)
    lead = await client.find_lead(spring_list.id, "lead-8")
    # the sandbox reads the lead at once, then trickles the answer for 0.6 s
    control.faults({"method": "GET", "path": r"/leads/[^/]+$", "stall_s": 0.6, "times": 1})
    slow_read = asyncio.ensure_future(client.get_lead(spring_list.id, lead.id))  # sent first, answers last
    await asyncio.sleep(0.2)
    await client.update_lead(spring_list.id, lead.id, rank=88)  # sent later, answers first
    assert (await slow_read).rank == 8  # what the sandbox had when it read

    assert (await client.get_lead(spring_list.id, lead.id, max_age=10)).rank == 88


async def test_a_write_whose_answer_is_lost_leaves_no_stale_copy_behind(client, control):
    spring_list = await spring(client)
    lead = await client.find_lead(spring_list.id, "lead-9")  # remembered: rank 9
    control.faults({"method": "PUT", "status": 400, "times": 1})
    with pytest.raises(BabelforceError):
        await client.update_lead(spring_list.id, lead.id, rank=99)
    control.reset_stats()

    await client.get_lead(spring_list.id, lead.id, max_age=10)

    assert control.stats()["total"] == 1  # read live: the copy from before the write was dropped


async def test_the_sharded_pool_steps_aside_for_a_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    """httpx honours HTTPS_PROXY only with its own transport; leadbot behind a corporate proxy must still use it."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = BabelforceClient(base_url="https://example.babelforce.com", credentials=CREDENTIALS)
    monkeypatch.setenv("NO_PROXY", "example.babelforce.com")
    bypassed = BabelforceClient(base_url="https://example.babelforce.com", credentials=CREDENTIALS)

    assert not isinstance(proxied._http._transport, ShardedTransport) and proxied._http._mounts
    assert isinstance(bypassed._http._transport, ShardedTransport)
    await proxied.aclose()
    await bypassed.aclose()


def test_every_shard_of_every_client_shares_one_ssl_context_per_ca_setting(monkeypatch: pytest.MonkeyPatch):
    """Loading the CA bundle takes tens of ms: once per process, not once per shard (16 per client)."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first, second = ShardedTransport(shards=4, per_shard=2), ShardedTransport(shards=2, per_shard=1)
    contexts = {id(shard._pool._ssl_context) for transport in (first, second) for shard in transport._shards}
    assert len(contexts) == 1

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # another CA setting: a context of its own
    other = ShardedTransport(shards=1, per_shard=1)
    assert other._shards[0]._pool._ssl_context is not first._shards[0]._pool._ssl_context
