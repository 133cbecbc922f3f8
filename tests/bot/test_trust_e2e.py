"""Trust, end to end: signed Slack requests through the real Bolt app over HTTP, the babelforce sandbox behind it and
a real audit trail (LEADBOT_DB), on each store: a SQLite file in a temporary folder and a PostgreSQL database,
inspected with the database's own client as an operator would.

1. "Apply anyway?": a change that would do nothing for dialling now is asked about and written only on the click;
2. Undo: every audited change can be put back once, unless the lead was changed since, and the undo is audited too;
3. the audit trail: who, when, where, what (before and after), the caveat and the outcome, kept across restarts; no
   record, no change; the optional audit channel;
4. a repeated delivery (Slack retry, double submit) makes one change;
5. `/lead history`;
6. permissions: writers (users and user groups), readers, channels and workspaces, denied before babelforce.

Module-scoped bots (each with its own sandbox and audit store, once per store) keep this fast; every test on a shared
bot uses leads no other test of the module touches, and resets the sandbox's request counts before counting writes.
The demo: "Spring leads" is dialled by UP RANK, its hopper holds lead-31 … lead-50 (lead-40 at position 11);
"Autumn leads" is dialled by no campaign; "Renewals" is dialled in list order UP.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, closing, contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest

import bot.audit as audit_module
from babelforce.config import Timeouts
from bot.permissions import AccessPolicy
from commands.blocks import (
    ACTION_APPLY_ANYWAY,
    ACTION_CANCEL,
    ACTION_UNDO,
    BLOCK_ACTIONS,
    BLOCK_ERROR,
    BLOCK_NOTICE,
)
from commands.modals import BLOCK_LIST, BLOCK_NUMBER, BLOCK_RANK, BLOCK_UID
from sandbox import SandboxServer
from sandbox.seed import AUTUMN_LIST_ID, DEMO_LIST_ID, RENEWALS_LIST_ID, demo_number
from slackstub.server import Recorded
from slackstub.signing import signed_headers
from tests.support import (
    ADD_ROUTE,
    DELETE_ROUTE,
    UPDATE_ROUTE,
    Bot,
    all_leads,
    block,
    caveat,
    error_text,
    header,
    history_lines,
    is_postgres,
    is_question,
    reads_fail_once_a_put_arrives,
    snapshot,
    start_bot,
    store_rows,
    texts,
    unescape,
    writes,
)

SUPERVISOR = "U0SUPERVISOR"  # the driver's default user
TEAM = "T0LEADBOT"  # the driver's default workspace
CHANNEL = "C0CAMPAIGN"  # the driver's default channel
WRITER_GROUP = "S0WRITERS"
GROUPIE = "U0GROUPIE"  # a writer through WRITER_GROUP only
READER = "U0READER"
OUTSIDER = "U0OUTSIDER"
AUDIT_CHANNEL = "C0AUDIT"
QUIET_S = 0.3  # how long a test waits to be sure a second reply does not come

NOT_RECORDED = "Nothing was changed, because leadbot makes no change it cannot record"
NOT_MADE = "tell whoever runs it."
NOT_YOURS = "expired, was already answered, or belongs to someone else; nothing was changed by this click"


def test_a_write_babelforce_answers_success_false_is_recorded_failed_with_its_reason_and_not_resent(
    tb: Bot, trust_db: str
) -> None:
    """A 200 whose envelope says "success": false did not happen: one sentence with babelforce's own reason, the
    record says failed, the lead is unchanged, and the PUT is not sent again."""
    before = snapshot(tb, "lead-26")
    tb.control.reset_stats()
    tb.control.faults({"method": "PUT", "status": 200, "body": {"success": False, "message": "Lead is locked"}})

    reply = tb.ask('rank "Spring leads" lead-26 6')

    message = only_error(reply).removeprefix(":x: ")
    assert message == "babelforce rejected the request to update lead lead-26: Lead is locked."
    assert tb.control.count(UPDATE_ROUTE) == 1
    assert snapshot(tb, "lead-26") == before
    (row,) = records_of(trust_db, "lead-26")
    assert (row["outcome"], row["detail"], row["after_json"]) == ("failed", message, None)


# ---------------------------------------------------------------------- the audit file, read as an operator would


def records(db: str, where: str = "1 = 1", *params: Any) -> list[dict[str, Any]]:
    """Rows of the audit trail's `changes` table (oldest first), snapshots decoded."""
    found = store_rows(db, f"SELECT * FROM changes WHERE {where} ORDER BY id", params)
    for row in found:
        for name in ("before_json", "after_json"):
            row[name] = None if row[name] is None else json.loads(row[name])
    return found


def records_of(db: str, uid: str) -> list[dict[str, Any]]:
    """Every record about the lead that had (or now has) this uid."""
    return records(db, "lead_uid = ? OR before_uid = ? OR after_uid = ?", uid, uid, uid)


def record(db: str, change_id: int | str) -> dict[str, Any]:
    (row,) = records(db, "id = ?", int(change_id))
    return row


# ---------------------------------------------------------------------- Slack side helpers


@contextmanager
def acting_as(
    bot: Bot, user_id: str | None = None, *, team_id: str | None = None, channel_id: str | None = None
) -> Iterator[None]:
    """Let the driver send as another user / from another workspace or channel, restored afterwards."""
    driver = bot.driver
    saved = (driver.user_id, driver.team_id, driver.channel_id)
    driver.user_id = user_id or driver.user_id
    driver.team_id = team_id or driver.team_id
    driver.channel_id = channel_id or driver.channel_id
    try:
        yield
    finally:
        driver.user_id, driver.team_id, driver.channel_id = saved


def question_for(bot: Bot, text: str) -> tuple[dict[str, Any], Any]:
    """Run `/lead text`; the answer must be an "apply anyway?" question. Returns it and the command's interaction."""
    interaction = bot.command(text)
    assert interaction.status == 200 and interaction.acked_in_time, interaction
    question = bot.driver.replies(interaction, count=1)[0]
    assert is_question(question), f"expected an 'apply anyway?' question, got: {texts(question)}"
    return question, interaction


def audit_lines(bot: Bot, posted: int, count: int = 1, timeout: float = 5.0) -> list[Recorded]:
    """The chat.postMessage calls after the first `posted`, once `count` have come (the line is sent after the
    user's reply, in the background)."""
    until = time.monotonic() + timeout
    while len(bot.stub.calls("chat.postMessage")) < posted + count and time.monotonic() < until:
        time.sleep(0.01)
    return bot.stub.calls("chat.postMessage")[posted:]


def click(bot: Bot, message: dict[str, Any], action_id: str, value: str | None = None) -> dict[str, Any]:
    """Click a button of `message` and return the bot's one answer to the click."""
    clicked = bot.driver.click(message, action_id, value)
    assert clicked.status == 200 and clicked.acked_in_time, clicked
    return bot.driver.replies(clicked, count=1)[0]


