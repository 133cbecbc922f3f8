"""`/lead remove` end to end: signed Slack requests into the real Bolt app, the babelforce sandbox behind it, a real
SQLite audit file read as an operator would.

The command (or its form) only reads and asks; the Remove button (behind Slack's confirm dialog) deletes once; the
reply reads the hopper again and says whether the current batch may still call the lead; the audit record keeps the
whole lead and Undo adds it back as a new lead. The demo: "Spring leads" is dialled by UP RANK and its hopper holds
lead-31 … lead-50 (lead-40 at position 11 of 20); "Autumn leads" is dialled by no campaign.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bot.audit import Actor, Outcome
from bot.permissions import AccessPolicy
from commands.blocks import (
    ACTION_CANCEL,
    ACTION_REMOVE,
    ACTION_UNDO,
    BLOCK_ACTIONS,
    BLOCK_CAVEAT,
    BLOCK_LEAD_HEADER,
    BLOCK_NOTICE,
)
from commands.modals import BLOCK_LEAD, BLOCK_LIST
from sandbox import SandboxServer
from sandbox.seed import AUTUMN_LIST_ID, DEMO_CAMPAIGN_ID, DEMO_LIST_ID, demo_number
from tests.support import (
    ADD_ROUTE,
    DELETE_ROUTE,
    Bot,
    block,
    caveat,
    error_text,
    header,
    hopper_uids,
    start_bot,
    texts,
    unescape,
    usage_text,
    writes,
)

SUPERVISOR = "U0SUPERVISOR"  # the driver's default user
AGENT = "U0AGENT"  # a reader, not a writer
AUDIT_CHANNEL = "C0AUDIT"
HOPPER_ROUTE = "GET /api/v2/outbound/campaigns/{id}/hopper"
NOT_YOURS = "expired, was already answered, or belongs to someone else; nothing was changed by this click"


# ---------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "leadbot.db"


@pytest.fixture
def rb(sandbox: SandboxServer, db: Path) -> Iterator[Bot]:
    """A bot (everyone may write) in front of a fresh demo sandbox, its audit trail in `db`."""
    yield from start_bot(sandbox, audit_path=db, audit_channel=AUDIT_CHANNEL)


def records(db: Path) -> list[dict[str, Any]]:
    """Every row of the audit trail, oldest first, snapshots decoded."""
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute("SELECT * FROM changes ORDER BY id")]
    for row in rows:
        for name in ("before_json", "after_json"):
            row[name] = None if row[name] is None else json.loads(row[name])
    return rows


def question_for(bot: Bot, text: str) -> dict[str, Any]:
    """Run `/lead text`; its answer must be the remove question (a Remove lead button). Returns it."""
    interaction = bot.command(text)
    assert interaction.status == 200 and interaction.acked_in_time, interaction
    question = bot.driver.replies(interaction, count=1)[0]
    assert button(question, ACTION_REMOVE), texts(question)
    return question


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    (found,) = [e for e in block(message, BLOCK_ACTIONS)["elements"] if e["action_id"] == action_id]
    return found


def click(bot: Bot, message: dict[str, Any], action_id: str) -> dict[str, Any]:
    """Click a button (the user said yes in Slack's confirm dialog, if it has one); the bot's one answer."""
    clicked = bot.driver.click(message, action_id)
    assert clicked.status == 200 and clicked.acked_in_time, clicked
    return bot.driver.replies(clicked, count=1)[0]


def remove(bot: Bot, list_ref: str, lead: str) -> dict[str, Any]:
    """`/lead remove`, then Remove lead: the reply after the delete."""
    return click(bot, question_for(bot, f"remove {list_ref} {lead}"), ACTION_REMOVE)


def make_called(bot: Bot, uid: str, *, status: str = "no_answer", calls: int = 2, **data: str) -> None:
    """Give a lead a call history (and data) in the sandbox, as the dialer would have."""
    with bot.sandbox.state.lock:
        lead = bot.lead(uid)
        lead.status, lead.call_count = status, calls
        lead.data.update(data)


def notice(message: dict[str, Any]) -> str:
    return unescape(block(message, BLOCK_NOTICE)["text"]["text"])


def audit_lines(bot: Bot, count: int, timeout: float = 5.0) -> list[str]:
    """The audit channel's lines, once `count` have come (they are sent after the reply, in the background)."""
    until = time.monotonic() + timeout
    while len(bot.stub.calls("chat.postMessage")) < count and time.monotonic() < until:
        time.sleep(0.01)
    return [call.payload["text"] for call in bot.stub.calls("chat.postMessage")]


# ---------------------------------------------------------------------- the question: read, ask, write nothing


def test_remove_reads_the_lead_and_asks_behind_a_confirm_dialog_writing_nothing(rb: Bot, db: Path) -> None:
    make_called(rb, "lead-5", city="Berlin")
    rb.control.reset_stats()

    question = question_for(rb, 'remove "Spring leads" lead-5')

    assert header(question) == "Remove lead lead-5 from Spring leads?"
    shown = unescape(texts(question))
    assert "+4915100000005" in shown and "no_answer" in shown and "city: Berlin" in shown
    assert "*Not in the hopper* (20 leads loaded): once removed, no batch will call it." in shown
    assert "babelforce's API has no do-not-call list and a lead's status cannot be set" in shown
    assert "its call history (status no_answer, 2 calls) does not come back" in shown
    remove_button, keep = button(question, ACTION_REMOVE), button(question, ACTION_CANCEL)
    assert (remove_button["text"]["text"], remove_button["style"]) == ("Remove lead", "danger")
    dialog = remove_button["confirm"]
    assert dialog["title"]["text"] == "Remove this lead?"
    assert "deletes lead lead-5 from list Spring leads in babelforce" in dialog["text"]["text"]
    assert (dialog["confirm"]["text"], dialog["deny"]["text"], dialog["style"]) == ("Remove it", "Keep it", "danger")
    assert keep["text"]["text"] == "Keep it" and keep["value"] == remove_button["value"]
    assert writes(rb) == 0 and rb.lead("lead-5") is not None
    assert records(db) == []  # a question is no change: nothing recorded yet


def test_keep_it_cancels_and_removes_nothing(rb: Bot) -> None:
    question = question_for(rb, 'remove "Spring leads" lead-5')
    rb.control.reset_stats()

    answer = click(rb, question, ACTION_CANCEL)

    assert notice(answer) == ":information_source: Cancelled: nothing was changed."
    assert answer.get("replace_original") is True
    assert writes(rb) == 0 and rb.lead("lead-5") is not None
    assert NOT_YOURS in notice(click(rb, question, ACTION_REMOVE))  # the question is settled
    assert rb.lead("lead-5") is not None


# ---------------------------------------------------------------------- the delete, and what the reply says


def test_removing_a_lead_outside_the_hopper_deletes_it_and_records_the_whole_lead(rb: Bot, db: Path) -> None:
    make_called(rb, "lead-5", city="Berlin")
    lead_id, data = rb.lead("lead-5").id, dict(rb.lead("lead-5").data)
    assert data["city"] == "Berlin"
    count = rb.lead_count()
    question = question_for(rb, 'remove "Spring leads" lead-5')
    rb.control.reset_stats()

    reply = click(rb, question, ACTION_REMOVE)

    assert reply.get("replace_original") is True  # the answer takes the question's place
    assert header(reply) == "Removed: lead-5 will not be dialled"
    assert reply["text"].startswith("Removed: lead-5 will not be dialled. Not in the hopper (read again after the")
    assert "no batch will call it" in caveat(reply)
    assert rb.lead("lead-5") is None and rb.lead_count() == count - 1
    assert rb.control.count(DELETE_ROUTE) == 1 and writes(rb) == 1
    (row,) = records(db)
    assert (row["action"], row["outcome"], row["lead_id"], row["lead_uid"]) == ("remove", "ok", lead_id, "lead-5")
    assert row["before_json"] == {
        "id": lead_id,
        "uid": "lead-5",
        "number": demo_number(5),
        "rank": 5,
        "data": data,
        "status": "no_answer",
        "callCount": 2,
    }
    assert row["after_json"] is None
    assert row["request_id"] == f"confirm:{button(question, ACTION_REMOVE)['value']}"
    assert row["command"] == '/lead remove "Spring leads" lead-5 (Remove lead)'
    assert row["caveat"].startswith("Not in the hopper (read again after the delete, 20 leads loaded)")
    undo = button(reply, ACTION_UNDO)
    assert undo["value"] == str(row["id"])
    assert undo["confirm"]["title"]["text"] == "Add this lead back?"
    assert "its call history does not come back" in undo["confirm"]["text"]["text"]


def test_removing_a_lead_in_the_hopper_says_this_batch_may_still_call_it(rb: Bot) -> None:
    question = question_for(rb, 'remove "Spring leads" lead-40')
    assert (
        "*Loaded in the current batch* (position 11 of 20): babelforce's API cannot take a lead out of a loaded "
        "batch, so this batch may still call it after the removal; no later batch will." in unescape(texts(question))
    )
    rb.control.reset_stats()

    reply = click(rb, question, ACTION_REMOVE)

    assert header(reply) == "Removed: lead-40 will not be dialled by later batches"
    assert reply["text"].startswith(
        "Removed: lead-40 will not be dialled by later batches. It is still loaded in the current batch (position 11 "
        "of 20): babelforce's API cannot take a lead out of a loaded batch, so this batch may still call it."
    )
    ids = [b.get("block_id") for b in reply["blocks"]]
    assert ids.index(BLOCK_CAVEAT) == ids.index(BLOCK_LEAD_HEADER) + 1  # the warning right under the verdict
    assert caveat(reply).startswith(":warning: *It is still loaded in the current batch* (position 11 of 20)")
    assert rb.control.count(HOPPER_ROUTE) == 2  # read just before the delete, and again after it
    assert rb.lead("lead-40") is None
    assert hopper_uids(rb, DEMO_CAMPAIGN_ID)[10] == "lead-40"  # the sandbox keeps the loaded entry
    dialled, called_removed = rb.sandbox.state.dial_batch(DEMO_CAMPAIGN_ID, 20)
    assert [entry.uid for entry in called_removed] == ["lead-40"] and len(dialled) == 19
    assert "lead-40" not in hopper_uids(rb, DEMO_CAMPAIGN_ID)  # and no later batch has it


def test_removing_a_lead_of_a_list_no_campaign_dials(rb: Bot) -> None:
    reply = remove(rb, '"Autumn leads"', "autumn-3")

    assert header(reply) == "Removed: autumn-3 will not be dialled"
    assert "*Not dialled*: no campaign dials list *Autumn leads*, so no batch will call it." in caveat(reply)
    assert rb.lead("autumn-3", AUTUMN_LIST_ID) is None


def test_a_double_click_on_remove_removes_once(rb: Bot, db: Path) -> None:
    question = question_for(rb, 'remove "Spring leads" lead-6')
    rb.control.reset_stats()

    with ThreadPoolExecutor(2) as pool:
        clicks = list(pool.map(lambda _: rb.driver.click(question, ACTION_REMOVE), range(2)))
    answers = [rb.driver.replies(c, count=1)[0] for c in clicks]

    assert rb.control.count(DELETE_ROUTE) == 1 and writes(rb) == 1
    assert sorted(header(a) if NOT_YOURS not in texts(a) else "again" for a in answers) == [
        "Removed: lead-6 will not be dialled",
        "again",
    ]
    assert [row["action"] for row in records(db)] == ["remove"]


def test_the_lead_changed_since_the_question_asks_again_and_deletes_nothing(rb: Bot) -> None:
    question = question_for(rb, 'remove "Spring leads" lead-7')
    with rb.sandbox.state.lock:
        rb.lead("lead-7").number = "+4915199990007"  # someone fixed its number meanwhile
    rb.control.reset_stats()

    again = click(rb, question, ACTION_REMOVE)

    assert "The lead changed since you were asked" in texts(again)
    assert button(again, ACTION_REMOVE)["value"] != button(question, ACTION_REMOVE)["value"]
    assert "+4915199990007" in texts(again)
    assert writes(rb) == 0 and rb.lead("lead-7") is not None
    assert header(click(rb, again, ACTION_REMOVE)) == "Removed: lead-7 will not be dialled"


def test_a_delete_whose_answer_was_lost_is_retried_and_reported_once(rb: Bot, db: Path) -> None:
    question = question_for(rb, 'remove "Spring leads" lead-8')
    rb.control.faults({"method": "DELETE", "reset": "after", "times": 1})  # deleted, then the connection drops

    reply = click(rb, question, ACTION_REMOVE)

    assert header(reply) == "Removed: lead-8 will not be dialled"
    assert "babelforce said the lead was already gone when leadbot deleted it" in texts(reply)
    assert rb.lead("lead-8") is None
    (row,) = records(db)
    assert (row["action"], row["outcome"]) == ("remove", "ok")
    assert button(reply, ACTION_UNDO)  # a complete record: it can be undone


def test_a_delete_babelforce_never_confirms_is_recorded_unknown_and_says_the_lead_is_still_there(
    rb: Bot, db: Path
) -> None:
    question = question_for(rb, 'remove "Spring leads" lead-10')
    rb.control.faults({"method": "DELETE", "reset": "before", "times": None})  # every try dropped, none acted

    answer = click(rb, question, ACTION_REMOVE)

    assert unescape(error_text(answer)) == (
        ":x: babelforce did not confirm the delete, and the lead was still there when leadbot read it back just now; "
        "it may still go, so check with /lead show before trying again."
    )
    assert rb.lead("lead-10") is not None
    (row,) = records(db)
    assert (row["action"], row["outcome"]) == ("remove", "unknown")


def test_the_audit_channel_gets_one_line_with_the_number_masked(rb: Bot) -> None:
    remove(rb, '"Spring leads"', "lead-9")

    (line,) = audit_lines(rb, 1)
    assert line.startswith(f"<@{SUPERVISOR}> remove lead-9 in Spring leads: removed: uid lead-9, number ")
    assert demo_number(9) not in line and ", rank 9; " in line


# ---------------------------------------------------------------------- refused: nothing read, nothing deleted


def test_remove_is_denied_for_a_non_writer_before_any_babelforce_call(sandbox: SandboxServer, db: Path) -> None:
    for bot in start_bot(sandbox, allow_writes=False, audit_path=db):
        bot.control.reset_stats()
        typed = bot.command('remove "Spring leads" lead-5')
        bare = bot.command("remove")

        assert typed.acked_in_time and "LEADBOT_WRITERS" in error_text(typed.json or {})
        assert "LEADBOT_WRITERS" in error_text(bare.json or {}) and bot.stub.calls("views.open") == []
        assert bot.control.stats()["total"] == 0  # not even a read
        assert bot.lead("lead-5") is not None
        assert [(row["action"], row["outcome"]) for row in records(db)] == [("remove", "denied")] * 2


def test_a_remove_click_by_a_non_writer_is_refused_and_deletes_nothing(sandbox: SandboxServer, db: Path) -> None:
    policy = AccessPolicy(writers=frozenset({SUPERVISOR}))
    for bot in start_bot(sandbox, policy=policy, audit_path=db):
        question = question_for(bot, 'remove "Spring leads" lead-5')
        bot.control.reset_stats()
        bot.driver.user_id = AGENT

        answer = click(bot, question, ACTION_REMOVE)

        assert "LEADBOT_WRITERS" in error_text(answer)
        assert bot.control.stats()["total"] == 0 and bot.lead("lead-5") is not None
        assert [(row["action"], row["outcome"], row["user_id"]) for row in records(db)] == [("remove", "denied", AGENT)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('remove "Spring leads"', "remove needs <lead> (the lead's uid, id or number) after the list."),
        ('remove "Spring leads" lead-5 lead-6', "remove takes 2 arguments (<list> <lead>) but got 3, so 'lead-6'"),
        ('remove "Spring leads" lead-5 status=do_not_call', "remove takes no key=value pairs; 'status=do_not_call'"),
        ('remove "" lead-5', "list must not be empty; give the list's name or id."),
    ],
    ids=["no lead", "one too many", "a key=value", "empty list"],
)
def test_bad_input_is_one_sentence_with_the_usage_and_no_babelforce_call(rb: Bot, text: str, message: str) -> None:
    rb.control.reset_stats()

    interaction = rb.command(text)

    assert interaction.acked_in_time and interaction.json is not None
    assert unescape(error_text(interaction.json)).startswith(f":x: {message}")
    assert "/lead remove <list> <lead>" in unescape(usage_text(interaction.json))
    assert rb.control.stats()["total"] == 0


