"""Acks first end to end (bot.ack_first): every listener returns right after its ack (a slow babelforce slows the
answer, never the ack: commands are test_commands_e2e's test_slow_babelforce_ack_in_time_with_progress_then_the_reply,
form submissions, buttons and the Home tab are here); while one request awaits its ack, the work that follows other
requests' acks waits, except opening a form, whose trigger_id dies 3 s after the user pressed enter, and except while
that request itself waits on babelforce; and a client that stalls mid-body holds up nothing.

The request held before its ack is a show form's submission: its pre-check reads the lead from babelforce, which the
sandbox answers only after HOLD_S (within the pre-check's budget: the submission is still acked in time). A step of
work after an ack waits at most ACK_FIRST_MAX_WAIT_S even then, so the tests look within LOOK_S of the acks.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlencode, urlsplit

import pytest

from bot.app import EVENTS_PATH
from bot.tuning import ACK_FIRST_MAX_WAIT_S
from commands.blocks import ACTION_UNDO
from commands.modals import BLOCK_LEAD, BLOCK_LIST
from sandbox.seed import DEMO_LIST_ID
from slackstub import Interaction, SlackDriver
from slackstub.signing import signed_headers
from tests.support import Bot, caveat, header, shared_bot

HOLD_S = 1.0
LOOK_S = 0.15
assert LOOK_S < ACK_FIRST_MAX_WAIT_S / 2 < HOLD_S
LEAD_ROUTE = "GET /api/v2/outbound/lists/{id}/leads/{leadId}"
#: How long the sandbox takes for each request in the listener tests; an ack must come in well under it.
SLOW_S = 0.6


@pytest.fixture(scope="module")
def warm_bot() -> Iterator[Bot]:
    """One bot for the module (its tests leave every lead as it was), its token, list directory and lookup index
    at hand, as in a bot that has served for a while: the show that follows an ack reads only the lead and its
    campaign."""
    for bot in shared_bot():
        assert header(bot.ask('show "Spring leads" lead-40')) == "Lead lead-40"
        yield bot


@contextmanager
def slow_babelforce(bot: Bot, path: str | None = None) -> Iterator[None]:
    """Every API request (or those to `path`, a regular expression) answered only after SLOW_S."""
    bot.control.faults({"latency_ms": SLOW_S * 1000, "times": None, **({"path": path} if path else {})})
    try:
        yield
    finally:
        bot.control.clear_faults()


def test_a_form_submission_is_acked_before_its_work_reads_a_slow_babelforce(warm_bot: Bot) -> None:
    bot = warm_bot
    opened_by = bot.command("show")
    view = bot.driver.opened_view(opened_by)
    with slow_babelforce(bot, r"/hopper$"):  # the show reads the hopper; the pre-check before the ack does not
        submitted = bot.driver.submit(view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-40"})
        assert submitted.status == 200 and submitted.elapsed < SLOW_S / 2, submitted.elapsed
        reply = bot.driver.replies(opened_by)[0]
    assert "position 11 of 20" in caveat(reply)


def test_a_button_is_acked_before_its_work_calls_a_slow_babelforce(warm_bot: Bot) -> None:
    bot = warm_bot
    card = bot.ask('rank "Spring leads" lead-12 30')
    assert bot.lead("lead-12").rank == 30
    with slow_babelforce(bot):
        clicked = bot.driver.click(card, ACTION_UNDO)
        assert clicked.status == 200 and clicked.elapsed < SLOW_S / 2, clicked.elapsed
        reply = bot.driver.replies(clicked)[0]
    assert header(reply) == "Undone: rank of lead-12 restored"
    assert bot.lead("lead-12").rank == 12


def test_the_home_tab_event_is_acked_before_the_tab_is_built_from_a_slow_babelforce(warm_bot: Bot) -> None:
    bot = warm_bot
    seen = len(bot.stub.events)
    with slow_babelforce(bot):
        opened = bot.driver.open_home()
        assert opened.status == 200 and opened.elapsed < SLOW_S / 2, opened.elapsed
        view = bot.stub.wait_home_view(bot.driver.user_id, after=seen)
    assert view["type"] == "home"


@contextmanager
def a_submission_awaiting_its_ack(bot: Bot) -> Iterator[Future[Interaction]]:
    """A show form submitted, its pre-check's lead read held by the sandbox for HOLD_S: entered once that read has
    reached the sandbox. Yields the submission's ack (a Future); on leaving, checks it came, in time."""
    opened_by = bot.command("show")
    view = bot.driver.opened_view(opened_by)
    bot.control.reset_stats()
    bot.control.faults(
        {"method": "GET", "path": f"/leads/{bot.lead('lead-10').id}$", "latency_ms": HOLD_S * 1000, "times": 1}
    )
    with (
        SlackDriver(bot.stub, bot.driver.events_url, bot.signing_secret) as driver,
        ThreadPoolExecutor(1) as pool,
    ):
        submitted = pool.submit(driver.submit, view, {BLOCK_LIST: DEMO_LIST_ID, BLOCK_LEAD: "lead-10"})
        deadline = time.monotonic() + 5
        while bot.control.count(LEAD_ROUTE) == 0:
            assert time.monotonic() < deadline, "the submission's pre-check never read the lead"
            time.sleep(0.005)
        yield submitted
        acked = submitted.result(timeout=10)
    assert acked.status == 200 and acked.acked_in_time and acked.body == "", (acked.elapsed, acked.body)
    assert header(bot.driver.replies(opened_by)[0]) == "Lead lead-10"


