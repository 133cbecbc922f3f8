"""`/lead hopper` end to end against the sandbox: the demo campaign's hopper in dial order, the next batch by rank,
the Refresh button, and what a warm read costs."""

from __future__ import annotations

from commands.hopper import ACTION_HOPPER_REFRESH
from sandbox.seed import DEMO_CAMPAIGN_ID
from tests.support import Bot, error_text, texts


def section(message: dict, block_id: str) -> str:
    return next(block["text"]["text"] for block in message["blocks"] if block.get("block_id") == block_id)


def test_the_hopper_in_dial_order_and_the_next_batch_by_rank(bot: Bot) -> None:
    reply = bot.ask('hopper "Spring outreach"')
    assert section(reply, "hopper_verdict") == "*Spring outreach: 20 loaded, dialling by highest rank first*"
    assert "list order UP RANK (highest rank first)" in section(reply, "hopper_order")
    lines = section(reply, "hopper_lines_1").splitlines()
    assert lines[1:] == [f"`{i}` lead-{51 - i} · rank {51 - i} · pending" for i in range(1, 21)]
    following = section(reply, "hopper_next_1").splitlines()
    assert following[0].startswith("*Next batch* (about 30 dialable leads waiting, highest rank first)")
    assert following[1:4] == [
        "`1` lead-30 · rank 30 · pending",
        "`2` lead-29 · rank 29 · pending",
        "`3` lead-28 · rank 28 · pending",
    ]
    assert following[-1] == "… and 10 more"


def test_a_list_names_its_campaign_and_a_warm_read_costs_at_most_four_requests(bot: Bot) -> None:
    bot.ask('hopper "Spring leads"')
    bot.control.reset_stats()
    reply = bot.ask("hopper spring leads")
    assert section(reply, "hopper_verdict").startswith("*Spring outreach: 20 loaded")
    assert bot.control.stats()["total"] <= 4


def test_refresh_answers_again_in_place(bot: Bot) -> None:
    reply = bot.ask('hopper "Spring outreach"')
    bot.control.dial(DEMO_CAMPAIGN_ID, 5)
    click = bot.driver.click(reply, ACTION_HOPPER_REFRESH)
    (again,) = bot.driver.replies(click, count=1, timeout=15)
    assert again.get("replace_original") is True
    assert "Spring outreach:" in section(again, "hopper_verdict")
    assert "`1` lead-45" in section(again, "hopper_lines_1") or "lead-50" not in section(again, "hopper_lines_1")


def test_an_unknown_name_is_one_sentence_and_renewals_is_up(bot: Bot) -> None:
    reply = bot.ask("hopper nowhere at all")
    assert "nowhere at all" in error_text(reply)
    renewals = bot.ask("hopper Renewals")
    assert "last loaded first, by the export's row order" in texts(renewals)
