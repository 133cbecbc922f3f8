"""First end-to-end checks: a signed /lead command through the real Bolt app to the sandbox and back."""

from __future__ import annotations

from tests.support import Bot, texts


def test_show_article_lead_40_reports_its_hopper_position(bot: Bot) -> None:
    reply = bot.ask('show "Spring leads" lead-40')
    assert "position 11 of 20" in texts(reply)


def test_rank_of_lead_10_to_100_is_first_of_next_batch(bot: Bot) -> None:
    reply = bot.ask('rank "Spring leads" lead-10 100')
    assert "first of the next batch" in texts(reply)
    assert bot.lead("lead-10").rank == 100
