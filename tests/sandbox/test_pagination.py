"""Paging of lead listings and the CSV export (including a 100 000-lead list)."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from sandbox.seed import AUTUMN_LIST_ID, DEMO_CAMPAIGN_ID, DEMO_LIST_ID

DEMO_LEADS = f"/api/v2/outbound/lists/{DEMO_LIST_ID}/leads"
ALL_LEADS = "/api/v2/outbound/leads"
CSV_HEADER = ["id", "uid", "number", "rank", "status", "callCount", "dateCreated", "lastUpdated", "data"]


def test_first_page_defaults_to_ten_leads_in_list_order(shared_api: httpx.Client) -> None:
    body = shared_api.get(DEMO_LEADS).json()
    assert [lead["uid"] for lead in body["items"]] == [f"lead-{n}" for n in range(1, 11)]
    assert body["pagination"] == {
        "current": 1,
        "pages": 5,
        "total": 50,
        "max": 10,
        "maxResults": 1000,
        "next": f"{DEMO_LEADS}?page=2&max=10",
    }
    lead = body["items"][0]
    assert lead["campaignId"] == DEMO_CAMPAIGN_ID
    assert lead["listId"] == DEMO_LIST_ID
    assert "dateCalled" not in lead


def test_following_next_walks_every_lead_once(shared_api: httpx.Client) -> None:
    url: str | None = f"{DEMO_LEADS}?max=15"
    seen: list[str] = []
    while url:
        pagination = (body := shared_api.get(url).json())["pagination"]
        seen += [lead["uid"] for lead in body["items"]]
        url = pagination.get("next")
    assert seen == [f"lead-{n}" for n in range(1, 51)]
    assert pagination == {"current": 4, "pages": 4, "total": 50, "max": 15, "maxResults": 1000}


def test_max_is_capped_at_max_results(api_factory) -> None:
    api = api_factory(leads=1500)
    body = api.get(DEMO_LEADS, params={"max": 5000}).json()
    assert len(body["items"]) == 1000
    assert body["pagination"]["max"] == 1000
    assert body["pagination"]["pages"] == 2


def test_page_past_the_end_is_empty_with_at_least_one_page(api_factory) -> None:
    api = api_factory(seed="empty")
    list_id = api.post("/api/v2/outbound/lists", json={"name": "Empty"}).json()["item"]["id"]
    body = api.get(f"/api/v2/outbound/lists/{list_id}/leads", params={"page": 3}).json()
    assert body["items"] == []
    assert body["pagination"] == {"current": 3, "pages": 1, "total": 0, "max": 10, "maxResults": 1000}


def test_a_huge_page_number_is_an_empty_page_not_a_server_error(shared_api: httpx.Client) -> None:
    """A page far past the end once reached islice's size limit and crashed the handler (500)."""
    for path in (DEMO_LEADS, ALL_LEADS):
        response = shared_api.get(path, params={"page": str(10**20)})
        assert response.status_code == 200
        assert response.json()["items"] == []
        assert "next" not in response.json()["pagination"]


@pytest.mark.parametrize(
    ("param", "value"),
    [("page", "0"), ("page", "x"), ("max", "-1"), ("max", "1.5"), ("page", " 2"), ("page", "+2"), ("max", "1_0")],
)
def test_bad_page_or_max_is_400_naming_it(shared_api: httpx.Client, param: str, value: str) -> None:
    for path in (DEMO_LEADS, ALL_LEADS):
        response = shared_api.get(path, params={param: value})
        assert response.status_code == 400
        assert response.json()["message"].startswith(param)


def test_unknown_status_filter_is_400(shared_api: httpx.Client) -> None:
    response = shared_api.get(DEMO_LEADS, params={"status": "happy"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("status")
    assert shared_api.get(DEMO_LEADS, params={"format": "xml"}).status_code == 400


def test_status_filter_and_account_wide_listing(api: httpx.Client) -> None:
    api.post(f"/sandbox/campaigns/{DEMO_CAMPAIGN_ID}/dial", json={"count": 3, "status": "sale"})
    sold = api.get(DEMO_LEADS, params={"status": "sale"}).json()
    assert [lead["uid"] for lead in sold["items"]] == ["lead-48", "lead-49", "lead-50"]
    assert all("dateCalled" in lead and lead["callCount"] == 1 for lead in sold["items"])
    pending = api.get(ALL_LEADS, params={"status": "pending", "max": 100}).json()
    assert pending["pagination"]["total"] == 47 + 10 + 10
    autumn = api.get(ALL_LEADS, params={"listId": AUTUMN_LIST_ID, "max": 4, "status": "pending"}).json()
    assert autumn["pagination"]["total"] == 10
    assert autumn["pagination"]["next"] == f"{ALL_LEADS}?page=2&max=4&listId={AUTUMN_LIST_ID}&status=pending"
    assert all("campaignId" not in lead for lead in autumn["items"])


def read_csv(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))


def test_csv_export_is_the_whole_list_as_an_attachment(shared_api: httpx.Client) -> None:
    response = shared_api.get(DEMO_LEADS, params={"format": "csv", "page": 2, "max": 3})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{DEMO_LIST_ID}.csv"'
    rows = read_csv(response)
    assert rows[0] == CSV_HEADER
    assert [row[1] for row in rows[1:]] == [f"lead-{n}" for n in range(1, 51)]
    first = dict(zip(CSV_HEADER, rows[1], strict=True))
    assert first["number"] == "+4915100000001"
    assert first["rank"] == "1"
    assert first["status"] == "pending"
    assert json.loads(first["data"]) == {"firstName": "Ben", "city": "Hamburg"}
    assert " " not in first["data"]  # compact JSON


def test_csv_export_honours_the_status_filter(api: httpx.Client) -> None:
    api.post(f"/sandbox/campaigns/{DEMO_CAMPAIGN_ID}/dial", json={"count": 2, "status": "busy"})
    rows = read_csv(api.get(DEMO_LEADS, params={"format": "csv", "status": "busy"}))
    assert [row[1] for row in rows[1:]] == ["lead-49", "lead-50"]
    assert {row[5] for row in rows[1:]} == {"1"}


def test_csv_export_of_a_large_list_streams_every_lead(api_factory) -> None:
    api = api_factory(leads=20_000)  # ten of the export's chunks (EXPORT_CHUNK_ROWS)
    response = api.get(DEMO_LEADS, params={"format": "csv"})
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert len(lines) == 20_001
    assert lines[-1].split(",")[1] == "lead-20000"
    paged = api.get(DEMO_LEADS, params={"page": 20, "max": 1000}).json()
    assert paged["items"][-1]["uid"] == "lead-20000"
    assert "next" not in paged["pagination"]
