"""bot.ack_first in one process: work after an ack takes turns behind the requests still awaiting theirs.

Most tests build an AckFirst of their own with short periods and stamp, with time.monotonic() (the clock AckFirst
reads), when each step got its turn. The module-level functions use the running loop's AckFirst
(ack_first.current(); every test runs in a loop of its own). One test runs the real LeadService against the sandbox.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from slack_bolt.async_app import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest

from babelforce import BabelforceClient, ClientCredentials
from bot import ack_first
from bot.ack_first import AckFirst
from bot.app import build_app
from bot.audit import AuditLog
from bot.permissions import AccessPolicy, Gatekeeper
from bot.pipeline import Leadbot
from bot.service import LeadService
from bot.slack_edge import after_ack
from sandbox import SandboxServer
from slackstub import SlackStub
from tests.support import SANDBOX_CLIENT

pytestmark = pytest.mark.anyio

QUIET_S = 0.03
#: A max wait no test reaches: a step that got its turn got it because all was quiet, not because of the bound.
NEVER_S = 5.0
#: How long a test waits for a step that should get its turn soon (a bound for a broken hand-out, not a timing).
SOON_S = 2.0


def returns_at_once(step: Coroutine[Any, Any, Any]) -> bool:
    """Whether `step` finishes without ever suspending: it gives the loop nothing to wait for."""
    try:
        step.send(None)
    except StopIteration:
        return True
    step.close()
    return False


async def stamped(acks: AckFirst, order: list[str] | None = None, name: str = "") -> float:
    """A step of work after an ack: waits for its turn, then says when it got it (and records its name)."""
    await acks.turn()
    if order is not None:
        order.append(name)
    return time.monotonic()


async def test_a_turn_is_given_at_once_when_no_request_awaits_its_ack() -> None:
    acks = AckFirst(quiet_s=QUIET_S, max_wait_s=NEVER_S)
    assert returns_at_once(acks.turn())


async def test_a_step_waits_while_a_request_awaits_its_ack_and_runs_a_quiet_period_after_the_answer() -> None:
    acks = AckFirst(quiet_s=QUIET_S, max_wait_s=NEVER_S, burst_gap_s=math.inf)  # every answer in a burst
    with acks.answering():
        step = asyncio.create_task(stamped(acks))
        await asyncio.sleep(0.1)
        assert not step.done()
        answered = time.monotonic()
    async with asyncio.timeout(SOON_S):
        ran = await step
    assert answered + QUIET_S <= ran < answered + 1.0  # after the quiet period, and long before the max wait


async def test_the_quiet_period_follows_a_burst_of_answers_not_a_lone_one() -> None:
    """A lone command's work starts at once after its own ack; after two answers in quick succession (a burst, whose
    next request is about to come) it waits the quiet period."""
    acks = AckFirst(quiet_s=QUIET_S, max_wait_s=NEVER_S, burst_gap_s=1.0)
    with acks.answering():
        pass
    assert returns_at_once(acks.turn())  # a lone answer
    with acks.answering():
        pass
    answered = time.monotonic()
    async with asyncio.timeout(SOON_S):
        ran = await stamped(acks)
    assert answered + QUIET_S <= ran < answered + 1.0  # the second answer came within burst_gap_s of the first


async def test_waiting_steps_get_their_turns_in_the_order_they_asked() -> None:
    acks = AckFirst(quiet_s=QUIET_S, max_wait_s=NEVER_S)
    order: list[str] = []
    with acks.answering():
        steps = [asyncio.create_task(stamped(acks, order, name)) for name in "abcde"]
        await asyncio.sleep(0.02)
        assert order == []
    async with asyncio.timeout(SOON_S):
        await asyncio.gather(*steps)
    assert order == list("abcde")


async def test_one_turn_per_loop_iteration_so_a_request_arriving_meanwhile_goes_before_the_next_step() -> None:
    """The first step released starts answering a request (as a request read in that loop iteration would): the
    second step, although it asked long ago, waits until that request is answered and the quiet period passed."""
    acks = AckFirst(quiet_s=QUIET_S, max_wait_s=NEVER_S, burst_gap_s=math.inf)  # every answer in a burst
    answered: list[float] = []

    async def first_step() -> None:
        await acks.turn()
        with acks.answering():
            await asyncio.sleep(0.1)
            answered.append(time.monotonic())

    # started outside any request (a task started inside one would take its request's answering() for its own)
    first = asyncio.create_task(first_step())
    second = asyncio.create_task(stamped(acks))
    with acks.answering():  # entered before either runs: both ask while a request awaits its ack
        await asyncio.sleep(0.02)
    async with asyncio.timeout(SOON_S):
        await first
        ran = await second
    assert ran >= answered[0] + QUIET_S


async def test_max_wait_bounds_each_steps_wait_under_a_request_that_is_never_answered() -> None:
    max_wait = 0.15
    acks = AckFirst(quiet_s=QUIET_S, max_wait_s=max_wait)
    with acks.answering():
        asked = time.monotonic()
        first = asyncio.create_task(stamped(acks))
        await asyncio.sleep(0.05)
        asked_later = time.monotonic()
        second = asyncio.create_task(stamped(acks))
        async with asyncio.timeout(SOON_S):
            ran_first, ran_second = await first, await second
        assert acks.awaiting == 1  # still unanswered: the bound, not quiet, gave both their turns
    assert asked + max_wait <= ran_first < asked + max_wait + 0.5
    assert asked_later + max_wait <= ran_second < asked_later + max_wait + 0.5  # its own bound, from its own ask


async def test_a_cancelled_waiter_does_not_hold_up_the_ones_behind_it() -> None:
    acks = AckFirst(quiet_s=QUIET_S, max_wait_s=NEVER_S)
    with acks.answering():
        gone = asyncio.create_task(acks.turn())  # its request gave up (a Slack time budget, a shutdown)
        kept = asyncio.create_task(stamped(acks))
        await asyncio.sleep(0.02)
        gone.cancel()
        await asyncio.sleep(0.02)
    async with asyncio.timeout(SOON_S):
        await kept
    assert gone.cancelled()


async def test_nested_answering_counts_one_request_and_separate_requests_count_each() -> None:
    acks = AckFirst(quiet_s=QUIET_S, max_wait_s=NEVER_S)
    with acks.answering():  # the HTTP edge
        with acks.answering():  # Bolt's dispatch inside it
            assert acks.awaiting == 1
        assert acks.awaiting == 1 and acks.quiet_in() is None  # the edge has not answered yet
    assert acks.awaiting == 0 and acks.quiet_in() is not None

    inside = asyncio.Event()
    release = asyncio.Event()

    async def request() -> None:
        with acks.answering():
            inside.set()
            await release.wait()

    first, second = asyncio.create_task(request()), asyncio.create_task(request())
    await asyncio.sleep(0.01)
    assert inside.is_set() and acks.awaiting == 2
    release.set()
    await asyncio.gather(first, second)
    assert acks.awaiting == 0


async def test_yield_to_acks_does_nothing_outside_work_after_an_ack_even_while_a_request_awaits() -> None:
    async def work_after_an_ack() -> None:
        ack_first.yielding()
        await ack_first.yield_to_acks()

    with ack_first.answering():
        assert returns_at_once(ack_first.yield_to_acks())  # answering a request, or any other work: no wait
        work = asyncio.create_task(work_after_an_ack())
        await asyncio.sleep(0.05)
        assert not work.done()  # the same call in work after an ack waits
    async with asyncio.timeout(SOON_S):
        await work


async def test_a_task_started_by_work_after_an_ack_takes_turns_too() -> None:
    ack_first.current().max_wait_s = NEVER_S
    with ack_first.answering():

        async def work_after_an_ack() -> None:
            ack_first.yielding()
            await asyncio.create_task(ack_first.yield_to_acks())  # e.g. one of several babelforce reads

        work = asyncio.create_task(work_after_an_ack())
        await asyncio.sleep(0.05)
        assert not work.done()
    async with asyncio.timeout(SOON_S):
        await work


async def test_a_task_started_in_a_context_of_its_own_does_not_take_turns() -> None:
    ack_first.current().max_wait_s = NEVER_S
    started: list[asyncio.Task[None]] = []

    async def work_after_an_ack() -> None:
        ack_first.yielding()
        # as the shared single-flight tasks are started (bot.service's directory load, bot.permissions' look-ups)
        started.append(asyncio.create_task(ack_first.yield_to_acks(), context=contextvars.Context()))
        await ack_first.yield_to_acks()

    with ack_first.answering():
        work = asyncio.create_task(work_after_an_ack())
        await asyncio.sleep(0.05)
        assert started and started[0].done() and not work.done()
    async with asyncio.timeout(SOON_S):
        await work


async def test_after_ack_waits_for_a_turn_before_starting_unless_told_not_to() -> None:
    """Leadbot.in_background's work: a command's answer takes its turn; opening a form (yields=False) does not."""
    ack_first.current().max_wait_s = NEVER_S
    began: list[str] = []

    async def work(what: str) -> None:
        began.append(what)

    with ack_first.answering():
        answer = asyncio.create_task(after_ack(work("answer"), "an answer"))
        form = asyncio.create_task(after_ack(work("form"), "a form", yields=False))
        await asyncio.sleep(0.05)
        assert began == ["form"]
    async with asyncio.timeout(SOON_S):
        await asyncio.gather(answer, form)
    assert began == ["form", "answer"]


async def test_leadbot_makes_its_babelforce_requests_wait_their_turn() -> None:
    client = BabelforceClient(base_url="http://127.0.0.1:9", credentials=ClientCredentials("i", SecretStr("s")))
    audit = AuditLog(":memory:")
    try:
        Leadbot(LeadService(client), audit=audit, gate=Gatekeeper(AccessPolicy.open(), None))
        assert client.wait_turn is ack_first.yield_to_acks
    finally:
        audit.close()
        await client.aclose()


async def test_a_directory_load_started_by_work_after_an_ack_does_not_wait_for_a_request_awaiting_it(
    sandbox: SandboxServer,
) -> None:
    """Work after an ack starts the list directory's load; a request that has not acked yet (a form's list options)
    needs the same directory and waits for that load. Were the load part of the work, its babelforce request would
    wait for that very request's ack, which waits for the load: both held up until the max wait."""
    ack_first.current().max_wait_s = NEVER_S
    client = BabelforceClient(base_url=sandbox.base_url, credentials=SANDBOX_CLIENT, wait_turn=ack_first.yield_to_acks)
    service = LeadService(client)

    async def work_after_an_ack() -> int:
        ack_first.yielding()
        return len(await service.lists())

    async def request_awaiting_its_ack() -> int:
        with ack_first.answering():
            return len(await service.lists())

    try:
        async with asyncio.timeout(SOON_S):
            # the work runs first and starts the load; the request then waits for it before the load's request
            listed = await asyncio.gather(work_after_an_ack(), request_awaiting_its_ack())
        assert list(listed) == [3, 3]
    finally:
        await client.aclose()


async def test_a_request_dispatched_to_bolt_awaits_its_ack_until_its_listener_has_returned() -> None:
    """Socket Mode and the console reach Bolt without the HTTP edge, so Bolt's dispatch counts the request itself."""
    client = BabelforceClient(base_url="http://127.0.0.1:9", credentials=ClientCredentials("i", SecretStr("s")))
    audit = AuditLog(":memory:")
    awaiting: list[int] = []
    try:
        with SlackStub() as stub:
            leadbot = Leadbot(LeadService(client), audit=audit, gate=Gatekeeper(AccessPolicy.open(), None))
            bolt = build_app(leadbot, bot_token=stub.bot_token, signing_secret=None, slack_api_url=stub.api_url)

            @bolt.command("/probe")
            async def probe(ack: AsyncAck) -> None:
                awaiting.append(ack_first.current().awaiting)
                await ack()

            fields = {"command": "/probe", "text": "", "team_id": "T0LEADBOT", "user_id": "U0SUPERVISOR"}
            response = await bolt.async_dispatch(AsyncBoltRequest(body=urlencode(fields), mode="socket_mode"))
    finally:
        audit.close()
        await client.aclose()
    assert response.status == 200
    assert awaiting == [1]
    assert ack_first.current().awaiting == 0
