"""Small helpers shared by the end-to-end test files (not fixtures: those live in conftest.py)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from commands.blocks import BLOCK_CAVEAT, BLOCK_ERROR, BLOCK_HISTORY, BLOCK_LEAD_HEADER, BLOCK_USAGE
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from tests.bot.conftest import Bot, block, is_progress, start_bot, texts

#: Routes that change leads in the sandbox (keys of SandboxControl.stats()["byRoute"]).
ADD_ROUTE = "POST /api/v2/outbound/lists/{id}/leads"
UPDATE_ROUTE = "PUT /api/v2/outbound/lists/{id}/leads/{leadId}"
DELETE_ROUTE = "DELETE /api/v2/outbound/lists/{id}/leads/{leadId}"
WRITE_ROUTES = (ADD_ROUTE, UPDATE_ROUTE, DELETE_ROUTE)


def caveat(message: dict[str, Any]) -> str:
    """The text of the lead card's caveat block."""
    return texts({"blocks": [block(message, BLOCK_CAVEAT)]})


def header(message: dict[str, Any]) -> str:
    return block(message, BLOCK_LEAD_HEADER)["text"]["text"]


def error_text(message: dict[str, Any]) -> str:
    return block(message, BLOCK_ERROR)["text"]["text"]


def usage_text(message: dict[str, Any]) -> str:
    return texts({"blocks": [block(message, BLOCK_USAGE)]})


def history_lines(message: dict[str, Any]) -> list[str]:
    """A /lead history reply's lines (one section per change), as the user reads them (escapes undone)."""
    prefix = f"{BLOCK_HISTORY}_"
    return [
        unescape(found["text"]["text"])
        for found in message.get("blocks", [])
        if found.get("block_id", "").startswith(prefix)
    ]


def unescape(text: str) -> str:
    """mrkdwn text as the user reads it (Slack's three escapes undone)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def writes(bot: Bot) -> int:
    """How many lead-changing requests the sandbox received since the last reset_stats."""
    routes = bot.control.stats()["byRoute"]
    return sum(routes.get(route, 0) for route in WRITE_ROUTES)


def snapshot(bot: Bot, uid: str, list_id: str = DEMO_LIST_ID) -> Any:
    """A deep copy of the sandbox's record of a lead, to compare before and after a command."""
    with bot.sandbox.state.lock:
        return copy.deepcopy(bot.lead(uid, list_id))


def all_leads(bot: Bot, list_id: str = DEMO_LIST_ID) -> list[Any]:
    with bot.sandbox.state.lock:
        return [copy.deepcopy(lead) for lead in bot.sandbox.state.iter_leads(list_id)]


def hopper_uids(bot: Bot, campaign_id: str) -> list[str]:
    return [entry.uid for entry in bot.sandbox.state.hopper(campaign_id)]


def final_answer(bot: Bot, text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run `/lead text`; return the final answer and every message the user saw (the ack and the replies)."""
    interaction = bot.command(text)
    assert interaction.status == 200, interaction.body
    assert interaction.acked_in_time, f"ack took {interaction.elapsed:.2f} s"
    assert interaction.json is not None, f"ack without a message: {interaction.body!r}"
    if not is_progress(interaction.json):
        return interaction.json, [interaction.json]
    reply = bot.driver.replies(interaction, count=1)[0]
    return reply, [interaction.json, reply]


@contextmanager
def reads_fail_once_a_put_arrives(bot: Bot, *keep: dict[str, Any], timeout: float = 5.0) -> Iterator[None]:
    """While the block runs: as soon as the sandbox has received a PUT, every GET answers 503 (the earlier rules
    are replaced by `keep` and that one). The plan's reads pass; reading the lead back after a lost answer fails."""

    def arm() -> None:
        until = time.monotonic() + timeout
        while bot.control.count(UPDATE_ROUTE) < 1 and time.monotonic() < until:
            time.sleep(0.01)
        bot.control.faults(*keep, {"method": "GET", "status": 503, "times": None})

    with ThreadPoolExecutor(1) as pool:
        arming = pool.submit(arm)
        yield
        arming.result()


def shared_bot(**kwargs: Any) -> Iterator[Bot]:
    """A bot and its own demo sandbox, for a module-scoped fixture over tests that change nothing (or only
    leads no other test of the module looks at): starting one per test costs ~0.4 s."""
    with SandboxServer(seed="demo") as sandbox:
        yield from start_bot(sandbox, **kwargs)