def click_together(bot: Bot, message: dict[str, Any], action_id: str, times: int = 2) -> list[dict[str, Any]]:
    """`times` clicks of the same button sent at once (a double click); the answers, in the order of the clicks."""
    with ThreadPoolExecutor(times) as pool:
        clicks = list(pool.map(lambda _: bot.driver.click(message, action_id), range(times)))
    assert all(c.status == 200 and c.acked_in_time for c in clicks), clicks
    return [bot.driver.replies(c, count=1)[0] for c in clicks]


def undo_button(message: dict[str, Any]) -> dict[str, Any]:
    (button,) = [e for e in block(message, BLOCK_ACTIONS)["elements"] if e["action_id"] == ACTION_UNDO]
    return button


def change_id_of(card: dict[str, Any]) -> int:
    """The audit record behind a lead card: its Undo button's value."""
    return int(undo_button(card)["value"])


def notice(message: dict[str, Any]) -> str:
    return unescape(block(message, BLOCK_NOTICE)["text"]["text"])


def only_error(message: dict[str, Any]) -> str:
    """The message is one error sentence and nothing else; its text as the user reads it."""
    assert [b.get("block_id") for b in message.get("blocks", [])] == [BLOCK_ERROR], texts(message)
    return unescape(error_text(message))


def history_text(bot: Bot, list_ref: str, lead: str) -> str:
    """The history's lines (one section each), as the user reads them."""
    return "\n".join(history_lines(bot.ask(f"history {list_ref} {lead}")))


def slash_body(bot: Bot, text: str) -> tuple[bytes, str, str]:
    """A `/lead text` form body as Slack posts it; returns it with its trigger_id and response_url."""
    fields = bot.driver.command_fields(text)
    trigger_id, response_url = fields["trigger_id"], fields["response_url"]
    return urlencode(fields).encode(), trigger_id, response_url


def deliver_slash(bot: Bot, body: bytes, retry: int = 0) -> Any:
    """POST a slash command body, signed now; `retry` > 0 adds Slack's retry headers (same body, same trigger)."""
    headers = signed_headers(bot.signing_secret, body)
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return bot.driver.post_raw(body, headers)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def responses_settle(bot: Bot, response_url: str, count: int) -> list[dict[str, Any]]:
    """Wait for `count` replies on a response_url, then a little longer to be sure no more come."""
    bot.stub.wait_responses(response_url, count=count)
    time.sleep(QUIET_S)
    return bot.stub.responses(response_url)


# ---------------------------------------------------------------------- bots


@pytest.fixture(scope="module")
def trust_db(new_audit_target: Callable[[str], str]) -> str:
    return new_audit_target("trust")


@pytest.fixture(scope="module")
def trust(trust_db: str) -> Iterator[Bot]:
    """Everyone may write; its own demo sandbox; audit trail in `trust_db`."""
    with SandboxServer(seed="demo") as sandbox:
        yield from start_bot(sandbox, audit_path=trust_db)


@pytest.fixture
def tb(trust: Bot) -> Iterator[Bot]:
    """The shared bot, with its request counts reset and no fault left behind by the test."""
    trust.control.reset_stats()
    yield trust
    trust.control.clear_faults()


@pytest.fixture(scope="module")
def up_bot(new_audit_target: Callable[[str], str]) -> Iterator[Bot]:
    """A demo sandbox whose hoppers hold 5 leads, so that Renewals (list order UP) has leads outside its hopper."""
    with SandboxServer(seed="demo", hopper_size=5) as sandbox:
        yield from start_bot(sandbox, audit_path=new_audit_target("up"))


@pytest.fixture(scope="module")
def gated_db(new_audit_target: Callable[[str], str]) -> str:
    return new_audit_target("gated")


GATED_POLICY = AccessPolicy(
    writers={SUPERVISOR, WRITER_GROUP},
    readers={READER},
    channels={CHANNEL},
    teams={TEAM},
)


@pytest.fixture(scope="module")
def gated_bot(gated_db: str) -> Iterator[Bot]:
    """LEADBOT_WRITERS=U0SUPERVISOR,S0WRITERS (U0GROUPIE is its member), LEADBOT_READERS=U0READER,
    LEADBOT_CHANNELS=C0CAMPAIGN, LEADBOT_TEAM_ID=T0LEADBOT."""
    with SandboxServer(seed="demo") as sandbox:
        for bot in start_bot(sandbox, policy=GATED_POLICY, audit_path=gated_db):
            bot.stub.set_usergroup(WRITER_GROUP, [GROUPIE])
            yield bot


@pytest.fixture
def gated(gated_bot: Bot) -> Bot:
    gated_bot.control.reset_stats()
    return gated_bot


@pytest.fixture(scope="module")
def channel_db(new_audit_target: Callable[[str], str]) -> str:
    return new_audit_target("channel")


@pytest.fixture(scope="module")
def channel_bot(channel_db: str) -> Iterator[Bot]:
    """LEADBOT_AUDIT_CHANNEL=C0AUDIT."""
    with SandboxServer(seed="demo") as sandbox:
        yield from start_bot(sandbox, audit_path=channel_db, audit_channel=AUDIT_CHANNEL)


# ====================================================================== 1. "apply anyway?"


def rank_is(rank: int) -> tuple[Callable[[Any], Any], Any]:
    return (lambda lead: lead.rank), rank


def city_is(city: str) -> tuple[Callable[[Any], Any], Any]:
    return (lambda lead: lead.data.get("city")), city


CONFIRMATIONS = [
    # (id, list id, uid, command, status set first, words of the caveat, what the lead has once it is applied)
    ("in hopper", DEMO_LIST_ID, "lead-40", 'rank "Spring leads" lead-40 45', None, "position 11 of 20", rank_is(45)),
    (
        "list order UP",
        RENEWALS_LIST_ID,
        "renewal-2",
        "rank Renewals renewal-2 200",
        None,
        "Rank does not change the dial order",
        rank_is(200),
    ),
    (
        "no campaign",
        AUTUMN_LIST_ID,
        "autumn-3",
        'set "Autumn leads" autumn-3 city=Kiel',
        None,
        "no campaign dials list *Autumn leads*",
        city_is("Kiel"),
    ),
    (
        "final status",
        DEMO_LIST_ID,
        "lead-20",
        'rank "Spring leads" lead-20 99',
        "do_not_call",
        "Will not be dialled again",
        rank_is(99),
    ),
]


@pytest.mark.parametrize(
    ("list_id", "uid", "text", "status", "words", "applied"),
    [pytest.param(*case[1:], id=case[0]) for case in CONFIRMATIONS],
)
def test_a_change_that_does_nothing_now_is_asked_about_writes_nothing_then_apply_anyway_writes_it_once(
    tb: Bot,
    trust_db: str,
    list_id: str,
    uid: str,
    text: str,
    status: str | None,
    words: str,
    applied: tuple[Callable[[Any], Any], Any],
) -> None:
    if status is not None:
        with tb.sandbox.state.lock:
            tb.lead(uid, list_id).status = status
    before = snapshot(tb, uid, list_id)

    question, _ = question_for(tb, text)

    assert "Not applied yet" in texts(question)
    assert words in caveat(question)
    assert writes(tb) == 0
    assert snapshot(tb, uid, list_id) == before
    assert records_of(trust_db, uid) == []  # a question is not a change

    card = click(tb, question, ACTION_APPLY_ANYWAY)

    assert writes(tb) == 1
    read, value = applied
    assert read(tb.lead(uid, list_id)) == value
    assert read(before) != value
    assert words in caveat(card)  # the real caveat, read again when the change was made
    assert undo_button(card)["text"]["text"] == "Undo"
    (row,) = records_of(trust_db, uid)
    assert (row["id"], row["outcome"], row["request_id"]) == (change_id_of(card), "ok", f"confirm:{token_of(question)}")


