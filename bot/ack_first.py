"""Slack's acks before the work that follows them.

Slack waits at most 3 s for an ack and shows the user an error after that; the answer that follows an ack may take
seconds. In one process both share one event loop, and asyncio runs whatever is ready in arrival order, so under a
burst the acks queued behind the previous commands' work: babelforce calls, rendering, replies (issue 15 measured an
ack p99 of 300-430 ms for 200 commands on this project's 2-CPU machine, all of it waiting, not working).

So the work after an ack takes turns: before each step that costs CPU (starting, each babelforce request, posting
the reply) it waits until no request of this process is waiting for its ack and, during a burst, none has been for
QUIET_S (a burst sends the next request about a millisecond after the last ack; without the quiet period the work
would slip in between and hold the next acks up). A burst is two answers less than BURST_GAP_S apart: a lone
command's answer does not wait the quiet period after its own ack (10 ms on every reply, for nothing). Turns are
handed out one per loop iteration, so the loop still notices new requests between two of them. No step waits longer
than MAX_WAIT_S: under a flood that never pauses, the work goes on, in order, as it would without this.

Only work that has said it follows an ack (`yielding()`, which `Leadbot.in_background` does for it) ever waits; a
request that is answering Slack never does, nor a task shared by several requests (bot code starts those in a
context of their own). Each event loop has its own count, so several apps in one process (tests) do not meet.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import time
import weakref
from collections.abc import Iterator

from .tuning import ACK_FIRST_BURST_GAP_S, ACK_FIRST_MAX_WAIT_S, ACK_FIRST_QUIET_S, ACK_FIRST_WORK_MAX_WAIT_S

#: True in work that follows an ack (and in the tasks it starts): that work yields to requests awaiting their ack.
_YIELDS: contextvars.ContextVar[bool] = contextvars.ContextVar("leadbot_yields_to_acks", default=False)
#: What is left of this work's total wait (shared with the tasks it starts): see yielding().
_BUDGET: contextvars.ContextVar[_WaitBudget | None] = contextvars.ContextVar("leadbot_wait_budget", default=None)
#: True while this context answers a request (so an edge and the Bolt dispatch inside it count it once).
_ANSWERING: contextvars.ContextVar[bool] = contextvars.ContextVar("leadbot_answering", default=False)


class _WaitBudget:
    """Seconds a piece of work after an ack may still spend waiting for turns, all its steps together."""

    __slots__ = ("left",)

    def __init__(self, left: float) -> None:
        self.left = left


class AckFirst:
    """One event loop's requests awaiting their ack, and the turns of the work waiting behind them."""

    def __init__(
        self,
        *,
        quiet_s: float = ACK_FIRST_QUIET_S,
        max_wait_s: float = ACK_FIRST_MAX_WAIT_S,
        burst_gap_s: float = ACK_FIRST_BURST_GAP_S,
    ) -> None:
        self.quiet_s = quiet_s
        self.burst_gap_s = burst_gap_s
        self.max_wait_s = max_wait_s
        self.awaiting = 0  # requests received and not yet answered
        self._last_answered = 0.0  # time.monotonic() of the last answer
        self._answered_before = float("-inf")  # ... and of the one before it (a burst: the two are close)
        # Nothing here refers to the loop while idle (no asyncio.Event, which keeps the loop it first waited on, no
        # finished task): _PER_LOOP's key must be able to go when its loop does.
        self._all_answered: asyncio.Future[None] | None = None  # the hand-out waits for it while requests await
        self._turns: collections.deque[tuple[float, asyncio.Future[None]]] = collections.deque()
        self._handing_out: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around the handling of one request up to its ack (nested calls in one context count once)."""
        if _ANSWERING.get():
            yield
            return
        token = _ANSWERING.set(True)
        self.awaiting += 1
        try:
            yield
        finally:
            _ANSWERING.reset(token)
            self._answered_one()

    @contextlib.contextmanager
    def waiting_elsewhere(self) -> Iterator[None]:
        """Around a wait of a request still answering (before its ack) on babelforce or Slack: it uses no CPU then,
        so work after other acks may go on meanwhile; counted again when the wait ends. Outside answering(): no-op."""
        if not _ANSWERING.get():
            yield
            return
        self._answered_one()
        try:
            yield
        finally:
            self.awaiting += 1

    def _answered_one(self) -> None:
        self.awaiting -= 1
        self._answered_before, self._last_answered = self._last_answered, time.monotonic()
        if self.awaiting == 0 and self._all_answered is not None:
            if not self._all_answered.done():
                self._all_answered.set_result(None)
            self._all_answered = None

    def quiet_in(self) -> float | None:
        """None while a request awaits its ack; else the seconds until quiet_s have passed since the last answer of a
        burst (0: now; at once after a lone answer)."""
        if self.awaiting:
            return None
        if self._last_answered - self._answered_before > self.burst_gap_s:  # a lone answer: no burst to bridge
            return 0.0
        return max(0.0, self._last_answered + self.quiet_s - time.monotonic())

    async def turn(self) -> None:
        """Return when this step of work after an ack may run: at once when all is quiet and nobody queues."""
        if not self._turns and self.quiet_in() == 0.0:
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns.append((time.monotonic() + self.max_wait_s, turn))
        if self._handing_out is None or self._handing_out.done():  # done: cancelled before it began
            # a context of its own: the hand-out serves every waiter, it is not part of the request that started it
            self._handing_out = asyncio.get_running_loop().create_task(
                self._hand_out(), name="leadbot ack-first turns", context=contextvars.Context()
            )
        await turn

    async def _hand_out(self) -> None:
        try:
            while self._turns:
                deadline, turn = self._turns[0]
                if not turn.done():  # a waiter cancelled (its work gave up) needs no turn, nor a quiet moment
                    await self._quiet(deadline)
                self._turns.popleft()
                if not turn.done():
                    turn.set_result(None)
                await asyncio.sleep(0)  # one turn per loop iteration: new requests are read in between
        finally:
            self._handing_out = None  # no finished task kept (it refers to the loop)

    async def _quiet(self, deadline: float) -> None:
        """Until no request awaits its ack and none has for quiet_s, or until `deadline` (time.monotonic())."""
        while (wait := self.quiet_in()) != 0.0 and (left := deadline - time.monotonic()) > 0:
            if wait is None:
                if self._all_answered is None:
                    self._all_answered = asyncio.get_running_loop().create_future()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await asyncio.shield(self._all_answered)
            else:
                await asyncio.sleep(min(wait, left))


_PER_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AckFirst] = weakref.WeakKeyDictionary()


def current() -> AckFirst:
    """The running loop's AckFirst."""
    loop = asyncio.get_running_loop()
    found = _PER_LOOP.get(loop)
    if found is None:
        found = _PER_LOOP[loop] = AckFirst()
    return found