def test_an_unknown_lead_is_one_sentence_and_nothing_is_asked_or_deleted(rb: Bot, db: Path) -> None:
    rb.control.reset_stats()

    answer = rb.ask('remove "Spring leads" lead-999')

    assert unescape(error_text(answer)) == ":x: No lead with uid, id or number 'lead-999' in list Spring leads."
    assert ACTION_REMOVE not in json.dumps(answer)
    assert writes(rb) == 0 and records(db) == []


# ---------------------------------------------------------------------- the form: list and lead, then the question


def test_the_form_asks_the_same_question_and_its_remove_button_deletes(rb: Bot, db: Path) -> None:
    opened_by = rb.command("remove")
    view = rb.driver.opened_view(opened_by)
    assert view["callback_id"] == "lead_remove_form"
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [BLOCK_LIST, BLOCK_LEAD]
    rb.control.reset_stats()

    wrong = rb.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-999"})
    assert wrong.json is not None and wrong.json["response_action"] == "errors"
    assert "No lead with uid, id or number 'lead-999'" in wrong.json["errors"][BLOCK_LEAD]

    submitted = rb.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-11"})
    assert submitted.status == 200 and submitted.body == ""  # the form closes; the question goes where it was typed
    question = rb.driver.replies(opened_by, count=1)[0]
    assert header(question) == "Remove lead lead-11 from Spring leads?"
    assert writes(rb) == 0 and rb.lead("lead-11") is not None

    reply = click(rb, question, ACTION_REMOVE)

    assert header(reply) == "Removed: lead-11 will not be dialled"
    assert rb.lead("lead-11") is None and rb.control.count(DELETE_ROUTE) == 1
    (row,) = records(db)
    assert row["command"] == f"/lead remove {DEMO_LIST_ID} lead-11 (Remove lead)"


