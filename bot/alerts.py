"""Alerts to LEADBOT_ALERT_CHANNEL: a background watcher that tells a channel, in one line, when a campaign stops
dialling well, and once more when it recovers.

Every `interval` seconds (LEADBOT_ALERT_INTERVAL, default 60) it reads the campaigns and, for each active campaign
with a list, its status and its hopper. A campaign is in one state, the worst that applies:

- stopped: it was seen active and is no longer (or it no longer has a list);
- exhausted: babelforce's status says no dialable lead is left (`dialable` 0);
- empty: nothing is loaded in its hopper;
- low: fewer than `hopper_min` leads are loaded (LEADBOT_ALERT_HOPPER_MIN, default 5);
- ok.

A change of state is posted as one line (chat.postMessage) naming the campaign and a command to look closer; the
return to ok is posted as a recovery line. Never more than one message per campaign per `quiet` seconds (5 minutes):
a change within that window waits for the window to pass, and is posted then only if it still holds, so a
flapping hopper costs one line, not dozens. Posts are spaced `spacing` seconds apart (Slack allows about one
message per second per channel).

babelforce requests per interval: 1 for the campaign list, plus 2 per active campaign with a list (its status and
its hopper); nothing for the others. A read that fails is logged and judged again at the next interval: nothing is
posted on a guess.

Once for every process sharing the audit store (workers on one machine, replicas on several): with a `store`, only the
holder of the store's lease `alerts:<channel>` watches, so each alert is posted once however many processes run. The
holder renews the lease every third of its length (LEADBOT_ALERT_LEASE, default 30 s) and renews it again just before
each post (a holder that lost it posts nothing); the others try to take it as often. It is released at a clean stop,
so another process takes over at its next try; a holder that dies loses it at its expiry. Each alert posted is
recorded in the store (the last one per campaign and channel): every process's Home tab shows it, and a watcher that
takes over (or a restarted one) starts from what the channel was told, so it neither repeats an alert nor skips a
quiet window. Without a store (the console, tests of one pass) the watcher watches alone and remembers in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from babelforce import errors
from babelforce.client import BabelforceClient
from babelforce.models import Campaign, CampaignStatus, HopperEntry
from commands.caveat_text import escape

from . import ack_first, metrics
from .audit import AuditError, AuditStore

log = logging.getLogger(__name__)

ALERT_INTERVAL_S = 60.0
ALERT_HOPPER_MIN = 5
ALERT_QUIET_S = 300.0  # at most one message per campaign per 5 minutes
POST_SPACING_S = 1.0  # Slack: about one message per second per channel
REQUESTS_PER_CAMPAIGN = 2  # status + hopper, per active campaign per interval (plus 1 per interval for the list)
#: How long the watching process's lease lasts (LEADBOT_ALERT_LEASE): when it dies, another takes over within this.
ALERT_LEASE_S = 30.0


class State(StrEnum):
    OK = "ok"
    LOW = "low"
    EMPTY = "empty"
    EXHAUSTED = "exhausted"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LastAlert:
    """The last line posted about a campaign (for the Home tab): when, its state, and the line in plain words."""

    at: datetime
    state: State
    text: str


@dataclass(slots=True)
class _Watch:
    """What the channel was last told about one campaign."""

    name: str
    posted: State = State.OK
    posted_at: float | None = None  # the clock's time of the last post
    last: LastAlert | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One campaign as read in one pass, and the state it is in."""

    campaign: Campaign
    state: State
    hopper: int | None = None
    dialable: int | None = None


