"""The forms end to end: `/lead <subcommand>` alone opens its modal at once (even with babelforce slow), the list
select is filled by the bot, field errors come back in place and change nothing, and a valid submission runs the
command and replies where the command was typed (or, when that response_url is used up, as an ephemeral message)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from commands.modals import ACTION_LIST, BLOCK_DATA, BLOCK_LEAD, BLOCK_LIST, BLOCK_NUMBER, BLOCK_RANK, BLOCK_UID
from sandbox.seed import AUTUMN_LIST_ID, DEMO_LIST_ID, RENEWALS_LIST_ID
from slackstub.server import RESPONSE_URL_USES
from tests.subcommands import CALLBACK_IDS
from tests.support import ADD_ROUTE, Bot, all_leads, caveat, header, shared_bot, snapshot, texts, writes

FORM_BLOCKS = {
    "add": [BLOCK_LIST, BLOCK_UID, BLOCK_NUMBER, BLOCK_RANK, BLOCK_DATA],
    "rank": [BLOCK_LIST, BLOCK_LEAD, BLOCK_RANK],
    "show": [BLOCK_LIST, BLOCK_LEAD],
    "set": [BLOCK_LIST, BLOCK_LEAD, BLOCK_UID, BLOCK_NUMBER, BLOCK_RANK, BLOCK_DATA],
}
TRIGGER_WINDOW_S = 3.0


def open_form(bot: Bot, subcommand: str) -> tuple[dict, object]:
    """Type `/lead <subcommand>`; return the view the bot opened and the command's interaction."""
    interaction = bot.command(subcommand)
    assert interaction.status == 200 and interaction.acked_in_time, interaction
    return bot.driver.opened_view(interaction), interaction


@pytest.fixture(scope="module")
def quiet_bot() -> Iterator[Bot]:
    """One bot for the tests that change nothing (opening forms, refused submissions); each checks that."""
    yield from shared_bot()


@pytest.mark.parametrize("subcommand", ["add", "rank", "show", "set"])
def test_bare_subcommand_opens_its_form_with_the_trigger_before_any_babelforce_call(
    quiet_bot: Bot, subcommand: str
) -> None:
    bot = quiet_bot
    bot.control.reset_stats()
    opened_before = len(bot.stub.calls("views.open"))

    interaction = bot.command(subcommand)

    assert interaction.status == 200 and interaction.acked_in_time
    assert interaction.body == ""  # a plain ack: the form is the answer
    view = bot.driver.opened_view(interaction)  # waits for the bot's views.open with this trigger
    calls = bot.stub.calls("views.open")[opened_before:]
    assert [(call.ok, call.payload["trigger_id"]) for call in calls] == [(True, interaction.trigger_id)]
    assert view["callback_id"] == CALLBACK_IDS[subcommand]
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == FORM_BLOCKS[subcommand]
    assert bot.control.stats()["total"] == 0


def test_form_opens_within_the_trigger_window_while_babelforce_takes_4_s(bot: Bot) -> None:
    bot.control.faults({"latency_ms": 4000, "times": None})

    started = time.monotonic()
    interaction = bot.command("add")

    assert interaction.status == 200 and interaction.elapsed < TRIGGER_WINDOW_S
    call = bot.stub.wait_for(lambda e: e.kind == "api" and e.name == "views.open", timeout=5)
    assert call.ok, call.response  # the stub refuses a trigger used after 3 s (expired_trigger_id)
    assert call.payload["trigger_id"] == interaction.trigger_id
    assert call.at - started < TRIGGER_WINDOW_S
    bot.control.clear_faults()


def test_list_select_options_come_from_the_bot_and_list_the_demo_lists(bot: Bot) -> None:
    view, _ = open_form(bot, "rank")

    options = bot.driver.suggest(view, ACTION_LIST)

    assert [(o["text"]["text"], o["value"]) for o in options] == [
        ("Autumn leads (10 leads)", AUTUMN_LIST_ID),
        ("Renewals (10 leads)", RENEWALS_LIST_ID),
        ("Spring leads (50 leads)", DEMO_LIST_ID),
    ]
    assert [o["value"] for o in bot.driver.suggest(view, ACTION_LIST, "SPR")] == [DEMO_LIST_ID]