# ---------------------------------------------------------------------- undo and history


def test_undo_adds_the_lead_back_as_a_new_lead_and_says_its_call_history_is_lost(rb: Bot, db: Path) -> None:
    make_called(rb, "lead-12", status="busy", calls=3, city="Kiel")
    old_id, data = rb.lead("lead-12").id, dict(rb.lead("lead-12").data)
    reply = remove(rb, '"Spring leads"', "lead-12")
    rb.control.reset_stats()

    undone = click(rb, reply, ACTION_UNDO)  # the user said yes to "Add this lead back?"

    assert header(undone) == "Undone: lead-12 is back in Spring leads as a new lead"
    assert (
        "It has a new id and starts as a new lead: its call history (status busy, 3 calls) did not come back."
        in unescape(texts(undone))
    )
    lead = rb.lead("lead-12")
    assert (lead.uid, lead.number, lead.rank, lead.data) == ("lead-12", demo_number(12), 12, data)
    assert data["city"] == "Kiel"
    assert lead.id != old_id and (lead.status, lead.call_count) == ("pending", 0)
    assert rb.control.count(ADD_ROUTE) == 1 and writes(rb) == 1
    removed, undo = records(db)
    assert (undo["action"], undo["outcome"], undo["undo_of"], undo["lead_id"]) == (
        "undo_remove",
        "ok",
        removed["id"],
        lead.id,
    )
    assert undo["after_json"] == {
        "id": lead.id,
        "uid": "lead-12",
        "number": demo_number(12),
        "rank": 12,
        "data": data,
    }
    assert removed["undone_by"] == undo["id"]
    assert notice(click(rb, reply, ACTION_UNDO)).startswith(":information_source: Already undone")
    assert rb.control.count(ADD_ROUTE) == 1


