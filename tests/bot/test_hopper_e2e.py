"""`/lead hopper` end to end against the sandbox: the demo campaign's hopper in dial order, the next batch by rank,
the Refresh button, what a warm read costs, and an UP list's next batch after a write (the lead keeps its place)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from commands.hopper import ACTION_HOPPER_REFRESH
from sandbox import SandboxServer
from sandbox.seed import DEMO_CAMPAIGN_ID, RENEWALS_LIST_ID
from tests.support import Bot, error_text, start_bot, texts


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


# ---------------------------------------------------------------- an UP list: a write leaves the lead where it was


@pytest.fixture
def short_hopper(sandbox_factory: Callable[..., SandboxServer]) -> Iterator[Bot]:
    """Hopper minimum 5: Renewals (list order UP, renewal-1 … renewal-10 loaded in that order) has renewal-10 …
    renewal-6 in its hopper; renewal-5 … renewal-1 wait, the last loaded first."""
    yield from start_bot(sandbox_factory(seed="demo", hopper_size=5))


def test_under_up_a_lead_ranked_before_the_standings_were_made_keeps_its_place_in_the_next_batch(
    short_hopper: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The standings are NOT made before the write (as for a list too big to make them before one): the rank's
    lookup exports the list, the write goes into that index as a new row, and /lead hopper makes the standings from
    it afterwards. The lead must stay where it was loaded, not come first as the newest row would put it."""
    bot = short_hopper
    monkeypatch.setattr("bot.service.QUEUE_BUILD_MAX_LEADS", 0)
    bot.apply("rank Renewals renewal-3 900")  # rank does not order an UP list (asks first)
    assert bot.lead("renewal-3", RENEWALS_LIST_ID).rank == 900
    following = section(bot.ask("hopper Renewals"), "hopper_next_1").splitlines()
    assert following[0].startswith("*Next batch* (about 5 dialable leads waiting, last loaded first")
    assert [line.split(" · ")[0] for line in following[1:]] == [
        "`1` renewal-5",
        "`2` renewal-4",
        "`3` renewal-3",
        "`4` renewal-2",
        "`5` renewal-1",
    ]
    assert "`3` renewal-3 · rank 900 · pending" in following  # its new rank, in its old place
    export_route = "GET /api/v2/outbound/lists/{id}/leads"
    assert bot.control.count(export_route) == 1  # the same export served the rank's lookup and the hopper
