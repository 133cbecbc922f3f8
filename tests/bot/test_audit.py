"""The audit trail on real SQLite files: round trips, restarts, duplicate deliveries, concurrency across connections
and processes, history lookups, undo claims, held confirmations, and failures reported as one plain sentence."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import audit
from bot.audit import INTERRUPTED_AFTER_S, Actor, AuditError, AuditLog, Change, Outcome

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
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
async def log(db_path: Path, clock: FakeClock) -> AsyncIterator[AuditLog]:
    store = AuditLog(db_path, clock=clock)
    yield store
    store.close()


def snapshot(uid: str, number: str = "+4930123456", rank: int = 50, **data: str) -> dict:
    return {"uid": uid, "number": number, "rank": rank, "data": data}


async def begin_rank(
    store: AuditLog, *, request_id: str | None, lead_id: str = "L1", uid: str = "lead-40"
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


def row_count(path: Path, where: str = "1", params: tuple = ()) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM changes WHERE {where}", params).fetchone()[0]


async def test_begin_then_finish_round_trips_every_field(log: AuditLog, clock: FakeClock) -> None:
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


async def test_finish_sets_lead_fields_of_an_add_and_keeps_what_is_not_given(log: AuditLog) -> None:
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


async def test_finish_of_an_unknown_change_raises_audit_error(log: AuditLog) -> None:
    with pytest.raises(AuditError, match="LEADBOT_DB"):
        await log.finish(12345, outcome=Outcome.OK)


async def test_changes_survive_reopening_the_file(db_path: Path, clock: FakeClock) -> None:
    first = AuditLog(db_path, clock=clock)
    change_id = await begin_rank(first, request_id="req-1")
    assert change_id is not None
    await first.finish(change_id, outcome=Outcome.OK, after=snapshot("lead-40", rank=45))
    await first.hold(token="tok-1", actor=ALICE, command={"kind": "rank", "rank": 45})
    first.close()

    second = AuditLog(db_path, clock=clock)
    try:
        change = await second.get(change_id)
        assert change is not None and change.outcome is Outcome.OK and change.after == snapshot("lead-40", rank=45)
        assert await begin_rank(second, request_id="req-1") is None  # still reserved after the restart
        assert await second.claim("tok-1", user_id=ALICE.user_id) == {"kind": "rank", "rank": 45}
    finally:
        second.close()


async def test_duplicate_request_id_returns_none_and_records_one_row(log: AuditLog, db_path: Path) -> None:
    assert await begin_rank(log, request_id="req-dup") is not None
    assert await begin_rank(log, request_id="req-dup") is None
    assert row_count(db_path, "request_id = ?", ("req-dup",)) == 1


async def test_no_request_id_never_counts_as_a_duplicate(log: AuditLog) -> None:
    first = await begin_rank(log, request_id=None)
    second = await begin_rank(log, request_id=None)
    assert first is not None and second is not None and first != second


async def test_failed_releases_the_request_id_for_a_retry(log: AuditLog) -> None:
    first = await begin_rank(log, request_id="req-1")
    assert first is not None
    await log.finish(first, outcome=Outcome.FAILED, detail="babelforce refused the rank.")

    retry = await begin_rank(log, request_id="req-1")
    assert retry is not None and retry != first
    failed = await log.get(first)
    assert failed is not None and failed.request_id == "req-1"  # the record keeps the id it was asked with


@pytest.mark.parametrize("outcome", [Outcome.OK, Outcome.UNKNOWN])
async def test_ok_and_unknown_keep_the_request_id_reserved(log: AuditLog, outcome: Outcome) -> None:
    first = await begin_rank(log, request_id="req-1")
    assert first is not None
    await log.finish(first, outcome=outcome)
    assert await begin_rank(log, request_id="req-1") is None


async def test_fifty_concurrent_begins_with_one_request_id_give_exactly_one_id(log: AuditLog, db_path: Path) -> None:
    results = await asyncio.gather(*(begin_rank(log, request_id="req-storm") for _ in range(50)))
    ids = [result for result in results if result is not None]
    assert len(ids) == 1
    assert row_count(db_path) == 1


SECOND_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from bot.audit import Actor, AuditLog, Outcome

    async def main(path, count):
        log = AuditLog(path)
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


async def test_two_logs_and_a_second_process_write_one_file_concurrently(db_path: Path) -> None:
    per_writer = 40
    AuditLog(db_path).close()  # create the schema first, as `leadbot run` does at start-up
    process = subprocess.Popen(
        [sys.executable, "-c", SECOND_PROCESS, str(db_path), str(per_writer)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    one, two = AuditLog(db_path), AuditLog(db_path)
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline().strip() == "ready"
        process.stdin.write("go\n")
        process.stdin.flush()

        async def write(store: AuditLog, name: str) -> None:
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

    assert row_count(db_path) == 3 * per_writer
    assert row_count(db_path, "outcome = 'ok'") == 3 * per_writer
    assert row_count(db_path, "request_id LIKE 'proc-%'") == per_writer


async def test_history_is_newest_first_limited_and_only_that_lead(log: AuditLog, clock: FakeClock) -> None:
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


async def test_history_finds_a_uid_change_under_the_old_and_the_new_uid(log: AuditLog) -> None:
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


async def test_history_includes_every_outcome(log: AuditLog) -> None:
    pending = await begin_rank(log, request_id="a")
    failed = await begin_rank(log, request_id="b")
    assert pending is not None and failed is not None
    await log.finish(failed, outcome=Outcome.FAILED, detail="babelforce refused it.")
    outcomes = [change.outcome for change in await log.history("LIST1", lead_id="L1")]
    assert outcomes == [Outcome.FAILED, Outcome.PENDING]


async def test_mark_undone_twice_is_true_then_false(log: AuditLog) -> None:
    change_id = await begin_rank(log, request_id="req-1")
    assert change_id is not None
    undo_id = await log.begin(actor=ALICE, action="undo", command="undo", request_id="undo-1", undo_of=change_id)
    assert undo_id is not None

    assert await log.mark_undone(change_id, undo_id) is True
    assert await log.mark_undone(change_id, undo_id + 1) is False
    change, undo = await log.get(change_id), await log.get(undo_id)
    assert change is not None and change.undone_by == undo_id
    assert undo is not None and undo.undo_of == change_id


async def test_concurrent_mark_undone_lets_exactly_one_win(log: AuditLog) -> None:
    change_id = await begin_rank(log, request_id="req-1")
    assert change_id is not None
    results = await asyncio.gather(*(log.mark_undone(change_id, 100 + n) for n in range(20)))
    assert results.count(True) == 1


async def test_latest_change_of_is_the_users_latest_that_was_or_may_have_been_applied(log: AuditLog) -> None:
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


async def test_latest_change_of_walks_the_user_index_backwards(log: AuditLog, db_path: Path) -> None:
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


async def test_get_of_an_id_sqlite_cannot_hold_is_none(log: AuditLog) -> None:
    assert await log.get(2**63) is None and await log.get(0) is None and await log.get(-1) is None


def test_a_version_2_file_gains_the_user_index_and_keeps_its_records(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db_path)) as conn:
        for step in audit.MIGRATIONS[:2]:
            for statement in step:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO changes (at, user_id, action, command, outcome) VALUES ('2024-05-01', 'U0ALICE', 'rank', "
            "'rank', 'ok')"
        )
        conn.execute("PRAGMA user_version = 2")
        conn.commit()

    AuditLog(db_path).close()

    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == audit.SCHEMA_VERSION
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(changes)")}
        assert "changes_user_id" in indexes
        assert conn.execute("SELECT user_id, action FROM changes").fetchall() == [("U0ALICE", "rank")]


async def test_undos_of_lists_every_undo_attempt_oldest_first(log: AuditLog) -> None:
    change_id = await begin_rank(log, request_id="cmd:1")
    other = await begin_rank(log, request_id="cmd:2", lead_id="L2")
    assert change_id and other
    first = await log.begin(actor=BOB, action="undo", command="undo", request_id="undo:a", undo_of=change_id)
    second = await log.begin(actor=BOB, action="undo", command="undo", request_id="undo:b", undo_of=change_id)
    await log.begin(actor=BOB, action="undo", command="undo", request_id="undo:c", undo_of=other)

    assert [change.id for change in await log.undos_of(change_id)] == [first, second]
    assert await log.undos_of(12345) == []


async def test_claim_returns_the_held_command_once(log: AuditLog) -> None:
    command = {"kind": "rank", "list": "Demo", "lead": "lead-40", "rank": 45}
    await log.hold(token="tok-1", actor=ALICE, command=command)
    assert await log.claim("tok-1", user_id=ALICE.user_id) == command
    assert await log.claim("tok-1", user_id=ALICE.user_id) is None
    assert await log.claim("tok-unknown", user_id=ALICE.user_id) is None


async def test_claim_by_another_user_is_none_and_leaves_it_held(log: AuditLog) -> None:
    await log.hold(token="tok-1", actor=ALICE, command={"kind": "rank"})
    assert await log.claim("tok-1", user_id=BOB.user_id) is None
    assert await log.cancel("tok-1", user_id=BOB.user_id) is False
    assert await log.claim("tok-1", user_id=ALICE.user_id) == {"kind": "rank"}


async def test_claim_after_expiry_is_none(log: AuditLog, clock: FakeClock) -> None:
    await log.hold(token="tok-1", actor=ALICE, command={"kind": "rank"}, expires_in=60)
    await log.hold(token="tok-2", actor=ALICE, command={"kind": "add"}, expires_in=60)
    clock.advance(59)
    assert await log.claim("tok-2", user_id=ALICE.user_id) == {"kind": "add"}
    clock.advance(1)
    assert await log.claim("tok-1", user_id=ALICE.user_id) is None


async def test_concurrent_claims_return_the_command_once(log: AuditLog) -> None:
    await log.hold(token="tok-1", actor=ALICE, command={"kind": "rank"})
    results = await asyncio.gather(*(log.claim("tok-1", user_id=ALICE.user_id) for _ in range(20)))
    assert results.count({"kind": "rank"}) == 1
    assert results.count(None) == 19


async def test_cancel_drops_the_held_command(log: AuditLog) -> None:
    await log.hold(token="tok-1", actor=ALICE, command={"kind": "rank"})
    assert await log.cancel("tok-1", user_id=ALICE.user_id) is True
    assert await log.cancel("tok-1", user_id=ALICE.user_id) is False
    assert await log.claim("tok-1", user_id=ALICE.user_id) is None


async def test_old_expired_confirmations_are_purged(log: AuditLog, clock: FakeClock, db_path: Path) -> None:
    await log.hold(token="tok-old", actor=ALICE, command={"kind": "rank"}, expires_in=60)
    clock.advance(2 * 24 * 3600)
    await log.hold(token="tok-new", actor=ALICE, command={"kind": "rank"})
    with sqlite3.connect(db_path) as conn:
        tokens = [row[0] for row in conn.execute("SELECT token FROM confirmations")]
    assert tokens == ["tok-new"]


async def test_denied_is_recorded_finished_with_its_reason(log: AuditLog) -> None:
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
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == audit.SCHEMA_VERSION


def assert_plain(error: AuditError, tmp_path: Path) -> None:
    assert "LEADBOT_DB" in error.message
    assert error.message == str(error)
    assert "\n" not in error.message and "Traceback" not in error.message
    assert str(tmp_path) not in error.message
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
    log: AuditLog, db_path: Path, tmp_path: Path
) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TABLE changes")
    with pytest.raises(AuditError) as caught:
        await begin_rank(log, request_id="req-1")
    assert_plain(caught.value, tmp_path)
    assert "could not be written" in caught.value.message


async def test_begin_after_close_raises_audit_error(log: AuditLog, tmp_path: Path) -> None:
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


@pytest.mark.usefixtures("short_busy_timeout")
async def test_a_lock_held_past_the_busy_timeout_raises_audit_error(db_path: Path, tmp_path: Path) -> None:
    store = AuditLog(db_path)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(AuditError, match="database is locked") as caught:
            await begin_rank(store, request_id="req-1")
        assert_plain(caught.value, tmp_path)
        blocker.execute("ROLLBACK")
        assert await begin_rank(store, request_id="req-1") is not None  # the failed attempt reserved nothing
    finally:
        blocker.close()
        store.close()


@pytest.mark.usefixtures("short_busy_timeout")
async def test_a_lock_held_briefly_is_waited_for(db_path: Path) -> None:
    store = AuditLog(db_path)
    blocker = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        attempt = asyncio.create_task(begin_rank(store, request_id="req-1"))
        await asyncio.sleep(0.05)
        blocker.execute("COMMIT")
        assert await attempt is not None
    finally:
        blocker.close()
        store.close()


async def test_a_snapshot_that_is_not_json_raises_audit_error(log: AuditLog, db_path: Path) -> None:
    with pytest.raises(AuditError, match="not plain data"):
        await log.begin(
            actor=ALICE, action="rank", command="rank", request_id="req-1", before={"uid": "x", "at": datetime.now(UTC)}
        )
    assert row_count(db_path) == 0


async def test_failures_are_logged_without_data_values(
    log: AuditLog, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TABLE changes")
    with caplog.at_level("WARNING", logger="bot.audit"), pytest.raises(AuditError):
        await begin_rank(log, request_id="req-secret", uid="lead-secret")
    text = caplog.text
    assert "begin" in text and "no such table" in text
    assert "req-secret" not in text and "lead-secret" not in text and "+4930123456" not in text


async def test_settle_interrupted_marks_only_old_pending_attempts_unknown(log: AuditLog, clock: FakeClock) -> None:
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


async def test_a_deleted_audit_file_refuses_every_write_and_says_so(
    log: AuditLog, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert await begin_rank(log, request_id="before") is not None
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)

    with caplog.at_level("ERROR"), pytest.raises(AuditError, match="was deleted while leadbot runs"):
        await begin_rank(log, request_id="after")
    with pytest.raises(AuditError):
        await log.hold(token="t", actor=ALICE, command={"kind": "rank"})
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1 and "restarted" in errors[0].getMessage()  # told once, with what to do


async def test_a_replaced_audit_file_refuses_writes(log: AuditLog, db_path: Path) -> None:
    replacement = db_path.with_name("other.db")
    AuditLog(replacement).close()
    replacement.replace(db_path)

    with pytest.raises(AuditError, match="was replaced while leadbot runs"):
        await begin_rank(log, request_id="after")
