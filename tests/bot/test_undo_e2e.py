"""Lasting undo, end to end: `/lead undo [#change]` and the Undo buttons of `/lead history`, through the real Bolt
app over HTTP, the babelforce sandbox and a real audit store, on each store: a SQLite file and a PostgreSQL database
(inspected with the database's own client, as an operator would).

They take the Undo button's one path, so: refused when the lead was changed since, done once however often it is
asked (button then command, two commands at once, the same command twice), recorded as "undo" / "undo_add", denied
to non-writers before any babelforce call. `/lead undo` alone is the user's own latest change; when that one is
undone already it says so and never reaches for an older one. Undoing an add by command asks first (it deletes a
lead) with a Delete lead button, which is that change's Undo button.

One bot per module and store (own sandbox, own audit store); each test acts as its own user on leads no other test
touches.
The demo: "Spring leads" is dialled by UP RANK, its hopper holds lead-31 … lead-50, so lead-1 … lead-30 take rank
changes without an "apply anyway?".
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from bot.audit import Actor, Outcome
from bot.permissions import AccessPolicy
from commands.blocks import (
    ACTION_UNDO,
    BLOCK_ACTIONS,
    BLOCK_ERROR,
    BLOCK_HISTORY,
    BLOCK_NOTICE,
    BLOCK_UNDO_QUESTION,
)
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from tests.support import (
    DELETE_ROUTE,
    UPDATE_ROUTE,
    Bot,
    block,
    error_text,
    header,
    history_lines,
    is_progress,
    start_bot,
    store_rows,
    texts,
    unescape,
    usage_text,
    writes,
)

AUDIT_CHANNEL = "C0AUDIT"
WRITER = "U0SUPERVISOR"  # the driver's default user; the only writer of the gated bot
READER = "U0READER"
NOT_YOURS_TO_CHANGE = "Only leadbot writers can change leads"
DATE = r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|\d{4}-\d\d-\d\d \d\d:\d\d UTC>"


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def undo_db(new_audit_target: Callable[[str], str]) -> str:
    return new_audit_target("undo")


@pytest.fixture(scope="module")
def undo_bot(undo_db: str) -> Iterator[Bot]:
    """Everyone may write; its own demo sandbox; audit trail in `undo_db`; one line per change in C0AUDIT."""
    with SandboxServer(seed="demo") as sandbox:
        yield from start_bot(sandbox, audit_path=undo_db, audit_channel=AUDIT_CHANNEL)


@pytest.fixture
def ub(undo_bot: Bot) -> Iterator[Bot]:
    undo_bot.control.reset_stats()
    yield undo_bot
    undo_bot.control.clear_faults()


@pytest.fixture(scope="module")
def gated_db(new_audit_target: Callable[[str], str]) -> str:
    return new_audit_target("undo-gated")


@pytest.fixture(scope="module")
def gated(gated_db: str) -> Iterator[Bot]:
    """LEADBOT_WRITERS=U0SUPERVISOR, LEADBOT_READERS=U0READER."""
    with SandboxServer(seed="demo") as sandbox:
        yield from start_bot(sandbox, policy=AccessPolicy(writers={WRITER}, readers={READER}), audit_path=gated_db)


# ---------------------------------------------------------------------- helpers


def records(db: str, where: str = "1 = 1", *params: Any) -> list[dict[str, Any]]:
    """Rows of the audit trail's `changes` table (oldest first), snapshots decoded."""
    rows = store_rows(db, f"SELECT * FROM changes WHERE {where} ORDER BY id", params)
    for row in rows:
        for name in ("before_json", "after_json"):
            row[name] = None if row[name] is None else json.loads(row[name])
    return rows


def record(db: str, change_id: int) -> dict[str, Any]:
    (row,) = records(db, "id = ?", change_id)
    return row


def undos_of(db: str, change_id: int) -> list[dict[str, Any]]:
    return records(db, "undo_of = ?", change_id)


@contextmanager
def acting_as(bot: Bot, user_id: str) -> Iterator[None]:
    saved = bot.driver.user_id
    bot.driver.user_id = user_id
    try:
        yield
    finally:
        bot.driver.user_id = saved


def ref_of(card: dict[str, Any]) -> int:
    """The audit record behind a lead card: its Undo button's value."""
    (button,) = [e for e in block(card, BLOCK_ACTIONS)["elements"] if e["action_id"] == ACTION_UNDO]
    return int(button["value"])


