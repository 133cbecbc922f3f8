"""The audit trail on both stores, a real SQLite file and a real PostgreSQL database (tests taking `audit_target` or
`log` run once per store, tests/conftest.py): round trips, restarts, duplicate deliveries, concurrency across
connections and processes, history lookups, undo claims, held confirmations, the per-lead lock, the start-up sweep,
schema migrations (and the upgrade of files made before them), and failures reported as one plain sentence. Tests
taking `db_path` are about the SQLite file itself (WAL, file modes, a deleted or replaced file, the busy timeout)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import audit, migrations
from bot.audit import (
    INTERRUPTED_AFTER_S,
    Actor,
    Attempt,
    AuditError,
    AuditLog,
    AuditStore,
    Change,
    LeadHolder,
    LeadTaken,
    Outcome,
    PostedAlert,
    RequestCheck,
    open_store,
)
from tests.support import PostgresServer, is_postgres, store_rows

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audit"
ALICE = Actor(user_id="U0ALICE", team_id="T0TEAM", enterprise_id="E0ORG", channel_id="C0OPS")
BOB = Actor(user_id="U0BOB", team_id="T0TEAM")
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "leadbot.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def log(audit_target: str, clock: FakeClock) -> AsyncIterator[AuditStore]:
    store = open_store(audit_target, clock=clock)
    yield store
    store.close()


def snapshot(uid: str, number: str = "+4930123456", rank: int = 50, **data: str) -> dict:
    return {"uid": uid, "number": number, "rank": rank, "data": data}


async def begin_rank(
    store: AuditStore, *, request_id: str | None, lead_id: str = "L1", uid: str = "lead-40"
) -> int | None:
    return await store.begin(
        actor=ALICE,
        action="rank",
        command=f'rank "Demo" {uid} 45',
        request_id=request_id,
        list_id="LIST1",
        list_name="Demo",
        lead_id=lead_id,
        lead_uid=uid,
        before=snapshot(uid),
    )


def row_count(target: str | Path, where: str = "1 = 1", params: tuple = ()) -> int:
    return int(store_rows(target, f"SELECT COUNT(*) AS n FROM changes WHERE {where}", params)[0]["n"])


async def test_begin_then_finish_round_trips_every_field(log: AuditStore, clock: FakeClock) -> None:
    before = snapshot("lead-40", rank=50, name="Ana", note="ümlaut ✓")
    change_id = await log.begin(
        actor=ALICE,
        action="rank",
        command='rank "Demo" lead-40 45',
        request_id="req-1",
        list_id="LIST1",
        list_name="Demo",
        lead_id="L1",
        lead_uid="lead-40",
        before=before,
        undo_of=None,
    )
    assert isinstance(change_id, int)

    pending = await log.get(change_id)
    assert pending is not None
    assert pending.outcome is Outcome.PENDING
    assert pending.at == T0 and pending.at.tzinfo is not None
    assert pending.finished_at is None and pending.after is None

    clock.advance(2.5)
    after = snapshot("lead-40", rank=45, name="Ana", note="ümlaut ✓")
    await log.finish(change_id, outcome=Outcome.OK, after=after, caveat="lead-40 is in the hopper: the change waits.")

    assert await log.get(change_id) == Change(
        id=change_id,
        at=T0,
        finished_at=T0 + timedelta(seconds=2.5),
        actor=ALICE,
        action="rank",
        command='rank "Demo" lead-40 45',
        list_id="LIST1",
        list_name="Demo",
        lead_id="L1",
        lead_uid="lead-40",
        before=before,
        after=after,
        caveat="lead-40 is in the hopper: the change waits.",
        outcome=Outcome.OK,
        detail=None,
        request_id="req-1",
        undo_of=None,
        undone_by=None,
    )
    assert await log.get(change_id + 1000) is None


async def test_finish_sets_lead_fields_of_an_add_and_keeps_what_is_not_given(log: AuditStore) -> None:
    change_id = await log.begin(
        actor=BOB, action="add", command="add Demo +4930123456", request_id="req-add", list_id="LIST1"
    )
    assert change_id is not None
    await log.finish(change_id, outcome=Outcome.UNKNOWN, detail="babelforce did not answer in time.")
    await log.finish(change_id, outcome=Outcome.OK, after=snapshot("new-1"), lead_id="L9", lead_uid="new-1")

    change = await log.get(change_id)
    assert change is not None
    assert (change.outcome, change.lead_id, change.lead_uid, change.before) == (Outcome.OK, "L9", "new-1", None)
    assert change.after == snapshot("new-1")
    assert change.detail == "babelforce did not answer in time."
    assert change.actor == BOB


async def test_finish_of_an_unknown_change_raises_audit_error(log: AuditStore) -> None:
    with pytest.raises(AuditError, match="LEADBOT_DB"):
        await log.finish(12345, outcome=Outcome.OK)


async def test_changes_survive_reopening_the_store(audit_target: str, clock: FakeClock) -> None:
    first = open_store(audit_target, clock=clock)
    change_id = await begin_rank(first, request_id="req-1")
    assert change_id is not None
    await first.finish(change_id, outcome=Outcome.OK, after=snapshot("lead-40", rank=45))
    await first.hold(token="tok-1", actor=ALICE, command={"kind": "rank", "rank": 45})
    first.close()

    second = open_store(audit_target, clock=clock)
    try:
        change = await second.get(change_id)
        assert change is not None and change.outcome is Outcome.OK and change.after == snapshot("lead-40", rank=45)
        assert await begin_rank(second, request_id="req-1") is None  # still reserved after the restart
        assert await second.claim("tok-1", user_id=ALICE.user_id) == {"kind": "rank", "rank": 45}
    finally:
        second.close()


async def test_duplicate_request_id_returns_none_and_records_one_row(log: AuditStore, audit_target: str) -> None:
    first = await begin_rank(log, request_id="req-dup")
    assert first is not None
    assert await begin_rank(log, request_id="req-dup") is None
    assert row_count(audit_target, "request_id = ?", ("req-dup",)) == 1
    assert await begin_rank(log, request_id="req-next") == first + 1  # change numbers skip none for a duplicate


async def test_no_request_id_never_counts_as_a_duplicate(log: AuditStore) -> None:
    first = await begin_rank(log, request_id=None)
    second = await begin_rank(log, request_id=None)
    assert first is not None and second is not None and first != second


async def test_failed_releases_the_request_id_for_a_retry(log: AuditStore) -> None:
    first = await begin_rank(log, request_id="req-1")
    assert first is not None
    await log.finish(first, outcome=Outcome.FAILED, detail="babelforce refused the rank.")

    retry = await begin_rank(log, request_id="req-1")
    assert retry is not None and retry != first
    failed = await log.get(first)
    assert failed is not None and failed.request_id == "req-1"  # the record keeps the id it was asked with


@pytest.mark.parametrize("outcome", [Outcome.OK, Outcome.UNKNOWN])
async def test_ok_and_unknown_keep_the_request_id_reserved(log: AuditStore, outcome: Outcome) -> None:
    first = await begin_rank(log, request_id="req-1")
    assert first is not None
    await log.finish(first, outcome=outcome)
    assert await begin_rank(log, request_id="req-1") is None


async def test_fifty_concurrent_begins_with_one_request_id_give_exactly_one_id(
    log: AuditStore, audit_target: str
) -> None:
    results = await asyncio.gather(*(begin_rank(log, request_id="req-storm") for _ in range(50)))
    ids = [result for result in results if result is not None]
    assert len(ids) == 1
    assert row_count(audit_target) == 1


SECOND_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from bot.audit import Actor, Outcome, open_store

    async def main(target, count):
        log = open_store(target)
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range(count):
            change_id = await log.begin(actor=Actor("U0PROC"), action="rank", command="rank", request_id=f"proc-{n}",
                                        list_id="LIST1", lead_id="L1")
            await log.finish(change_id, outcome=Outcome.OK)
        log.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


async def test_two_logs_and_a_second_process_write_one_store_concurrently(audit_target: str) -> None:
    per_writer = 40
    open_store(audit_target).close()  # create the schema first, as `leadbot run` does at start-up
    process = subprocess.Popen(
        [sys.executable, "-c", SECOND_PROCESS, audit_target, str(per_writer)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    one, two = open_store(audit_target), open_store(audit_target)
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline().strip() == "ready"
        process.stdin.write("go\n")
        process.stdin.flush()

        async def write(store: AuditStore, name: str) -> None:
            for n in range(per_writer):
                change_id = await begin_rank(store, request_id=f"{name}-{n}")
                assert change_id is not None
                await store.finish(change_id, outcome=Outcome.OK)

        await asyncio.gather(write(one, "one"), write(two, "two"))
        _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
        assert process.returncode == 0, stderr
    finally:
        one.close()
        two.close()
        if process.poll() is None:
            process.kill()
            process.wait()

    assert row_count(audit_target) == 3 * per_writer
    assert row_count(audit_target, "outcome = 'ok'") == 3 * per_writer
    assert row_count(audit_target, "request_id LIKE 'proc-%'") == per_writer


async def test_history_is_newest_first_limited_and_only_that_lead(log: AuditStore, clock: FakeClock) -> None:
    ids = []
    for rank in (10, 20, 30):
        clock.advance(60)
        change_id = await begin_rank(log, request_id=f"r{rank}")
        assert change_id is not None
        ids.append(change_id)
    await begin_rank(log, request_id="other-lead", lead_id="L2", uid="lead-41")
    await log.begin(
        actor=ALICE,
        action="rank",
        command="rank",
        request_id="other-list",
        list_id="LIST2",
        lead_id="L1",
        lead_uid="lead-40",
    )
    await log.denied(actor=BOB, action="rank", command="rank Demo lead-40 1", reason="not allowed", list_ref="Demo")

    history = await log.history("LIST1", lead_id="L1")
    assert [change.id for change in history] == ids[::-1]
    assert [change.at for change in history] == sorted((change.at for change in history), reverse=True)
    assert [change.id for change in await log.history("LIST1", lead_id="L1", limit=2)] == ids[:0:-1]
    assert [change.id for change in await log.history("LIST1", lead_uid="lead-40")] == ids[::-1]
    assert await log.history("LIST1", lead_id="L404") == []


async def test_history_finds_a_uid_change_under_the_old_and_the_new_uid(log: AuditStore) -> None:
    renamed = await log.begin(
        actor=ALICE,
        action="set",
        command="set Demo lead-40 uid=lead-40b",
        request_id="req-uid",
        list_id="LIST1",
        lead_id="L1",
        lead_uid="lead-40",
        before=snapshot("lead-40"),
    )
    assert renamed is not None
    await log.finish(renamed, outcome=Outcome.OK, after=snapshot("lead-40b"))
    unrelated = await begin_rank(log, request_id="req-other", lead_id="L2", uid="lead-41")

    assert [change.id for change in await log.history("LIST1", lead_uid="lead-40")] == [renamed]
    assert [change.id for change in await log.history("LIST1", lead_uid="lead-40b")] == [renamed]
    assert [change.id for change in await log.history("LIST2", lead_uid="lead-40b")] == []
    assert unrelated not in [change.id for change in await log.history("LIST1", lead_uid="lead-40b")]


async def test_history_includes_every_outcome(log: AuditStore) -> None:
    pending = await begin_rank(log, request_id="a")
    failed = await begin_rank(log, request_id="b")
    assert pending is not None and failed is not None
    await log.finish(failed, outcome=Outcome.FAILED, detail="babelforce refused it.")
    outcomes = [change.outcome for change in await log.history("LIST1", lead_id="L1")]
    assert outcomes == [Outcome.FAILED, Outcome.PENDING]


async def test_mark_undone_twice_is_true_then_false(log: AuditStore) -> None:
    change_id = await begin_rank(log, request_id="req-1")
    assert change_id is not None
    undo_id = await log.begin(actor=ALICE, action="undo", command="undo", request_id="undo-1", undo_of=change_id)
    assert undo_id is not None

    assert await log.mark_undone(change_id, undo_id) is True
    assert await log.mark_undone(change_id, undo_id + 1) is False
    change, undo = await log.get(change_id), await log.get(undo_id)
    assert change is not None and change.undone_by == undo_id
    assert undo is not None and undo.undo_of == change_id


async def test_concurrent_mark_undone_lets_exactly_one_win(log: AuditStore) -> None:
    change_id = await begin_rank(log, request_id="req-1")
    assert change_id is not None
    results = await asyncio.gather(*(log.mark_undone(change_id, 100 + n) for n in range(20)))
    assert results.count(True) == 1


async def test_latest_change_of_is_the_users_latest_that_was_or_may_have_been_applied(log: AuditStore) -> None:
    assert await log.latest_change_of(ALICE.user_id) is None
    first = await begin_rank(log, request_id="cmd:1")
    assert first is not None
    await log.finish(first, outcome=Outcome.OK, after=snapshot("lead-40", rank=45))
    assert (await log.latest_change_of(ALICE.user_id)).id == first  # type: ignore[union-attr]

    failed = await begin_rank(log, request_id="cmd:2", lead_id="L2")
    assert failed is not None
    await log.finish(failed, outcome=Outcome.FAILED, detail="HTTP 503")  # changed nothing: passed over
    await log.denied(actor=ALICE, action="rank", command="rank", reason="writer")  # nor a denial
    bobs = await log.begin(actor=BOB, action="rank", command="rank", request_id="cmd:3", list_id="LIST1")
    assert bobs is not None  # someone else's
    undo = await log.begin(actor=ALICE, action="undo", command="undo", request_id="undo:x", undo_of=first)
    assert undo is not None  # an undo is not a change to undo
    assert (await log.latest_change_of(ALICE.user_id)).id == first  # type: ignore[union-attr]

    unknown = await begin_rank(log, request_id="cmd:4", lead_id="L3")
    assert unknown is not None
    await log.finish(unknown, outcome=Outcome.UNKNOWN)  # may have been applied: not skipped for an older one
    assert (await log.latest_change_of(ALICE.user_id)).id == unknown  # type: ignore[union-attr]
    assert (await log.latest_change_of(ALICE.user_id, undoable=True)).id == first  # type: ignore[union-attr]

    await log.mark_undone(first, undo)
    latest = await log.latest_change_of(ALICE.user_id)
    assert latest is not None and latest.id == unknown
    assert await log.latest_change_of(ALICE.user_id, undoable=True) is None
    assert (await log.latest_change_of(BOB.user_id)).id == bobs  # type: ignore[union-attr]


def test_latest_change_of_walks_the_user_index_backwards(db_path: Path) -> None:
    AuditLog(db_path).close()
    with closing(sqlite3.connect(db_path)) as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM changes WHERE user_id = ? AND undo_of IS NULL "
                "AND outcome IN ('ok', 'unknown', 'pending') ORDER BY id DESC LIMIT 1",
                ("U0ALICE",),
            )
        )
    assert "USING INDEX changes_user_id" in plan and "TEMP B-TREE" not in plan, plan


async def test_get_of_an_id_sqlite_cannot_hold_is_none(log: AuditStore) -> None:
    assert await log.get(2**63) is None and await log.get(0) is None and await log.get(-1) is None


async def test_undos_of_lists_every_undo_attempt_oldest_first(log: AuditStore) -> None:
    change_id = await begin_rank(log, request_id="cmd:1")
    other = await begin_rank(log, request_id="cmd:2", lead_id="L2")
    assert change_id and other
    first = await log.begin(actor=BOB, action="undo", command="undo", request_id="undo:a", undo_of=change_id)
    second = await log.begin(actor=BOB, action="undo", command="undo", request_id="undo:b", undo_of=change_id)
    await log.begin(actor=BOB, action="undo", command="undo", request_id="undo:c", undo_of=other)

    assert [change.id for change in await log.undos_of(change_id)] == [first, second]
    assert await log.undos_of(12345) == []


async def test_claim_returns_the_held_command_once(log: AuditStore) -> None:
    command = {"kind": "rank", "list": "Demo", "lead": "lead-40", "rank": 45}
    await log.hold(token="tok-1", actor=ALICE, command=command)
    assert await log.claim("tok-1", user_id=ALICE.user_id) == command
    assert await log.claim("tok-1", user_id=ALICE.user_id) is None
    assert await log.claim("tok-unknown", user_id=ALICE.user_id) is None


async def test_claim_by_another_user_is_none_and_leaves_it_held(log: AuditStore) -> None:
    await log.hold(token="tok-1", actor=ALICE, command={"kind": "rank"})
    assert await log.claim("tok-1", user_id=BOB.user_id) is None
    assert await log.cancel("tok-1", user_id=BOB.user_id) is False
    assert await log.claim("tok-1", user_id=ALICE.user_id) == {"kind": "rank"}


async def test_claim_after_expiry_is_none(log: AuditStore, clock: FakeClock) -> None:
    await log.hold(token="tok-1", actor=ALICE, command={"kind": "rank"}, expires_in=60)
    await log.hold(token="tok-2", actor=ALICE, command={"kind": "add"}, expires_in=60)
    clock.advance(59)
    assert await log.claim("tok-2", user_id=ALICE.user_id) == {"kind": "add"}
    clock.advance(1)
    assert await log.claim("tok-1", user_id=ALICE.user_id) is None


async def test_concurrent_claims_return_the_command_once(log: AuditStore) -> None:
    await log.hold(token="tok-1", actor=ALICE, command={"kind": "rank"})
    results = await asyncio.gather(*(log.claim("tok-1", user_id=ALICE.user_id) for _ in range(20)))
    assert results.count({"kind": "rank"}) == 1
    assert results.count(None) == 19


async def test_cancel_drops_the_held_command(log: AuditStore) -> None:
    await log.hold(token="tok-1", actor=ALICE, command={"kind": "rank"})
    assert await log.cancel("tok-1", user_id=ALICE.user_id) is True
    assert await log.cancel("tok-1", user_id=ALICE.user_id) is False
    assert await log.claim("tok-1", user_id=ALICE.user_id) is None


async def test_old_expired_confirmations_are_purged(log: AuditStore, clock: FakeClock, audit_target: str) -> None:
    await log.hold(token="tok-old", actor=ALICE, command={"kind": "rank"}, expires_in=60)
    clock.advance(2 * 24 * 3600)
    await log.hold(token="tok-new", actor=ALICE, command={"kind": "rank"})
    assert [row["token"] for row in store_rows(audit_target, "SELECT token FROM confirmations")] == ["tok-new"]


async def test_denied_is_recorded_finished_with_its_reason(log: AuditStore) -> None:
    change_id = await log.denied(
        actor=BOB, action="rank", command="rank Demo lead-40 1", reason="not in #leads-admins", list_ref="Demo"
    )
    change = await log.get(change_id)
    assert change is not None
    assert (change.outcome, change.detail, change.list_name, change.list_id) == (
        Outcome.DENIED,
        "not in #leads-admins",
        "Demo",
        None,
    )
    assert change.finished_at == change.at == T0


def test_memory_store_works(clock: FakeClock) -> None:
    async def main() -> Change | None:
        store = AuditLog(":memory:", clock=clock)
        try:
            change_id = await begin_rank(store, request_id="req-1")
            assert await begin_rank(store, request_id="req-1") is None
            return await store.get(change_id or 0)
        finally:
            store.close()

    change = asyncio.run(main())
    assert change is not None and change.outcome is Outcome.PENDING


def test_default_path_is_the_data_folder() -> None:
    assert Path("data") / "leadbot.db" == audit.DEFAULT_DB_PATH


def test_creates_the_data_folder_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "leadbot.db"
    AuditLog(path).close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == audit.SCHEMA_VERSION


def assert_plain(error: AuditError, tmp_path: Path) -> None:
    assert "LEADBOT_DB" in error.message
    assert error.message == str(error)
    assert "\n" not in error.message and "Traceback" not in error.message
    assert str(tmp_path) not in error.message and "postgresql://" not in error.message
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_a_path_under_a_regular_file_fails_at_construction(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(AuditError) as caught:
        AuditLog(blocker / "leadbot.db")
    assert_plain(caught.value, tmp_path)


def test_a_directory_as_the_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(AuditError) as caught:
        AuditLog(tmp_path)
    assert_plain(caught.value, tmp_path)


def test_a_file_that_is_not_a_database_fails_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "leadbot.db"
    path.write_bytes(b"this is a text file, not SQLite, and long enough to have a header" * 4)
    with pytest.raises(AuditError) as caught:
        AuditLog(path)
    assert_plain(caught.value, tmp_path)


def test_a_file_from_a_newer_leadbot_fails_at_construction(db_path: Path, tmp_path: Path) -> None:
    AuditLog(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {audit.SCHEMA_VERSION + 1}")
    with pytest.raises(AuditError, match="newer leadbot") as caught:
        AuditLog(db_path)
    assert_plain(caught.value, tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes through file modes")
def test_a_read_only_folder_fails_at_construction(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(AuditError) as caught:
            AuditLog(folder / "leadbot.db")
        assert_plain(caught.value, tmp_path)
    finally:
        folder.chmod(0o755)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes through file modes")
def test_a_read_only_file_fails_at_construction(db_path: Path, tmp_path: Path) -> None:
    AuditLog(db_path).close()
    for leftover in db_path.parent.iterdir():
        leftover.chmod(0o444)
    try:
        with pytest.raises(AuditError) as caught:
            AuditLog(db_path)
        assert_plain(caught.value, tmp_path)
    finally:
        for leftover in db_path.parent.iterdir():
            leftover.chmod(0o644)


async def test_begin_after_the_table_is_dropped_raises_audit_error(
    log: AuditStore, audit_target: str, tmp_path: Path
) -> None:
    store_rows(audit_target, "DROP TABLE changes")
    with pytest.raises(AuditError) as caught:
        await begin_rank(log, request_id="req-1")
    assert_plain(caught.value, tmp_path)
    assert "could not be written" in caught.value.message


async def test_begin_after_close_raises_audit_error(log: AuditStore, tmp_path: Path) -> None:
    log.close()
    log.close()  # idempotent
    with pytest.raises(AuditError, match="closed") as caught:
        await begin_rank(log, request_id="req-1")
    assert_plain(caught.value, tmp_path)
    with pytest.raises(AuditError, match="could not be read"):
        await log.get(1)


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(audit, "BUSY_TIMEOUT_S", 0.2)
    yield


class WriteBlocker:
    """Another connection holding the lock every write of the store needs (SQLite: the file's write lock;
    PostgreSQL: the changes table's), as another process would."""

    def __init__(self, target: str) -> None:
        self.target = target
        if is_postgres(target):
            import psycopg

            self._pg = psycopg.connect(target)
            self._pg.execute("LOCK TABLE changes IN EXCLUSIVE MODE")
        else:
            self._sqlite = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            self._sqlite.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if is_postgres(self.target):
            self._pg.rollback()
            self._pg.close()
        else:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()


@pytest.mark.usefixtures("short_busy_timeout")
async def test_a_lock_held_past_the_busy_timeout_raises_audit_error(audit_target: str, tmp_path: Path) -> None:
    store = open_store(audit_target)
    blocker = WriteBlocker(audit_target)
    try:
        with pytest.raises(AuditError, match="database is locked") as caught:
            await begin_rank(store, request_id="req-1")
        assert_plain(caught.value, tmp_path)
        blocker.release()
        assert await begin_rank(store, request_id="req-1") is not None  # the failed attempt reserved nothing
    finally:
        store.close()


@pytest.mark.usefixtures("short_busy_timeout")
async def test_take_lead_given_up_on_a_lock_records_nothing_holds_nothing_and_the_store_goes_on(
    audit_target: str, tmp_path: Path
) -> None:
    store = open_store(audit_target)
    blocker = WriteBlocker(audit_target)
    try:
        mark = (await store.check_request("req-1")).mark
        with pytest.raises(AuditError, match="database is locked") as caught:
            await store.take_lead("LIST1", "L1", "me:a", ttl=60, request_id="req-1", mark=mark, attempt=rank_attempt())
        assert_plain(caught.value, tmp_path)
        blocker.release()
        assert store_rows(audit_target, "SELECT COUNT(*) AS n FROM lead_locks")[0]["n"] == 0  # rolled back whole
        for _ in range(3):  # the same connections, rolled back, serve the next calls
            assert (await store.check_request("req-1")).reserved is False
        taken = await store.take_lead(
            "LIST1", "L1", "me:b", ttl=60, request_id="req-1", mark=mark, attempt=rank_attempt()
        )
        assert taken.locked and taken.change_id is not None
    finally:
        store.close()


@pytest.mark.usefixtures("short_busy_timeout")
async def test_a_lock_held_briefly_is_waited_for(audit_target: str) -> None:
    store = open_store(audit_target)
    blocker = WriteBlocker(audit_target)
    try:
        attempt = asyncio.create_task(begin_rank(store, request_id="req-1"))
        await asyncio.sleep(0.05)
        blocker.release()
        assert await attempt is not None
    finally:
        store.close()


async def test_a_snapshot_that_is_not_json_raises_audit_error(log: AuditStore, audit_target: str) -> None:
    with pytest.raises(AuditError, match="not plain data"):
        await log.begin(
            actor=ALICE, action="rank", command="rank", request_id="req-1", before={"uid": "x", "at": datetime.now(UTC)}
        )
    assert row_count(audit_target) == 0


async def test_failures_are_logged_without_data_values(
    log: AuditStore, audit_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    store_rows(audit_target, "DROP TABLE changes")
    with caplog.at_level("WARNING", logger="bot"), pytest.raises(AuditError):
        await begin_rank(log, request_id="req-secret", uid="lead-secret")
    text = caplog.text
    assert "begin" in text and ("no such table" in text or 'relation "changes" does not exist' in text)
    assert "req-secret" not in text and "lead-secret" not in text and "+4930123456" not in text


async def test_settle_interrupted_marks_only_old_pending_attempts_unknown(log: AuditStore, clock: FakeClock) -> None:
    old = await begin_rank(log, request_id="old", lead_id="L1")
    clock.advance(INTERRUPTED_AFTER_S + 1)
    young = await begin_rank(log, request_id="young", lead_id="L2")
    done = await begin_rank(log, request_id="done", lead_id="L3")
    assert old and young and done
    await log.finish(done, outcome=Outcome.OK, after=snapshot("lead-40", rank=45))

    assert log.settle_interrupted() == 1

    settled = await log.get(old)
    assert settled is not None and settled.outcome == Outcome.UNKNOWN
    assert settled.detail == "interrupted: leadbot stopped before babelforce answered"
    assert settled.finished_at is not None
    assert (await log.get(young)).outcome == Outcome.PENDING  # maybe another process's, still in flight
    assert (await log.get(done)).outcome == Outcome.OK
    assert await log.begin(actor=ALICE, action="rank", command="again", request_id="old") is None  # still reserved


# ---------------------------------------------------------------------- the store fails closed


@pytest.fixture
async def file_log(db_path: Path) -> AsyncIterator[AuditLog]:
    store = AuditLog(db_path)
    yield store
    store.close()


async def test_a_deleted_audit_file_refuses_every_write_and_says_so(
    file_log: AuditLog, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = file_log
    assert await begin_rank(log, request_id="before") is not None
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)

    with caplog.at_level("ERROR"), pytest.raises(AuditError, match="was deleted while leadbot runs"):
        await begin_rank(log, request_id="after")
    with pytest.raises(AuditError):
        await log.hold(token="t", actor=ALICE, command={"kind": "rank"})
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1 and "restarted" in errors[0].getMessage()  # told once, with what to do


async def test_a_replaced_audit_file_refuses_writes(file_log: AuditLog, db_path: Path) -> None:
    log = file_log
    replacement = db_path.with_name("other.db")
    AuditLog(replacement).close()
    replacement.replace(db_path)

    with pytest.raises(AuditError, match="was replaced while leadbot runs"):
        await begin_rank(log, request_id="after")


# ---------------------------------------------------------------------- several processes on one store


async def test_the_lead_lock_is_held_across_stores_and_a_lapsed_one_is_taken_over(audit_target: str) -> None:
    one, two = open_store(audit_target), open_store(audit_target)  # two processes (or replicas)
    try:
        assert await one.lock_lead("LIST1", "L1", "one:a", ttl=60) is True
        assert await one.lock_lead("LIST1", "L1", "one:a", ttl=60) is True  # its own lock, still
        assert await two.lock_lead("LIST1", "L1", "two:a", ttl=60) is False
        assert await two.lock_lead("LIST1", "L2", "two:a", ttl=60) is True  # another lead is free
        await two.unlock_lead("LIST1", "L1", "two:a")  # not its lock: nothing released
        assert await two.lock_lead("LIST1", "L1", "two:b", ttl=60) is False
        await one.unlock_lead("LIST1", "L1", "one:a")
        assert await two.lock_lead("LIST1", "L1", "two:b", ttl=60) is True

        # a crashed process's lock: its expiry has passed, so the next writer takes it over
        store_rows(audit_target, "UPDATE lead_locks SET expires_at = ? WHERE lead_id = 'L1'", (PAST,))
        assert await one.lock_lead("LIST1", "L1", "one:b", ttl=60) is True
        assert await two.lock_lead("LIST1", "L1", "two:c", ttl=60) is False
    finally:
        one.close()
        two.close()


PAST = "2000-01-01T00:00:00.000000+00:00"


def rank_attempt(uid: str = "lead-40", *, lead_id: str = "L1", request_id: str | None = "req-1") -> Attempt:
    return Attempt(
        actor=ALICE,
        action="rank",
        command=f'rank "Demo" {uid} 45',
        request_id=request_id,
        list_id="LIST1",
        list_name="Demo",
        lead_id=lead_id,
        lead_uid=uid,
        before=snapshot(uid),
        intended=snapshot(uid, rank=45),
        reply_to={"channel_id": "C0OPS"},
    )


async def test_check_request_tells_a_taken_request_id_and_the_newest_record_in_one_call(log: AuditStore) -> None:
    assert await log.check_request("req-1") == RequestCheck(reserved=False, mark=0)
    first = await begin_rank(log, request_id="req-1")
    failed = await begin_rank(log, request_id="req-2")
    assert first is not None and failed is not None
    await log.finish(failed, outcome=Outcome.FAILED, detail="refused")
    calls = log.calls.copy()

    assert await log.check_request("req-1") == RequestCheck(reserved=True, mark=failed)
    assert await log.check_request("req-2") == RequestCheck(reserved=False, mark=failed)  # a failed one holds nothing
    assert await log.check_request(None) == RequestCheck(reserved=False, mark=failed)
    assert log.calls - calls == Counter({"check request": 3})


async def test_take_lead_locks_checks_and_records_in_one_call_and_finish_unlocks(audit_target: str) -> None:
    one, two = open_store(audit_target), open_store(audit_target)  # two processes (or replicas)
    try:
        mark = (await one.check_request("req-1")).mark
        calls = one.calls.copy()
        taken = await one.take_lead(
            "LIST1", "L1", "one:a", ttl=60, request_id="req-1", mark=mark, attempt=rank_attempt()
        )
        assert one.calls - calls == Counter({"take lead": 1})
        assert taken.locked and not taken.reserved and not taken.written and taken.change_id is not None
        pending = await one.get(taken.change_id)
        assert pending is not None and pending.outcome is Outcome.PENDING
        assert (pending.request_id, pending.lead_id, pending.before, pending.undo_of) == (
            "req-1",
            "L1",
            snapshot("lead-40"),
            None,
        )
        assert pending.reply_to == {"channel_id": "C0OPS"} and pending.actor == ALICE
        assert await two.lock_lead("LIST1", "L1", "two:a", ttl=60) is False  # the lock went in with the record

        # another process's retry of the same request, waiting for the lock: told at once that it is taken
        waiting = await two.take_lead(
            "LIST1", "L1", "two:b", ttl=60, request_id="req-1", mark=mark, attempt=rank_attempt()
        )
        assert waiting == LeadTaken(locked=False, reserved=True, written=True, change_id=None)

        calls = one.calls.copy()
        await one.finish(
            taken.change_id,
            outcome=Outcome.OK,
            after=snapshot("lead-40", rank=45),
            unlock=LeadHolder("LIST1", "L1", "one:a"),
        )
        assert one.calls - calls == Counter({"finish": 1})
        done = await one.get(taken.change_id)
        assert done is not None and done.outcome is Outcome.OK and done.after == snapshot("lead-40", rank=45)
        assert await two.lock_lead("LIST1", "L1", "two:c", ttl=60) is True  # released with the outcome
    finally:
        one.close()
        two.close()


async def test_take_lead_records_nothing_when_the_lead_was_written_since_the_mark_or_the_request_is_taken(
    audit_target: str,
) -> None:
    store = open_store(audit_target)
    try:
        mark = (await store.check_request(None)).mark
        await store.denied(actor=BOB, action="rank", command="rank", reason="not a writer")  # denied: no write
        taken = await store.take_lead("LIST1", "L1", "me:a", ttl=60, request_id="r1", mark=mark, attempt=rank_attempt())
        assert taken.locked and not taken.written and taken.change_id is not None  # a denial is no write of it
        await store.unlock_lead("LIST1", "L1", "me:a")

        # written by another process since the mark: the lock is taken, nothing recorded (plan again)
        mark = (await store.check_request(None)).mark
        assert await begin_rank(store, request_id="other", lead_id="L2") is not None
        taken = await store.take_lead(
            "LIST1", "L2", "me:b", ttl=60, request_id="r2", mark=mark, attempt=rank_attempt(lead_id="L2")
        )
        assert taken == LeadTaken(locked=True, reserved=False, written=True, change_id=None)
        assert (await store.check_request("r2")).reserved is False
        await store.unlock_lead("LIST1", "L2", "me:b")

        # the request id taken meanwhile (by another process): locked, reserved, nothing recorded
        mark = (await store.check_request(None)).mark
        assert await begin_rank(store, request_id="r3", lead_id="L9") is not None
        taken = await store.take_lead(
            "LIST1", "L3", "me:c", ttl=60, request_id="r3", mark=mark, attempt=rank_attempt(lead_id="L3")
        )
        assert taken == LeadTaken(locked=True, reserved=True, written=False, change_id=None)
        await store.unlock_lead("LIST1", "L3", "me:c")

        # no mark (it could not be read): written, so nothing recorded; no attempt: just the lock and the facts
        taken = await store.take_lead("LIST1", "L4", "me:d", ttl=60, request_id="r4", mark=None, attempt=rank_attempt())
        assert taken == LeadTaken(locked=True, reserved=False, written=True, change_id=None)
        taken = await store.take_lead("LIST1", "L5", "me:e", ttl=60)
        assert taken == LeadTaken(locked=True, reserved=False, written=True, change_id=None)
        assert row_count(audit_target, "request_id IN ('r2', 'r4')") == 0
    finally:
        store.close()


async def test_a_lease_is_held_by_one_store_renewed_released_and_taken_over_when_it_lapses(audit_target: str) -> None:
    one, two = open_store(audit_target), open_store(audit_target)  # two processes (or replicas)
    try:
        assert await one.try_lease("alerts:C1", "one", ttl=60) is True
        assert await two.try_lease("alerts:C1", "two", ttl=60) is False
        assert await two.try_lease("alerts:C2", "two", ttl=60) is True  # another lease is free
        assert await one.try_lease("alerts:C1", "one", ttl=60) is True  # renewed by its holder
        assert await one.renew_lease("alerts:C1", "one", ttl=60) is True
        assert await two.renew_lease("alerts:C1", "two", ttl=60) is False  # renewing is for the holder only
        await two.release_lease("alerts:C1", "two")  # not its lease: nothing released
        assert await two.try_lease("alerts:C1", "two", ttl=60) is False
        await one.release_lease("alerts:C1", "one")
        assert await two.try_lease("alerts:C1", "two", ttl=60) is True  # released: taken at the next try

        # a holder that died without releasing it: the lease lapses at its expiry and the next try takes it over
        store_rows(audit_target, "UPDATE leases SET expires_at = ? WHERE name = 'alerts:C1'", (PAST,))
        assert await two.renew_lease("alerts:C1", "two", ttl=60) is False  # lapsed: its holder must take it again
        assert await one.try_lease("alerts:C1", "one", ttl=60) is True
        assert await two.try_lease("alerts:C1", "two", ttl=60) is False
    finally:
        one.close()
        two.close()


async def test_of_processes_trying_a_free_lease_at_once_exactly_one_gets_it(audit_target: str) -> None:
    stores = [open_store(audit_target) for _ in range(4)]
    try:
        got = await asyncio.gather(*(store.try_lease("alerts", f"p{n}", ttl=60) for n, store in enumerate(stores)))
        assert sorted(got) == [False, False, False, True]
    finally:
        for store in stores:
            store.close()


async def test_the_last_alert_about_each_campaign_is_kept_per_channel(log: AuditStore) -> None:
    assert await log.last_alerts("C0ALERTS") == {}
    later = T0 + timedelta(minutes=5)
    await log.record_alert("C0ALERTS", "CAMP1", state="low", line="Spring: hopper low", at=T0)
    await log.record_alert("C0ALERTS", "CAMP1", state="ok", line="Spring recovered", at=later)  # replaces it
    await log.record_alert("C0ALERTS", "CAMP2", state="empty", line="Renewals: hopper empty", at=T0)
    await log.record_alert("C0OTHER", "CAMP1", state="stopped", line="Spring stopped", at=T0)

    assert await log.last_alerts("C0ALERTS") == {
        "CAMP1": PostedAlert("CAMP1", "ok", "Spring recovered", later),
        "CAMP2": PostedAlert("CAMP2", "empty", "Renewals: hopper empty", T0),
    }
    assert list(await log.last_alerts("C0OTHER")) == ["CAMP1"]


def test_the_start_up_sweep_settles_each_interrupted_attempt_once_with_replicas_starting_together(
    audit_target: str, clock: FakeClock
) -> None:
    seed = open_store(audit_target, clock=clock)
    pending = 30
    try:
        for n in range(pending):
            asyncio.run(begin_rank(seed, request_id=f"crashed-{n}", lead_id=f"L{n}"))
    finally:
        seed.close()
    clock.advance(INTERRUPTED_AFTER_S + 1)
    replicas = [open_store(audit_target, clock=clock) for _ in range(3)]
    counts: list[int] = []
    start = threading.Barrier(len(replicas))

    def sweep(store: AuditStore) -> None:
        start.wait()
        counts.append(store.settle_interrupted())

    try:
        threads = [threading.Thread(target=sweep, args=(store,)) for store in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for store in replicas:
            store.close()
    assert sum(counts) == pending, counts  # each record settled by exactly one replica
    assert row_count(audit_target, "outcome = 'unknown'") == pending


async def test_a_record_two_replicas_settle_at_once_is_settled_by_one(audit_target: str) -> None:
    one, two = open_store(audit_target), open_store(audit_target)
    try:
        change_id = await begin_rank(one, request_id="req-1")
        assert change_id is not None
        await one.finish(change_id, outcome=Outcome.UNKNOWN, detail="babelforce did not answer in time")
        read_by_one, read_by_two = await one.get(change_id), await two.get(change_id)  # both sweeps find it
        assert read_by_one is not None and read_by_two is not None

        won = await asyncio.gather(
            one.settle(read_by_one, outcome=Outcome.OK, detail="settled later: arrived late"),
            two.settle(read_by_two, outcome=Outcome.FAILED, detail="settled later: never applied"),
        )

        assert sorted(won) == [False, True]
        settled = await one.get(change_id)
        assert settled is not None and settled.outcome == (Outcome.OK if won[0] else Outcome.FAILED)
        assert await two.settle(read_by_two, outcome=Outcome.FAILED) is False  # too late: it changed since it was read
        with pytest.raises(AuditError, match="not in it"):
            await one.finish(12345, outcome=Outcome.OK)
    finally:
        one.close()
        two.close()


def test_stores_opened_at_once_apply_each_migration_once(audit_target: str, store_kind: str) -> None:
    opened: list[AuditStore] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            opened.append(open_store(audit_target))
        except BaseException as failure:  # noqa: BLE001 - reported below
            failures.append(failure)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for store in opened:
        store.close()
    assert failures == [] and len(opened) == 4
    recorded = store_rows(audit_target, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    steps = migrations.migrations("sqlite" if store_kind == "sqlite" else "postgresql")
    assert [(row["version"], row["name"]) for row in recorded] == [(step.version, step.name) for step in steps]
    assert all(row["applied_at"] for row in recorded)


def test_a_store_from_a_newer_leadbot_is_refused(audit_target: str, tmp_path: Path) -> None:
    open_store(audit_target).close()
    store_rows(
        audit_target, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', ?)", (PAST,)
    )
    with pytest.raises(AuditError, match="newer leadbot") as caught:
        open_store(audit_target)
    assert_plain(caught.value, tmp_path)


# ---------------------------------------------------------------------- files made before the numbered migrations


def old_file(db_path: Path, fixture: str) -> None:
    """A SQLite file as an older leadbot left it (tests/fixtures/audit: that code's DDL, verbatim, and records)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(db_path)) as conn:
        conn.executescript((FIXTURES / fixture).read_text(encoding="utf-8"))


async def test_a_version_5_file_from_before_the_migrations_table_upgrades_and_keeps_its_records(
    db_path: Path,
) -> None:
    old_file(db_path, "schema_v5.sql")
    before = store_rows(db_path, "SELECT * FROM changes ORDER BY id")

    store = AuditLog(db_path)
    try:
        assert store_rows(db_path, "SELECT * FROM changes ORDER BY id") == before  # not a value changed
        recorded = store_rows(db_path, "SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(row["version"], row["name"]) for row in recorded] == [
            (step.version, step.name) for step in migrations.migrations("sqlite")
        ]
        first = await store.get(1)
        assert first is not None and first.outcome is Outcome.OK and first.undone_by == 3
        assert first.before == {"uid": "lead-40", "rank": 50} and first.reply_to is not None
        assert [change.id for change in await store.history("LIST1", lead_uid="lead-40")] == [3, 1]
        assert await begin_rank(store, request_id="command:T1") is None  # its request ids are still reserved
        assert await store.claim("tok-held", user_id="U0ALICE") == {"kind": "rank", "rank": 45}
        assert await store.lock_lead("LIST1", "L41", "new-holder", ttl=60) is True  # the stale lock lapsed
        assert store.settle_interrupted() == 1  # its interrupted write (#2)
        written = await begin_rank(store, request_id="after-upgrade")
        assert written == 5
        await store.finish(written, outcome=Outcome.OK)
    finally:
        store.close()
    with closing(sqlite3.connect(db_path)) as conn:  # an older leadbot still reads the version it knows
        assert conn.execute("PRAGMA user_version").fetchone()[0] == audit.SCHEMA_VERSION


async def test_a_version_1_file_is_brought_up_to_date_and_keeps_its_records(db_path: Path) -> None:
    old_file(db_path, "schema_v1.sql")

    store = AuditLog(db_path)
    try:
        added, undo = await store.get(1), await store.get(2)
        assert added is not None and added.after == {"uid": "new-1", "number": "+4930123456", "rank": 0}
        assert undo is not None and (undo.action, undo.undo_of, undo.reply_to) == ("undo_add", 1, None)  # 1 -> 2
        assert (await store.latest_change_of("U0ALICE")).id == 1  # type: ignore[union-attr]
        assert await store.lock_lead("LIST1", "L9", "holder", ttl=60) is True  # lead_locks exists (4 -> 5)
        assert await begin_rank(store, request_id="after-upgrade") == 3
    finally:
        store.close()
    versions = [row["version"] for row in store_rows(db_path, "SELECT version FROM schema_migrations")]
    assert sorted(versions) == list(range(1, audit.SCHEMA_VERSION + 1))
    with closing(sqlite3.connect(db_path)) as conn:
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(changes)")}
    assert {"changes_user_id", "changes_unsettled"} <= indexes


def test_the_migration_files_ship_with_the_package() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"migrations/*/*.sql"' in pyproject  # setuptools package data: an installed leadbot has its schema
    assert migrations.migrations("postgresql")
    assert all(step.statements() for step in migrations.migrations("sqlite"))  # SQLite runs them one by one


# ---------------------------------------------------------------------- LEADBOT_DB: which store


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "sqlite"),
        ("data/leadbot.db", "sqlite"),
        ("/srv/leadbot/audit.db", "sqlite"),
        ("sqlite:///data/leadbot.db", "sqlite"),
        ("postgresql://leadbot:secret@db.internal:5432/leadbot", "postgresql"),
        ("postgres://leadbot@db.internal/leadbot?sslmode=require", "postgresql"),
    ],
)
def test_leadbot_db_names_a_file_or_a_postgresql_database(value: str | None, kind: str) -> None:
    assert audit.store_kind(value) == kind


def test_a_sqlite_url_names_its_file(tmp_path: Path) -> None:
    assert audit.sqlite_path("sqlite:///data/x.db") == "data/x.db"
    assert audit.sqlite_path(f"sqlite:///{tmp_path}/x.db") == f"{tmp_path}/x.db"  # sqlite:////abs/x.db
    open_store(f"sqlite:///{tmp_path}/x.db").close()
    assert (tmp_path / "x.db").exists()


@pytest.mark.parametrize("value", ["mysql://leadbot:secret@db/leadbot", "redis://:secret@cache:6379/0", "sqlite://x"])
def test_any_other_url_is_refused_naming_the_setting_and_not_the_password(value: str, tmp_path: Path) -> None:
    with pytest.raises(AuditError) as caught:
        open_store(value)
    assert caught.value.message.startswith("LEADBOT_DB ") and "secret" not in caught.value.message
    assert not any(tmp_path.iterdir()) and not Path(value.split("://")[0] + ":").exists()  # no folder made


def test_an_unreachable_postgresql_server_fails_at_construction_without_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level("INFO"), pytest.raises(AuditError) as caught:
        open_store(f"postgresql://leadbot:hunter2@127.0.0.1:{port}/leadbot")
    assert "could not be opened" in caught.value.message
    assert_plain(caught.value, tmp_path)
    assert "hunter2" not in caught.value.message and "hunter2" not in caplog.text


def test_postgresql_calls_use_their_event_loops_own_connections_closed_once_done(postgres: PostgresServer) -> None:
    """A call runs on connections of the caller's event loop (no hop to the store's thread); those of a loop that
    ended (a finished asyncio.run) are closed when the next loop starts, the rest at close()."""
    url = postgres.scratch_database()
    others = "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

    def connections() -> int:
        return int(store_rows(url, others)[0]["n"])

    store = open_store(url)
    try:
        opened = connections()  # the store thread's own (opening, the start-up sweep)

        async def three_at_once(loop_number: int) -> None:
            ids = await asyncio.gather(
                *(begin_rank(store, request_id=f"{loop_number}-{n}", lead_id=f"L{n}") for n in range(3))
            )
            assert None not in ids

        for loop_number in range(4):
            asyncio.run(three_at_once(loop_number))
            assert connections() <= opened + 3  # this loop's three; the ended loops' were closed
        assert row_count(url) == 12
    finally:
        store.close()
    deadline = time.monotonic() + 5
    while connections() and time.monotonic() < deadline:  # a backend leaves pg_stat_activity as it exits
        time.sleep(0.05)
    assert connections() == 0
