"""Truth under faults: every write is settled from babelforce's state, not from the shape of its answer, and the
user who asked is told how it ended.

- A PUT babelforce applied but answered with a gateway's page (after the retries), or with a 200 whose body is cut
  off, is read back and reported applied, with its Undo button.
- An add answered after the client's read timeout is "not confirmed yet", never "nothing was created"; the settler
  looks again, finds the lead, records the add and tells the user at the command's response_url.
- A late write that overtakes a newer change is said so plainly, with a button to apply the newer value again.
- After a crash, the start-up sweep settles what was left pending and tells its user by direct message; a repeated
  delivery of that request gets its outcome, and /lead history shows an interrupted add by its uid.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from babelforce import Timeouts
from bot.audit import Actor
from bot.permissions import Requester
from bot.pipeline import Request
from commands.blocks import ACTION_APPLY_ANYWAY, ACTION_UNDO
from commands.rank import RankLead
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from tests.support import UPDATE_ROUTE, Bot, error_text, header, is_progress, run, start_bot, texts

SETTLE_AFTER = (1.5, 3.0)  # the settler's first and last look, shortened from 30 s and 120 s
SLOW_READ = Timeouts(connect=3.0, read=0.5, deadline=6.0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def sb(sandbox: SandboxServer, db: Path) -> Iterator[Bot]:
    yield from start_bot(sandbox, audit_path=db, settle_after=SETTLE_AFTER)


def rows(db: Path, where: str = "1", *params: Any) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM changes WHERE {where} ORDER BY id", params)]


def final(bot: Bot, text: str) -> tuple[dict[str, Any], str]:
    """Run a command; its final answer and its response_url (where follow-ups arrive too)."""
    interaction = bot.command(text)
    assert interaction.status == 200 and interaction.response_url
    if interaction.json and not is_progress(interaction.json):
        return interaction.json, interaction.response_url
    return bot.driver.replies(interaction, count=1, timeout=20)[0], interaction.response_url


def sandbox_has(bot: Bot, uid: str) -> bool:
    return bot.lead(uid) is not None


def rank_of(bot: Bot, uid: str) -> int:
    return int(bot.lead(uid).rank)


def wait_for(condition: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize("answer", ["gateway", "garbled"])
def test_a_write_applied_behind_an_unreadable_answer_is_read_back_and_reported_applied(
    sb: Bot, db: Path, answer: str
) -> None:
    status = {"status": 502} if answer == "gateway" else {}
    sb.control.faults({"method": "PUT", "act": True, "answer": answer, "times": None, **status})

    card, _ = final(sb, 'rank "Spring leads" lead-14 24')

    sb.control.clear_faults()
    assert header(card) == "Rank of lead-14: 14 → 24", texts(card)
    assert "answer was lost on the way" in texts(card)  # said plainly, not hidden
    assert any(e.get("action_id") == ACTION_UNDO for b in card["blocks"] for e in b.get("elements", []))
    assert sb.lead("lead-14").rank == 24
    (record,) = rows(db, "lead_uid = ?", "lead-14")
    assert record["outcome"] == "ok"


@pytest.fixture
def slow(sandbox: SandboxServer, db: Path) -> Iterator[Bot]:
    """A bot whose babelforce read timeout is 0.5 s, so a slowed sandbox answers after it gave up."""
    yield from start_bot(sandbox, audit_path=db, settle_after=SETTLE_AFTER, timeouts=SLOW_READ)


def test_an_add_answered_after_the_read_timeout_is_not_confirmed_yet_then_settled_and_told(slow: Bot, db: Path) -> None:
    bot = slow
    bot.control.faults({"method": "POST", "path": r"/leads$", "latency_ms": 1200})

    reply, response_url = final(bot, 'add "Spring leads" late-1 +4915199990901 3')

    message = error_text(reply)
    assert "not confirmed" in message and "nothing was created" not in message
    (pending,) = rows(db, "lead_uid = ?", "late-1")
    assert pending["outcome"] == "unknown"
    wait_for(lambda: sandbox_has(bot, "late-1"), timeout=5)  # babelforce did it, after all
    follow_up = bot.stub.wait_responses(response_url, count=2, timeout=10)[-1]
    assert "Settled #" in texts(follow_up) and "did arrive" in texts(follow_up)
    (settled,) = rows(db, "lead_uid = ?", "late-1")
    assert (settled["outcome"], settled["lead_id"]) == ("ok", bot.lead("late-1").id)
    assert bot.lead_count() == 51  # one lead: the add was never sent twice


def test_a_late_write_that_overtakes_a_newer_change_is_said_and_the_newer_value_offered_again(
    slow: Bot, db: Path
) -> None:
    bot = slow
    # every attempt (the first and its 2 retries) is stuck; each lands 2 s later, after the newer change
    bot.control.faults({"method": "PUT", "path": r"/leads/", "latency_ms": 2000, "times": 3})
    first, response_url = final(bot, 'rank "Spring leads" lead-15 25')
    assert "may still arrive" in error_text(first)

    second, _ = final(bot, 'rank "Spring leads" lead-15 26')  # applied at once
    assert header(second) == "Rank of lead-15: 15 → 26"
    wait_for(lambda: rank_of(bot, "lead-15") == 25, timeout=6)  # the stuck write lands last

    follow_up = bot.stub.wait_responses(response_url, count=2, timeout=10)[-1]
    said = texts(follow_up)
    assert "arrived late" in said and "replaced it" in said, said
    click = bot.driver.click(follow_up, ACTION_APPLY_ANYWAY)
    assert click.status == 200
    bot.driver.replies(click, count=1, timeout=10)
    assert bot.lead("lead-15").rank == 26
    outcomes = [row["outcome"] for row in rows(db, "lead_uid = ?", "lead-15")]
    assert outcomes == ["ok", "ok", "ok"]  # the late one settled as applied, and the newer value applied again


def test_after_a_crash_the_sweep_settles_pending_writes_tells_by_direct_message_and_answers_a_repeat(
    sb: Bot, db: Path
) -> None:
    lead = sb.lead("lead-16")
    with sb.sandbox.state.lock:  # the write reached babelforce; the bot died before it could record the answer
        sb.sandbox.state.update_lead(DEMO_LIST_ID, lead.id, rank=36)
    audit = sb.leadbot.audit
    actor = Actor("U0SUPERVISOR", "T0TEAM", None, "C0CHANNEL")
    change_id = run(
        lambda: audit.begin(
            actor=actor,
            action="rank",
            command='/lead rank "Spring leads" lead-16 36',
            request_id="command:crashed-trigger",
            list_id=DEMO_LIST_ID,
            list_name="Spring leads",
            lead_id=lead.id,
            lead_uid="lead-16",
            before={"id": lead.id, "uid": "lead-16", "rank": 16, "data": {}},
            intended={"id": lead.id, "uid": "lead-16", "rank": 36, "data": {}},
            reply_to={"response_url": None, "channel_id": "C0CHANNEL", "user_id": "U0SUPERVISOR"},
        )
    )
    with sqlite3.connect(db) as conn:  # begun long ago, before the crash; still pending
        conn.execute("UPDATE changes SET at = ? WHERE id = ?", ("2000-01-01T00:00:00.000000+00:00", change_id))
    started = time.monotonic()

    assert run(sb.leadbot.settler.sweep) == 1

    (record,) = rows(db, "id = ?", change_id)
    assert record["outcome"] == "ok"
    dm = wait_for(lambda: [c for c in sb.stub.calls("chat.postMessage") if c.at >= started], timeout=5)[0]
    assert dm.payload["channel"] == "U0SUPERVISOR" and "did arrive" in dm.payload["text"]
    # Slack delivers the interrupted command again: it gets that outcome, not silence, and writes nothing
    sb.control.reset_stats()
    request = Request(Requester("U0SUPERVISOR", "T0TEAM", None, "C0CHANNEL"), request_id="command:crashed-trigger")
    repeat = run(
        lambda: sb.leadbot.execute(RankLead("Spring leads", "lead-16", 36), request=request, replace_original=True)
    )
    assert repeat is not None and f"Already handled as change #{change_id}: it was applied" in texts(repeat)
    assert sb.control.count(UPDATE_ROUTE) == 0


def test_history_shows_an_add_whose_answer_never_came(sb: Bot, db: Path) -> None:
    audit = sb.leadbot.audit
    actor = Actor("U0SUPERVISOR", "T0TEAM", None, "C0CHANNEL")
    run(
        lambda: audit.begin(
            actor=actor,
            action="add",
            command='/lead add "Spring leads" lead-17 +4915199990917 5',
            request_id=None,
            list_id=DEMO_LIST_ID,
            list_name="Spring leads",
            lead_uid="lead-17",
        )
    )
    shown = texts(sb.ask('history "Spring leads" lead-17'))
    assert "in progress or interrupted" in shown and "lead-17" in shown


def test_the_settler_makes_no_write_of_its_own(sb: Bot, db: Path) -> None:
    """Settling reads babelforce; it never writes (the newer value is applied again only on the user's click)."""
    sb.control.reset_stats()
    run(sb.leadbot.settler.sweep)
    assert sb.control.count(UPDATE_ROUTE) == 0


def test_an_unconfirmed_add_is_not_credited_with_the_lead_a_later_retry_created(sb: Bot, db: Path) -> None:
    sb.control.faults({"method": "POST", "path": r"/leads$", "reset": "before"})
    first, _ = final(sb, 'add "Spring leads" retried-1 +4915199990931 3')
    assert "not confirmed" in error_text(first)
    second, _ = final(sb, 'add "Spring leads" retried-1 +4915199990931 3')  # the user did not wait
    assert header(second) == "Lead retried-1 added"

    def outcomes() -> list[str] | None:
        found = [row["outcome"] for row in rows(db, "lead_uid = ?", "retried-1")]
        return found if found == ["failed", "ok"] else None

    assert wait_for(outcomes, timeout=8) == ["failed", "ok"]  # settled at the last look: the retry made the lead
    assert sb.lead_count() == 51
