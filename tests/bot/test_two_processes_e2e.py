"""Two bots sharing one audit store (as two processes or replicas do), on each store (a SQLite file, a PostgreSQL
database): one change of a lead at a time across both, and every plan made from the lead as it is once the lock is
held, so no record's "before" is a value the other bot had already replaced, and Undo never puts back such a value."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from sandbox import SandboxServer
from tests.support import Bot, start_bot, store_rows


@pytest.fixture
def pair(sandbox: SandboxServer, audit_target: str) -> Iterator[tuple[Bot, Bot, str]]:
    db = audit_target
    first, second = start_bot(sandbox, audit_path=db), start_bot(sandbox, audit_path=db)
    try:
        yield next(first), next(second), db
    finally:
        first.close()
        second.close()


def test_twenty_rank_changes_of_one_lead_over_two_bots_are_applied_one_at_a_time(
    pair: tuple[Bot, Bot, str],
) -> None:
    a, b, db = pair
    ranks = list(range(100, 120))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda rank: (a if rank % 2 else b).ask(f'rank "Spring leads" lead-8 {rank}'), ranks))

    records = store_rows(db, "SELECT * FROM changes WHERE lead_uid = 'lead-8' ORDER BY id")
    applied = [r for r in records if r["outcome"] == "ok"]
    assert applied, records
    assert all(r["outcome"] in ("ok",) for r in records), [r["outcome"] for r in records]
    previous = 8
    for record in applied:  # a chain: each change starts from the value the one before it left
        before, after = json.loads(record["before_json"]), json.loads(record["after_json"])
        assert before["rank"] == previous, (record["id"], before, previous)
        previous = after["rank"]
    assert a.lead("lead-8").rank == previous


def test_a_lock_left_by_a_crashed_process_lapses(pair: tuple[Bot, Bot, str]) -> None:
    a, _, db = pair
    store_rows(
        db,
        "INSERT INTO lead_locks VALUES (?, ?, 'crashed', '2000-01-01T00:00:00.000000+00:00')",
        (a.lead("lead-9").list_id, a.lead("lead-9").id),
    )
    assert a.ask('rank "Spring leads" lead-9 19')  # not blocked by the stale lock
    assert a.lead("lead-9").rank == 19


def test_a_write_makes_three_store_calls(pair: tuple[Bot, Bot, str]) -> None:
    """The hot path's store calls, counted so that a saving cannot silently regress: is the request taken (and the
    mark), the lead's lock with its checks and the record (one commit), the outcome with the lock's release (one
    commit). (The twenty changes above cover a lock that finds the lead written meanwhile: the plan is made again.)"""
    a, b, db = pair
    for bot, old, new in ((a, 7, 17), (b, 17, 27), (a, 27, 37)):
        store = bot.leadbot.audit
        calls = store.calls.copy()
        assert f"Rank of lead-7: {old} → {new}" in str(bot.ask(f'rank "Spring leads" lead-7 {new}'))
        assert store.calls - calls == Counter({"check request": 1, "take lead": 1, "finish": 1})
    assert store_rows(db, "SELECT COUNT(*) AS n FROM lead_locks")[0]["n"] == 0  # every lock released with its outcome