class AlertWatcher:
    """Watches every active campaign and posts state changes to one channel. `start` runs it in the background;
    `check` is one pass (tests call it directly, with their own clock)."""

    def __init__(
        self,
        client: BabelforceClient,
        slack: AsyncWebClient,
        channel: str,
        *,
        interval: float = ALERT_INTERVAL_S,
        hopper_min: int = ALERT_HOPPER_MIN,
        quiet: float = ALERT_QUIET_S,
        spacing: float = POST_SPACING_S,
        clock: Callable[[], float] = time.monotonic,
        store: AuditStore | None = None,
        lease: float = ALERT_LEASE_S,
    ) -> None:
        self.client = client
        self.slack = slack
        self.channel = channel
        self.interval = interval
        self.hopper_min = hopper_min
        self.quiet = quiet
        self.spacing = spacing
        self._clock = clock
        self._watched: dict[str, _Watch] = {}  # campaign id -> what was posted; only campaigns seen active
        self._task: asyncio.Task[None] | None = None
        self.passes = 0  # passes completed (tests and logs)
        # once for all processes sharing the store: the lease's holder watches (None: this watcher alone)
        self.store = store
        self.lease = lease
        self.lease_name = f"alerts:{channel}"
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.leading = store is None  # whether this watcher holds the lease (as of its last try)
        self._lease_failing = False  # the store could not be asked for the lease at the last try (said once)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Run a pass now and every `interval` seconds after, in the background of the running loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="leadbot alerts")
            log.info(
                "alerts: watching active campaigns every %g s for channel %s (hopper below %d)%s",
                self.interval,
                self.channel,
                self.hopper_min,
                "" if self.store is None else f", when this process holds the lease ({self.lease:g} s)",
            )

    async def stop(self) -> None:
        """Stop watching and give the lease up, so another process takes over at its next try."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.store is not None and self.leading:
            self.leading = False
            try:
                await self.store.release_lease(self.lease_name, self.holder)
            except AuditError as failure:
                log.warning("alerts: could not release the lease (%s); it lapses within %g s", failure, self.lease)

    async def _run(self) -> None:
        due: float | None = None  # when this watcher's next pass is due (None: at once, once it leads)
        while True:
            wait = self.interval if self.store is None else min(self.interval, self.lease / 3)
            try:
                if await self._lead():
                    if due is None or self._clock() >= due:
                        ack_first.yielding()  # each pass is background work: its calls wait their turn behind acks
                        await self.check()
                        due = self._clock() + self.interval
                    wait = min(wait, max(0.0, due - self._clock()))
                else:
                    due = None
            except Exception:  # a bug must not end the watching: log it, try again next interval
                log.exception("alerts: a pass failed unexpectedly")
            await asyncio.sleep(wait)

    async def _lead(self) -> bool:
        """Take the lease, or renew it when this watcher holds it: True while it does (always, without a store).
        On taking it, what the channel was told is read from the store first."""
        if self.store is None:
            return True
        was_leading = self.leading
        try:
            if was_leading:
                held = await self.store.renew_lease(self.lease_name, self.holder, ttl=self.lease)
            else:
                held = await self.store.try_lease(self.lease_name, self.holder, ttl=self.lease)
            if held and not was_leading:
                await self._resume()
        except AuditError as failure:
            if not self._lease_failing:  # said once, not at every try
                log.warning("alerts: the lease could not be taken or renewed (%s); not watching until it can", failure)
            self._lease_failing = True
            self.leading = False
            return False
        self._lease_failing = False
        if held and not was_leading:
            log.info("alerts: this process watches the campaigns for channel %s now", self.channel)
        elif was_leading and not held:
            log.info("alerts: no longer watching the campaigns for channel %s: another process does", self.channel)
        self.leading = held
        return held

    async def _resume(self) -> None:
        """What the channel was last told about each campaign, as recorded by whichever process posted it: a watcher
        that takes over neither repeats an alert nor posts within another's quiet window."""
        assert self.store is not None
        posted = await self.store.last_alerts(self.channel)
        now, wall = self._clock(), datetime.now(UTC)
        watched = {}
        for campaign_id, alert in posted.items():
            state = _state(alert.state)
            if state is None:
                continue
            age = max(0.0, (wall - alert.at).total_seconds())
            watched[campaign_id] = _Watch("", state, now - age, LastAlert(alert.at, state, alert.line))
        self._watched = watched

    async def _still_leading(self) -> bool:
        """Just before a post: the lease is still this watcher's (renewed), so no other process posts the same."""
        if self.store is None:
            return True
        try:
            self.leading = self.leading and await self.store.renew_lease(self.lease_name, self.holder, ttl=self.lease)
        except AuditError as failure:
            log.warning("alerts: the lease could not be renewed (%s); not posting", failure)
            self.leading = False
        return self.leading

    def last_alert(self, campaign_id: str) -> LastAlert | None:
        """The last alert this watcher posted (or read from the store when it took over) about a campaign."""
        watch = self._watched.get(campaign_id)
        return watch.last if watch is not None else None

    async def last_alerts(self) -> dict[str, LastAlert]:
        """The last alert about each campaign, by campaign id: as recorded in the store by whichever process posted
        it (the Home tab of every process shows the same), else as this watcher remembers."""
        if self.store is not None:
            try:
                posted = await self.store.last_alerts(self.channel)
            except AuditError as failure:
                log.warning("alerts: could not read the last alerts (%s); showing this process's own", failure)
            else:
                found = {}
                for campaign_id, alert in posted.items():
                    state = _state(alert.state)
                    if state is not None:
                        found[campaign_id] = LastAlert(alert.at, state, alert.line)
                return found
        return {campaign_id: watch.last for campaign_id, watch in self._watched.items() if watch.last is not None}

    # ------------------------------------------------------------------ one pass

    async def check(self) -> list[str]:
        """Read every campaign, judge each watched one, post what changed (within the quiet window); returns the
        lines posted. With a store, a line is posted only while this watcher holds the lease (`start` takes it)."""
        try:
            campaigns = await self.client.list_campaigns()
        except errors.BabelforceError as failure:
            log.warning("alerts: could not list the campaigns (%s); trying again next interval", failure)
            return []
        readings = await asyncio.gather(*(self._read(campaign) for campaign in campaigns))
        posted: list[str] = []
        for reading in readings:
            if reading is None:
                continue
            line = await self._judge(reading, spaced=bool(posted))
            if line is not None:
                posted.append(line)
        present = {campaign.id for campaign in campaigns}
        for gone in set(self._watched) - present:  # deleted: nothing more to say about it
            del self._watched[gone]
        self.passes += 1
        return posted

    async def _read(self, campaign: Campaign) -> Reading | None:
        """The campaign's state, or None when it is not watched or could not be read this time."""
        watched = campaign.id in self._watched
        if campaign.active is None:  # babelforce did not say: judged again next interval
            return None
        if not campaign.active or campaign.lead_list is None:
            return Reading(campaign, State.STOPPED) if watched else None
        status, hopper = await asyncio.gather(
            self.client.get_campaign_status(campaign.id), self.client.get_hopper(campaign.id), return_exceptions=True
        )
        if isinstance(hopper, BaseException):
            if not isinstance(hopper, errors.BabelforceError):
                raise hopper
            log.warning("alerts: could not read the hopper of %s (%s)", campaign.name, hopper)
            return None
        dialable = None
        if isinstance(status, CampaignStatus):
            dialable = status.dialable_leads
        elif not isinstance(status, errors.BabelforceError):
            raise status
        else:
            log.info("alerts: no status for %s (%s); judging by its hopper", campaign.name, status)
        return Reading(campaign, self._state(hopper, dialable), len(hopper), dialable)

    def _state(self, hopper: list[HopperEntry], dialable: int | None) -> State:
        if dialable == 0:
            return State.EXHAUSTED
        if not hopper:
            return State.EMPTY
        if len(hopper) < self.hopper_min:
            return State.LOW
        return State.OK

    async def _judge(self, reading: Reading, *, spaced: bool) -> str | None:
        campaign = reading.campaign
        watch = self._watched.setdefault(campaign.id, _Watch(campaign.name))
        watch.name = campaign.name
        now = self._clock()
        if reading.state == watch.posted:
            return None
        if watch.posted_at is not None and now - watch.posted_at < self.quiet:
            return None  # within the window: said again at a later pass if it still holds
        line = self.line(reading, watch.posted)
        if spaced and self.spacing:
            await asyncio.sleep(self.spacing)
        if not await self._still_leading():
            return None  # another process watches now: it judges this campaign itself
        try:
            await self.slack.chat_postMessage(channel=self.channel, text=line, unfurl_links=False, unfurl_media=False)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as failure:
            metrics.alert(reading.state, sent=False)
            log.warning("alerts: posting about %s failed (%s); trying again next interval", campaign.name, failure)
            return None
        metrics.alert(reading.state, sent=True)
        watch.posted, watch.posted_at = reading.state, now
        watch.last = LastAlert(datetime.now(UTC), reading.state, _plain(line))
        log.info("alerts: %s is %s", campaign.name, reading.state)
        await self._record(campaign, watch.last)
        return line

    async def _record(self, campaign: Campaign, last: LastAlert) -> None:
        """The alert just posted, kept in the store for every process (best effort: it is posted already)."""
        if self.store is None:
            return
        try:
            await self.store.record_alert(self.channel, campaign.id, state=last.state.value, line=last.text, at=last.at)
        except AuditError as failure:
            log.warning(
                "alerts: the alert about %s was posted but not recorded (%s); a process taking over may repeat it",
                campaign.name,
                failure,
            )

    # ------------------------------------------------------------------ the lines

    def line(self, reading: Reading, before: State) -> str:
        """One compact mrkdwn line: the campaign, what is wrong (or that it recovered), a command to look closer."""
        campaign = reading.campaign
        name = escape(campaign.name)
        list_name = escape(campaign.lead_list.name or "its list") if campaign.lead_list else "its list"
        look = f'look closer: `/lead hopper "{escape(campaign.name)}"`'
        match reading.state:
            case State.STOPPED:
                why = "is no longer active" if not campaign.active else "no longer dials a list"
                return f":octagonal_sign: *{name}* stopped: it {why}; {look}"
            case State.EXHAUSTED:
                loaded = f"{reading.hopper} still in the hopper" if reading.hopper else "hopper empty"
                return f":rotating_light: *{name}*: no dialable leads left in list {list_name} ({loaded}); {look}"
            case State.EMPTY:
                return f":warning: *{name}*: hopper empty, nothing loaded to dial; {look}"
            case State.LOW:
                return (
                    f":warning: *{name}*: hopper low, {reading.hopper} loaded (alert below {self.hopper_min}); {look}"
                )
            case State.OK:
                if before == State.STOPPED:
                    return f":white_check_mark: *{name}* is active again: hopper {reading.hopper} loaded; {look}"
                was = {State.EXHAUSTED: "no dialable leads", State.EMPTY: "hopper empty", State.LOW: "hopper low"}
                return (
                    f":white_check_mark: *{name}* recovered: hopper {reading.hopper} loaded "
                    f"(was {was.get(before, before)}); {look}"
                )


def _state(value: str) -> State | None:
    """A state as the store keeps it (None for one this leadbot does not know: a newer one wrote it)."""
    try:
        return State(value)
    except ValueError:
        return None


def _plain(line: str) -> str:
    """An alert line without its emoji and markup, as the Home tab quotes it."""
    text = line.split(" ", 1)[1] if line.startswith(":") else line
    return text.replace("*", "").replace("`", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