def answering() -> contextlib.AbstractContextManager[None]:
    """Around the handling of a request up to its ack: work after an ack waits while it runs (see AckFirst)."""
    return current().answering()


def waiting_elsewhere() -> contextlib.AbstractContextManager[None]:
    """Around a wait on babelforce or Slack of a request before its ack (see AckFirst.waiting_elsewhere)."""
    return current().waiting_elsewhere()


def yielding(yields: bool = True) -> None:
    """Mark the rest of the current task (and the tasks it starts) as work that follows an ack (`yields` False: as
    work that never waits, such as opening a form on Slack's clock, even when started by work that does). Either way
    the task is no longer part of the request that started it: a request it handled itself would count again.
    The work (with the tasks it starts) waits ACK_FIRST_WORK_MAX_WAIT_S at most in all, so however long a flood lasts,
    taking turns delays an answer by no more than that."""
    _YIELDS.set(yields)
    _ANSWERING.set(False)
    _BUDGET.set(_WaitBudget(ACK_FIRST_WORK_MAX_WAIT_S) if yields else None)


async def yield_to_acks() -> None:
    """In work that follows an ack: wait for a turn (AckFirst.turn). Anywhere else: return at once."""
    if not _YIELDS.get():
        return
    budget = _BUDGET.get()
    if budget is None:
        await current().turn()
        return
    if budget.left <= 0:  # this work has waited all it may: it goes on as if nobody awaited an ack
        return
    started = time.monotonic()
    try:
        async with asyncio.timeout(budget.left):
            await current().turn()
    except TimeoutError:
        pass  # its turn was given up (AckFirst skips a cancelled waiter): the budget is spent
    finally:
        budget.left -= time.monotonic() - started
