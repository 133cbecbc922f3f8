"""The lookup index's two additions: uids matched with case and spaces ignored (the similar-uid warning), and every
lead's rank and status read from the same export as the index (`standings`: queue positions, /lead hopper's next
batch, `/lead rank … top`), in list order also after writes through the client."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from babelforce.lookup import LeadIndex, LeadStanding, uid_key

A, B, C, D = "a" * 32, "b" * 32, "c" * 32, "d" * 32


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


def test_wide_ranks_read_as_none_in_the_standings_only() -> None:
    text = f"id,uid,number,rank\n{A},lead-1,+4915100000001,1234567\n{B},lead-2,+4915100000002,-7\n"
    index = LeadIndex.from_csv(text, built_at=0)
    assert [standing.rank for standing in index.standings().leads] == [None, -7]
    assert index.search("lead-1").leads[0].rank == 1234567


# ---------------------------------------------------------------------- list order after writes through the client

EXPORT = (
    "id,uid,number,rank,status\n"
    f"{A},lead-1,+4915100000001,1,pending\n"
    f"{B},lead-2,+4915100000002,2,pending\n"
    f"{C},lead-3,+4915100000003,3,sale\n"
)


def test_an_updated_lead_keeps_its_place_a_new_one_goes_last_a_deleted_one_leaves() -> None:
    """Under UP / DOWN the list order is the load order: an update does not change it (the index stores the update as
    a new row, which must not move the lead last)."""
    index = LeadIndex.from_csv(EXPORT, built_at=0)
    index.upsert(A, "lead-1", "+4915100000001", rank=50)  # the answer had no status: the export's stays
    index.upsert(D, "lead-4", "+4915100000004", rank=4, status="new")  # new: loaded last
    index.upsert(B, "lead-2b", "+4915100000002", rank=20, status="pending")
    index.upsert(B, None, "+4915100000002", rank=21)  # no uid in the answer: the last one stays
    index.discard(C)
    index.upsert(D, "lead-4", "+4915100000004", rank=5, status="new")  # updated after it was added: still last
    standings = index.standings()
    assert standings.leads == [
        LeadStanding(A, "lead-1", 50, "pending"),
        LeadStanding(B, "lead-2b", 21, "pending"),
        LeadStanding(D, "lead-4", 5, "new"),
    ]
    assert standings.places_of(ids=[B, C]) == [1] and standings.places_of(uids=["lead-2"]) == []  # its uid now
    assert standings.places_of(uids=["lead-2b", "lead-4"]) == [1, 2]
    assert standings.ranks_of([A, C, D]) == {A: 50, D: 5}
    assert index.id_for_uid("lead-2b") == B and index.id_for_uid("lead-3") is None  # the lookups see it all too


def test_standings_handed_out_never_change_and_a_write_changes_the_version() -> None:
    index = LeadIndex.from_csv(EXPORT, built_at=0)
    before, version = index.standings(), index.version
    index.upsert(B, "lead-2", "+4915100000002", rank=9)
    assert index.version != version
    assert [standing.rank for standing in before.leads] == [1, 2, 3]
    assert [standing.rank for standing in index.standings().leads] == [1, 9, 3]
    version = index.version
    index.discard(A)
    assert index.version != version and [s.uid for s in index.standings().leads] == ["lead-2", "lead-3"]
    assert [standing.rank for standing in before.leads] == [1, 2, 3]


def test_an_id_exported_twice_is_one_lead_once_written() -> None:
    index = LeadIndex.from_csv(EXPORT + f"{A},lead-1,+4915100000001,7,pending\n", built_at=0)
    assert [standing.rank for standing in index.standings().leads] == [1, 2, 3, 7]  # as the export has it
    index.upsert(A, "lead-1", "+4915100000001", rank=8)
    assert [(standing.id, standing.rank) for standing in index.standings().leads] == [(A, 8), (B, 2), (C, 3)]


WRITES = st.lists(
    st.tuples(
        st.sampled_from(["update", "add", "delete"]),
        st.integers(0, 40),  # which lead: those under 12 are in the export
        st.one_of(st.integers(-5, 5), st.none()),
        st.sampled_from(["pending", "sale", None]),
        st.sampled_from(["same", "changed", None]),
    ),
    max_size=25,
)


@settings(deadline=None)
@given(WRITES)
def test_the_standings_after_any_writes_are_the_list_in_load_order(writes: list[tuple]) -> None:  # type: ignore[type-arg]
    """A model of the list: a dict in load order. An update keeps its key's place (the uid and status it does not
    carry stay); an add of a new lead goes last; a delete removes it."""
    exported = {f"{n:032x}": (f"lead-{n}", n, "pending") for n in range(12)}
    text = "id,uid,number,rank,status\n" + "".join(
        f"{lead_id},{uid},+49151{n:08d},{rank},{status}\n"
        for n, (lead_id, (uid, rank, status)) in enumerate(exported.items())
    )
    index = LeadIndex.from_csv(text, built_at=0)
    model = dict(exported)
    for action, n, rank, status, uid_change in writes:
        lead_id = f"{n:032x}"
        if action == "delete":
            index.discard(lead_id)
            model.pop(lead_id, None)
            continue
        if action == "update" and lead_id not in model:
            continue
        uid = None if uid_change is None else f"lead-{n}" + ("-b" if uid_change == "changed" else "")
        index.upsert(lead_id, uid, f"+49152{n:08d}", rank=rank, status=status)
        known = model.get(lead_id)
        model[lead_id] = (
            uid if uid is not None else (known[0] if known else ""),
            rank,
            status if status is not None else (known[2] if known else None),
        )
    standings = index.standings()
    assert standings.leads == [
        LeadStanding(lead_id, uid, rank, status) for lead_id, (uid, rank, status) in model.items()
    ]
    assert [standings.places_of(ids=[lead_id]) for lead_id in model] == [[at] for at in range(len(model))]
