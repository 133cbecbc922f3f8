"""`/lead add|rank|show|set|help` end to end: each way of naming a list and a lead, data edits, the article's add,
the sentences for lookups that fail, every validation error (answered in the ack, with no babelforce call), writes
switched off, babelforce failing or slow, and the default region."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.seed import DEMO_LIST_ID
from tests.subcommands import ALL_USAGE, EXAMPLES, USAGE
from tests.support import (
    ADD,
    ADD_ROUTE,
    UPDATE_ROUTE,
    VALIDATION_ERRORS,
    Bot,
    all_leads,
    caveat,
    error_text,
    header,
    is_progress,
    shared_bot,
    snapshot,
    texts,
    unescape,
    usage_text,
    writes,
)

LEAD_ROUTE = "GET /api/v2/outbound/lists/{id}/leads/{leadId}"
TOKEN_ROUTE = "POST /oauth/token"


def id_spellings(lead_id: str) -> dict[str, str]:
    """A 32-hex id in every spelling users may paste: compact or dashed, lower or upper case."""
    dashed = str(uuid.UUID(lead_id))
    return {"hex": lead_id, "HEX": lead_id.upper(), "dashed": dashed, "DASHED": dashed.upper()}


def assert_one_sentence(message: dict[str, Any]) -> str:
    """The reply is a single error sentence: one error section, no lead card, no traceback text."""
    blocks = message.get("blocks", [])
    assert [b.get("block_id") for b in blocks] == ["error"], blocks
    text = error_text(message)
    for leak in ("Traceback", "Error(", 'File "', "Exception"):
        assert leak not in texts(message) and leak not in message.get("text", ""), text
    assert len(re.findall(r"[.!?](?:\s|$)", text)) == 1, f"not one sentence: {text!r}"
    return text


# ---------------------------------------------------------------------- lead and list forms


def test_show_finds_a_lead_by_uid_by_every_id_spelling_and_by_number(bot: Bot) -> None:
    lead = bot.lead("lead-40")
    references = {"uid": "lead-40", **id_spellings(lead.id), "e164": "+4915100000040", "digits": "4915100000040"}

    for form, reference in references.items():
        reply = bot.ask(f'show "Spring leads" {reference}')
        assert header(reply) == "Lead lead-40", form
        assert f"lead id `{lead.id}`" in texts(reply), form
        assert "position 11 of 20" in caveat(reply), form


def test_rank_finds_a_lead_by_uid_and_by_every_id_spelling(bot: Bot) -> None:
    lead_id = bot.lead("lead-12").id
    references = {"uid": "lead-12", **id_spellings(lead_id)}

    previous = 12
    for rank, (form, reference) in enumerate(references.items(), start=101):
        reply = bot.ask(f'rank "Spring leads" {reference} {rank}')
        assert header(reply) == f"Rank of lead-12: {previous} → {rank}", form
        assert bot.lead("lead-12").rank == rank, form
        previous = rank
    assert bot.lead("lead-12").id == lead_id


def test_set_finds_a_lead_by_uid_and_by_every_id_spelling(bot: Bot) -> None:
    lead_id = bot.lead("lead-12").id
    references = {"uid": "lead-12", **id_spellings(lead_id)}

    for form, reference in references.items():
        reply = bot.ask(f'set "Spring leads" {reference} note={form}')
        assert header(reply) == "Lead lead-12 updated", form
        assert bot.lead("lead-12").data["note"] == form, form


def test_list_is_found_by_name_in_any_case_and_by_id_in_every_spelling(bot: Bot) -> None:
    references = {"lower": '"spring leads"', "mixed": '"sPrInG LEADS"', **id_spellings(DEMO_LIST_ID)}

    for form, reference in references.items():
        reply = bot.ask(f"show {reference} lead-40")
        assert header(reply) == "Lead lead-40", form
        assert "List *Spring leads*" in texts(reply), form


# ---------------------------------------------------------------------- set: data and fields


def test_set_key_null_deletes_that_data_variable_and_keeps_the_others(bot: Bot) -> None:
    before = snapshot(bot, "lead-12")
    assert "city" in before.data and "firstName" in before.data

    reply = bot.ask('set "Spring leads" lead-12 city=null')

    after = bot.lead("lead-12")
    assert after.data == {key: value for key, value in before.data.items() if key != "city"}
    assert (after.uid, after.number, after.rank) == (before.uid, before.number, before.rank)
    assert f"~city: {before.data['city']}~ (deleted)" in texts(reply)


def test_set_the_articles_update_adds_changes_and_deletes_in_one_put(bot: Bot) -> None:
    with bot.sandbox.state.lock:
        bot.lead("lead-12").data["old data"] = "stale"
    before = snapshot(bot, "lead-12")
    bot.control.reset_stats()

    bot.ask(EXAMPLES["set"].removeprefix("/lead "))

    after = bot.lead("lead-12")
    expected = {key: value for key, value in before.data.items() if key != "old data"}
    assert after.data == {**expected, "new data": "new"}
    assert after.rank == 200
    assert bot.control.count(UPDATE_ROUTE) == 1


def test_set_changes_uid_number_and_rank_together(bot: Bot) -> None:
    before = snapshot(bot, "lead-12")

    reply = bot.ask('set "Spring leads" lead-12 uid=lead-12b number=+4915199990012 rank=300')

    assert bot.lead("lead-12") is None
    after = bot.lead("lead-12b")
    assert (after.id, after.number, after.rank, after.data) == (before.id, "+4915199990012", 300, before.data)
    shown = texts(reply)
    assert "lead-12 → *lead-12b*" in shown
    assert "+4915100000012 → *+4915199990012*" in shown
    assert "12 → *300*" in shown


def test_set_a_national_number_with_spaces_in_quotes_under_a_default_region(bot_factory: Callable[..., Bot]) -> None:
    bot = bot_factory(default_region="DE")

    reply = bot.ask('set "Spring leads" lead-12 number="0151 9999 0013"')

    assert "+4915100000012 → *+4915199990013*" in texts(reply)
    assert bot.lead("lead-12").number == "+4915199990013"


# ---------------------------------------------------------------------- add


def test_add_the_articles_example_creates_exactly_one_lead(bot: Bot) -> None:
    count = len(all_leads(bot))
    bot.control.reset_stats()

    reply = bot.ask(EXAMPLES["add"].removeprefix("/lead "))

    assert header(reply) == "Lead uuid_100 added"
    leads = all_leads(bot)
    assert len(leads) == count + 1
    created = [lead for lead in leads if lead.uid == "uuid_100"]
    assert len(created) == 1
    lead = created[0]
    assert (lead.number, lead.rank) == ("+4916098119998", 500)
    assert lead.data == {"address": "martin mendalde", "new data": "new"}
    assert bot.control.count(ADD_ROUTE) == 1


def test_add_a_duplicate_uid_names_the_holder_and_adds_nothing(bot: Bot) -> None:
    count = len(all_leads(bot))

    reply = bot.ask('add "Spring leads" lead-5 +4915199990005 7')

    assert_one_sentence(reply)
    assert "uid 'lead-5' already exists in list Spring leads (rank 5) — use /lead rank or /lead set" in error_text(
        reply
    )
    assert len(all_leads(bot)) == count
    assert bot.lead("lead-5").number == "+4915100000005"


def test_add_a_national_number_in_quotes_with_default_region_de(bot_factory: Callable[..., Bot]) -> None:
    bot = bot_factory(default_region="DE")

    reply = bot.ask('add "Spring leads" new-77 "0151 00000077" 5')

    assert header(reply) == "Lead new-77 added"
    assert bot.lead("new-77").number == "+4915100000077"


def test_add_a_national_number_without_default_region_is_refused(bot: Bot) -> None:
    bot.control.reset_stats()

    interaction = bot.command('add "Spring leads" new-77 "0151 00000077" 5')

    assert interaction.json is not None and not is_progress(interaction.json)
    assert "LEADBOT_DEFAULT_REGION" in error_text(interaction.json)
    assert bot.control.stats()["total"] == 0
    assert bot.lead("new-77") is None


# ---------------------------------------------------------------------- lookups that fail


def test_unknown_lead_is_one_sentence(bot: Bot) -> None:
    reply = bot.ask('rank "Spring leads" lead-999 5')

    assert assert_one_sentence(reply) == ":x: No lead with uid, id or number 'lead-999' in list Spring leads."


def test_unknown_list_is_one_sentence_naming_the_lists(bot: Bot) -> None:
    reply = bot.ask('show "Winter leads" lead-40')

    assert (
        assert_one_sentence(reply)
        == ":x: No list named 'Winter leads'; the lists are: Autumn leads, Renewals, Spring leads."
    )


def test_a_number_two_leads_share_asks_for_the_uid_or_id(bot: Bot) -> None:
    bot.sandbox.state.add_lead(DEMO_LIST_ID, "twin-40", "+4915100000040", 1)

    reply = bot.ask('show "Spring leads" +4915100000040')

    text = assert_one_sentence(reply)
    assert "2 leads in list Spring leads have number '+4915100000040'" in text
    assert "use the uid or the lead id" in text


def test_rank_unchanged_says_nothing_to_change_and_sends_no_put(bot: Bot) -> None:
    before = snapshot(bot, "lead-10")
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-10 10')

    assert header(reply) == "No change: lead-10 already has rank 10"
    assert bot.control.count(UPDATE_ROUTE) == 0
    assert bot.control.stats()["total"] > 0  # it did look the lead up: the counter works
    assert snapshot(bot, "lead-10") == before


# ---------------------------------------------------------------------- help


@pytest.mark.parametrize("text", ["help", "", "  "])
def test_help_and_bare_lead_answer_usage_with_one_example_per_command(quiet_bot: Bot, text: str) -> None:
    bot = quiet_bot
    bot.control.reset_stats()

    interaction = bot.command(text)

    assert interaction.acked_in_time
    message = interaction.json
    assert message is not None and message["response_type"] == "ephemeral"
    shown = texts(message)
    for name in ("add", "rank", "show", "find", "set", "history", "remove", "undo", "campaign", "hopper", "why"):
        usage = USAGE[name].replace("<", "&lt;").replace(">", "&gt;")
        assert usage in shown, name
        assert shown.count(f"Example: `{EXAMPLES[name]}`") == 1, name
    assert shown.count("Example:") == len(EXAMPLES)  # one per registered subcommand
    assert bot.control.stats()["total"] == 0
    assert bot.stub.responses(interaction.response_url or "") == []


# ---------------------------------------------------------------------- validation errors
# (the cases: VALIDATION_ERRORS in tests/support.py)


@pytest.fixture(scope="module")
def quiet_bot() -> Iterator[Bot]:
    """One bot for help and the validation errors: none of them may change anything, and each checks that."""
    yield from shared_bot()


@pytest.mark.parametrize(
    ("text", "names_field", "subcommand", "watched"),
    [case[1:] for case in VALIDATION_ERRORS],
    ids=[case[0] for case in VALIDATION_ERRORS],
)
def test_validation_error_is_the_ack_names_the_field_shows_usage_and_calls_nothing(
    quiet_bot: Bot, text: str, names_field: str, subcommand: str | None, watched: str | None
) -> None:
    bot = quiet_bot
    before = snapshot(bot, watched) if watched else None
    count = len(all_leads(bot))
    bot.control.reset_stats()

    interaction = bot.command(text)

    assert interaction.status == 200 and interaction.acked_in_time
    message = interaction.json
    assert message is not None and not is_progress(message), interaction.body
    assert names_field in unescape(error_text(message))
    usage = USAGE[subcommand] if subcommand else ALL_USAGE
    assert unescape(usage_text(message)) == "Usage: " + "\n".join(f"`{line}`" for line in usage.splitlines())
    assert bot.control.stats()["total"] == 0
    assert len(all_leads(bot)) == count
    if watched:
        assert snapshot(bot, watched) == before
    # A command that does reach babelforce and back: by then a stray reply to the bad one would have arrived.
    assert "Lead lead-40" in texts(bot.ask('show "Spring leads" lead-40'))
    assert bot.stub.responses(interaction.response_url or "") == []


# ---------------------------------------------------------------------- writes switched off


def test_writes_refused_without_allow_writes_name_the_setting_and_call_nothing(
    bot_factory: Callable[..., Bot],
) -> None:
    bot = bot_factory(allow_writes=False)
    before = all_leads(bot)
    bot.control.reset_stats()

    for text in ('rank "Spring leads" lead-10 100', 'set "Spring leads" lead-10 city=Kiel', f"{ADD} 5", "add"):
        interaction = bot.command(text)
        assert interaction.json is not None and not is_progress(interaction.json), text
        assert "LEADBOT_WRITERS" in error_text(interaction.json), text

    assert bot.control.stats()["total"] == 0
    assert all_leads(bot) == before
    assert bot.stub.calls("views.open") == []
    assert "position 11 of 20" in caveat(bot.ask('show "Spring leads" lead-40'))


# ---------------------------------------------------------------------- babelforce failing or slow


def test_persistent_503_on_the_lead_is_one_sentence_and_the_bot_recovers(bot: Bot) -> None:
    bot.control.faults({"method": "GET", "path": r"/leads/[^/]+$", "status": 503, "times": None})
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-10 100')

    assert "HTTP 503" in assert_one_sentence(reply)
    assert bot.control.count(LEAD_ROUTE) >= 1  # the fault was hit
    assert bot.control.count(UPDATE_ROUTE) == 0
    assert bot.lead("lead-10").rank == 10

    bot.control.clear_faults()
    reply = bot.ask('rank "Spring leads" lead-10 100')
    assert "first of the next batch" in caveat(reply)
    assert bot.lead("lead-10").rank == 100


def test_persistent_500_on_the_update_is_one_sentence_and_changes_nothing(bot: Bot) -> None:
    bot.control.faults({"method": "PUT", "status": 500, "times": None})

    reply = bot.ask('rank "Spring leads" lead-10 100')

    assert "HTTP 500" in assert_one_sentence(reply)
    assert bot.lead("lead-10").rank == 10
    bot.control.clear_faults()
    assert "Lead lead-40" in texts(bot.ask('show "Spring leads" lead-40'))


def test_token_refused_forever_is_the_credentials_sentence(bot: Bot) -> None:
    bot.control.faults({"path": "^/oauth/token$", "status": 401, "times": None})
    bot.control.reset_stats()

    reply = bot.ask('rank "Spring leads" lead-10 100')

    text = assert_one_sentence(reply)
    assert "refused leadbot's credentials" in text
    assert "BABELFORCE_" in text
    assert bot.control.count(TOKEN_ROUTE) >= 1
    assert writes(bot) == 0
    bot.control.clear_faults()
    assert "first of the next batch" in caveat(bot.ask('rank "Spring leads" lead-10 100'))


def test_slow_babelforce_ack_in_time_with_progress_then_the_reply(bot: Bot) -> None:
    bot.ask('show "Spring leads" lead-40')  # warm: token, directory and lookup index cached, as in a live bot
    bot.control.faults({"latency_ms": 4000, "times": None})

    started = time.monotonic()
    interaction = bot.command('show "Spring leads" lead-40')

    assert interaction.status == 200 and interaction.elapsed < 3.0, interaction.elapsed
    assert interaction.json is not None and is_progress(interaction.json)
    assert texts(interaction.json) == "Received: show lead-40 in Spring leads"
    reply = bot.driver.replies(interaction, timeout=20)[0]
    assert "position 11 of 20" in caveat(reply)
    rid = (interaction.response_url or "").rsplit("/", 1)[-1]
    (event,) = [e for e in bot.stub.events if e.kind == "response" and e.name == rid and e.status == 200]
    assert event.at - started >= 4.0  # the reply really waited for the slowed sandbox
    bot.control.clear_faults()


def test_add_whose_answer_is_lost_creates_exactly_one_lead_and_says_so(bot: Bot) -> None:
    count = len(all_leads(bot))
    # babelforce creates the lead, then the connection drops before its answer arrives.
    bot.control.faults({"method": "POST", "path": r"/leads$", "reset": "after", "times": 1})
    bot.control.reset_stats()

    reply = bot.ask('add "Spring leads" lost-1 +4915199990111 5')

    assert header(reply) == "Lead lost-1 added"
    assert "answer was lost on the way" in caveat(reply)
    assert len(all_leads(bot)) == count + 1
    assert bot.lead("lost-1").number == "+4915199990111"
    assert bot.control.count(ADD_ROUTE) == 1  # looked it up instead of posting again


def test_text_escaped_the_way_slack_sends_it_is_stored_as_typed(bot: Bot) -> None:
    """Slack sends `&`, `<` and `>` in a command's text as `&amp;`, `&lt;` and `&gt;` (the driver does not)."""
    reply = bot.ask('set "Spring leads" lead-13 nickname="&lt;Ben &amp; Co&gt;"')

    assert bot.lead("lead-13").data["nickname"] == "<Ben & Co>"
    assert "nickname: *&lt;Ben &amp; Co&gt;* (added)" in texts(reply)


# ---------------------------------------------------------------------- verdict first


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('rank "Spring leads" lead-10 100', "*Applied: heads the next batch, not the current one*"),
        ('set "Spring leads" lead-11 city=Bilbao', "*Applied: dialled with the new values from the next refill*"),
        ('add "Spring leads" verdict-1 +4915199990777 5', "*Added: loaded at a later refill*"),
        ('show "Spring leads" lead-40', "*In the hopper (11 of 20): dialled in this batch*"),
        ('rank "Spring leads" lead-12 12', "*No change: nothing was written*"),
    ],
)
def test_every_lead_reply_opens_with_its_verdict(bot: Bot, text: str, verdict: str) -> None:
    reply = bot.ask(text)
    first = reply["blocks"][0]
    assert (first["block_id"], first["text"]["text"]) == ("verdict", verdict)
    assert reply["text"].startswith(verdict.strip("*"))