def test_undo_is_refused_when_the_uid_is_in_the_list_again(rb: Bot, db: Path) -> None:
    reply = remove(rb, '"Spring leads"', "lead-13")
    rb.ask(f'add "Spring leads" lead-13 {demo_number(13)} 13')  # someone added it back by hand
    rb.control.reset_stats()

    answer = click(rb, reply, ACTION_UNDO)

    assert unescape(error_text(answer)) == (
        ":x: List Spring leads has a lead with uid lead-13 again (added since the removal), so Undo did not add a "
        "second one; see it with /lead show."
    )
    assert writes(rb) == 0
    assert [row["action"] for row in records(db)] == ["remove", "add"]


def test_history_of_a_removed_lead_shows_the_removal_with_its_call_history(rb: Bot) -> None:
    make_called(rb, "lead-14", status="no_answer", calls=1)
    remove(rb, '"Spring leads"', "lead-14")

    reply = rb.ask('history "Spring leads" lead-14')

    assert header(reply) == "History of lead-14 (no longer in babelforce) in Spring leads"
    (line,) = unescape(texts(reply)).split("\n")[1:2]
    assert f"*removed* uid lead-14, number {demo_number(14)}, rank 14; " in line
    assert line.endswith("(status no_answer, 1 call)")


def test_undo_after_an_earlier_undo_whose_outcome_was_unknown_finds_the_lead_back_and_adds_none(
    rb: Bot, db: Path
) -> None:
    reply = remove(rb, '"Spring leads"', "lead-15")
    (removed,) = records(db)
    record = removed["before_json"]

    async def lost_undo() -> None:  # an undo that added the lead, but whose answer never came back
        audit = rb.leadbot.audit
        undo_id = await audit.begin(
            actor=Actor(SUPERVISOR),
            action="undo_remove",
            command="Undo of the remove",
            request_id=f"undo:{removed['id']}",
            list_id=DEMO_LIST_ID,
            lead_uid="lead-15",
            undo_of=removed["id"],
        )
        assert undo_id is not None
        await audit.finish(undo_id, outcome=Outcome.UNKNOWN, detail="babelforce did not answer in time")

    asyncio.run(lost_undo())
    rb.sandbox.state.add_lead(DEMO_LIST_ID, "lead-15", record["number"], record["rank"], record["data"])
    rb.control.reset_stats()

    answer = click(rb, reply, ACTION_UNDO)

    assert (
        notice(answer)
        == ":information_source: Lead lead-15 is already back in list Spring leads (as a new lead): undone."
    )
    assert writes(rb) == 0
    rows = records(db)
    assert [(row["action"], row["outcome"]) for row in rows] == [
        ("remove", "ok"),
        ("undo_remove", "unknown"),
        ("undo_remove", "ok"),
    ]
    assert rows[0]["undone_by"] == rows[2]["id"] and rows[2]["request_id"] == f"undo:{removed['id']}:1"


def test_undo_of_a_lead_removed_from_the_hopper_says_its_old_entry_may_still_call_the_number(rb: Bot) -> None:
    reply = remove(rb, '"Spring leads"', "lead-40")

    undone = click(rb, reply, ACTION_UNDO)

    assert header(undone) == "Undone: lead-40 is back in Spring leads as a new lead"
    assert (
        "Its old entry is still loaded in the current batch (position 11 of 20), so this batch may call the number "
        "too." in unescape(texts(undone))
    )
    assert hopper_uids(rb, DEMO_CAMPAIGN_ID).count("lead-40") == 1  # the old entry; the new lead waits its turn