def token_of(question: dict[str, Any]) -> str:
    """The token of an "apply anyway?" question (its buttons' value)."""
    (apply,) = [e for e in block(question, BLOCK_ACTIONS)["elements"] if e["action_id"] == ACTION_APPLY_ANYWAY]
    return apply["value"]


def test_cancel_changes_nothing_and_says_so(tb: Bot, trust_db: str) -> None:
    before = snapshot(tb, "lead-41")
    question, _ = question_for(tb, 'rank "Spring leads" lead-41 46')

    answer = click(tb, question, ACTION_CANCEL)

    assert notice(answer) == ":information_source: Cancelled: nothing was changed."
    assert writes(tb) == 0
    assert snapshot(tb, "lead-41") == before
    assert records_of(trust_db, "lead-41") == []
    # The question is settled: Apply anyway on it now changes nothing either.
    assert NOT_YOURS in notice(click(tb, question, ACTION_APPLY_ANYWAY))
    assert writes(tb) == 0 and tb.lead("lead-41").rank == 41


def test_apply_anyway_double_click_writes_once(tb: Bot, trust_db: str) -> None:
    question, _ = question_for(tb, 'rank "Spring leads" lead-42 47')

    answers = click_together(tb, question, ACTION_APPLY_ANYWAY)

    assert writes(tb) == 1
    assert tb.lead("lead-42").rank == 47
    cards = [a for a in answers if any(b.get("block_id") == BLOCK_ACTIONS for b in a["blocks"])]
    others = [a for a in answers if a not in cards]
    assert len(cards) == 1 and header(cards[0]) == "Rank of lead-42: 42 → 47"
    assert len(others) == 1 and NOT_YOURS in notice(others[0])
    assert [r["outcome"] for r in records_of(trust_db, "lead-42")] == ["ok"]


def test_apply_anyway_by_another_user_is_refused_and_the_asker_can_still_apply(tb: Bot, trust_db: str) -> None:
    question, _ = question_for(tb, 'rank "Spring leads" lead-43 48')

    with acting_as(tb, OUTSIDER):
        answer = click(tb, question, ACTION_APPLY_ANYWAY)

    assert NOT_YOURS in notice(answer)
    assert writes(tb) == 0 and tb.lead("lead-43").rank == 43
    assert records_of(trust_db, "lead-43") == []
    card = click(tb, question, ACTION_APPLY_ANYWAY)  # the user who was asked
    assert header(card) == "Rank of lead-43: 43 → 48"
    assert writes(tb) == 1


def test_an_add_to_a_list_no_campaign_dials_is_asked_about(tb: Bot) -> None:
    count = tb.lead_count(AUTUMN_LIST_ID)

    question, _ = question_for(tb, 'add "Autumn leads" autumn-new +4916099990001 5')

    assert "Add lead autumn-new to Autumn leads" in texts(question)
    assert writes(tb) == 0 and tb.lead_count(AUTUMN_LIST_ID) == count
    card = click(tb, question, ACTION_APPLY_ANYWAY)
    assert header(card) == "Lead autumn-new added"
    assert "Not dialled now" in caveat(card)
    assert tb.control.count(ADD_ROUTE) == 1
    assert tb.lead_count(AUTUMN_LIST_ID) == count + 1


def test_an_add_to_a_dialled_list_is_not_asked_about(tb: Bot) -> None:
    reply = tb.ask('add "Spring leads" spring-new +4915199990001 5')

    assert header(reply) == "Lead spring-new added"
    assert tb.control.count(ADD_ROUTE) == 1
    assert tb.lead("spring-new").rank == 5


def test_a_change_that_takes_effect_at_the_next_refill_is_not_asked_about(tb: Bot) -> None:
    reply = tb.ask('rank "Spring leads" lead-10 20')

    assert header(reply) == "Rank of lead-10: 10 → 20"
    assert "Takes effect at the next hopper refill" in caveat(reply)
    assert undo_button(reply)
    assert writes(tb) == 1 and tb.lead("lead-10").rank == 20


def test_a_pure_rank_change_under_list_order_up_is_asked_about(up_bot: Bot) -> None:
    up_bot.control.reset_stats()

    question, _ = question_for(up_bot, "rank Renewals renewal-2 200")

    assert "Rank does not change the dial order" in caveat(question)
    assert "Already in the hopper" not in caveat(question)  # renewal-2 is outside the 5-lead hopper
    assert writes(up_bot) == 0 and up_bot.lead("renewal-2", RENEWALS_LIST_ID).rank == 2


def test_a_set_under_list_order_up_that_changes_data_is_not_asked_about(up_bot: Bot) -> None:
    up_bot.control.reset_stats()

    reply = up_bot.ask("set Renewals renewal-3 rank=300 city=Kiel")

    assert not is_question(reply)
    assert header(reply) == "Lead renewal-3 updated"
    assert "Rank does not change the dial order" in caveat(reply)  # still said, only not asked about
    lead = up_bot.lead("renewal-3", RENEWALS_LIST_ID)
    assert (lead.rank, lead.data["city"]) == (300, "Kiel")
    assert writes(up_bot) == 1


# ====================================================================== 2. undo


def test_undo_of_a_rank_restores_it_and_is_itself_audited(tb: Bot, trust_db: str) -> None:
    card = tb.ask('rank "Spring leads" lead-11 21')
    change_id = change_id_of(card)
    assert tb.lead("lead-11").rank == 21
    tb.control.reset_stats()

    restored = click(tb, card, ACTION_UNDO)

    assert header(restored) == "Undone: rank of lead-11 restored"
    assert tb.lead("lead-11").rank == 11
    assert tb.control.count(UPDATE_ROUTE) == 1 and writes(tb) == 1
    original, undo = records_of(trust_db, "lead-11")
    assert (original["id"], original["undone_by"]) == (change_id, undo["id"])
    assert (undo["action"], undo["undo_of"], undo["outcome"]) == ("undo", change_id, "ok")
    assert (undo["before_json"]["rank"], undo["after_json"]["rank"]) == (21, 11)
    assert undo["request_id"] == f"undo:{change_id}"
    assert all(b.get("block_id") != BLOCK_ACTIONS for b in restored["blocks"])  # no undo of the undo