def test_work_after_an_ack_goes_on_while_another_request_waits_on_babelforce_before_its_ack(warm_bot: Bot) -> None:
    """A request waiting on babelforce before its ack uses no CPU: it does not hold other commands' work back
    (ack_first.waiting_elsewhere); counted, it would hold each step of that work for ACK_FIRST_MAX_WAIT_S."""
    bot = warm_bot
    with a_submission_awaiting_its_ack(bot) as submitted:
        received = bot.control.stats()["total"]
        interaction = bot.command('show "Spring leads" lead-40')
        assert interaction.status == 200 and interaction.acked_in_time
        reply = bot.driver.replies(interaction, timeout=HOLD_S / 2)[0]  # answered while the submission still waits
        assert not submitted.done()
        assert bot.control.stats()["total"] > received

    assert header(reply) == "Lead lead-40"
    assert "position 11 of 20" in caveat(reply)


def test_a_bare_subcommand_opens_its_form_at_once_while_another_request_awaits_its_ack(warm_bot: Bot) -> None:
    bot = warm_bot
    with a_submission_awaiting_its_ack(bot) as submitted:
        interaction = bot.command("add")
        assert interaction.status == 200 and interaction.acked_in_time
        call = bot.stub.wait_for(  # NoAnswer if it waited for its turn
            lambda e: e.name == "views.open" and e.payload.get("trigger_id") == interaction.trigger_id,
            timeout=2 * LOOK_S,
        )
        assert call.ok, call.response
        assert not submitted.done()


@contextmanager
def a_client_stalling_mid_body(bot: Bot) -> Iterator[None]:
    """A connection that sends a signed command's headers and half its body, then nothing, and stays open (as a slow
    or hostile client may, for up to the server's request deadline: bot.http_server; plausible signature headers
    need no secret)."""
    body = urlencode(bot.driver.command_fields("help")).encode()
    address = urlsplit(bot.server.base_url)
    headers = {
        "Host": address.netloc,
        **signed_headers(bot.signing_secret, body),
        "Content-Length": str(len(body)),
    }
    head = f"POST {EVENTS_PATH} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    with socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=5) as stalled:
        stalled.sendall(head.encode() + b"\r\n" + body[: len(body) // 2])
        time.sleep(0.05)  # the bot reads its headers and waits for the rest of the body
        yield


def test_a_client_stalling_mid_body_does_not_hold_up_the_work_after_acks(warm_bot: Bot) -> None:
    """A request counts as awaiting its ack once its body is in: until then there is nothing to answer, and a
    client that never sends the rest would otherwise make every step of every answer wait the max wait."""
    bot = warm_bot
    with a_client_stalling_mid_body(bot):
        interaction = bot.command('show "Spring leads" lead-40')
        assert interaction.status == 200 and interaction.acked_in_time
        reply = bot.driver.replies(interaction, timeout=2 * ACK_FIRST_MAX_WAIT_S)[0]  # NoAnswer: it waited its turns
    assert header(reply) == "Lead lead-40"
