"""The lookup index's two additions: uids matched with case and spaces ignored (the similar-uid warning), and every
lead's rank and status read from the same export as the index (`/lead rank … top`)."""

from __future__ import annotations

from babelforce.lookup import LeadIndex, LeadStanding, uid_key

A, B, C = "a" * 32, "b" * 32, "c" * 32


def test_uid_key_ignores_case_and_every_space() -> None:
    assert uid_key("LEAD-5") == uid_key(" lead-5 ") == uid_key("lead -5") == uid_key("Lead\u00a0-5") == "lead-5"
    assert uid_key("lead-5") != uid_key("lead-50")


def test_similar_uids_are_found_once_the_key_map_is_built_and_kept_in_step() -> None:
    index = LeadIndex.from_csv(f"id,uid,number\n{A},lead-5,+4915100000005\n{B},lead-6,+4915100000006\n", built_at=0)
    assert index.ids_for_uid_key("LEAD-5") == [A]
    index.add(C, " Lead-5", "+4915100000099")  # after the map was built: added to it too
    assert index.ids_for_uid_key(" lead-5") == [A, C]
    index.remove(A, "lead-5", "+4915100000005")
    assert index.ids_for_uid_key("LEAD-5") == [C]
    assert index.ids_for_uid_key("lead-7") == []


def test_standings_come_from_the_same_export_as_the_index() -> None:
    text = (
        "id,uid,number,rank,status,data\n"
        f"{A},lead-1,+4915100000001,1,pending,{{}}\n"
        f"{B},lead-2,+4915100000002,-7,sale,{{}}\n"
        f"{C},lead-3,+4915100000003,,new,{{}}\n"
    )
    index, standings = LeadIndex.with_standings(text.encode(), built_at=5.0)
    assert index.by_uid == LeadIndex.from_csv(text, built_at=5.0).by_uid
    assert (standings.has_ranks, standings.has_statuses) == (True, True)
    assert standings.leads == [
        LeadStanding(A, "lead-1", 1, "pending"),
        LeadStanding(B, "lead-2", -7, "sale"),
        LeadStanding(C, "lead-3", None, "new"),  # a lead without a rank is told apart from a missing column
    ]


def test_an_export_without_rank_or_status_columns_says_so() -> None:
    _, standings = LeadIndex.with_standings(f"uid,number,id\nlead-1,+4915100000001,{A}\n", built_at=0)
    assert (standings.has_ranks, standings.has_statuses) == (False, False)
    assert standings.leads == [LeadStanding(A, "lead-1", None, None)]