def test_undo_of_a_set_restores_uid_number_and_data_readds_a_deleted_key_and_removes_an_added_one(
    tb: Bot, trust_db: str
) -> None:
    before = snapshot(tb, "lead-12")
    card = tb.ask('set "Spring leads" lead-12 uid=lead-12b number=+4915199991212 city=null vip=yes')
    changed = tb.lead("lead-12b")
    assert (changed.number, changed.data) == ("+4915199991212", {"firstName": before.data["firstName"], "vip": "yes"})
    tb.control.reset_stats()

    restored = click(tb, card, ACTION_UNDO)

    assert header(restored) == "Undone: uid, number, data 'city' and data 'vip' of lead-12 restored"
    assert tb.lead("lead-12b") is None
    lead = tb.lead("lead-12")
    assert (lead.id, lead.uid, lead.number, lead.rank, lead.data) == (
        before.id,
        "lead-12",
        demo_number(12),
        12,
        before.data,
    )
    assert writes(tb) == 1
    original, undo = records_of(trust_db, "lead-12")
    assert original["undone_by"] == undo["id"] and undo["undo_of"] == original["id"]
    # the records keep what the change wrote (uid, number, the two data keys), not the rest of the lead
    assert original["before_json"] == {
        "id": before.id,
        "uid": "lead-12",
        "number": demo_number(12),
        "data": {"city": before.data["city"]},
    }
    assert original["after_json"] == {
        "id": before.id,
        "uid": "lead-12b",
        "number": "+4915199991212",
        "data": {"vip": "yes"},
    }
    assert undo["after_json"] == original["before_json"]


def test_undo_of_an_add_asks_slack_to_confirm_then_deletes_the_lead(tb: Bot, trust_db: str) -> None:
    count = tb.lead_count()
    card = tb.ask('add "Spring leads" undo-add-1 +4915199990002 4')
    button = undo_button(card)
    assert button["confirm"]["title"]["text"] == "Delete this lead?"
    assert "Undo deletes lead undo-add-1 from list Spring leads" in button["confirm"]["text"]["text"]
    assert button["confirm"]["style"] == "danger"
    assert tb.lead_count() == count + 1
    tb.control.reset_stats()

    answer = click(tb, card, ACTION_UNDO)  # the user confirmed in Slack's dialog: Slack then sends the click

    assert notice(answer) == ":information_source: Undone: lead undo-add-1 was deleted from list Spring leads."
    assert tb.lead("undo-add-1") is None and tb.lead_count() == count
    assert tb.control.count(DELETE_ROUTE) == 1 and writes(tb) == 1
    added, deleted = records_of(trust_db, "undo-add-1")
    assert (added["action"], added["undone_by"]) == ("add", deleted["id"])
    assert (deleted["action"], deleted["undo_of"], deleted["outcome"]) == ("undo_add", added["id"], "ok")


def change_data_in_the_sandbox(bot: Bot, uid: str) -> None:
    with bot.sandbox.state.lock:
        bot.lead(uid).data["city"] = "Elsewhere"


def change_rank_with_another_command(bot: Bot, uid: str) -> None:
    with acting_as(bot, "U0COLLEAGUE"):
        assert header(bot.ask(f'set "Spring leads" {uid} rank=25')).startswith(f"Lead {uid} updated")


@pytest.mark.parametrize(
    ("uid", "change", "since", "drift"),
    [
        (
            "lead-13",
            'set "Spring leads" lead-13 city=Kiel',
            change_data_in_the_sandbox,
            "data 'city' is now 'Elsewhere', not 'Kiel'",
        ),
        ("lead-14", 'rank "Spring leads" lead-14 24', change_rank_with_another_command, "rank is now 25, not 24"),
    ],
    ids=["data edited in babelforce", "rank changed by another /lead set"],
)
def test_undo_is_refused_when_the_lead_was_changed_since_and_writes_nothing(
    tb: Bot, trust_db: str, uid: str, change: str, since: Callable[[Bot, str], None], drift: str
) -> None:
    card = tb.ask(change)
    since(tb, uid)
    now = snapshot(tb, uid)
    tb.control.reset_stats()

    answer = click(tb, card, ACTION_UNDO)

    message = only_error(answer)
    assert f"Lead {uid} was changed since ({drift}), so undo would overwrite that" in message, message
    assert writes(tb) == 0 and snapshot(tb, uid) == now
    rows = records_of(trust_db, uid)
    assert all(row["undone_by"] is None for row in rows)
    # the refused undo is recorded as a failed attempt, saying why
    assert [(row["outcome"], row["detail"].startswith("changed since")) for row in rows if row["action"] == "undo"] == [
        ("failed", True)
    ]


def test_undo_clicked_twice_restores_once_and_the_second_click_says_already_undone(tb: Bot, trust_db: str) -> None:
    card = tb.ask('rank "Spring leads" lead-15 25')
    tb.control.reset_stats()

    first = click(tb, card, ACTION_UNDO)
    second = click(tb, card, ACTION_UNDO)

    assert header(first) == "Undone: rank of lead-15 restored"
    assert re.fullmatch(r":information_source: Already undone \(by #\d+\); nothing more to do\.", notice(second))
    assert tb.control.count(UPDATE_ROUTE) == 1 and tb.lead("lead-15").rank == 15
    assert [row["action"] for row in records_of(trust_db, "lead-15")] == ["rank", "undo"]


def test_undo_double_click_while_the_restore_is_on_its_way_says_already_undone(tb: Bot, trust_db: str) -> None:
    card = tb.ask('rank "Spring leads" lead-16 26')
    # babelforce applies the restoring PUT at once but its answer takes 1 s: the double click's second half
    # arrives in between.
    tb.control.faults({"method": "PUT", "stall_s": 1.0, "times": 1})
    tb.control.reset_stats()

    first = tb.driver.click(card, ACTION_UNDO)
    wait_until(lambda: tb.lead("lead-16").rank == 16)  # babelforce has restored it; its answer is on its way
    second = click(tb, card, ACTION_UNDO)
    restored = tb.driver.replies(first, count=1)[0]

    assert header(restored) == "Undone: rank of lead-16 restored"
    assert tb.control.count(UPDATE_ROUTE) == 1 and tb.lead("lead-16").rank == 16
    assert "already" in texts(second).lower() and "undone" in texts(second).lower(), texts(second)


def test_an_undo_cannot_itself_be_undone(tb: Bot, trust_db: str) -> None:
    card = tb.ask('rank "Spring leads" lead-17 27')
    click(tb, card, ACTION_UNDO)
    _, undo = records_of(trust_db, "lead-17")
    tb.control.reset_stats()

    answer = click(tb, card, ACTION_UNDO, value=str(undo["id"]))  # a click carrying the undo's own record

    assert "An undo cannot itself be undone" in only_error(answer)
    assert writes(tb) == 0 and tb.lead("lead-17").rank == 17
    assert record(trust_db, undo["id"])["undone_by"] is None


def test_undo_by_a_non_writer_is_refused_recorded_as_denied_and_writes_nothing(gated: Bot, gated_db: str) -> None:
    card = gated.ask('rank "Spring leads" lead-13 23')
    change_id = change_id_of(card)
    gated.control.reset_stats()

    with acting_as(gated, READER):
        answer = click(gated, card, ACTION_UNDO)

    assert "Only leadbot writers can change leads" in only_error(answer)
    assert "LEADBOT_WRITERS" in only_error(answer)
    assert gated.control.stats()["total"] == 0
    assert gated.lead("lead-13").rank == 23
    assert record(gated_db, change_id)["undone_by"] is None
    denied = records(gated_db, "user_id = ? AND action = 'undo'", READER)
    assert [(r["outcome"], r["detail"], r["command"]) for r in denied] == [
        ("denied", "writer", f"undo of change {change_id}")
    ]


