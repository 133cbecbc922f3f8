"""Campaign alerts to LEADBOT_ALERT_CHANNEL, end to end: the watcher reads the sandbox and posts to the Slack stand-in.

The background loop is tested as `leadbot run --http` starts it (on the HTTP app's start-up, through start_bot);
the 5-minute window and the request count are tested with passes called one at a time and an injected clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from babelforce import BabelforceClient
from bot.alerts import REQUESTS_PER_CAMPAIGN, AlertWatcher, State
from bot.audit import open_store
from sandbox import SandboxServer
from sandbox.seed import DEMO_CAMPAIGN_ID, DEMO_LIST_ID, RENEWALS_CAMPAIGN_ID
from slackstub import SlackStub
from tests.support import ALERT_CHANNEL, SANDBOX_CLIENT, Bot, SandboxControl, start_bot

CAMPAIGNS_ROUTE = "GET /api/v2/outbound/campaigns"
STATUS_ROUTE = "GET /api/v2/outbound/campaigns/{id}/status"
HOPPER_ROUTE = "GET /api/v2/outbound/campaigns/{id}/hopper"
SPRING_EXHAUSTED = (
    ":rotating_light: *Spring outreach*: no dialable leads left in list Spring leads (hopper empty); look closer: "
    '`/lead hopper "Spring outreach"`'
)
SPRING_RECOVERED = (
    ":white_check_mark: *Spring outreach* recovered: hopper 10 loaded (was no dialable leads); look closer: "
    '`/lead hopper "Spring outreach"`'
)


def alerts(stub: SlackStub) -> list[str]:
    return [call.payload["text"] for call in stub.calls("chat.postMessage") if call.payload["channel"] == ALERT_CHANNEL]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def dial_empty(control: SandboxControl, campaign_id: str = DEMO_CAMPAIGN_ID) -> None:
    """Dial the hopper until the list has nothing dialable left (each dial takes at most the hopper's 20)."""
    for _ in range(5):
        control.dial(campaign_id, 20)


def add_leads(control: SandboxControl, count: int, prefix: str = "fresh") -> None:
    for n in range(count):
        body = {"uid": f"{prefix}-{n}", "number": f"+4915177700{n:03d}", "rank": 100 + n}
        control.api("POST", f"/api/v2/outbound/lists/{DEMO_LIST_ID}/leads", json=body).raise_for_status()


# ---------------------------------------------------------------------- in the background, as leadbot run starts it

QUIET_S = 1.0  # the watcher's one-message-per-campaign window, shortened from 5 minutes


@pytest.fixture
def alerting(sandbox: SandboxServer) -> Iterator[Bot]:
    yield from start_bot(sandbox, alerts={"interval": 0.1, "quiet": QUIET_S})


def test_dial_the_hopper_empty_one_alert_then_one_recovery_and_no_repeat(alerting: Bot) -> None:
    bot = alerting
    watcher = bot.leadbot.alerts
    assert watcher is not None
    wait_until(lambda: watcher.passes >= 3)
    assert alerts(bot.stub) == []  # both campaigns are healthy: nothing to say

    dial_empty(bot.control)
    wait_until(lambda: len(alerts(bot.stub)) >= 1)
    posted_at = time.monotonic()
    assert alerts(bot.stub) == [SPRING_EXHAUSTED]

    add_leads(bot.control, 10)  # the hopper takes them at once: recovered, but within the 5-minute window
    passes = watcher.passes
    wait_until(lambda: watcher.passes >= passes + 3)
    if time.monotonic() - posted_at < QUIET_S:
        assert alerts(bot.stub) == [SPRING_EXHAUSTED]  # not yet: one message per campaign per window
    wait_until(lambda: len(alerts(bot.stub)) >= 2, timeout=QUIET_S + 5)
    assert alerts(bot.stub) == [SPRING_EXHAUSTED, SPRING_RECOVERED]

    passes = watcher.passes
    wait_until(lambda: watcher.passes >= passes + 5)
    assert len(alerts(bot.stub)) == 2  # recovered stays recovered: said once
    last = watcher.last_alert(DEMO_CAMPAIGN_ID)
    assert last is not None and last.state == State.OK and last.text.startswith("Spring outreach recovered")


def test_the_watcher_stops_with_the_bot(sandbox: SandboxServer) -> None:
    running = start_bot(sandbox, alerts={"interval": 0.05})
    bot = next(running)
    watcher = bot.leadbot.alerts
    assert watcher is not None
    wait_until(lambda: watcher.passes >= 1)
    running.close()  # the HTTP app's shutdown stops it
    passes = watcher.passes
    time.sleep(0.3)
    assert watcher.passes == passes


# ---------------------------------------------------------------------- one pass at a time, with a clock


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub() as slack:
        slack.add_channel(ALERT_CHANNEL, "leadbot-alerts")  # README: invite the bot to the alert channel
        yield slack


@pytest.fixture
async def watcher_for(
    sandbox: SandboxServer, stub: SlackStub
) -> AsyncIterator[Callable[..., tuple[AlertWatcher, Clock]]]:
    """A watcher that is not started: each `check()` is one pass, at the clock's time (in the test's own loop)."""
    clients: list[BabelforceClient] = []

    def make(**options: object) -> tuple[AlertWatcher, Clock]:
        clock = Clock()
        client = BabelforceClient(base_url=sandbox.base_url, credentials=SANDBOX_CLIENT)
        clients.append(client)
        slack = AsyncWebClient(token=stub.bot_token, base_url=stub.api_url)
        return AlertWatcher(client, slack, ALERT_CHANNEL, spacing=0, clock=clock, **options), clock  # type: ignore[arg-type]

    yield make
    for client in clients:
        await client.aclose()


@pytest.mark.anyio
async def test_requests_per_campaign_per_interval(watcher_for, control: SandboxControl) -> None:
    """Stated in bot/alerts.py: 1 request per interval for the campaign list, plus 2 per active campaign."""
    watcher, _ = watcher_for()
    await watcher.check()  # the first pass also logs in
    control.reset_stats()
    for _ in range(3):
        await watcher.check()
    routes = control.stats()["byRoute"]
    active = 2  # Spring outreach and Renewals
    assert routes[CAMPAIGNS_ROUTE] == 3
    assert routes[STATUS_ROUTE] + routes[HOPPER_ROUTE] == 3 * active * REQUESTS_PER_CAMPAIGN
    assert control.stats()["total"] == 3 * (1 + active * REQUESTS_PER_CAMPAIGN)
    assert REQUESTS_PER_CAMPAIGN <= 2


@pytest.mark.anyio
async def test_a_stopped_campaign_costs_no_request_and_is_said_once(watcher_for, control: SandboxControl, stub) -> None:
    watcher, clock = watcher_for()
    await watcher.check()
    control.api("PUT", f"/api/v2/outbound/campaigns/{RENEWALS_CAMPAIGN_ID}", json={"active": False})
    control.reset_stats()
    assert await watcher.check() == [
        ':octagonal_sign: *Renewals* stopped: it is no longer active; look closer: `/lead hopper "Renewals"`'
    ]
    assert control.stats()["total"] == 1 + REQUESTS_PER_CAMPAIGN  # the list, and Spring's status and hopper
    clock.now += 60
    assert await watcher.check() == []
    control.api("PUT", f"/api/v2/outbound/campaigns/{RENEWALS_CAMPAIGN_ID}", json={"active": True})
    assert await watcher.check() == []  # active again within 5 minutes of the last line: not yet
    clock.now += 300
    assert await watcher.check() == [
        ':white_check_mark: *Renewals* is active again: hopper 10 loaded; look closer: `/lead hopper "Renewals"`'
    ]
    assert alerts(stub) == [
        ':octagonal_sign: *Renewals* stopped: it is no longer active; look closer: `/lead hopper "Renewals"`',
        ':white_check_mark: *Renewals* is active again: hopper 10 loaded; look closer: `/lead hopper "Renewals"`',
    ]


@pytest.mark.anyio
async def test_a_flapping_hopper_costs_one_line_per_five_minutes(watcher_for, control: SandboxControl) -> None:
    watcher, clock = watcher_for()
    await watcher.check()
    dial_empty(control)
    assert await watcher.check() == [SPRING_EXHAUSTED]
    for minute in range(4):  # refilled and emptied again every minute: nothing more within the window
        clock.now += 60
        add_leads(control, 10, prefix=f"wave{minute}")
        assert await watcher.check() == []
        dial_empty(control)
        assert await watcher.check() == []
    clock.now += 60  # 5 minutes after the line, and still exhausted: the channel already knows
    assert await watcher.check() == []
    add_leads(control, 10, prefix="last")
    assert await watcher.check() == [SPRING_RECOVERED]


@pytest.mark.anyio
async def test_a_low_hopper_and_an_inactive_campaign_never_seen_active(watcher_for, control: SandboxControl) -> None:
    watcher, _ = watcher_for(hopper_min=15)
    control.api(
        "POST",
        "/api/v2/outbound/campaigns",
        json={"name": "Dormant", "active": False, "testMode": False, "displayNumber": "+4930000099", "listOrder": "UP"},
    ).raise_for_status()
    assert await watcher.check() == [
        ':warning: *Renewals*: hopper low, 10 loaded (alert below 15); look closer: `/lead hopper "Renewals"`'
    ]


@pytest.mark.anyio
async def test_an_empty_hopper_without_a_dialable_figure(watcher_for, control: SandboxControl) -> None:
    """When babelforce's status gives no `dialable` figure (here: the status cannot be read), the hopper decides."""
    watcher, _ = watcher_for()
    control.faults({"path": "/status$", "status": 404, "times": None})
    dial_empty(control)
    assert await watcher.check() == [
        ":warning: *Spring outreach*: hopper empty, nothing loaded to dial; "
        'look closer: `/lead hopper "Spring outreach"`'
    ]


@pytest.mark.anyio
async def test_slack_refusing_the_post_is_tried_again_next_interval(watcher_for, control: SandboxControl, stub) -> None:
    watcher, _ = watcher_for()
    dial_empty(control)
    stub.fail("chat.postMessage", status=200, error="not_in_channel")
    assert await watcher.check() == []
    assert await watcher.check() == [SPRING_EXHAUSTED]


@pytest.mark.anyio
async def test_babelforce_down_posts_nothing(watcher_for, control: SandboxControl, stub) -> None:
    watcher, _ = watcher_for()
    control.faults({"path": "/campaigns$", "status": 503, "times": None})
    assert await watcher.check() == []
    control.clear_faults()
    control.faults({"path": "/hopper$", "status": 503, "times": None})
    dial_empty(control)
    assert await watcher.check() == []  # an unreadable hopper is judged again next time, never guessed
    assert alerts(stub) == []


# ---------------------------------------------------------------------- several processes on one store: the lease

RENEWALS_LOW = ':warning: *Renewals*: hopper low, 10 loaded (alert below 15); look closer: `/lead hopper "Renewals"`'


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.anyio
async def test_two_watchers_on_one_store_post_once_and_the_next_starts_from_what_was_posted(
    watcher_for, stub: SlackStub, tmp_path: Path
) -> None:
    """Two processes' watchers on one audit file (as workers or replicas): the lease holder alone posts; after its
    clean stop the other takes over at its next try and, knowing from the store what the channel was told, repeats
    nothing."""
    store = open_store(tmp_path / "leadbot.db")
    try:
        first, _ = watcher_for(store=store, hopper_min=15, lease=0.6)  # tries the lease every 0.2 s
        second, _ = watcher_for(store=store, hopper_min=15, lease=0.6)
        first.start()
        second.start()
        await _until(lambda: bool(alerts(stub)))
        await asyncio.sleep(0.5)  # the other's tries come and go: it posts nothing
        assert alerts(stub) == [RENEWALS_LOW]
        leader, other = (first, second) if first.leading else (second, first)
        assert leader.leading and not other.leading

        await leader.stop()  # a clean stop releases the lease
        await _until(lambda: other.leading and other.passes >= 1)

        assert alerts(stub) == [RENEWALS_LOW]  # the low hopper was told already: not again
        shown = await other.last_alerts()  # what every process's Home tab reads
        assert shown[RENEWALS_CAMPAIGN_ID].text.startswith("Renewals: hopper low")
        await other.stop()
    finally:
        store.close()