FIELD_ERRORS = [
    # (id, subcommand, answers, block that must carry the error, words of the error)
    (
        "bad number",
        "add",
        {BLOCK_UID: "new-1", BLOCK_NUMBER: "12345", BLOCK_RANK: "5"},
        BLOCK_NUMBER,
        "number '12345'",
    ),
    ("rank out of range", "rank", {BLOCK_LEAD: "lead-10", BLOCK_RANK: "40000"}, BLOCK_RANK, "out of range"),
    (
        "empty uid",
        "add",
        {BLOCK_UID: "  ", BLOCK_NUMBER: "+4915199990001", BLOCK_RANK: "5"},
        BLOCK_UID,
        "uid must not be empty",
    ),
    (
        "duplicate uid",
        "add",
        {BLOCK_UID: "lead-5", BLOCK_NUMBER: "+4915199990001", BLOCK_RANK: "5"},
        BLOCK_UID,
        "uid 'lead-5' already exists in this list (rank 5)",
    ),
    ("unknown lead", "rank", {BLOCK_LEAD: "lead-999", BLOCK_RANK: "5"}, BLOCK_LEAD, "No lead with uid, id or number"),
]


@pytest.mark.parametrize(
    ("subcommand", "answers", "block_id", "words"),
    [case[1:] for case in FIELD_ERRORS],
    ids=[case[0] for case in FIELD_ERRORS],
)
def test_submission_with_a_field_error_answers_errors_in_place_and_changes_nothing(
    quiet_bot: Bot, subcommand: str, answers: dict[str, str], block_id: str, words: str
) -> None:
    bot = quiet_bot
    view, opened_by = open_form(bot, subcommand)
    before = all_leads(bot)
    bot.control.reset_stats()

    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, **answers})

    assert submitted.status == 200 and submitted.acked_in_time
    assert submitted.json is not None and submitted.json["response_action"] == "errors", submitted.body
    assert list(submitted.json["errors"]) == [block_id]
    assert words in submitted.json["errors"][block_id]
    assert writes(bot) == 0
    assert all_leads(bot) == before
    assert bot.stub.responses(opened_by.response_url) == []


def test_valid_add_submission_closes_the_form_adds_one_lead_and_replies_where_the_command_was_typed(bot: Bot) -> None:
    view, opened_by = open_form(bot, "add")
    count = len(all_leads(bot))
    bot.control.reset_stats()

    submitted = bot.driver.submit(
        view,
        {
            BLOCK_LIST: DEMO_LIST_ID,
            BLOCK_UID: "form-1",
            BLOCK_NUMBER: "4916098119998",
            BLOCK_RANK: "15",
            BLOCK_DATA: 'address=martin mendalde\n"new data"=new',
        },
    )

    assert submitted.status == 200 and submitted.acked_in_time
    assert submitted.body == ""  # empty ack: Slack closes the modal
    reply = bot.driver.replies(opened_by)[0]
    assert header(reply) == "Lead form-1 added"
    assert len(all_leads(bot)) == count + 1
    lead = bot.lead("form-1")
    assert (lead.number, lead.rank) == ("+4916098119998", 15)
    assert lead.data == {"address": "martin mendalde", "new data": "new"}
    assert bot.control.count(ADD_ROUTE) == 1


def test_valid_rank_submission_changes_the_rank_and_replies_with_the_caveat(bot: Bot) -> None:
    view, opened_by = open_form(bot, "rank")

    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-10", BLOCK_RANK: "100"})

    assert submitted.status == 200 and submitted.body == ""
    reply = bot.driver.replies(opened_by)[0]
    assert "Rank of lead-10: 10 → 100" in texts(reply)
    assert "first of the next batch, after the 20 leads" in caveat(reply)
    assert bot.lead("lead-10").rank == 100


def test_set_form_deletes_a_data_variable_with_null(bot: Bot) -> None:
    view, opened_by = open_form(bot, "set")
    before = snapshot(bot, "lead-12")

    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-12", BLOCK_DATA: "city=null"})

    assert submitted.body == ""
    assert "(deleted)" in texts(bot.driver.replies(opened_by)[0])
    assert bot.lead("lead-12").data == {k: v for k, v in before.data.items() if k != "city"}


def test_reply_falls_back_to_an_ephemeral_message_when_the_response_url_is_used_up(bot: Bot) -> None:
    view, opened_by = open_form(bot, "rank")
    assert opened_by.response_url
    for n in range(RESPONSE_URL_USES):
        assert httpx.post(opened_by.response_url, json={"text": f"filler {n}"}).status_code == 200
    assert httpx.post(opened_by.response_url, json={"text": "one too many"}).status_code == 404  # used up

    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-10", BLOCK_RANK: "100"})

    assert submitted.body == ""
    call = bot.stub.wait_for(lambda e: e.kind == "api" and e.name == "chat.postEphemeral", timeout=10)
    assert call.ok, call.response
    assert call.payload["channel"] == bot.driver.channel_id
    assert call.payload["user"] == bot.driver.user_id
    assert "first of the next batch" in caveat({"blocks": call.payload["blocks"]})
    assert bot.lead("lead-10").rank == 100
    rid = opened_by.response_url.rsplit("/", 1)[-1]
    refused = [e for e in bot.stub.events if e.kind == "response" and e.name == rid and e.status != 200]
    assert len(refused) == 2  # our extra post, then the bot's attempt before it fell back


