"""The index's extension for /lead find: rank, status and data values from the export, the search, changes made
through the client, exports without some columns, and a streamed export (pure; plus one client test)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from babelforce.lookup import LeadIndex
from tests.support import SandboxControl

HEADER = ("id", "uid", "number", "rank", "status", "callCount", "data")


def export(rows: list[tuple], header: tuple[str, ...] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def row(n: int, data: dict | str | None = None, status: str = "pending") -> tuple:
    payload = json.dumps(data if data is not None else {"firstName": "Anna", "city": "Berlin"})
    return (f"{n:032x}", f"lead-{n}", f"+49151{n:08d}", n, status, 0, payload if not isinstance(data, str) else data)


def index_of(rows: list[tuple], header: tuple[str, ...] = HEADER) -> LeadIndex:
    return LeadIndex.from_csv(export(rows, header), built_at=0)


def test_a_lead_comes_back_with_uid_number_rank_status_and_where_it_matched() -> None:
    index = index_of([row(1), row(2, {"firstName": "Martin", "city": "Bonn"}, status="no_answer")])
    result = index.search("MARTIN")
    assert result.total == 1
    (lead,) = result.leads
    assert (lead.id, lead.uid, lead.number, lead.rank, lead.status, lead.matched) == (
        f"{2:032x}",
        "lead-2",
        "+4915100000002",
        2,
        "no_answer",
        "firstName",
    )


def test_data_keys_are_not_searched_only_values() -> None:
    index = index_of([row(1, {"firstName": "Anna"})])
    assert index.search("firstname").total == 0
    assert index.search("anna").leads[0].matched == "firstName"


def test_exact_id_uid_and_number_come_first_then_substrings_in_list_order() -> None:
    index = index_of([row(10), row(1), row(11, {"note": "call lead-1 first"})])
    result = index.search("lead-1", number=None)
    assert [lead.uid for lead in result.leads] == ["lead-1", "lead-10", "lead-11"]
    assert (result.exact, result.leads[0].matched, result.total) == (1, "uid", 3)
    by_number = index.search("+49 151 00000011", number="+4915100000011")
    assert [(lead.uid, lead.matched) for lead in by_number.leads] == [("lead-11", "number")]
    by_id = index.search(f"{1:032x}", lead_id=f"{1:032x}")
    assert [(lead.uid, lead.matched) for lead in by_id.leads] == [("lead-1", "id")]


def test_limit_cuts_the_leads_not_the_count() -> None:
    index = index_of([row(n) for n in range(1, 31)])
    result = index.search("berlin", limit=10)
    assert (len(result.leads), result.total) == (10, 30)


def test_numbers_booleans_and_objects_in_data_are_searched_as_text() -> None:
    index = index_of([row(1, {"age": 42, "vip": True, "tags": ["gold"], "empty": None})])
    assert index.search("42").leads[0].matched == "age"
    assert index.search("true").leads[0].matched == "vip"
    assert index.search("gold").leads[0].matched == "tags"


def test_data_that_is_not_a_json_object_is_still_searched() -> None:
    index = index_of([row(1, "not json at all"), row(2, '["a list"]'), row(3, "")])
    assert index.search("json at").leads[0].matched == "data"
    assert index.search("a list").leads[0].uid == "lead-2"
    assert index.has_data


def test_an_export_without_data_rank_or_status_columns_searches_what_it_has_and_says_so() -> None:
    index = index_of([(f"{1:032x}", "lead-1", "+4915100000001")], header=("id", "uid", "number"))
    assert not index.has_data
    (lead,) = index.search("lead-1").leads
    assert (lead.rank, lead.status) == (None, None)


def test_data_variables_exported_as_their_own_columns_are_searched() -> None:
    header = ("ID", "uid", "number", "firstName", "crmId")
    index = index_of([(f"{1:032x}", "lead-1", "+4915100000001", "Martin", "CRM-9")], header=header)
    assert index.has_data
    assert index.search("crm-9").leads[0].matched == "crmId"


def test_non_ascii_text_and_casefolding() -> None:
    index = index_of([row(1, {"name": "Strauß"}), row(2, {"name": "ÉMILE"})])
    assert index.search("STRAUSS").total == index.search("strauß").total == 1  # casefold: ß is ss
    assert index.search("émile").leads[0].uid == "lead-2"


def test_a_separator_or_line_break_inside_a_value_keeps_rows_and_values_apart() -> None:
    index = index_of([row(1, {"a": "x\x1fy", "b": "line\nbreak"}), row(2, {"a": "other"})])
    assert index.search("line").leads[0].matched == "b"
    assert index.search("other").leads[0].uid == "lead-2"


def test_a_lead_written_through_the_client_supersedes_its_exported_row() -> None:
    index = index_of([row(1), row(2)])
    index.upsert(f"{1:032x}", "lead-1", "+4915100000001", rank=99, status="pending", data={"crm": "CRM-7"})
    assert index.search("berlin").total == 1  # lead-1's new values no longer have Berlin
    (lead,) = index.search("crm-7").leads
    assert (lead.uid, lead.rank) == ("lead-1", 99)
    index.upsert(f"{3:032x}", "new-3", "+4915100000003", rank=1, data={"city": "Berlin"})
    assert [lead.uid for lead in index.search("berlin").leads] == ["lead-2", "new-3"]
    index.discard(f"{2:032x}")
    assert [lead.uid for lead in index.search("berlin").leads] == ["new-3"]
    assert index.id_for_uid("lead-2") is None


def test_odd_ids_are_kept_as_they_are() -> None:
    index = index_of([("not-a-hex-id", "u1", "+4915100000001", 1, "pending", 0, "{}")])
    assert index.search("u1").leads[0].id == "not-a-hex-id"
    assert index.id_for_uid("u1") == "not-a-hex-id"


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=8), st.text(max_size=12), st.from_regex(r"\+?[0-9]{6,12}", fullmatch=True)
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(min_value=1, max_value=4000),
)
def test_a_streamed_export_in_any_chunking_gives_the_same_answers(rows: list, size: int) -> None:
    """The client feeds the download chunk by chunk (cut anywhere, even inside a character or a quoted field)."""
    text = export(
        [
            (f"{n:032x}", uid, number, n, "pending", 0, json.dumps({"v": value}))
            for n, (uid, value, number) in enumerate(rows)
        ]
    )
    raw = text.encode()
    streamed = LeadIndex.from_chunks((raw[i : i + size] for i in range(0, len(raw), size)), built_at=0)
    whole = LeadIndex.from_csv(text, built_at=0)
    assert streamed.uid_map() == whole.uid_map()
    for uid, value, _ in rows:
        for needle in {uid, value}:
            if needle.strip() and needle.isprintable():  # what the bot lets through
                assert streamed.search(needle) == whole.search(needle)
                assert whole.search(needle).total >= 1


@pytest.mark.anyio
async def test_the_client_shares_one_export_between_find_and_lookups(sandbox, make_client) -> None:
    control = SandboxControl(sandbox.base_url)
    client = make_client()
    spring = await client.find_list("Spring leads")
    control.reset_stats()
    index = await client.lead_index(spring.id, max_age=300)
    assert index.search("lead-40").leads[0].rank == 40
    await client.find_lead_by_uid(spring.id, "lead-41")  # the lookup uses the same index: one GET, no export
    assert await client.lead_index(spring.id, max_age=300) is index
    assert control.count("GET /api/v2/outbound/lists/{id}/leads") == 1
    fresh = await client.lead_index(spring.id, max_age=0)  # too old for this caller: exported again
    assert fresh is not index
    assert control.count("GET /api/v2/outbound/lists/{id}/leads") == 2
    control.close()


@pytest.mark.anyio
async def test_a_broken_export_is_a_server_error_and_caches_nothing(sandbox, make_client) -> None:
    control = SandboxControl(sandbox.base_url)
    client = make_client()
    spring = await client.find_list("Spring leads")
    control.faults({"method": "GET", "path": "/leads$", "status": 503, "times": 3})
    from babelforce import errors

    with pytest.raises(errors.ServerError):
        await client.lead_index(spring.id)
    assert (await client.lead_index(spring.id)).exported == 50
    control.close()
