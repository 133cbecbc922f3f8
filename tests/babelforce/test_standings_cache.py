"""The standings kept per lookup index (babelforce.standings): made once per index, remade after the client's writes
(an updated lead keeps its place, a new one goes last, a deleted one leaves), snapshots never change, and
`standings_at_hand` never makes a request."""

from __future__ import annotations

import asyncio

import pytest

from babelforce.lookup import LeadIndex, LeadStanding, ListStandings
from babelforce.standings import StandingsCache
from sandbox.seed import DEMO_LIST_ID
from tests.support import SandboxControl

pytestmark = pytest.mark.anyio

A, B, C, D = "a" * 32, "b" * 32, "c" * 32, "d" * 32
LIST = "1" * 32
EXPORT_ROUTE = "GET /api/v2/outbound/lists/{id}/leads"


class CountingIndex(LeadIndex):
    """A LeadIndex that counts its standings builds."""

    builds = 0

    def standings(self) -> ListStandings:
        CountingIndex.builds += 1
        return super().standings()


def index() -> LeadIndex:
    text = (
        "id,uid,number,rank,status\n"
        f"{A},lead-1,+4915100000001,1,pending\n"
        f"{B},lead-2,+4915100000002,2,pending\n"
        f"{C},lead-3,+4915100000003,3,sale\n"
    )
    built = CountingIndex.from_csv(text, built_at=0.0)
    assert isinstance(built, CountingIndex)
    return built


async def test_built_once_per_index_and_rebuilt_for_a_new_one() -> None:
    cache, first = StandingsCache(), index()
    CountingIndex.builds = 0
    together = await asyncio.gather(cache.of(LIST, first), cache.of(LIST, first))
    again = await cache.of(LIST, first)
    assert CountingIndex.builds == 1 and together[0].leads == together[1].leads == again.leads
    assert cache.get(LIST, index()) is None  # another index (a new export): not these standings
    await cache.of(LIST, index())
    assert CountingIndex.builds == 2


async def test_a_write_keeps_the_lead_in_its_place_a_new_one_goes_last_a_deleted_one_leaves() -> None:
    """The index carries the client's writes; standings made before one are remade from it after it."""
    cache, built = StandingsCache(), index()
    before = await cache.of(LIST, built)
    built.upsert(A, "lead-1", "+4915100000001", rank=50)  # an answer without a status keeps the export's
    built.upsert(D, "lead-4", "+4915100000004", rank=4, status="pending")
    built.discard(B)
    after = cache.get(LIST, built)
    assert after is not None
    assert after.leads == [
        LeadStanding(A, "lead-1", 50, "pending"),
        LeadStanding(C, "lead-3", 3, "sale"),
        LeadStanding(D, "lead-4", 4, "pending"),
    ]
    assert [standing.rank for standing in before.leads] == [1, 2, 3]  # a snapshot handed out never changes
    built.upsert(D, "lead-4", "+4915100000004", rank=7)
    assert [s.rank for s in cache.get(LIST, built).leads] == [50, 3, 7]  # type: ignore[union-attr]
    CountingIndex.builds = 0
    assert cache.get(LIST, built) is cache.get(LIST, built) and CountingIndex.builds == 0  # no write: kept


async def test_standings_a_write_overtook_are_returned_but_not_kept() -> None:
    class WrittenMeanwhile(CountingIndex):
        def standings(self) -> ListStandings:
            made = super().standings()
            self.upsert(A, "lead-1", "+4915100000001", rank=50)  # as from another thread, just after
            return made

    cache = StandingsCache()
    built = WrittenMeanwhile.from_csv(f"id,uid,number,rank,status\n{A},lead-1,+4915100000001,1,pending\n", built_at=0)
    assert [s.rank for s in (await cache.of(LIST, built)).leads] == [1]
    assert cache.get(LIST, built) is None


async def test_only_the_most_recently_used_lists_are_kept() -> None:
    cache = StandingsCache(max_lists=2)
    indexes = {name: index() for name in ("x", "y", "z")}
    for name, built in indexes.items():
        await cache.of(name, built)
    assert cache.get("x", indexes["x"]) is None
    assert cache.get("z", indexes["z"]) is not None
    few = StandingsCache(max_leads=5)  # 3 leads a list: the newest list is kept, the one before it no longer fits
    for name, built in indexes.items():
        await few.of(name, built)
    assert few.get("y", indexes["y"]) is None and few.get("z", indexes["z"]) is not None


async def test_standings_at_hand_never_ask_babelforce(client, control: SandboxControl) -> None:
    assert await client.standings_at_hand(DEMO_LIST_ID, max_age=300, build_up_to=10_000) is None  # no index yet
    await client.find_lead_by_uid(DEMO_LIST_ID, "lead-10")  # builds the lookup index from one export
    control.reset_stats()
    assert await client.standings_at_hand(DEMO_LIST_ID, max_age=300) is None  # not built, and not to be built
    assert await client.standings_at_hand(DEMO_LIST_ID, max_age=0.0, build_up_to=10_000) is None  # too old
    built = await client.standings_at_hand(DEMO_LIST_ID, max_age=300, build_up_to=10_000)
    assert built is not None and len(built.leads) == 50
    assert control.stats()["total"] == 0
    lead_10 = await client.find_lead_by_uid(DEMO_LIST_ID, "lead-10")
    await client.update_lead(DEMO_LIST_ID, lead_10.id, rank=99)
    kept = await client.standings_at_hand(DEMO_LIST_ID, max_age=300)
    assert kept is not None and kept.leads[9] == LeadStanding(lead_10.id, "lead-10", 99, "pending")
    assert (await client.cached_standings(DEMO_LIST_ID, max_age=300)).leads == kept.leads
    assert control.count(EXPORT_ROUTE) == 0