def test_show_form_submission_replies_with_the_card(bot: Bot) -> None:
    view, opened_by = open_form(bot, "show")

    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "+4915100000040"})

    assert submitted.body == ""
    reply = bot.driver.replies(opened_by)[0]
    assert header(reply) == "Lead lead-40"
    assert "position 11 of 20" in caveat(reply)


def test_form_slack_refuses_to_open_is_reported_at_the_response_url(bot: Bot) -> None:
    bot.stub.fail("views.open", status=200, error="expired_trigger_id")

    interaction = bot.command("rank")

    assert interaction.status == 200 and interaction.acked_in_time
    reply = bot.driver.replies(interaction)[0]
    shown = texts(reply)
    assert "Slack did not open the form (expired_trigger_id)" in shown
    assert "/lead rank &lt;list&gt; &lt;lead&gt; &lt;rank|top&gt;" in shown


def test_submission_is_acked_in_time_when_the_pre_check_is_slow_and_the_command_still_runs(bot: Bot) -> None:
    view, opened_by = open_form(bot, "rank")
    lead_id = bot.lead("lead-10").id
    # The pre-check's lead lookup hangs for 4 s (once); Slack drops a submission not acked within 3 s.
    bot.control.faults({"method": "GET", "path": f"/leads/{lead_id}$", "latency_ms": 4000, "times": 1})

    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-10", BLOCK_RANK: "100"})

    assert submitted.status == 200 and submitted.elapsed < TRIGGER_WINDOW_S, submitted.elapsed
    assert submitted.body == ""
    reply = bot.driver.replies(opened_by)[0]
    assert "first of the next batch" in caveat(reply)
    assert bot.lead("lead-10").rank == 100
    assert bot.control.count("GET /api/v2/outbound/lists/{id}/leads/{leadId}") >= 2  # the slow one, then the real


def test_set_form_with_a_taken_uid_shows_it_next_to_the_uid_field(bot: Bot) -> None:
    view, opened_by = open_form(bot, "set")
    bot.control.reset_stats()

    submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-12", BLOCK_UID: "lead-14"})

    assert submitted.json is not None and submitted.json["response_action"] == "errors", submitted.body
    assert submitted.json["errors"] == {
        BLOCK_UID: "uid 'lead-14' already belongs to another lead in this list (rank 14); choose another uid."
    }
    assert writes(bot) == 0
    assert bot.lead("lead-12").uid == "lead-12"
    assert bot.stub.responses(opened_by.response_url) == []  # the form stays open; nothing is posted


def test_form_whose_pre_check_hits_a_babelforce_error_closes_and_the_command_reports(bot: Bot) -> None:
    """A failed look-up is not the user's field error: the form closes and the add itself runs (and works)."""
    view, opened_by = open_form(bot, "add")
    bot.control.faults({"method": "GET", "path": r"/lists/[0-9a-f]+/leads$", "status": 500, "times": 3})

    submitted = bot.driver.submit(
        view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_UID: "uuid_300", BLOCK_NUMBER: "+4916098119990", BLOCK_RANK: "5"}
    )

    assert submitted.status == 200 and submitted.body == "", submitted.body
    reply = bot.driver.replies(opened_by)[0]
    assert header(reply) == "Lead uuid_300 added"
    assert bot.lead("uuid_300") is not None


def test_list_options_answer_within_the_budget_when_babelforce_is_slow_and_fill_the_cache(bot: Bot) -> None:
    view, _ = open_form(bot, "rank")
    bot.control.faults({"method": "GET", "path": r"/outbound/lists$", "latency_ms": 2700, "times": 1})

    started = time.monotonic()
    first = bot.driver.suggest(view, ACTION_LIST, "")
    assert time.monotonic() - started < 2.6
    assert first == []  # nothing cached yet, and the one load is still on its way

    time.sleep(1.0)  # the shielded load finishes in the background
    bot.control.reset_stats()
    second = bot.driver.suggest(view, ACTION_LIST, "spring")
    assert [option["value"] for option in second] == [DEMO_LIST_ID]
    assert bot.control.stats()["total"] == 0  # served from the directory the first request filled