def click(bot: Bot, message: dict[str, Any], action_id: str = ACTION_UNDO) -> dict[str, Any]:
    clicked = bot.driver.click(message, action_id)
    assert clicked.status == 200 and clicked.acked_in_time, clicked
    return bot.driver.replies(clicked, count=1)[0]


def notice(message: dict[str, Any]) -> str:
    return unescape(block(message, BLOCK_NOTICE)["text"]["text"])


def only_error(message: dict[str, Any]) -> str:
    assert [b.get("block_id") for b in message.get("blocks", [])] == [BLOCK_ERROR], texts(message)
    return unescape(error_text(message))


def history(bot: Bot, lead: str) -> dict[str, Any]:
    return bot.ask(f'history "Spring leads" {lead}')


def history_buttons(message: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """{change number: its line's Undo button} for the history lines that have one."""
    sections = [b for b in message["blocks"] if b.get("block_id", "").startswith(f"{BLOCK_HISTORY}_")]
    return {int(s["accessory"]["value"]): s["accessory"] for s in sections if "accessory" in s}


def line_refs(message: dict[str, Any]) -> list[int]:
    return [int(re.match(r"`#(\d+)` · ", line).group(1)) for line in history_lines(message)]  # type: ignore[union-attr]


def click_in_history(bot: Bot, message: dict[str, Any], change_id: int) -> dict[str, Any]:
    """Click the Undo button on the history line of `change_id` (only that line's block is offered to the driver)."""
    (section,) = [b for b in message["blocks"] if b.get("accessory", {}).get("value") == str(change_id)]
    return click(bot, {**message, "blocks": [section]})


def audit_lines(bot: Bot, posted: int, count: int, timeout: float = 5.0) -> list[str]:
    """The audit channel lines after the first `posted`, once `count` have come (each is sent after its reply, in
    the background, so their order follows the changes only once they have all arrived)."""
    until = time.monotonic() + timeout
    while len(bot.stub.calls("chat.postMessage")) < posted + count and time.monotonic() < until:
        time.sleep(0.01)
    return [call.payload["text"] for call in bot.stub.calls("chat.postMessage")[posted:]]


def set_rank_in_babelforce(bot: Bot, uid: str, rank: int) -> None:
    """A colleague changes the lead outside leadbot."""
    with bot.sandbox.state.lock:
        bot.sandbox.state.update_lead(DEMO_LIST_ID, bot.lead(uid).id, rank=rank)


# ====================================================================== /lead undo


def test_undo_alone_takes_back_my_latest_change_recorded_and_announced(ub: Bot, undo_db: str) -> None:
    with acting_as(ub, "U0ALICE"):
        posted = len(ub.stub.calls("chat.postMessage"))
        ub.ask('rank "Spring leads" lead-3 13')
        latest = ref_of(ub.ask('rank "Spring leads" lead-4 14'))
        ub.control.reset_stats()

        interaction = ub.command("undo")
        assert interaction.acked_in_time and interaction.json is not None and is_progress(interaction.json)
        assert "undo your latest change" in texts(interaction.json)
        card = ub.driver.replies(interaction, count=1)[0]

    assert header(card) == "Undone: rank of lead-4 restored"
    assert "replace_original" not in card  # Slack never replaces a command's ack: the answer is a new message
    assert re.search(rf"\*last updated\*\n{DATE}", texts(card)), texts(card)  # each reader's own time zone
    assert (ub.lead("lead-4").rank, ub.lead("lead-3").rank) == (4, 13)  # only the latest; the older one stays
    assert ub.control.count(UPDATE_ROUTE) == 1
    (undo,) = undos_of(undo_db, latest)
    assert (undo["action"], undo["outcome"], undo["user_id"], undo["request_id"]) == (
        "undo",
        "ok",
        "U0ALICE",
        f"undo:{latest}",
    )
    assert undo["command"].endswith(f"(#{latest}), by /lead undo")
    assert record(undo_db, latest)["undone_by"] == undo["id"]
    assert sorted(audit_lines(ub, posted, 3)) == [
        "<@U0ALICE> rank lead-3 in Spring leads: rank 3 → 13",
        "<@U0ALICE> rank lead-4 in Spring leads: rank 4 → 14",
        "<@U0ALICE> undo lead-4 in Spring leads: rank 14 → 4",
    ]


def test_undo_by_number_with_or_without_hash_and_by_any_writer(ub: Bot, undo_db: str) -> None:
    with acting_as(ub, "U0BOB"):
        first = ref_of(ub.ask('rank "Spring leads" lead-5 15'))
        second = ref_of(ub.ask('rank "Spring leads" lead-6 16'))
    ub.control.reset_stats()

    with acting_as(ub, "U0CAROL"):  # not Bob: any writer may undo anyone's change by its number, as with the button
        older = ub.ask(f"undo {first}")  # the older one, by number: not Bob's latest
        newer = ub.ask(f"undo #{second}")

    assert (header(older), header(newer)) == ("Undone: rank of lead-5 restored", "Undone: rank of lead-6 restored")
    assert (ub.lead("lead-5").rank, ub.lead("lead-6").rank) == (5, 6)
    assert writes(ub) == 2
    assert [(u["user_id"], u["outcome"]) for n in (first, second) for u in undos_of(undo_db, n)] == [
        ("U0CAROL", "ok"),
        ("U0CAROL", "ok"),
    ]


def test_undo_is_refused_when_the_lead_was_changed_since_and_writes_nothing(ub: Bot, undo_db: str) -> None:
    with acting_as(ub, "U0DAVE"):
        change = ref_of(ub.ask('rank "Spring leads" lead-7 17'))
        set_rank_in_babelforce(ub, "lead-7", 27)
        ub.control.reset_stats()

        answer = ub.ask("undo")

    assert only_error(answer) == (
        ":x: Lead lead-7 was changed since (rank is now 27, not 17), so undo would overwrite that; change it with "
        "/lead set."
    )
    assert writes(ub) == 0 and ub.lead("lead-7").rank == 27
    assert record(undo_db, change)["undone_by"] is None
    (attempt,) = undos_of(undo_db, change)  # the refusal is recorded, saying why
    assert (attempt["outcome"], attempt["detail"]) == ("failed", "changed since: rank is now 27, not 17")


def test_two_undo_commands_at_once_undo_once_and_a_third_never_reaches_for_an_older_change(
    ub: Bot, undo_db: str
) -> None:
    with acting_as(ub, "U0ERIN"):
        older = ref_of(ub.ask('rank "Spring leads" lead-8 18'))
        latest = ref_of(ub.ask('rank "Spring leads" lead-9 19'))
        ub.control.reset_stats()

        with ThreadPoolExecutor(2) as pool:
            interactions = list(pool.map(lambda _: ub.command("undo"), range(2)))
        answers = [ub.driver.replies(interaction, count=1)[0] for interaction in interactions]
        third = ub.ask("undo")  # typed again, after both answers: the latest change is undone already

    assert ub.control.count(UPDATE_ROUTE) == 1
    assert (ub.lead("lead-9").rank, ub.lead("lead-8").rank) == (9, 18)
    done = [a for a in answers if any(b.get("block_id") == BLOCK_NOTICE for b in a["blocks"])]
    assert len(done) == 1 and "already" in notice(done[0]).lower(), [texts(a) for a in answers]
    assert [header(a) for a in answers if a is not done[0]] == ["Undone: rank of lead-9 restored"]
    (undo,) = undos_of(undo_db, latest)
    assert notice(third) == (
        f":information_source: Your latest change, #{latest}, is already undone (by #{undo['id']}). To undo your "
        f"latest change before it, type /lead undo #{older}."
    )
    assert writes(ub) == 1 and undos_of(undo_db, older) == []


def test_the_button_then_the_command_undo_once(ub: Bot, undo_db: str) -> None:
    with acting_as(ub, "U0FRAN"):
        card = ub.ask('rank "Spring leads" lead-12 22')
        change = ref_of(card)
        ub.control.reset_stats()
        assert header(click(ub, card)) == "Undone: rank of lead-12 restored"

        again = ub.ask(f"undo #{change}")

    (undo,) = undos_of(undo_db, change)
    assert notice(again) == f":information_source: Already undone (by #{undo['id']}); nothing more to do."
    assert ub.control.count(UPDATE_ROUTE) == 1 and ub.lead("lead-12").rank == 12


def test_a_failed_latest_change_is_passed_over_it_changed_nothing(ub: Bot) -> None:
    with acting_as(ub, "U0JUDY"):
        ub.ask('rank "Spring leads" lead-15 25')
        ub.control.faults({"method": "PUT", "status": 503, "times": 3})
        assert "HTTP 503" in only_error(ub.ask('rank "Spring leads" lead-16 26'))
        ub.control.clear_faults()

        answer = ub.ask("undo")

    assert header(answer) == "Undone: rank of lead-15 restored"
    assert (ub.lead("lead-15").rank, ub.lead("lead-16").rank) == (15, 16)


def test_a_latest_change_of_unknown_outcome_is_refused_not_skipped_for_an_older_one(ub: Bot) -> None:
    with acting_as(ub, "U0IVAN"):
        ub.ask('rank "Spring leads" lead-19 29')
        audit = ub.leadbot.audit

        async def unknown_change() -> None:  # a write babelforce never confirmed (e.g. leadbot stopped meanwhile)
            lead = ub.lead("lead-20")
            change_id = await audit.begin(
                actor=Actor("U0IVAN"),
                action="rank",
                command='/lead rank "Spring leads" lead-20 30',
                request_id="command:unknown-test",
                list_id=DEMO_LIST_ID,
                list_name="Spring leads",
                lead_id=lead.id,
                lead_uid="lead-20",
                before={"id": lead.id, "uid": "lead-20", "rank": 20, "data": {}},
            )
            assert change_id is not None
            await audit.finish(change_id, outcome=Outcome.UNKNOWN, detail="babelforce did not answer in time")

        asyncio.run(unknown_change())
        ub.control.reset_stats()

        answer = ub.ask("undo")

    assert "babelforce never confirmed that change, so leadbot cannot undo it safely" in only_error(answer)
    assert writes(ub) == 0 and ub.lead("lead-19").rank == 29


def test_a_user_without_changes_is_told_so(ub: Bot) -> None:
    with acting_as(ub, "U0NEWCOMER"):
        answer = ub.ask("undo")
    assert notice(answer) == (
        ":information_source: You have made no change through leadbot that could be undone; /lead history shows "
        "a lead's changes with their numbers."
    )
    assert ub.control.stats()["total"] == 0


def test_refusals_by_number_are_one_sentence_and_call_no_babelforce(ub: Bot, undo_db: str) -> None:
    with acting_as(ub, "U0KIM"):
        card = ub.ask('rank "Spring leads" lead-17 27')
        ub.ask(f"undo #{ref_of(card)}")
        (undo,) = undos_of(undo_db, ref_of(card))
        ub.control.faults({"method": "PUT", "status": 503, "times": 3})
        ub.ask('rank "Spring leads" lead-18 28')
        ub.control.clear_faults()
        (failed,) = [r for r in records(undo_db, "user_id = 'U0KIM' AND outcome = 'failed'")]
        ub.control.reset_stats()

        unknown = ub.ask("undo #999999999")
        of_an_undo = ub.ask(f"undo #{undo['id']}")
        of_a_failure = ub.ask(f"undo {failed['id']}")
        junk = ub.ask("undo abc")

    assert only_error(unknown) == (
        ":x: leadbot has no record of change #999999999, so it cannot undo it; /lead history shows a lead's changes "
        "with their numbers."
    )
    assert only_error(of_an_undo) == ":x: An undo cannot itself be undone; change the lead again with /lead set."
    assert only_error(of_a_failure) == ":x: That change was not applied (failed), so there is nothing to undo."
    assert unescape(error_text(junk)) == (
        ":x: change must be a change's number from /lead history, like #12; 'abc' is not one."
    )
    assert "/lead undo [#change]" in usage_text(junk)
    assert ub.control.stats()["total"] == 0


def test_undo_of_an_add_by_command_asks_first_and_its_button_deletes_once(ub: Bot, undo_db: str) -> None:
    with acting_as(ub, "U0HEIDI"):
        added = ref_of(ub.ask('add "Spring leads" undo-cmd-1 +4915199990101 3'))
        count = ub.lead_count()
        ub.control.reset_stats()

        question = ub.ask("undo")

        assert unescape(block(question, BLOCK_UNDO_QUESTION)["text"]["text"]) == (
            f":warning: Undoing #{added} deletes lead undo-cmd-1 from list Spring leads in babelforce. Nothing is "
            "deleted unless you click Delete lead."
        )
        assert writes(ub) == 0 and ub.lead("undo-cmd-1") is not None and undos_of(undo_db, added) == []

        answer = click(ub, question)
        again = click(ub, question)  # the same button once more
        latest = ub.ask("undo")

    assert notice(answer) == ":information_source: Undone: lead undo-cmd-1 was deleted from list Spring leads."
    assert ub.lead("undo-cmd-1") is None and ub.lead_count() == count - 1
    assert ub.control.count(DELETE_ROUTE) == 1
    (deleted,) = undos_of(undo_db, added)
    assert (deleted["action"], deleted["outcome"]) == ("undo_add", "ok")
    assert notice(again) == f":information_source: Already undone (by #{deleted['id']}); nothing more to do."
    assert notice(latest) == (
        f":information_source: Your latest change, #{added}, is already undone (by #{deleted['id']}). Nothing older "
        "of yours is left to undo."
    )


# ====================================================================== /lead history


def test_history_numbers_every_line_and_offers_undo_only_where_it_would_work(ub: Bot, undo_db: str) -> None:
    with acting_as(ub, "U0GRACE"):
        rank = ref_of(ub.ask('rank "Spring leads" lead-13 23'))
        vip = ref_of(ub.ask('set "Spring leads" lead-13 vip=yes'))
        ub.control.faults({"method": "PUT", "status": 503, "times": 3})
        only_error(ub.ask('set "Spring leads" lead-13 note=x'))
        ub.control.clear_faults()
        undone = ref_of(ub.ask('rank "Spring leads" lead-13 24'))
        ub.ask("undo")
    (failed,) = records(undo_db, "user_id = 'U0GRACE' AND outcome = 'failed'")
    (undo,) = undos_of(undo_db, undone)
    ub.control.reset_stats()

    with acting_as(ub, "U0HANK"):  # another writer sees the same buttons: the button lets any writer undo
        shown = history(ub, "lead-13")

    assert line_refs(shown) == [undo["id"], undone, failed["id"], vip, rank]
    lines = history_lines(shown)
    for line in lines:
        assert re.match(rf"`#\d+` · {DATE} · <@U0GRACE> · ", line), line
    assert "*undid a change:* rank 24 → 23" in lines[0] and "_(undone)_" in lines[1] and "*failed*" in lines[2]
    # an undo, an undone change and a failure: no button; the rank (still 23) and vip (still yes) can go back
    assert set(history_buttons(shown)) == {vip, rank}
    assert all("confirm" not in button for button in history_buttons(shown).values())
    assert f"Undo one by its number too: `/lead undo #{vip}`." in texts(shown)
    assert writes(ub) == 0

    with acting_as(ub, "U0HANK"):
        restored = click_in_history(ub, shown, rank)
        after = history(ub, "lead-13")

    assert header(restored) == "Undone: rank of lead-13 restored" and ub.lead("lead-13").rank == 13
    assert ub.lead("lead-13").data.get("vip") == "yes"  # only what that change wrote went back
    assert set(history_buttons(after)) == {vip}


def test_history_of_an_add_offers_its_undo_with_the_delete_dialog(ub: Bot) -> None:
    with acting_as(ub, "U0LEO"):
        added = ref_of(ub.ask('add "Spring leads" undo-hist-1 +4915199990102 2'))
        shown = history(ub, "undo-hist-1")

    button = history_buttons(shown)[added]
    assert button["confirm"]["title"]["text"] == "Delete this lead?"
    assert "Undo deletes lead undo-hist-1 from list Spring leads" in button["confirm"]["text"]["text"]
    with acting_as(ub, "U0LEO"):  # the user confirmed in Slack's dialog: Slack then sends the click
        answer = click_in_history(ub, shown, added)
    assert notice(answer) == ":information_source: Undone: lead undo-hist-1 was deleted from list Spring leads."
    assert ub.lead("undo-hist-1") is None


# ====================================================================== who may undo


def test_a_non_writer_is_denied_undo_before_any_babelforce_call_and_sees_no_undo_buttons(
    gated: Bot, gated_db: str
) -> None:
    change = ref_of(gated.ask('rank "Spring leads" lead-14 24'))
    gated.control.reset_stats()

    with acting_as(gated, READER):
        alone = gated.ask("undo")
        by_number = gated.ask(f"undo #{change}")
        junk = gated.ask("undo abc")  # a write's bad input is a write's: denied first
        assert gated.control.stats()["total"] == 0
        shown = history(gated, "lead-14")

    for answer in (alone, by_number, junk):
        message = only_error(answer)
        assert NOT_YOURS_TO_CHANGE in message and "LEADBOT_WRITERS" in message
    assert gated.lead("lead-14").rank == 24 and record(gated_db, change)["undone_by"] is None
    denied = records(gated_db, "user_id = ? AND action = 'undo'", READER)
    assert [(r["outcome"], r["command"]) for r in denied] == [
        ("denied", "/lead undo"),
        ("denied", f"/lead undo #{change}"),
        ("denied", "/lead undo abc"),
    ]
    assert line_refs(shown) == [change] and history_buttons(shown) == {}  # a reader sees the number, no button
    assert set(history_buttons(history(gated, "lead-14"))) == {change}  # the writer gets the button
