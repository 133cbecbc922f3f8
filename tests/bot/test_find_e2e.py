"""`/lead find` end to end: the real Bolt app, the sandbox's demo seed (Spring leads 50, Renewals 10, Autumn 10; data
firstName and city cycle through fixed names), and the Slack stand-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.permissions import AccessPolicy
from commands.blocks import BLOCK_ERROR, BLOCK_LEAD_HEADER
from commands.find import ACTION_SHOW_MATCH, BLOCK_FIND_MORE, BLOCK_FIND_NOTES, BLOCK_FIND_VERDICT
from sandbox.seed import AUTUMN_LIST_ID, DEMO_CAMPAIGN_ID, RENEWALS_LIST_ID
from tests.support import Bot, block, final_answer, hopper_uids, shared_bot, texts, unescape

EXPORT_ROUTE = "GET /api/v2/outbound/lists/{id}/leads"
LEAD_ROUTE = "GET /api/v2/outbound/lists/{id}/leads/{leadId}"
HOPPER_ROUTE = "GET /api/v2/outbound/campaigns/{id}/hopper"


@pytest.fixture(scope="module")
def quiet_bot() -> Iterator[Bot]:
    """One bot for the tests that change nothing (every find is a read)."""
    yield from shared_bot()


def verdict(message: dict[str, Any]) -> str:
    return unescape(block(message, BLOCK_FIND_VERDICT)["text"]["text"]).strip("*")


def match_lines(message: dict[str, Any]) -> list[str]:
    return [
        unescape(b["text"]["text"]) for b in message["blocks"] if str(b.get("block_id", "")).startswith("find_match_")
    ]


def uids(message: dict[str, Any]) -> list[str]:
    return [re.search(r"`([^`]+)`", line).group(1) for line in match_lines(message)]  # type: ignore[union-attr]


def notes(message: dict[str, Any]) -> str:
    return unescape(texts({"blocks": [block(message, BLOCK_FIND_NOTES)]}))


def find(bot: Bot, text: str) -> dict[str, Any]:
    answer, _ = final_answer(bot, f"find {text}")
    return answer


def test_find_by_uid_gives_one_line_with_rank_status_and_hopper_position(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, "lead-43")
    assert verdict(answer) == "1 lead matches “lead-43”."
    (line,) = match_lines(answer)
    position = hopper_uids(quiet_bot, DEMO_CAMPAIGN_ID).index("lead-43") + 1
    assert line == f"*Spring leads* · `lead-43` · +4915100000043 · rank 43 · pending · hopper {position} of 20 · _uid_"


def test_find_by_number_in_another_spelling_matches_on_e164(quiet_bot: Bot) -> None:
    for spelling in ("0049 151 00000040", "4915100000040", "+49 (151) 000-000-40"):
        answer = find(quiet_bot, spelling)
        assert uids(answer) == ["lead-40"], spelling
        assert match_lines(answer)[0].endswith("_number_")


def test_find_by_a_data_value_is_case_insensitive_and_searches_every_list_dialled_ones_first(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, "HANNAH")
    assert verdict(answer) == "6 leads match “HANNAH”."
    assert uids(answer) == ["renewal-7", "lead-7", "lead-19", "lead-31", "lead-43", "autumn-7"]
    assert all(line.endswith("_data firstName_") for line in match_lines(answer))
    autumn = match_lines(answer)[-1]
    assert autumn.startswith("*Autumn leads*") and "list not dialled" in autumn


def test_a_substring_of_a_value_matches(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, "anna")  # Anna and Hannah
    assert "lead-12" in uids(answer) and "lead-7" in uids(answer)


def test_in_list_searches_that_list_only(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, 'hannah in "Autumn leads"')
    assert verdict(answer) == "1 lead matches “hannah” in list Autumn leads."
    assert uids(answer) == ["autumn-7"]
    answer = find(quiet_bot, "nobody-like-this in renewals")
    assert verdict(answer) == "No lead matches “nobody-like-this” in list Renewals."


def test_more_than_ten_matches_shows_ten_and_says_how_many_more(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, "hamburg")  # 7 in Spring, 2 in Autumn, 2 in Renewals
    assert verdict(answer) == "11 leads match “hamburg”."
    assert len(match_lines(answer)) == 10
    assert "… and 1 more." in unescape(texts({"blocks": [block(answer, BLOCK_FIND_MORE)]}))
    assert len(answer["blocks"]) <= 50


def test_no_match_says_how_many_lists_were_searched(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, "zebra")
    assert verdict(answer) == "No lead matches “zebra” in the 3 lists searched."
    assert "From the lists' exports" in notes(answer)


def test_one_export_per_list_never_a_get_per_lead_and_one_hopper_read_per_campaign(bot: Bot) -> None:
    bot.control.reset_stats()
    answer = find(bot, "hamburg")
    assert len(match_lines(answer)) == 10
    assert bot.control.count(EXPORT_ROUTE) == 3  # one export per list
    assert bot.control.count(LEAD_ROUTE) == 0  # no GET per lead
    assert bot.control.count(HOPPER_ROUTE) == 2  # Spring's and Renewals' campaigns, once each

    bot.control.reset_stats()
    again = find(bot, "berlin")
    assert match_lines(again)
    assert bot.control.count(EXPORT_ROUTE) == 0  # the exports are kept: warm
    assert bot.control.count(LEAD_ROUTE) == 0


def test_a_lookup_after_find_reuses_its_export(bot: Bot) -> None:
    find(bot, "hannah")
    bot.control.reset_stats()
    shown, _ = final_answer(bot, 'show "Spring leads" lead-19')
    assert "lead-19" in texts(shown)
    assert bot.control.count(EXPORT_ROUTE) == 0


def test_a_change_through_leadbot_shows_in_the_next_find_without_a_new_export(bot: Bot) -> None:
    find(bot, "lead-10")
    final_answer(bot, 'set "Spring leads" lead-10 rank=12 crm=CRM-77')
    bot.control.reset_stats()
    answer = find(bot, "crm-77")
    assert uids(answer) == ["lead-10"]
    assert "rank 12" in match_lines(answer)[0]
    assert bot.control.count(EXPORT_ROUTE) == 0


def test_find_max_lists_leaves_lists_out_and_says_so(bot_factory: Any) -> None:
    bot = bot_factory(find_max_lists=2)
    answer = find(bot, "hannah")
    assert verdict(answer) == "5 leads match “hannah”; 1 list was not searched."
    assert "autumn-7" not in uids(answer)
    assert "Only 2 of the account's 3 lists were searched (LEADBOT_FIND_MAX_LISTS)" in notes(answer)


def test_a_list_that_cannot_be_exported_is_named_and_the_others_are_searched(bot: Bot) -> None:
    bot.control.faults({"method": "GET", "path": f"/api/v2/outbound/lists/{AUTUMN_LIST_ID}/leads", "status": 500})
    answer = find(bot, "hannah")
    assert verdict(answer) == "5 leads match “hannah”; 1 list could not be searched."
    assert "*Autumn leads* could not be searched: its export failed (HTTP 500)" in notes(answer)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x", "at least 2 characters"),
        ("in Renewals", "find needs the text to search for before 'in <list>'"),
        ("hannah in", "find needs a list after 'in'"),
        ("crm=12345", "not key=value pairs"),
        ('"  "', "find needs the text to search for"),
    ],
)
def test_bad_input_is_one_sentence_and_reaches_no_babelforce_endpoint(quiet_bot: Bot, text: str, words: str) -> None:
    quiet_bot.control.reset_stats()
    answer = find(quiet_bot, text)
    message = unescape(block(answer, BLOCK_ERROR)["text"]["text"])
    assert words in message
    assert message.count(". ") == 0  # one sentence
    assert "/lead find <text> [in <list>]" in unescape(texts(answer))  # with the usage line
    assert quiet_bot.control.stats()["total"] == 0


def test_an_unknown_list_is_one_sentence(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, "hannah in Winter")
    assert "No list named 'Winter'" in unescape(block(answer, BLOCK_ERROR)["text"]["text"])


def test_show_button_answers_with_the_lead_card(quiet_bot: Bot) -> None:
    interaction = quiet_bot.command("find lead-43")
    answer = quiet_bot.driver.replies(interaction)[0]
    click = quiet_bot.driver.click(answer, ACTION_SHOW_MATCH)
    assert click.status == 200 and click.acked_in_time
    card = quiet_bot.driver.replies(click)[0]
    assert block(card, BLOCK_LEAD_HEADER)["text"]["text"] == "Lead lead-43"
    assert "position" in texts(card)
    assert not card.get("replace_original")  # the find reply stays, for the other matches


def test_a_show_button_with_a_forged_value_changes_nothing(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, "lead-43")
    quiet_bot.control.reset_stats()
    click = quiet_bot.driver.click(answer, ACTION_SHOW_MATCH, value="not-ours")
    reply = quiet_bot.driver.replies(click)[0]
    assert "carries no lead" in texts(reply)
    assert quiet_bot.control.stats()["total"] == 0


def test_find_is_a_read_readers_only(bot_factory: Any) -> None:
    bot = bot_factory(policy=AccessPolicy(readers=frozenset({"U0SOMEONEELSE"})))
    bot.control.reset_stats()
    answer = find(bot, "hannah")
    assert "LEADBOT_READERS" in texts(answer)
    assert bot.control.stats()["total"] == 0


def test_find_with_no_arguments_opens_a_form_that_searches(quiet_bot: Bot) -> None:
    interaction = quiet_bot.command("find")
    view = quiet_bot.driver.opened_view(interaction)
    assert view["callback_id"] == "lead_find_form"
    refused = quiet_bot.driver.submit(view, {"text": "h"})
    assert refused.json is not None and "at least 2 characters" in refused.json["errors"]["text"]
    submitted = quiet_bot.driver.submit(view, {"text": "hannah", "list": RENEWALS_LIST_ID})
    assert submitted.status == 200 and submitted.body == ""
    reply = quiet_bot.driver.replies(interaction)[0]
    assert uids(reply) == ["renewal-7"]


def test_help_names_find_with_its_example(quiet_bot: Bot) -> None:
    answer = find(quiet_bot, "help")
    assert '/lead find martin in "Spring leads"' in unescape(texts(answer))