# ====================================================================== 3. the audit trail


def test_a_rank_is_recorded_with_who_when_where_what_the_caveat_and_the_request(tb: Bot, trust_db: str) -> None:
    lead_id = tb.lead("lead-18").id
    started = time.time()

    interaction = tb.command('rank "Spring leads" lead-18 28')
    card = tb.driver.replies(interaction, count=1)[0]

    row = record(trust_db, change_id_of(card))
    assert {name: row[name] for name in ("user_id", "team_id", "channel_id", "action", "command")} == {
        "user_id": SUPERVISOR,
        "team_id": TEAM,
        "channel_id": CHANNEL,
        "action": "rank",
        "command": '/lead rank "Spring leads" lead-18 28',
    }
    assert (row["list_id"], row["list_name"], row["lead_id"], row["lead_uid"]) == (
        DEMO_LIST_ID,
        "Spring leads",
        lead_id,
        "lead-18",
    )
    # what the change wrote, and the lead's id and uid to name it: nothing else of the lead
    assert row["before_json"] == {"id": lead_id, "uid": "lead-18", "rank": 18, "data": {}}
    assert row["after_json"] == {**row["before_json"], "rank": 28}
    assert "Takes effect at the next hopper refill" in row["caveat"]
    assert (row["outcome"], row["detail"], row["undo_of"], row["undone_by"]) == ("ok", None, None, None)
    assert row["request_id"] == f"command:{interaction.trigger_id}"
    at, finished = (datetime.fromisoformat(row[name]) for name in ("at", "finished_at"))
    assert started - 1 <= at.timestamp() <= finished.timestamp() <= time.time() + 1
    assert at.utcoffset() is not None and at.utcoffset().total_seconds() == 0  # UTC


def test_a_duplicate_uid_on_add_is_recorded_failed_with_the_sentence_and_changes_nothing(
    tb: Bot, trust_db: str
) -> None:
    leads = all_leads(tb)

    reply = tb.ask('add "Spring leads" lead-5 +4915199990005 7')

    message = only_error(reply)
    assert "uid 'lead-5' already exists in list Spring leads (rank 5)" in message
    assert all_leads(tb) == leads
    (row,) = [r for r in records_of(trust_db, "lead-5") if r["action"] == "add"]
    assert (row["outcome"], row["detail"]) == ("failed", message.removeprefix(":x: "))
    assert row["finished_at"] is not None and row["after_json"] is None


def test_a_503_beyond_the_retries_is_recorded_failed_with_the_sentence_and_changes_nothing(
    tb: Bot, trust_db: str
) -> None:
    before = snapshot(tb, "lead-19")
    tb.control.faults({"method": "PUT", "status": 503, "times": None})

    reply = tb.ask('rank "Spring leads" lead-19 29')

    message = only_error(reply).removeprefix(":x: ")
    assert tb.control.count(UPDATE_ROUTE) == 3  # the first attempt and two retries
    assert snapshot(tb, "lead-19") == before
    (row,) = records_of(trust_db, "lead-19")
    assert (row["outcome"], row["detail"], row["after_json"]) == ("failed", message, None)


def test_a_stalled_write_is_recorded_unknown_and_history_marks_it(sandbox: SandboxServer, audit_target: str) -> None:
    db = audit_target
    for bot in start_bot(sandbox, timeouts=Timeouts(deadline=1.0), audit_path=db):
        bot.ask('show "Spring leads" lead-14')  # directories cached: only the PUT meets the stall
        bot.control.faults({"method": "PUT", "stall_s": 30, "times": 1})

        with reads_fail_once_a_put_arrives(bot):  # so it cannot be settled by reading the lead back
            reply = bot.ask('rank "Spring leads" lead-14 24')

        message = only_error(reply).removeprefix(":x: ")
        assert "the change may or may not have been applied" in message
        (row,) = records_of(db, "lead-14")
        assert (row["outcome"], row["detail"]) == ("unknown", message)
        bot.control.clear_faults()
        assert "*outcome unknown* (babelforce did not answer in time" in history_text(bot, '"Spring leads"', "lead-14")


def test_a_stalled_write_settled_by_reading_the_lead_back_is_recorded_ok_with_undo(
    sandbox: SandboxServer, audit_target: str
) -> None:
    db = audit_target
    for bot in start_bot(sandbox, timeouts=Timeouts(deadline=1.0), audit_path=db):
        bot.ask('show "Spring leads" lead-14')
        bot.control.faults({"method": "PUT", "stall_s": 30, "times": 1})

        card = bot.ask('rank "Spring leads" lead-14 24')

        assert header(card) == "Rank of lead-14: 14 → 24"
        assert "babelforce's answer was lost on the way, so leadbot looked the lead up: the change was applied." in (
            texts(card)
        )
        (row,) = records_of(db, "lead-14")
        assert row["outcome"] == "ok"
        bot.control.clear_faults()
        click(bot, card, ACTION_UNDO)
        assert bot.lead("lead-14").rank == 14


def test_the_audit_trail_survives_a_restart_on_the_same_file(sandbox: SandboxServer, audit_target: str) -> None:
    db = audit_target
    first = start_bot(sandbox, audit_path=db)
    assert header(next(first).ask('rank "Spring leads" lead-21 26')) == "Rank of lead-21: 21 → 26"
    first.close()  # the bot stops; its file stays

    for restarted in start_bot(sandbox, audit_path=db):
        lines = history_text(restarted, '"Spring leads"', "lead-21")

        assert f"<@{SUPERVISOR}> · *changed* rank 21 → 26" in lines
        assert [row["outcome"] for row in records_of(db, "lead-21")] == ["ok"]


@contextmanager
def close_the_audit_file(bot: Bot, db: str) -> Iterator[None]:
    bot.leadbot.audit.close()
    yield


