"""The uid/number index: pure parsing and bookkeeping, plus what a lookup costs against a big list."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from babelforce.lookup import IndexCache, LeadIndex, number_key
from tests.support import SandboxControl


def export(rows: list[tuple[str, str, str]], header=("id", "uid", "number", "rank")) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for lead_id, uid, number in rows:
        writer.writerow([lead_id, uid, number, "1"][: len(header)] if header[0] == "id" else [uid, number, lead_id])
    return out.getvalue()


def test_number_key_ignores_plus_spaces_and_dashes():
    assert number_key("+49 160 981-19998") == number_key("4916098119998") == "4916098119998"


def test_index_maps_uids_and_numbers_from_an_export():
    text = export([("a" * 32, "lead-1", "+4915100000001"), ("b" * 32, "lead, with comma", "+4915100000002")])
    index = LeadIndex.from_csv(text, built_at=1.0)
    assert index.uid_map() == {"lead-1": "a" * 32, "lead, with comma": "b" * 32}
    assert index.ids_for_number("4915100000002") == ["b" * 32]


def test_columns_are_found_by_name_in_any_order():
    out = io.StringIO()
    csv.writer(out).writerows([["UID", "Number", "ID"], ["x", "+4915100000001", "C" * 32]])
    index = LeadIndex.from_csv(out.getvalue(), built_at=0)
    assert index.uid_map() == {"x": "c" * 32}


def test_export_without_a_uid_column_is_refused():
    with pytest.raises(ValueError, match="uid"):
        LeadIndex.from_csv("id,number\nabc,123\n", built_at=0)


def test_csv_the_parser_cannot_read_is_a_value_error():
    """csv.Error is not a ValueError: without the translation it escaped the client's error tree."""
    with pytest.raises(ValueError, match="not valid CSV"):
        LeadIndex.from_csv("id,uid,number\na,x\rb,1\n", built_at=0)


def test_repeated_numbers_keep_every_lead_and_a_discarded_lead_is_gone():
    index = LeadIndex(built_at=0)
    index.add("1" * 32, "u1", "+4915100000001")
    index.add("2" * 32, "u2", "4915100000001")
    assert index.ids_for_number("+4915100000001") == ["1" * 32, "2" * 32]
    index.discard("1" * 32)
    assert index.ids_for_number("4915100000001") == ["2" * 32]
    assert index.id_for_uid("u1") is None


@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=12), st.from_regex(r"\+?[0-9]{6,12}", fullmatch=True)), max_size=30)
)
def test_the_raw_utf8_bytes_of_an_export_give_the_same_index_as_its_text(rows):
    """The client parses the export's bytes line by line; uids with newlines, quotes or non-ASCII text included."""
    rows = [(f"{i:032x}", uid, number) for i, (uid, number) in enumerate(rows)]
    text = export(rows)
    from_bytes = LeadIndex.from_csv(text.encode(), built_at=0)
    from_text = LeadIndex.from_csv(text, built_at=0)
    assert from_bytes.uid_map() == from_text.uid_map()
    for _, _, number in rows:
        assert from_bytes.ids_for_number(number) == from_text.ids_for_number(number)


@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=12), st.from_regex(r"\+?[0-9]{6,12}", fullmatch=True)), max_size=30)
)
def test_every_exported_lead_is_found_by_uid_and_number(rows):
    rows = [(f"{i:032x}", uid, number) for i, (uid, number) in enumerate(rows)]
    index = LeadIndex.from_csv(export(rows), built_at=0)
    last_id_for_uid = {uid: lead_id for lead_id, uid, _ in rows}
    assert index.uid_map() == last_id_for_uid
    for lead_id, _, number in rows:
        assert lead_id in index.ids_for_number(number)


def test_cache_keeps_only_the_most_recent_lists():
    cache = IndexCache(max_lists=2)
    for name in ("a", "b"):
        cache.put(name, LeadIndex(built_at=0))
    cache.get("a")
    cache.put("c", LeadIndex(built_at=0))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


@pytest.mark.anyio
async def test_lookup_cost_on_a_big_list_cold_two_requests_warm_one(sandbox_factory, make_client):
    """The cost docs/api-module.md promises: cold = one CSV export + one GET, warm = one GET, by uid and by number."""
    big = sandbox_factory(leads=20_000)
    ctl = SandboxControl(big.base_url)
    bf = make_client(base_url=big.base_url)
    list_id = (await bf.find_list("Spring leads")).id
    ctl.reset_stats()

    cold = await bf.find_lead_by_uid(list_id, "lead-12345")
    assert cold.rank == 12345
    assert ctl.stats()["total"] == 2
    assert ctl.count("GET /api/v2/outbound/lists/{id}/leads") == 1

    ctl.reset_stats()
    warm = await bf.find_lead(list_id, "lead-19999")
    assert warm.rank == 19999
    assert ctl.stats()["total"] == 1

    ctl.reset_stats()
    by_number = await bf.find_lead(list_id, warm.number)
    assert by_number.uid == "lead-19999"
    assert ctl.stats()["total"] == 1  # no uid matches in the index, the number does: one GET
    ctl.close()
