"""Injected faults (status, bodies, dropped fields, resets, stalls, latency, matching) and per-route request stats."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox import SandboxServer
from sandbox.seed import AUTUMN_LIST_ID, DEMO_CAMPAIGN_ID, DEMO_LIST_ID

LISTS = "/api/v2/outbound/lists"
AUTUMN_LEADS = f"{LISTS}/{AUTUMN_LIST_ID}/leads"
NEW_LEAD = {"uid": "fault-1", "number": "+4915155555555", "rank": 3}


def add_faults(raw: httpx.Client, rules: object) -> list[dict]:
    response = raw.post("/sandbox/faults", json=rules)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def autumn_uids(sandbox: SandboxServer) -> set[str]:
    with sandbox.state.lock:
        return set(sandbox.state.lists[AUTUMN_LIST_ID].ids_by_uid)


def test_status_fault_answers_without_acting_and_sends_retry_after(sandbox, api, raw) -> None:
    add_faults(raw, {"status": 503, "retry_after": 2, "method": "POST"})
    response = api.post(AUTUMN_LEADS, json=NEW_LEAD)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {"success": False, "message": "Simulated 503"}
    assert "fault-1" not in autumn_uids(sandbox)
    assert api.post(AUTUMN_LEADS, json=NEW_LEAD).status_code == 200  # times defaults to 1


def test_status_fault_without_retry_after_has_no_header(api, raw) -> None:
    add_faults(raw, {"status": 429})
    response = api.get(LISTS)
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


def test_a_status_with_a_body_answers_that_body_even_a_200_carrying_success_false(sandbox, api, raw) -> None:
    """The spec's envelopes carry `success`; babelforce can answer a request it did not carry out with a 200 whose
    body says `"success": false` (and an error body may carry `detail`). A rule's `body` answers exactly that."""
    refusal = {"success": False, "message": "Lead is locked", "detail": "a campaign is dialling it"}
    rules = add_faults(
        raw, [{"status": 200, "body": refusal, "method": "POST"}, {"status": 404, "body": {"detail": "gone"}}]
    )
    assert rules[0]["body"] == refusal
    response = api.post(AUTUMN_LEADS, json=NEW_LEAD)
    assert (response.status_code, response.json()) == (200, refusal)
    assert "fault-1" not in autumn_uids(sandbox)  # answered without acting, like every status rule
    missing = api.get(LISTS)
    assert (missing.status_code, missing.json()) == (404, {"detail": "gone"})


def test_drop_fields_acts_then_leaves_the_fields_out_of_every_item(sandbox, api, raw) -> None:
    """The spec makes every hopper field optional: entries without `id` must be readable by a client."""
    hopper = f"/api/v2/outbound/campaigns/{DEMO_CAMPAIGN_ID}/hopper"
    full = api.get(hopper).json()["items"]
    add_faults(raw, {"drop_fields": ["id", "number"], "path": "/hopper$", "times": None})
    trimmed = api.get(hopper).json()
    assert trimmed["success"] is True
    assert trimmed["items"] == [{k: v for k, v in e.items() if k not in {"id", "number"}} for e in full]
    add_faults(raw, {"drop_fields": ["id"], "method": "POST"})
    added = api.post(AUTUMN_LEADS, json=NEW_LEAD)
    assert added.status_code == 200 and "id" not in added.json()["item"]
    assert "fault-1" in autumn_uids(sandbox)  # it acted


def test_reset_before_drops_the_connection_and_nothing_happens(sandbox, api, raw) -> None:
    add_faults(raw, {"reset": "before", "path": "/leads$"})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.post(AUTUMN_LEADS, json=NEW_LEAD)
    assert "fault-1" not in autumn_uids(sandbox)


def test_reset_after_drops_the_connection_but_the_lead_was_created(sandbox, api, raw) -> None:
    add_faults(raw, {"reset": "after", "method": "post"})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.post(AUTUMN_LEADS, json=NEW_LEAD)
    assert "fault-1" in autumn_uids(sandbox)
    retried = api.post(AUTUMN_LEADS, json=NEW_LEAD)  # the naive replay now conflicts
    assert retried.status_code == 409


def test_stall_trickles_spaces_then_the_real_body(api, raw) -> None:
    add_faults(raw, {"stall_s": 1.0, "path": "^/api/v2/outbound/lists$"})
    started = time.monotonic()
    chunk_times: list[float] = []
    body = b""
    with api.stream("GET", LISTS, timeout=httpx.Timeout(30, read=0.5)) as response:
        assert response.status_code == 200
        assert "Content-Length" not in response.headers
        for chunk in response.iter_raw():
            chunk_times.append(time.monotonic() - started)
            body += chunk
    assert chunk_times[0] < 0.5  # headers and the first space come at once
    assert chunk_times[-1] >= 0.9  # the full body only after stall_s
    assert body.startswith(b"     ")
    assert httpx.Response(200, content=body).json()["success"] is True  # leading whitespace keeps it JSON


