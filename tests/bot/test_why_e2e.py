"""`/lead why` end to end against the sandbox: a lead in the hopper, a waiting one, an undialled list, a final
status, and what a warm diagnosis costs."""

from __future__ import annotations

from sandbox.seed import DEMO_CAMPAIGN_ID
from tests.support import Bot


def section(message: dict, block_id: str) -> str:
    return next(block["text"]["text"] for block in message["blocks"] if block.get("block_id") == block_id)


def test_a_lead_in_the_hopper(bot: Bot) -> None:
    reply = bot.ask('why "Spring leads" lead-40')
    chain = section(reply, "why_chain").splitlines()
    assert all(line.startswith(":white_check_mark:") for line in chain)
    assert chain[-1] == ":white_check_mark: In the hopper, position 11 of 20."
    assert section(reply, "why_verdict").startswith("*lead-40 is loaded")


def test_a_waiting_lead_and_the_rank_that_would_head_the_next_batch(bot: Bot) -> None:
    reply = bot.ask('why "Spring leads" lead-10')
    last = section(reply, "why_chain").splitlines()[-1]
    assert "rank 31 would head the next batch" in last
    assert "about 40 leads ahead of it" in last
    answer = reply["blocks"][-1]["elements"][0]["text"]
    assert answer == "*Answer:* lead-10 is waiting to be loaded: about 40 leads ahead of it."


def test_a_lead_on_a_list_no_active_campaign_dials(bot: Bot) -> None:
    bot.control.api("PUT", f"/api/v2/outbound/campaigns/{DEMO_CAMPAIGN_ID}", json={"active": False})
    reply = bot.ask('why "Spring leads" lead-10')
    assert ":x: *Spring outreach* is not active." in section(reply, "why_chain")
    assert section(reply, "why_verdict") == "*lead-10 is not dialled because campaign Spring outreach is not active*"


def test_a_final_status(bot: Bot) -> None:
    with bot.sandbox.state.lock:
        bot.lead("lead-20").status = "do_not_call"
    bot.control.reset_stats()
    reply = bot.ask('why "Spring leads" lead-20')
    assert ":x: Status *do_not_call* is final: it is never dialled again." in section(reply, "why_chain")
    assert section(reply, "why_verdict") == "*lead-20 has the final status do_not_call*"


def test_a_warm_diagnosis_costs_at_most_four_requests(bot: Bot) -> None:
    bot.ask('why "Spring leads" lead-10')
    bot.control.reset_stats()
    bot.ask('why "Spring leads" lead-12')
    assert bot.control.stats()["total"] <= 4


def test_show_tells_the_queue_position(bot: Bot) -> None:
    reply = bot.ask('show "Spring leads" lead-10')
    assert section_context(reply, "lead_queue") == (
        "Queue: waiting: about 40 leads ahead of it (20 in the hopper, 20 waiting with higher rank)."
    )
    reply = bot.ask('show "Spring leads" lead-40')
    assert section_context(reply, "lead_queue") == "Queue: in the hopper, position 11 of 20."


def section_context(message: dict, block_id: str) -> str:
    return next(b["elements"][0]["text"] for b in message["blocks"] if b.get("block_id") == block_id)
