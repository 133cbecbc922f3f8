"""`leadbot run` in Socket Mode as a real process: it opens a websocket to the Slack stand-in, takes slash commands
from it, acks them over the socket within Slack's 3 s and answers at the response_url; babelforce is the sandbox.

One connected process serves the module (a start costs a process and its imports), with its metrics port and JSON
logs on: its tests rank a lead no other one looks at, or change nothing; the last test stops it with SIGTERM. A
wrong app token takes a process of its own.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from slackstub import NoAnswer, SlackStub
from tests.support import LeadbotProcess, Scrape, clean_env, is_progress, scrape, texts

APP_TOKEN = "xapp-leadbot-socket-test"
ACK_DEADLINE_S = 3.0
CONNECT_TIMEOUT_S = 20.0  # the process imports Bolt and slack_sdk before it connects


def _bot_env(stub: SlackStub, sandbox: SandboxServer, app_token: str) -> dict[str, str]:
    return clean_env(
        SLACK_BOT_TOKEN=stub.bot_token,
        SLACK_APP_TOKEN=app_token,
        SLACK_API_URL=stub.api_url,
        BABELFORCE_BASE_URL=sandbox.base_url,
        BABELFORCE_CLIENT_ID="sandbox",
        BABELFORCE_CLIENT_SECRET="sandbox",
        LEADBOT_ALLOW_ALL_WRITERS="true",
        LEADBOT_ALERT_CHANNEL="C0ALERTS",  # Renewals' 10 loaded leads are below 15: one line at the first pass
        LEADBOT_ALERT_HOPPER_MIN="15",
    )  # no SLACK_SIGNING_SECRET: Socket Mode must not need one


def _connected(stub: SlackStub, env: dict[str, str], cwd: Path) -> LeadbotProcess:
    """`leadbot run` started and connected in Socket Mode (or the test fails with its output)."""
    bot = LeadbotProcess(["run"], env, cwd)
    try:
        stub.wait_socket_connected(CONNECT_TIMEOUT_S)
    except NoAnswer as exc:
        bot.stop()
        pytest.fail(f"leadbot run did not connect in Socket Mode: {exc}\n--- its output:\n{bot.output}")
    return bot


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SocketBot:
    stub: SlackStub
    sandbox: SandboxServer
    bot: LeadbotProcess
    metrics_url: str
    first_metrics: Scrape  # read as soon as it connected, before any command


@pytest.fixture(scope="module")
def socket_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocketBot]:
    """A connected `leadbot run` in Socket Mode, in front of the sandbox, behind the Slack stand-in; with
    LEADBOT_METRICS_PORT (/metrics on 127.0.0.1, LEADBOT_METRICS_HOST's default) and LEADBOT_LOG_FORMAT=json."""
    port = _free_port()
    with SandboxServer(seed="demo") as sandbox, SlackStub(app_token=APP_TOKEN) as stub:
        env = _bot_env(stub, sandbox, APP_TOKEN) | {"LEADBOT_METRICS_PORT": str(port), "LEADBOT_LOG_FORMAT": "json"}
        bot = _connected(stub, env, tmp_path_factory.mktemp("socket-mode"))
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            yield SocketBot(stub, sandbox, bot, url, scrape(url))
        finally:
            bot.stop()


def _rank_of(sandbox: SandboxServer, uid: str) -> int | None:
    with sandbox.state.lock:
        for lead in sandbox.state.iter_leads(DEMO_LIST_ID):
            if lead.uid == uid:
                return lead.rank
    return None


def test_socket_mode_acks_a_command_in_time_answers_at_the_response_url_counts_it_and_logs_it(
    socket_bot: SocketBot,
) -> None:
    """The command's ack, its answer, /metrics from the start moving with it, and its one JSON log line with its
    fields (LEADBOT_LOG_FORMAT=json: every line of the process is a JSON object)."""
    stub, bot, sandbox = socket_bot.stub, socket_bot.bot, socket_bot.sandbox
    assert _rank_of(sandbox, "lead-10") != 100
    assert socket_bot.first_metrics.value("leadbot_commands_total") == 0
    before = scrape(socket_bot.metrics_url)

    started = time.monotonic()
    envelope_id = stub.socket_send_command('rank "Spring leads" lead-10 100')
    ack = stub.wait_socket_ack(envelope_id, timeout=ACK_DEADLINE_S)
    assert ack.at - started <= ACK_DEADLINE_S
    assert ack.status == 200
    assert is_progress(ack.payload), ack.payload  # the ack already says what is being done

    response_url = stub.socket_sent(envelope_id)["payload"]["response_url"]
    reply = stub.wait_responses(response_url, count=1, timeout=15)[0]
    assert "first of the next batch" in texts(reply), reply
    assert _rank_of(sandbox, "lead-10") == 100
    # As in Slack, the ack stays on screen above the answer: a receipt that reads true for good.
    screen = stub.screen("C0CAMPAIGN", "U0SUPERVISOR")
    assert [m.via for m in screen] == ["ack", "response_url"]
    assert texts(screen[0].message) == "Received: change the rank of lead-10 in Spring leads to 100"
    assert bot.process.poll() is None, bot.output

    assert bot.wait_output('"/lead rank', timeout=10), bot.output
    metrics = scrape(socket_bot.metrics_url)

    def moved(name: str, **labels: str) -> float:
        return metrics.value(name, **labels) - before.value(name, **labels)

    assert moved("leadbot_commands_total", subcommand="rank", outcome="ok") == 1
    assert moved("leadbot_ack_seconds_count", kind="command") == 1
    assert moved("leadbot_ack_seconds_bucket", kind="command", le="3.0") == 1
    assert moved("leadbot_babelforce_requests_total", operation="update_lead", status="200") == 1
    lines = [json.loads(line) for line in bot.output.splitlines() if line.strip()]  # each one JSON, or this fails
    (done,) = [line for line in lines if line["message"].startswith("/lead rank")]
    assert done["subcommand"] == "rank" and done["outcome"] == "ok" and done["lead_uid"] == "lead-10"
    assert done["request_id"].startswith("command:") and done["user"] == "U0SUPERVISOR"
    port = socket_bot.metrics_url.split(":")[2].split("/")[0]
    assert any(line["message"] == f"metrics at http://127.0.0.1:{port}/metrics" for line in lines)


def test_socket_mode_starts_the_campaign_alerts(socket_bot: SocketBot) -> None:
    posted = socket_bot.stub.wait_for(
        lambda event: event.kind == "api" and event.name == "chat.postMessage", timeout=10
    )
    assert posted.payload["channel"] == "C0ALERTS"
    assert posted.payload["text"].startswith(":warning: *Renewals*: hopper low, 10 loaded (alert below 15)")


def test_socket_mode_publishes_the_home_tab_when_it_is_opened(socket_bot: SocketBot) -> None:
    stub = socket_bot.stub
    seen = len(stub.events)
    envelope_id = stub.socket_send_event(stub.app_home_opened("U0SUPERVISOR"))
    stub.wait_socket_ack(envelope_id, timeout=ACK_DEADLINE_S)
    view = stub.wait_home_view("U0SUPERVISOR", after=seen, timeout=10)
    shown = " ".join(block.get("text", {}).get("text", "") for block in view["blocks"])
    assert "*Spring outreach* · active · hopper 20 loaded" in shown


def test_socket_mode_help_is_acked_with_the_usage(socket_bot: SocketBot) -> None:
    stub = socket_bot.stub
    envelope_id = stub.socket_send_command("help")
    ack = stub.wait_socket_ack(envelope_id, timeout=ACK_DEADLINE_S)
    assert "/lead add" in texts(ack.payload) + str(ack.payload.get("text", "")), ack.payload


def test_socket_mode_reconnects_when_slack_asks_for_a_refresh(socket_bot: SocketBot) -> None:
    stub, bot = socket_bot.stub, socket_bot.bot
    first = stub.wait_socket_connected(0)
    opened = len(stub.calls("apps.connections.open"))
    assert opened == 2  # one call by the start-up token check, one per connection
    stub.socket_disconnect("refresh_requested")  # Slack does this every few hours
    second = stub.wait_socket_connected(10, other_than=first)
    envelope_id = stub.socket_send_command("help", connection=second)
    ack = stub.wait_socket_ack(envelope_id, timeout=ACK_DEADLINE_S)
    assert "/lead add" in str(ack.payload.get("text", "")), ack.payload
    assert len(stub.calls("apps.connections.open")) == opened + 1  # one for the new connection
    assert bot.process.poll() is None, bot.output


def test_socket_mode_with_a_wrong_app_token_stops_at_start_up(sandbox: SandboxServer, tmp_path: Path) -> None:
    wrong = "xapp-not-the-right-one"
    with SlackStub(app_token=APP_TOKEN) as stub:
        bot = LeadbotProcess(["run"], _bot_env(stub, sandbox, wrong), tmp_path)
        try:
            assert bot.process.wait(timeout=CONNECT_TIMEOUT_S) == 2
            assert bot.wait_output("SLACK_APP_TOKEN was refused by Slack (invalid_auth).", timeout=5), bot.output
            assert "Traceback" not in bot.output
            assert stub.socket_connections == []
            first_open = stub.calls("apps.connections.open")[0]
            assert first_open.response == {"ok": False, "error": "invalid_auth"}
        finally:
            bot.stop()
        assert wrong not in bot.output  # the failure is reported without printing the token


def test_socket_mode_stops_cleanly_on_sigterm(socket_bot: SocketBot) -> None:
    """The module's bot, stopped: this test comes last."""
    bot = socket_bot.bot
    bot.process.terminate()
    assert bot.process.wait(timeout=10) == 0, bot.output
    assert bot.wait_output("leadbot stopping", timeout=5), bot.output
    assert "Traceback" not in bot.output
