"""/metrics of a running bot (the real app over loopback, issue 15 item 5): after real commands its counters and
histograms move, with the right labels, and it shows nobody's id, list, lead or number.

The metrics live in this test process (one registry for every bot it starts), so each test compares two scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bot.metrics import METRICS_PATH
from sandbox import SandboxServer
from sandbox.seed import DEMO_CAMPAIGN_ID, DEMO_LIST_ID, demo_number
from tests.support import Bot, Scrape, error_text, is_question, scrape, start_bot, texts

LEAD_PATH = r"/outbound/lists/[0-9a-f-]+/leads/[0-9a-f-]+$"  # GET/PUT of one lead, not the CSV export


def metrics_of(bot: Bot) -> Scrape:
    return scrape(bot.server.base_url + METRICS_PATH)


def settled(bot: Bot, condition: Callable[[Scrape], bool], timeout: float = 5.0) -> Scrape:
    """The first scrape where `condition` holds: a reply's latency is counted just after Slack took the reply,
    which may be a moment after the test saw it."""
    deadline = time.monotonic() + timeout
    while True:
        now = metrics_of(bot)
        if condition(now) or time.monotonic() > deadline:
            return now
        time.sleep(0.02)


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def test_commands_move_their_counters_and_histograms_with_the_right_labels(bot: Bot) -> None:
    before = metrics_of(bot)

    applied = bot.ask('rank "Spring leads" lead-10 100')
    asked = bot.ask('rank "Spring leads" lead-40 45')  # in the hopper: "apply anyway?"
    shown = bot.ask('show "Spring leads" lead-10')
    invalid = bot.ask('rank "Spring leads" lead-10 high')
    bot.ask("help")

    assert "first of the next batch" in texts(applied)
    assert is_question(asked)
    assert "lead-10" in texts(shown)
    assert "rank" in error_text(invalid)
    after = settled(bot, lambda now: moved(before, now, "leadbot_reply_seconds_count", kind="command") >= 3)

    commands = "leadbot_commands_total"
    assert moved(before, after, commands, subcommand="rank", outcome="ok") == 1
    assert moved(before, after, commands, subcommand="rank", outcome="asked") == 1
    assert moved(before, after, commands, subcommand="show", outcome="ok") == 1
    assert moved(before, after, commands, subcommand="rank", outcome="invalid") == 1
    assert moved(before, after, commands, subcommand="help", outcome="ok") == 1
    assert moved(before, after, commands) == 5

    # every request was acked, within Slack's 3 s; the answers after the ack are timed per subcommand
    assert moved(before, after, "leadbot_ack_seconds_count", kind="command") == 5
    assert moved(before, after, "leadbot_ack_seconds_bucket", kind="command", le="3.0") == 5
    assert moved(before, after, "leadbot_reply_seconds_count", kind="command", subcommand="rank") == 2
    assert moved(before, after, "leadbot_reply_seconds_count", kind="command", subcommand="show") == 1

    # babelforce's side: the one write, the reads around it, and this fresh client's token
    requests = "leadbot_babelforce_requests_total"
    assert moved(before, after, requests, operation="update_lead", status="200") == 1
    assert moved(before, after, requests, operation="get_lead", status="200") >= 2
    assert moved(before, after, "leadbot_babelforce_request_seconds_count", operation="update_lead") == 1
    assert moved(before, after, "leadbot_babelforce_token_fetches_total", grant="client_credentials", result="ok") == 1
    assert moved(before, after, requests, operation="token", status="200") == 1


def test_retries_and_audit_store_errors_are_counted(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    for bot in start_bot(sandbox, audit_path=db):
        before = metrics_of(bot)
        bot.control.faults({"status": 503, "method": "GET", "path": LEAD_PATH, "times": 1})
        assert "lead-12" in texts(bot.ask('show "Spring leads" lead-12'))
        after = metrics_of(bot)
        assert moved(before, after, "leadbot_babelforce_retries_total", operation="get_lead", reason="503") == 1
        assert moved(before, after, "leadbot_babelforce_requests_total", operation="get_lead", status="503") == 1

        for suffix in ("", "-wal", "-shm"):  # the audit file deleted under the running bot: no record, no change
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        reply = bot.ask('rank "Spring leads" lead-13 23')
        assert "Nothing was changed" in error_text(reply)
        later = metrics_of(bot)
        assert moved(after, later, "leadbot_audit_errors_total") >= 1
        failed = {  # what this write counted (the registry is the process's: other tests' errors stay in it)
            labels["operation"]
            for labels in later.labels("leadbot_audit_errors_total")
            if moved(after, later, "leadbot_audit_errors_total", operation=labels["operation"])
        }
        assert failed
        assert failed <= {"reserved", "last_id", "lock_lead", "begin", "written_since", "unlock_lead", "by_request_id"}
        assert moved(after, later, "leadbot_commands_total", subcommand="rank", outcome="ok") == 0


def test_alerts_sent_are_counted(sandbox: SandboxServer) -> None:
    """Renewals has 10 leads loaded: below a minimum of 15, the first pass posts one "low" line."""
    for bot in start_bot(sandbox, alerts={"interval": 0.1, "hopper_min": 15}):
        watcher = bot.leadbot.alerts
        assert watcher is not None
        deadline = time.monotonic() + 10
        while watcher.passes < 1:
            assert time.monotonic() < deadline, "the watcher made no pass"
            time.sleep(0.02)
        assert metrics_of(bot).value("leadbot_alerts_total", state="low", result="sent") >= 1


def test_metrics_need_no_signature_and_show_no_id_name_or_number(bot: Bot) -> None:
    bot.ask('show "Spring leads" lead-10')
    page = httpx.get(bot.server.base_url + METRICS_PATH)  # no Slack signature: Prometheus has none
    assert page.status_code == 200
    assert "leadbot_commands_total" in page.text
    for private in (
        "U0SUPERVISOR",  # the Slack user
        "Spring",  # the list's name
        "lead-10",  # the lead's uid
        DEMO_LIST_ID,
        DEMO_LIST_ID.replace("-", ""),
        DEMO_CAMPAIGN_ID,
        demo_number(10),
        demo_number(10).lstrip("+"),
        bot.signing_secret,
        bot.stub.bot_token,
    ):
        assert private not in page.text, private
    assert httpx.post(bot.server.base_url + METRICS_PATH).status_code == 405  # read-only
