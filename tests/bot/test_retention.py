"""LEADBOT_AUDIT_RETENTION_DAYS, on both stores (a SQLite file and a PostgreSQL database): the purge removes the
settled records older than the cutoff and nothing else (never a pending or unknown one, never a change whose undo is
kept), clears expired questions and dead processes' lead locks, is safe with two processes purging at once, keeps
every record with 0, and runs shortly after start and then daily with one log line and a metric. End to end: after
a purge, /lead history, /lead undo and the Home tab still read right."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from babelforce.client import BabelforceClient
from bot import run
from bot.audit import Actor, AuditStore, Outcome, open_store
from bot.retention import FIRST_PURGE_AFTER_S, Retention
from bot.settings import load_settings
from commands.blocks import ACTION_UNDO, BLOCK_ACTIONS
from tests.support import SANDBOX_CLIENT, Bot, block, history_lines, shared_bot, store_rows, texts, unescape

pytestmark = pytest.mark.anyio

ALICE = Actor(user_id="U0ALICE", team_id="T0TEAM", channel_id="C0OPS")
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)
YOUNG = NOW - timedelta(days=10)
CUTOFF = NOW - timedelta(days=365)


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(audit_target: str, clock: FakeClock) -> AsyncIterator[AuditStore]:
    opened = open_store(audit_target, clock=clock)
    yield opened
    opened.close()


async def record(
    store: AuditStore,
    clock: FakeClock,
    at: datetime,
    outcome: Outcome,
    *,
    lead: str = "L1",
    undo_of: int | None = None,
) -> int:
    """One write attempt begun at `at` (and finished then, unless pending)."""
    saved, clock.now = clock.now, at
    try:
        change_id = await store.begin(
            actor=ALICE,
            action="undo" if undo_of else "rank",
            command=f'rank "Demo" {lead} 45',
            request_id=None,
            list_id="LIST1",
            list_name="Demo",
            lead_id=lead,
            lead_uid=lead,
            before={"uid": lead, "rank": 10},
            undo_of=undo_of,
        )
        assert change_id is not None
        if outcome is not Outcome.PENDING:
            await store.finish(change_id, outcome=outcome, after={"uid": lead, "rank": 45})
        if undo_of is not None and outcome is Outcome.OK:
            assert await store.mark_undone(undo_of, change_id)
        return change_id
    finally:
        clock.now = saved


def ids(target: str) -> set[int]:
    return {row["id"] for row in store_rows(target, "SELECT id FROM changes")}


# ---------------------------------------------------------------------- the store's purge


async def test_purge_removes_only_settled_records_older_than_the_cutoff(
    store: AuditStore, clock: FakeClock, audit_target: str
) -> None:
    old_ok = await record(store, clock, OLD, Outcome.OK)
    old_failed = await record(store, clock, OLD, Outcome.FAILED, lead="L2")
    saved, clock.now = clock.now, OLD
    old_denied = await store.denied(actor=ALICE, action="rank", command="rank x", reason="not a writer")
    clock.now = saved
    old_pending = await record(store, clock, OLD, Outcome.PENDING, lead="L3")
    old_unknown = await record(store, clock, OLD + timedelta(days=1), Outcome.UNKNOWN, lead="L4")
    just_old = await record(store, clock, CUTOFF - timedelta(seconds=1), Outcome.OK, lead="L5")
    just_young = await record(store, clock, CUTOFF, Outcome.OK, lead="L6")
    young = [await record(store, clock, YOUNG, Outcome.OK, lead=f"Y{n}") for n in range(3)]

    purged = await store.purge(CUTOFF, page=2)  # small pages: the walk crosses several

    assert purged.changes == 4  # old_ok, old_failed, old_denied, just_old
    assert purged.kept == 2  # the pending and the unknown one: unsettled, kept however old
    assert ids(audit_target) == {old_pending, old_unknown, just_young, *young}
    assert {old_ok, old_failed, old_denied, just_old}.isdisjoint(ids(audit_target))
    again = await store.purge(CUTOFF)
    assert (again.changes, again.kept) == (0, 2)  # idempotent: a second purge (another process's) finds nothing


async def test_a_change_goes_only_with_its_undo(store: AuditStore, clock: FakeClock, audit_target: str) -> None:
    """An undo is newer than its change: the change stays while its undo is kept, then both go together, so
    "undone by #N" never points at nothing and history shows the pair."""
    undone_late = await record(store, clock, OLD, Outcome.OK, lead="L1")
    late_undo = await record(store, clock, YOUNG, Outcome.OK, lead="L1", undo_of=undone_late)
    undone_early = await record(store, clock, OLD, Outcome.OK, lead="L2")
    await record(store, clock, OLD + timedelta(days=1), Outcome.OK, lead="L2", undo_of=undone_early)
    stuck = await record(store, clock, OLD, Outcome.OK, lead="L3")
    stuck_undo = await record(store, clock, OLD + timedelta(days=2), Outcome.UNKNOWN, lead="L3", undo_of=stuck)
    await store.mark_undone(stuck, stuck_undo)  # (leadbot marks only ok undos: the rule holds all the same)

    purged = await store.purge(CUTOFF)

    assert purged.changes == 2  # undone_early and early_undo, together
    assert purged.kept == 3  # undone_late (its undo is young), stuck and stuck_undo (unsettled)
    assert ids(audit_target) == {undone_late, late_undo, stuck, stuck_undo}
    history = await store.history("LIST1", lead_id="L1")
    assert [(change.id, change.undone_by, change.undo_of) for change in history] == [
        (late_undo, None, undone_late),
        (undone_late, late_undo, None),
    ]
    # once the undo is old enough too, the pair goes in one purge
    assert (await store.purge(NOW)).changes == 2
    assert ids(audit_target) == {stuck, stuck_undo}


async def test_an_undo_attempt_whose_change_is_gone_still_reads(store: AuditStore, clock: FakeClock) -> None:
    """A failed undo attempt does not hold its change: it stays, pointing at a purged record, and reads as before."""
    change = await record(store, clock, OLD, Outcome.OK)
    attempt = await record(store, clock, YOUNG, Outcome.FAILED, undo_of=change)
    assert (await store.purge(CUTOFF)).changes == 1
    assert await store.get(change) is None
    [kept] = await store.history("LIST1", lead_id="L1")
    assert (kept.id, kept.undo_of, kept.outcome) == (attempt, change, Outcome.FAILED)
    assert [found.id for found in await store.changes_of(ALICE.user_id)] == [attempt]
    assert await store.latest_change_of(ALICE.user_id) is None  # an undo is never "your latest change"


async def test_purge_clears_expired_questions_and_dead_processes_locks(
    store: AuditStore, clock: FakeClock, audit_target: str
) -> None:
    await store.hold(token="tok-new", actor=ALICE, command={"action": "rank"})
    clock.now = NOW - timedelta(days=2)  # held two days ago, expired 15 minutes later
    await store.hold(token="tok-old", actor=ALICE, command={"action": "rank"})
    clock.now = NOW
    for lead, lapsed in (("L1", timedelta(hours=2)), ("L2", timedelta(minutes=5)), ("L3", -timedelta(seconds=30))):
        store_rows(
            audit_target,
            "INSERT INTO lead_locks (list_id, lead_id, holder, expires_at) VALUES (?, ?, ?, ?)",
            ("LIST1", lead, "pid-1:x", (NOW - lapsed).isoformat(timespec="microseconds")),
        )

    purged = await Retention(store, 0, clock=clock).purge()  # 0: records stay, the rest is tidied all the same

    assert purged is not None
    assert (purged.confirmations, purged.lead_locks) == (1, 1)
    assert [row["token"] for row in store_rows(audit_target, "SELECT token FROM confirmations")] == ["tok-new"]
    locks = store_rows(audit_target, "SELECT lead_id FROM lead_locks ORDER BY lead_id")
    assert [row["lead_id"] for row in locks] == ["L2", "L3"]  # lapsed minutes ago, or still held: left alone


async def test_retention_zero_keeps_every_record(store: AuditStore, clock: FakeClock, audit_target: str) -> None:
    very_old = await record(store, clock, NOW - timedelta(days=3650), Outcome.OK)
    young = await record(store, clock, YOUNG, Outcome.OK, lead="L2")
    purged = await Retention(store, 0, clock=clock).purge()
    assert purged is not None and (purged.changes, purged.kept) == (0, 0)
    assert ids(audit_target) == {very_old, young}


async def test_two_processes_purging_at_once_remove_each_record_once(
    store: AuditStore, clock: FakeClock, audit_target: str
) -> None:
    old = [await record(store, clock, OLD, Outcome.OK, lead=f"L{n}") for n in range(40)]
    young = await record(store, clock, YOUNG, Outcome.OK, lead="Y")
    other = open_store(audit_target, clock=clock)  # a second connection, as a replica has
    try:
        first, second = await asyncio.gather(store.purge(CUTOFF, page=7), other.purge(CUTOFF, page=5))
    finally:
        other.close()
    assert first.changes + second.changes == len(old)
    assert ids(audit_target) == {young}


async def test_runs_shortly_after_start_then_daily_with_one_line_and_a_metric(
    store: AuditStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(3):
        await record(store, clock, OLD, Outcome.OK, lead=f"+49301234567{n}")
    await record(store, clock, OLD, Outcome.UNKNOWN, lead="L9")
    counted = REGISTRY.get_sample_value("leadbot_audit_purged_total") or 0.0
    retention = Retention(store, 365, first_after=0.0, every=0.05, clock=clock)
    caplog.set_level(logging.INFO, logger="bot.retention")
    retention.start()
    try:
        for _ in range(200):
            if len([r for r in caplog.records if "retention purge" in r.getMessage()]) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await retention.stop()
    first, second, *_ = [r.getMessage() for r in caplog.records if "retention purge" in r.getMessage()]
    assert first == (
        "audit trail: retention purge: 3 record(s) older than 365 days removed, 1 older one(s) kept (unsettled, or "
        "undone by a newer record); 0 expired question(s) and 0 stale lead lock(s) removed"
    )
    assert second.startswith("audit trail: retention purge: 0 record(s) older than 365 days removed")
    assert "+4930" not in first and ALICE.user_id not in first  # counts only, no personal data
    assert REGISTRY.get_sample_value("leadbot_audit_purged_total") == counted + 3


# ---------------------------------------------------------------------- end to end: history, undo, Home after a purge


@pytest.fixture(scope="module")
def retention_db(new_audit_target: Callable[[str], str]) -> str:
    return new_audit_target("retention")


@pytest.fixture(scope="module")
def rb(retention_db: str) -> Iterator[Bot]:
    yield from shared_bot(audit_path=retention_db)


def undo_button_value(card: dict[str, Any]) -> int:
    (button,) = [e for e in block(card, BLOCK_ACTIONS)["elements"] if e["action_id"] == ACTION_UNDO]
    return int(button["value"])


def age(db: str, change_id: int, days: int) -> None:
    """Make a record `days` older, as if it had been made then."""
    [row] = store_rows(db, "SELECT at FROM changes WHERE id = ?", (change_id,))
    older = datetime.fromisoformat(row["at"]) - timedelta(days=days)
    store_rows(db, "UPDATE changes SET at = ? WHERE id = ?", (older.isoformat(timespec="microseconds"), change_id))


def home_changes(bot: Bot) -> list[str]:
    seen = len(bot.stub.events)
    assert bot.driver.open_home().status == 200
    view = bot.stub.wait_home_view(bot.driver.user_id, after=seen)
    return [
        unescape(found["text"]["text"])
        for found in view["blocks"]
        if found.get("block_id", "").startswith("home_change_") and found.get("type") == "section"
    ]


def test_history_undo_and_the_home_tab_after_a_purge(rb: Bot, retention_db: str) -> None:
    card = rb.ask('rank "Spring leads" lead-5 77')
    undone = undo_button_value(card)
    clicked = rb.driver.click(card, ACTION_UNDO)
    assert clicked.status == 200
    rb.driver.replies(clicked, count=1)
    [undo] = store_rows(retention_db, "SELECT id FROM changes WHERE undo_of = ?", (undone,))
    gone = undo_button_value(rb.ask('rank "Spring leads" lead-6 66'))
    age(retention_db, undone, 400)
    age(retention_db, gone, 400)

    purged = asyncio.run(Retention(rb.leadbot.audit, 365).purge())

    assert purged is not None and (purged.changes, purged.kept) == (1, 1)
    assert ids(retention_db) == {undone, undo["id"]}
    lines = history_lines(rb.ask('history "Spring leads" lead-5'))
    assert len(lines) == 2 and f"#{undo['id']}" in lines[0] and f"#{undone}" in lines[1]
    assert "undone" in lines[1]
    assert not any(f"#{gone}" in line for line in history_lines(rb.ask('history "Spring leads" lead-6')))
    reply = texts(rb.ask(f"undo #{gone}"))
    assert f"leadbot has no record of change #{gone}" in reply
    shown = home_changes(rb)
    assert len(shown) == 2 and f"#{undo['id']}" in shown[0] and f"#{undone}" in shown[1]

    age(retention_db, undo["id"], 400)  # the undo grows old too: the pair goes together
    purged = asyncio.run(Retention(rb.leadbot.audit, 365).purge())
    assert purged is not None and purged.changes == 2
    assert ids(retention_db) == set()
    assert history_lines(rb.ask('history "Spring leads" lead-5')) == []
    assert home_changes(rb) == ["You have made no change through leadbot yet."]
    assert rb.lead("lead-5").rank == 5 and rb.lead("lead-6").rank == 66  # babelforce is not the trail: untouched


def test_a_store_failure_is_logged_and_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    store = open_store(tmp_path / "leadbot.db", clock=clock)
    store.close()
    caplog.set_level(logging.WARNING, logger="bot.retention")
    counted = REGISTRY.get_sample_value("leadbot_audit_errors_total", {"operation": "purge"}) or 0.0
    assert asyncio.run(Retention(store, 365, clock=clock).purge()) is None
    assert "the retention purge failed: leadbot's audit trail (LEADBOT_DB) could not be read: it is closed." in (
        caplog.text
    )
    assert REGISTRY.get_sample_value("leadbot_audit_errors_total", {"operation": "purge"}) == counted + 1


async def test_leadbot_run_purges_with_the_setting_in_its_leading_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`leadbot run` (and each --workers worker) builds its Leadbot with the purge; start_watching, which the
    leading process runs, starts it, and shutting down stops it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("LEADBOT_AUDIT_RETENTION_DAYS", "30")
    store = open_store(tmp_path / "leadbot.db")
    client = BabelforceClient(base_url="http://127.0.0.1:9", credentials=SANDBOX_CLIENT)
    try:
        leadbot = run._leadbot(load_settings(), client, store)
        assert leadbot.retention is not None and leadbot.retention.days == 30
        assert leadbot.retention.first_after == FIRST_PURGE_AFTER_S and leadbot.retention.every == 24 * 3600
        await leadbot.start_watching()
        assert leadbot.retention._task is not None and not leadbot.retention._task.done()
        await leadbot.aclose()
        assert leadbot.retention._task is None
    finally:
        await client.aclose()
        store.close()