def test_stall_outlives_a_read_timeout_but_not_an_overall_deadline(api, raw) -> None:
    add_faults(raw, {"stall_s": 2.0})
    started = time.monotonic()
    with api.stream("GET", LISTS, timeout=httpx.Timeout(30, read=0.3)) as response:
        for _ in response.iter_raw():
            if time.monotonic() - started > 0.7:
                break  # a client deadline is the only thing that can stop it; no ReadTimeout was raised
    assert time.monotonic() - started < 1.5


def test_latency_delays_the_answer(api, raw) -> None:
    add_faults(raw, {"latency_ms": 300})
    started = time.monotonic()
    assert api.get(LISTS).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    api.get(LISTS)
    assert time.monotonic() - started < 0.3


def test_first_matching_rule_wins_and_times_count_down(api, raw) -> None:
    rules = add_faults(raw, [{"status": 502, "times": 2, "method": "GET"}, {"status": 504, "times": None}])
    assert [rule["times"] for rule in rules] == [2, None]
    assert [api.get(LISTS).status_code for _ in range(3)] == [502, 502, 504]
    assert api.post(LISTS, json={"name": "x"}).status_code == 504
    assert [rule["status"] for rule in raw.get("/sandbox/faults").json()["items"]] == [504]
    assert raw.delete("/sandbox/faults").json()["items"] == []
    assert api.get(LISTS).status_code == 200


def test_method_and_path_filters(api, raw) -> None:
    add_faults(raw, {"status": 500, "method": "DELETE", "path": r"/lists/[0-9a-f]+/leads/"})
    assert api.get(AUTUMN_LEADS).status_code == 200
    assert api.delete(f"{AUTUMN_LEADS}/{'0' * 32}").status_code == 500


def test_token_endpoint_is_subject_to_faults_but_sandbox_controls_are_not(raw) -> None:
    add_faults(raw, {"status": 503, "times": None})
    assert raw.get("/sandbox/stats").status_code == 200
    form = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
    assert raw.post("/oauth/token", data=form).status_code == 503


@pytest.mark.parametrize(
    "rule",
    [
        {"status": "503"},
        {"status": 42},
        {"status": 101},  # no error body possible: h11 refused to send it and broke the connection
        {"status": 204},
        {"status": 200},  # 200 only with a body of the rule's own
        {"status": 204, "body": {"success": False}},
        {"body": {"success": False}},  # a body needs a status
        {"drop_fields": "id"},
        {"drop_fields": [""]},
        {"reset": "sometimes"},
        {"path": "("},
        {"times": 0},
        {"latency_ms": -1},
        {"x": 1},
        [1],
    ],
)
def test_bad_fault_rules_are_400(shared_raw, rule: object) -> None:
    response = shared_raw.post("/sandbox/faults", json=rule)
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_a_fault_rule_with_nan_is_refused_and_not_stored(shared_raw) -> None:
    """A NaN latency was stored, after which every GET /sandbox/faults failed to render (500)."""
    response = shared_raw.post("/sandbox/faults", content=b'{"latency_ms": NaN}')
    assert response.status_code == 400
    assert shared_raw.get("/sandbox/faults").json()["items"] == []


def test_stats_count_api_requests_by_route_template(sandbox, api, raw) -> None:
    raw.delete("/sandbox/stats")
    add_faults(raw, {"status": 503, "path": "/leads/"})
    api.get(f"{LISTS}/{DEMO_LIST_ID}/leads")
    api.get(f"{LISTS}/{AUTUMN_LIST_ID}/leads", params={"page": 2})
    api.get(f"{LISTS}/{AUTUMN_LIST_ID}/leads/{'0' * 32}")  # answered by the fault: still counted
    api.post(f"/sandbox/campaigns/{'0' * 32}/dial")  # not an API request
    raw.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
    )
    stats = raw.get("/sandbox/stats").json()
    assert stats == {
        "total": 4,
        "byRoute": {
            "GET /api/v2/outbound/lists/{id}/leads": 2,
            "GET /api/v2/outbound/lists/{id}/leads/{leadId}": 1,
            "POST /oauth/token": 1,
        },
    }
    raw.delete("/sandbox/stats")
    assert raw.get("/sandbox/stats").json() == {"total": 0, "byRoute": {}}


def test_a_slow_add_completes_after_the_client_gave_up_as_behind_a_real_https_edge(sandbox, api, raw) -> None:
    """babelforce sits behind an edge that has the whole request: a client's read timeout does not undo the add."""
    add_faults(raw, {"latency_ms": 800, "method": "POST"})
    with pytest.raises(httpx.ReadTimeout):
        api.post(AUTUMN_LEADS, json=NEW_LEAD, timeout=httpx.Timeout(5, read=0.2))
    assert "fault-1" not in autumn_uids(sandbox)  # not yet: babelforce is still working on it
    deadline = time.monotonic() + 5
    while "fault-1" not in autumn_uids(sandbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "fault-1" in autumn_uids(sandbox)