@contextmanager
def lock_the_audit_file(bot: Bot, db: str) -> Iterator[None]:
    """Another process holds the write lock for the whole command (SQLite: an exclusive transaction; PostgreSQL: an
    exclusive lock on the changes table)."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(db) as other:
            other.execute("LOCK TABLE changes IN EXCLUSIVE MODE")
            yield
            other.rollback()
        return
    import sqlite3

    with closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        yield
        other.execute("ROLLBACK")


@pytest.mark.parametrize(
    ("breaks", "reason"),
    [(close_the_audit_file, "it is closed"), (lock_the_audit_file, "database is locked")],
    ids=["closed", "locked by another process"],
)
def test_when_the_audit_trail_cannot_be_written_the_change_is_not_made_and_the_user_is_told(
    sandbox: SandboxServer,
    audit_target: str,
    monkeypatch: pytest.MonkeyPatch,
    breaks: Callable[[Bot, str], AbstractContextManager[None]],
    reason: str,
) -> None:
    monkeypatch.setattr(audit_module, "BUSY_TIMEOUT_S", 0.2)  # a lock is given up on after 0.2 s, not 5 s
    db = audit_target
    for bot in start_bot(sandbox, audit_path=db):
        bot.ask('show "Spring leads" lead-10')
        bot.control.reset_stats()
        with breaks(bot, db):
            interaction = bot.command('rank "Spring leads" lead-10 20')
            replies = responses_settle(bot, interaction.response_url, count=1)

        assert len(replies) == 1
        message = only_error(replies[0])
        assert NOT_RECORDED in message and NOT_MADE in message and reason in message
        assert writes(bot) == 0 and bot.lead("lead-10").rank == 10
        assert records_of(db, "lead-10") == []


def test_the_audit_channel_gets_one_line_per_change_naming_the_user_the_lead_and_the_change(
    channel_bot: Bot,
) -> None:
    bot = channel_bot
    posted = len(bot.stub.calls("chat.postMessage"))

    card = bot.ask('set "Spring leads" lead-10 rank=20 vip=yes')
    lines = audit_lines(bot, posted)

    assert [(call.ok, call.payload["channel"]) for call in lines] == [(True, AUDIT_CHANNEL)]
    text = lines[0].payload["text"]
    assert text == f"<@{SUPERVISOR}> set lead-10 in Spring leads: rank 10 → 20; +vip=yes"
    assert demo_number(10) not in text  # the number did not change, so it is not named

    click(bot, card, ACTION_UNDO)
    (undo_line,) = audit_lines(bot, posted, 2)[1:]
    assert undo_line.payload["text"] == f"<@{SUPERVISOR}> undo lead-10 in Spring leads: rank 20 → 10; −vip (was yes)"


def test_the_audit_channel_masks_phone_numbers_of_an_add(channel_bot: Bot) -> None:
    bot = channel_bot
    posted = len(bot.stub.calls("chat.postMessage"))

    bot.ask('add "Spring leads" masked-1 +4915199990777 3')

    (line,) = audit_lines(bot, posted)
    text = line.payload["text"]
    assert "4915199990777" not in text and "15199990777" not in text
    assert text.startswith(f"<@{SUPERVISOR}> add masked-1 in Spring leads: uid masked-1, number ") and "77" in text


@pytest.mark.parametrize("status", [500, 429])
def test_a_failing_audit_channel_loses_nothing_the_record_is_ok_and_the_user_gets_the_card(
    channel_bot: Bot, channel_db: str, status: int
) -> None:
    bot = channel_bot
    uid = f"lead-{status // 100 + 20}"  # lead-25, lead-24
    posted = len(bot.stub.calls("chat.postMessage"))
    bot.stub.fail("chat.postMessage", status=status)

    card = bot.ask(f'rank "Spring leads" {uid} 30')

    assert header(card) == f"Rank of {uid}: {status // 100 + 20} → 30"
    assert bot.lead(uid).rank == 30
    assert [call.status for call in audit_lines(bot, posted)] == [status]
    (row,) = records_of(channel_db, uid)
    assert (row["outcome"], row["id"]) == ("ok", change_id_of(card))


# ====================================================================== 4. one change per request


def test_a_slash_command_delivered_twice_by_slack_makes_one_change_and_one_record(tb: Bot, trust_db: str) -> None:
    body, trigger_id, response_url = slash_body(tb, 'rank "Spring leads" lead-22 30')

    first = deliver_slash(tb, body)
    retry = deliver_slash(tb, body, retry=1)  # Slack thought the first was lost: same body, same trigger

    assert first.status_code == retry.status_code == 200
    replies = responses_settle(tb, response_url, count=1)
    # A second reply, "No change", may come too: see test_a_slash_command_redelivered_after_it_was_done_does_not_...
    assert "Rank of lead-22: 22 → 30" in [header(r) for r in replies]
    assert tb.control.count(UPDATE_ROUTE) == 1 and tb.lead("lead-22").rank == 30
    assert [r["request_id"] for r in records_of(trust_db, "lead-22")] == [f"command:{trigger_id}"]


def test_a_slash_command_redelivered_after_it_was_done_does_not_replace_the_card(tb: Bot, trust_db: str) -> None:
    body, _, response_url = slash_body(tb, 'rank "Spring leads" lead-23 30')
    assert deliver_slash(tb, body).status_code == 200
    tb.stub.wait_responses(response_url, count=1)

    assert deliver_slash(tb, body, retry=1).status_code == 200

    replies = responses_settle(tb, response_url, count=1)
    assert tb.control.count(UPDATE_ROUTE) == 1
    assert [header(r) for r in replies] == ["Rank of lead-23: 23 → 30"]


def test_a_form_submitted_twice_adds_one_lead_and_one_record(tb: Bot, trust_db: str) -> None:
    interaction = tb.command("add")
    view = tb.driver.opened_view(interaction)
    answers = {BLOCK_LIST: DEMO_LIST_ID, BLOCK_UID: "form-twice", BLOCK_NUMBER: "+4915199990003", BLOCK_RANK: "3"}

    with ThreadPoolExecutor(2) as pool:
        submitted = list(pool.map(lambda _: tb.driver.submit(view, answers, interaction=interaction), range(2)))

    assert all(s.status == 200 and s.acked_in_time for s in submitted)
    tb.driver.replies(interaction, count=1)
    time.sleep(QUIET_S)
    assert sum(1 for lead in all_leads(tb) if lead.uid == "form-twice") == 1
    assert tb.control.count(ADD_ROUTE) == 1
    assert [(r["action"], r["request_id"]) for r in records_of(trust_db, "form-twice")] == [
        ("add", f"view:{view['id']}")
    ]


def test_an_add_retried_by_slack_while_babelforce_is_slow_makes_one_lead(tb: Bot, trust_db: str) -> None:
    tb.ask('show "Spring leads" lead-1')  # directories cached: the retry reaches the audit trail at once
    tb.control.faults({"method": "POST", "path": r"/leads$", "latency_ms": 700, "times": None})
    body, _, response_url = slash_body(tb, 'add "Spring leads" slow-add +4915199990004 2')

    first = deliver_slash(tb, body)
    time.sleep(0.2)  # the first delivery is waiting for babelforce
    retry = deliver_slash(tb, body, retry=1)

    assert first.status_code == retry.status_code == 200
    replies = responses_settle(tb, response_url, count=1)
    assert [header(r) for r in replies] == ["Lead slow-add added"]
    assert tb.control.count(ADD_ROUTE) == 1
    assert sum(1 for lead in all_leads(tb) if lead.uid == "slow-add") == 1
    assert len(records_of(trust_db, "slow-add")) == 1


# ====================================================================== 5. /lead history


def test_history_shows_who_when_what_and_how_it_ended_newest_first(tb: Bot) -> None:
    tb.ask('rank "Spring leads" lead-24 26')
    tb.ask('set "Spring leads" lead-24 city=null vip=yes')
    tb.control.faults({"method": "PUT", "status": 503, "times": 3})
    only_error(tb.ask('set "Spring leads" lead-24 note=x'))
    with acting_as(tb, "U0COLLEAGUE"):
        card = tb.ask('rank "Spring leads" lead-24 27')
        click(tb, card, ACTION_UNDO)
    tb.control.reset_stats()

    lines = history_text(tb, '"Spring leads"', "lead-24").splitlines()

    when = r"`#\d+` · <!date\^\d+\^\{date_short_pretty\} \{time\}\|\d{4}-\d\d-\d\d \d\d:\d\d UTC> · "
    expected = [
        rf"{when}<@U0COLLEAGUE> · \*undid a change:\* rank 27 → 26",
        rf"{when}<@U0COLLEAGUE> · \*changed\* rank 26 → 27 _\(undone\)_",
        rf"{when}<@{SUPERVISOR}> · \*tried to set:\* .+ — \*failed\*, nothing changed \(.*HTTP 503.*\)",
        rf"{when}<@{SUPERVISOR}> · \*changed\* −city \(was .+\); \+vip=yes",
        rf"{when}<@{SUPERVISOR}> · \*changed\* rank 24 → 26",
    ]
    assert len(lines) == len(expected), lines
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert writes(tb) == 0  # reading the history writes nothing


def test_history_of_a_lead_deleted_by_undo_is_found_by_its_uid(tb: Bot) -> None:
    card = tb.ask('add "Spring leads" gone-1 +4915199990006 1')
    click(tb, card, ACTION_UNDO)
    assert tb.lead("gone-1") is None

    lines = history_text(tb, '"Spring leads"', "gone-1").splitlines()

    assert len(lines) == 2
    assert "*deleted* the lead (undo of its add)" in lines[0] and "_(undone)_" not in lines[0]
    assert "*added* uid gone-1, number +4915199990006, rank 1 _(undone)_" in lines[1]


def test_history_of_a_lead_never_changed_says_none_recorded_and_writes_nothing(tb: Bot) -> None:
    reply = tb.ask('history "Spring leads" lead-3')

    assert header(reply) == "History of lead-3 in Spring leads"
    assert texts(reply).endswith("No changes through leadbot are recorded for this lead.")
    assert writes(tb) == 0


def test_history_is_open_to_readers_and_denied_outside_leadbot_readers(gated: Bot) -> None:
    gated.ask('rank "Spring leads" lead-14 24')

    with acting_as(gated, READER):
        allowed = gated.ask('history "Spring leads" lead-14')
    gated.control.reset_stats()
    with acting_as(gated, OUTSIDER):
        denied = gated.ask('history "Spring leads" lead-14')

    assert f"<@{SUPERVISOR}> · *changed* rank 14 → 24" in unescape(texts(allowed))
    message = only_error(denied)
    assert "Only leadbot readers can use leadbot" in message and "LEADBOT_READERS" in message
    assert gated.control.stats()["total"] == 0


# ====================================================================== 6. permissions


def test_a_writer_listed_by_user_id_may_write(gated: Bot, gated_db: str) -> None:
    lookups = len(gated.stub.calls("usergroups.users.list"))

    card = gated.ask('rank "Spring leads" lead-10 20')

    assert header(card) == "Rank of lead-10: 10 → 20"
    assert gated.lead("lead-10").rank == 20
    assert len(gated.stub.calls("usergroups.users.list")) == lookups  # listed directly: no lookup
    assert record(gated_db, change_id_of(card))["user_id"] == SUPERVISOR


def test_a_writer_through_a_user_group_may_write(gated: Bot, gated_db: str) -> None:
    with acting_as(gated, GROUPIE):
        card = gated.ask('rank "Spring leads" lead-11 21')

    assert header(card) == "Rank of lead-11: 11 → 21"
    assert gated.lead("lead-11").rank == 21
    assert any(call.payload.get("usergroup") == WRITER_GROUP for call in gated.stub.calls("usergroups.users.list"))
    assert record(gated_db, change_id_of(card))["user_id"] == GROUPIE


def test_a_non_writer_gets_one_sentence_naming_leadbot_writers_no_babelforce_request_and_a_denied_record(
    gated: Bot, gated_db: str
) -> None:
    with acting_as(gated, READER):
        interaction = gated.command('rank "Spring leads" lead-12 22')

    assert interaction.status == 200 and interaction.acked_in_time and interaction.json is not None
    message = only_error(interaction.json)
    assert message == (
        f":x: Only leadbot writers can change leads; ask whoever runs leadbot to add you (member id "
        f"{READER}) or one of your user groups to LEADBOT_WRITERS."
    )
    assert interaction.json["response_type"] == "ephemeral"
    time.sleep(QUIET_S)
    assert gated.stub.responses(interaction.response_url) == []  # that sentence is all
    assert gated.control.stats()["total"] == 0
    assert gated.lead("lead-12").rank == 12
    (row,) = records(gated_db, "user_id = ? AND command = ?", READER, '/lead rank "Spring leads" lead-12 22')
    assert (row["outcome"], row["detail"], row["action"], row["list_name"]) == (
        "denied",
        "writer",
        "rank",
        "Spring leads",
    )


def test_when_slack_cannot_list_user_groups_writes_are_denied_and_open_reads_still_work(
    sandbox: SandboxServer, audit_target: str
) -> None:
    db = audit_target
    for bot in start_bot(sandbox, policy=AccessPolicy(writers={WRITER_GROUP}), audit_path=db):
        bot.stub.set_usergroup(WRITER_GROUP, [GROUPIE])
        bot.stub.fail("usergroups.users.list", status=500, times=5)

        with acting_as(bot, GROUPIE):
            denied = bot.command('rank "Spring leads" lead-10 20')
            shown = bot.ask('show "Spring leads" lead-10')

        assert denied.json is not None
        assert "Slack could not confirm your user groups just now" in only_error(denied.json)
        assert bot.lead("lead-10").rank == 10
        assert writes(bot) == 0
        assert header(shown) == "Lead lead-10"
        assert [(r["outcome"], r["detail"]) for r in records(db)] == [("denied", "groups_unavailable")]


def test_a_channel_not_in_leadbot_channels_is_denied_naming_it(gated: Bot) -> None:
    with acting_as(gated, channel_id="C0ELSEWHERE"):
        interaction = gated.command('show "Spring leads" lead-10')

    assert interaction.json is not None
    message = only_error(interaction.json)
    assert "leadbot does not answer in this channel; use it in channel C0CAMPAIGN" in message
    assert "(id C0ELSEWHERE) to LEADBOT_CHANNELS" in message
    assert gated.control.stats()["total"] == 0


def test_another_workspace_is_denied(gated: Bot, gated_db: str) -> None:
    with acting_as(gated, team_id="T0OTHER"):
        interaction = gated.command('rank "Spring leads" lead-15 25')

    assert interaction.json is not None
    message = only_error(interaction.json)
    assert "leadbot does not serve this Slack workspace (id T0OTHER)" in message and "LEADBOT_TEAM_ID" in message
    assert gated.control.stats()["total"] == 0
    assert gated.lead("lead-15").rank == 15
    assert [r["detail"] for r in records(gated_db, "team_id = 'T0OTHER'")] == ["team"]


def test_bare_add_by_a_non_writer_does_not_open_the_form(gated: Bot) -> None:
    opened = len(gated.stub.calls("views.open"))

    with acting_as(gated, OUTSIDER):
        interaction = gated.command("add")

    assert interaction.json is not None
    assert "LEADBOT_WRITERS" in only_error(interaction.json)
    time.sleep(QUIET_S)
    assert len(gated.stub.calls("views.open")) == opened
    assert gated.control.stats()["total"] == 0


# ---------------------------------------------------------------------- after review: edges of history, apply, undo


def test_history_of_a_lead_babelforce_cannot_find_says_so_instead_of_no_changes(tb: Bot) -> None:
    reply = tb.ask('history "Spring leads" lead-999')

    assert only_error(reply) == ":x: No lead with uid, id or number 'lead-999' in list Spring leads."


def test_history_by_a_number_two_leads_share_names_them_instead_of_no_changes(tb: Bot) -> None:
    with tb.sandbox.state.lock:
        tb.sandbox.state.update_lead(DEMO_LIST_ID, tb.lead("lead-33").id, number=demo_number(34))
    tb.ask('rank "Spring leads" lead-999x 1')  # any miss: the lookup index is rebuilt with the shared number

    reply = tb.ask(f'history "Spring leads" {demo_number(34)}')

    message = only_error(reply)
    assert "2 leads in list Spring leads have number" in message and "lead-33" in message and "lead-34" in message


def test_history_of_a_lead_follows_its_id_not_a_uid_another_lead_had(tb: Bot) -> None:
    tb.ask('set "Spring leads" lead-2 uid=lead-2-old')  # lead-2's uid moves on...
    tb.ask('add "Spring leads" lead-2 +4915100000302 2')  # ...and a new lead takes it

    lines = history_text(tb, '"Spring leads"', "lead-2").splitlines()

    assert len(lines) == 1 and "*added* uid lead-2, number +4915100000302, rank 2" in lines[0]
    assert "lead-2-old" in history_text(tb, '"Spring leads"', "lead-2-old")


def test_history_says_when_older_changes_are_left_out(tb: Bot) -> None:
    for rank in range(101, 118):  # 17 changes; 15 are shown
        tb.ask(f'rank "Spring leads" lead-3 {rank}')

    reply = tb.ask('history "Spring leads" lead-3')

    lines = history_lines(reply)
    assert len(lines) == 15 and "rank 116 → 117" in lines[0]
    assert "15 shown; older ones are left out." in texts(reply)


def test_apply_anyway_after_the_lead_changed_asks_again_instead_of_overwriting(tb: Bot) -> None:
    question = tb.driver.replies(tb.command('set "Spring leads" lead-36 city=Bonn'), count=1)[0]
    assert is_question(question)
    with tb.sandbox.state.lock:  # a colleague changes the lead while the question is open
        tb.sandbox.state.update_lead(DEMO_LIST_ID, tb.lead("lead-36").id, data={"city": "Kiel"})
    tb.control.reset_stats()

    again = click(tb, question, ACTION_APPLY_ANYWAY)

    assert is_question(again)
    assert "The lead changed since you were asked." in texts(again)
    assert "data 'city' Kiel → Bonn" in texts(again)
    assert writes(tb) == 0 and tb.lead("lead-36").data["city"] == "Kiel"
    card = click(tb, again, ACTION_APPLY_ANYWAY)
    assert header(card) == "Lead lead-36 updated" and tb.lead("lead-36").data["city"] == "Bonn"


def test_an_undo_whose_outcome_was_unknown_can_be_tried_again(sandbox: SandboxServer, audit_target: str) -> None:
    db = audit_target
    for bot in start_bot(sandbox, timeouts=Timeouts(deadline=1.0), audit_path=db):
        card = bot.ask('rank "Spring leads" lead-27 37')
        bot.control.reset_stats()
        lost = {"method": "PUT", "reset": "after", "times": None}  # applied, but every answer is lost...
        bot.control.faults(lost)

        with reads_fail_once_a_put_arrives(bot, lost):  # ...and reading the lead back fails
            first = click(bot, card, ACTION_UNDO)

        assert "may or may not have been applied" in only_error(first)
        bot.control.clear_faults()
        with bot.sandbox.state.lock:  # say it had not been applied after all
            bot.sandbox.state.update_lead(DEMO_LIST_ID, bot.lead("lead-27").id, rank=37)
        second = click(bot, card, ACTION_UNDO)

        assert header(second) == "Undone: rank of lead-27 restored" and bot.lead("lead-27").rank == 27
        undos = [row for row in records_of(db, "lead-27") if row["action"] == "undo"]
        assert [row["outcome"] for row in undos] == ["unknown", "ok"]


def test_undo_on_a_lead_in_the_hopper_does_not_name_the_undone_values_as_still_dialled(tb: Bot) -> None:
    card = tb.apply(f'set "Spring leads" lead-38 number={demo_number(1038)} city=Bonn')  # in the hopper: asked

    undone = click(tb, card, ACTION_UNDO)

    assert header(undone) == "Undone: number and data 'city' of lead-38 restored"
    text = caveat(undone)
    assert "Already in the hopper" in text and "it is dialled with the values it was loaded with" in text
    assert demo_number(1038) not in text and "old number" not in text
    assert tb.lead("lead-38").number == demo_number(38)


def test_undo_puts_back_only_what_its_change_wrote_even_when_another_change_landed_meanwhile(tb: Bot) -> None:
    tb.control.faults({"method": "GET", "path": r"/hopper$", "latency_ms": 800, "times": 1})  # A reads slowly
    slow = tb.command('rank "Spring leads" lead-11 5')  # A: its plan read lead-11 before B's change
    time.sleep(0.2)
    tb.ask(f'set "Spring leads" lead-11 number={demo_number(1011)}')  # B: finishes while A is still reading
    card = tb.driver.replies(slow, count=1)[0]
    assert header(card) == "Rank of lead-11: 11 → 5"

    click(tb, card, ACTION_UNDO)

    lead = tb.lead("lead-11")
    assert (lead.rank, lead.number) == (11, demo_number(1011))  # A undone, B's number kept


def test_apply_anyway_asks_again_when_another_change_lands_while_it_waits_for_the_lead(tb: Bot) -> None:
    question = tb.driver.replies(tb.command('rank "Spring leads" lead-37 45'), count=1)[0]  # in the hopper: asks
    assert is_question(question)
    tb.control.faults({"method": "PUT", "latency_ms": 800, "times": 1})  # the colleague's write is slow
    colleague = tb.command('rank "Spring leads" lead-37 50')  # asks the colleague too...
    colleague_question = tb.driver.replies(colleague, count=1)[0]
    pending = tb.driver.click(colleague_question, ACTION_APPLY_ANYWAY)  # ...who applies: PUT under way, lock held
    time.sleep(0.2)

    again = click(tb, question, ACTION_APPLY_ANYWAY)  # waits for the lead, then sees rank 50, not 37

    assert tb.driver.replies(pending, count=1)[0] and tb.lead("lead-37").rank == 50
    assert is_question(again) and "The lead changed since you were asked." in texts(again)
    assert "from 50 to 45" in texts(again)
