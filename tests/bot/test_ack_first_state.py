"""bot.ack_first: work after an ack waits its turn while requests await theirs, never longer than its bound, and the
count of requests awaiting always comes back to 0 (unit tests of the one mechanism, on their own loop)."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from bot import ack_first
from bot.ack_first import AckFirst


def test_a_turn_comes_at_once_when_all_is_quiet_and_waits_while_a_request_awaits_its_ack() -> None:
    async def scenario() -> list[str]:
        turns = AckFirst(quiet_s=0.01, max_wait_s=5.0)
        events: list[str] = []

        async def request() -> None:
            with turns.answering():
                await asyncio.sleep(0.05)
                events.append("acked")

        async def work() -> None:
            await turns.turn()
            events.append("work")

        await turns.turn()  # nothing awaits: no wait at all
        answering = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        await asyncio.gather(answering, work())
        return events

    assert asyncio.run(scenario()) == ["acked", "work"]


def test_a_request_that_never_answers_holds_work_back_only_for_max_wait() -> None:
    async def scenario() -> float:
        turns = AckFirst(quiet_s=0.01, max_wait_s=0.1)
        stuck = asyncio.Event()

        async def request() -> None:
            with turns.answering():
                await stuck.wait()

        answering = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        started = time.monotonic()
        await turns.turn()
        waited = time.monotonic() - started
        stuck.set()
        await answering
        assert turns.awaiting == 0
        return waited

    assert 0.09 <= asyncio.run(scenario()) < 1.0


def test_nested_answering_counts_once_and_a_failure_or_cancellation_still_uncounts() -> None:
    async def scenario() -> None:
        turns = AckFirst()
        with turns.answering(), turns.answering():  # the HTTP edge, then Bolt's dispatch inside it
            assert turns.awaiting == 1
        with pytest.raises(RuntimeError), turns.answering():
            raise RuntimeError("a listener failed before its ack")

        async def forever() -> None:
            with turns.answering():
                await asyncio.Event().wait()

        task = asyncio.ensure_future(forever())
        await asyncio.sleep(0)
        assert turns.awaiting == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert turns.awaiting == 0

    asyncio.run(scenario())


def test_a_cancelled_waiter_neither_gets_a_turn_nor_holds_the_next_one_back() -> None:
    async def scenario() -> None:
        turns = AckFirst(quiet_s=0.01, max_wait_s=5.0)
        released = asyncio.Event()

        async def request() -> None:
            with turns.answering():
                await released.wait()

        answering = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        given_up = asyncio.ensure_future(turns.turn())
        waiting = asyncio.ensure_future(turns.turn())
        await asyncio.sleep(0.02)
        given_up.cancel()
        released.set()
        await asyncio.wait_for(waiting, 1.0)
        await answering
        assert given_up.cancelled()

    asyncio.run(scenario())


def test_only_work_marked_as_following_an_ack_waits() -> None:
    async def scenario() -> tuple[bool, bool]:
        release = asyncio.Event()

        async def request() -> None:
            with ack_first.answering():
                await release.wait()

        async def background() -> None:
            ack_first.yielding()
            await ack_first.yield_to_acks()

        answering = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        await asyncio.wait_for(ack_first.yield_to_acks(), 0.05)  # not marked: at once
        marked = asyncio.ensure_future(background())
        await asyncio.sleep(0.05)
        held = not marked.done()
        release.set()
        await asyncio.gather(answering, marked)
        return held, marked.done()

    assert asyncio.run(scenario()) == (True, True)


def test_a_loop_that_ended_is_not_kept_alive_by_its_turns() -> None:
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def scenario() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        turns = ack_first.current()

        async def request() -> None:
            with turns.answering():
                await asyncio.sleep(0.02)

        answering = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        await turns.turn()  # waited for the request: the hand-out ran, and waited for its answer
        await answering

    asyncio.run(scenario())
    gc.collect()
    assert loops[0]() is None


def test_work_started_as_not_yielding_never_waits_even_from_work_that_yields() -> None:
    async def scenario() -> bool:
        release = asyncio.Event()
        ran = asyncio.Event()

        async def request() -> None:
            with ack_first.answering():
                await release.wait()

        async def on_slacks_clock() -> None:
            ack_first.yielding(False)
            await ack_first.yield_to_acks()
            ran.set()

        async def background() -> None:
            ack_first.yielding()
            await asyncio.ensure_future(on_slacks_clock())  # inherits "yields", then says it does not

        answering = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        started = asyncio.ensure_future(background())
        await asyncio.wait_for(ran.wait(), 0.2)
        release.set()
        await asyncio.gather(answering, started)
        return ran.is_set()

    assert asyncio.run(scenario())


def test_a_request_waiting_on_babelforce_before_its_ack_does_not_hold_work_back_meanwhile() -> None:
    async def scenario() -> list[str]:
        turns = AckFirst(quiet_s=0.01, max_wait_s=5.0)
        events: list[str] = []
        network_reply = asyncio.get_running_loop().create_future()

        async def request() -> None:  # a form whose field checks wait on babelforce before its ack
            with turns.answering():
                with turns.waiting_elsewhere():
                    await network_reply
                events.append(f"checked, awaiting {turns.awaiting}")
                await asyncio.sleep(0.05)  # its own CPU again: counted again
                events.append("acked")

        async def work() -> None:
            await turns.turn()
            events.append("work")
            network_reply.set_result(None)

        answering = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        started = time.monotonic()
        await asyncio.wait_for(work(), 1.0)  # would wait for max_wait (5 s) if the wait still counted
        assert time.monotonic() - started < 1.0
        await answering
        with turns.waiting_elsewhere():  # outside a request: changes nothing
            assert turns.awaiting == 0
        return events

    assert asyncio.run(scenario()) == ["work", "checked, awaiting 1", "acked"]


def test_work_started_while_a_request_was_answering_counts_a_request_of_its_own() -> None:
    """A task started from within answering() (a listener's in_background work) inherits its context; once it says
    it follows an ack, a request it handles itself is counted, not taken for a nested call of the first."""

    async def scenario() -> list[int]:
        turns = AckFirst(quiet_s=0.01, max_wait_s=5.0)
        seen: list[int] = []

        async def work_after_the_ack() -> None:
            ack_first.yielding()
            with turns.answering():
                seen.append(turns.awaiting)

        with turns.answering():
            task = asyncio.ensure_future(work_after_the_ack())
        await task
        return seen

    assert asyncio.run(scenario()) == [1]


def test_one_piece_of_work_waits_its_budget_in_all_however_many_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a flood that never pauses, each step would wait up to the max wait; a command's whole answer (all its
    steps, and the tasks it starts) waits at most ACK_FIRST_WORK_MAX_WAIT_S, then goes on."""
    monkeypatch.setattr(ack_first, "ACK_FIRST_WORK_MAX_WAIT_S", 0.2)

    async def scenario() -> tuple[float, float]:
        never_answered = asyncio.get_running_loop().create_future()

        async def request() -> None:  # awaits its ack for the whole test
            with ack_first.answering():
                await never_answered

        async def work() -> None:
            ack_first.yielding()
            for _ in range(4):  # four steps (start, two babelforce calls, the reply) of 0.5 s max wait each
                await ack_first.yield_to_acks()
            child = asyncio.ensure_future(ack_first.yield_to_acks())  # a task it starts shares the budget
            await child

        flood = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        started = time.monotonic()
        await asyncio.wait_for(work(), 5.0)
        spent = time.monotonic() - started
        assert ack_first.current().awaiting == 1  # still unanswered: the budget, not quiet, let the work go on
        never_answered.set_result(None)
        await flood
        return spent, ack_first.current().max_wait_s

    spent, max_wait = asyncio.run(scenario())
    assert 0.2 <= spent < max_wait  # one budget in all, less than even one step's max wait
