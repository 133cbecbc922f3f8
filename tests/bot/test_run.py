"""`leadbot run`: fail-fast start-up checks, and HTTP mode serving signed Slack requests as a real process.

The refusals that come before anything is served run the command in this process (tests.support.leadbot: what it
prints and its exit status, as from the shell); two of them, and HTTP mode, run as real processes, whose whole output
is checked for secrets. One HTTP-mode process serves the module (a start costs a process and its imports).
"""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.run import freeze_start_up_heap
from sandbox import SandboxServer
from slackstub import SlackDriver, SlackStub
from tests.support import LeadbotProcess, clean_env, is_progress, leadbot, scrape, texts

SECRET_VALUES = ("xoxp-do-not-print-me", "sig-do-not-print-me", "bf-do-not-print-me")
ALERTS = "C0ALERTS"


def _leadbot(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_run_without_settings_names_every_missing_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = leadbot(["run", "--http"], {}, tmp_path, monkeypatch, capsys)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr
    assert "SLACK_SIGNING_SECRET is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_stops_when_slack_refuses_the_bot_token(sandbox: SandboxServer, tmp_path: Path) -> None:
    with SlackStub() as stub:
        env = clean_env(
            SLACK_BOT_TOKEN="xoxb-not-the-right-one",
            SLACK_SIGNING_SECRET="s",
            SLACK_API_URL=stub.api_url,
            BABELFORCE_BASE_URL=sandbox.base_url,
            BABELFORCE_ACCESS_TOKEN="t",
            LEADBOT_ALLOW_ALL_WRITERS="true",
        )
        result = _leadbot(["run", "--http", "--port", "0"], env, tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)." in result.stderr
    assert "xoxb-not-the-right-one" not in result.stderr + result.stdout


def test_run_reports_babelforce_settings_missing_once_slack_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    result = leadbot(["run", "--http"], env, tmp_path, monkeypatch, capsys)
    assert result.returncode == 2
    assert "BABELFORCE_BASE_URL" in result.stderr


def test_invalid_values_are_named_but_never_printed(tmp_path: Path) -> None:
    env = clean_env(
        SLACK_BOT_TOKEN=SECRET_VALUES[0],
        SLACK_SIGNING_SECRET=SECRET_VALUES[1],
        SLACK_APP_TOKEN="xoxb-not-an-app-token",
        LEADBOT_DEFAULT_REGION="XX",
        BABELFORCE_BASE_URL="http://127.0.0.1:9",
        BABELFORCE_CLIENT_ID="x",
        BABELFORCE_CLIENT_SECRET=SECRET_VALUES[2],
    )
    result = _leadbot(["run"], env, tmp_path)
    assert result.returncode == 2
    assert "LEADBOT_DEFAULT_REGION is invalid" in result.stderr
    for secret in (*SECRET_VALUES, "xoxb-not-an-app-token"):
        assert secret not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("leadbot_db", "said"),
    [
        ("mysql://leadbot:db-do-not-print-me@db.internal/leadbot", "LEADBOT_DB is invalid: must be a file path"),
        ("postgresql://leadbot:db-do-not-print-me@127.0.0.1:9/leadbot", "could not be opened"),
    ],
    ids=["unknown scheme", "unreachable postgresql"],
)
def test_an_audit_store_leadbot_cannot_use_stops_the_start_naming_leadbot_db(
    sandbox: SandboxServer,
    tmp_path: Path,
    leadbot_db: str,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "BABELFORCE_BASE_URL": sandbox.base_url,
        "BABELFORCE_ACCESS_TOKEN": "t",
        "LEADBOT_ALLOW_ALL_WRITERS": "true",
        "LEADBOT_DB": leadbot_db,
    }
    result = leadbot(["run", "--http", "--port", "0"], env, tmp_path, monkeypatch, capsys)
    assert result.returncode == 2
    assert "LEADBOT_DB" in result.stderr and said in result.stderr
    # what it logs before its logging is set up goes to stderr as it is (a real process prints these lines)
    assert "db-do-not-print-me" not in result.stderr + result.stdout + caplog.text
    assert list(tmp_path.iterdir()) == []  # no folder named "mysql:" or "postgresql:", no data/leadbot.db


def test_socket_mode_needs_an_app_token_starting_with_xapp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": "xoxb-wrong-kind",
        "BABELFORCE_BASE_URL": "http://127.0.0.1:9",
        "BABELFORCE_ACCESS_TOKEN": "t",
    }
    result = leadbot(["run"], env, tmp_path, monkeypatch, capsys)
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN must be an app-level token starting with xapp-" in result.stderr
    assert "SLACK_SIGNING_SECRET" not in result.stderr  # Socket Mode does not sign requests


def test_the_start_up_heap_is_collected_then_frozen() -> None:
    """What a serving process built before serving is frozen (full collections skip it), after a collection: the
    garbage start-up left in cycles is freed, not frozen for the life of the process."""

    class Node:
        pass

    enabled = gc.isenabled()
    gc.disable()  # no automatic collection meanwhile: only the call under test may free the cycle
    gc.unfreeze()  # measure this call's freeze only
    try:
        garbage = Node()
        garbage.self = garbage  # type: ignore[attr-defined]  # a cycle: only a collection frees it
        left = weakref.ref(garbage)
        del garbage
        assert left() is not None
        freeze_start_up_heap()
        assert gc.get_freeze_count() > 0
        assert left() is None
    finally:
        gc.unfreeze()  # the rest of the test process is not frozen
        if enabled:
            gc.enable()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class HttpBot:
    driver: SlackDriver
    base: str
    stub: SlackStub
    bot: LeadbotProcess
    alert: dict[str, str]  # the first pass's post to LEADBOT_ALERT_CHANNEL


@pytest.fixture(scope="module")
def http_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpBot]:
    """`leadbot run --http` in its own process, configured only through the environment, logging JSON
    (LEADBOT_LOG_FORMAT=json) and watching the campaigns (LEADBOT_ALERT_CHANNEL: Renewals' 10 loaded leads are below
    LEADBOT_ALERT_HOPPER_MIN=15, so the first pass posts one line, awaited here so that no test sees it arrive). One
    for the module: its tests rank a lead no other one looks at, or change nothing."""
    port = _free_port()
    secret = "http-mode-test-secret"
    tmp_path = tmp_path_factory.mktemp("http-mode")
    with SandboxServer(seed="demo") as sandbox, SlackStub() as stub:
        env = clean_env(
            SLACK_BOT_TOKEN=stub.bot_token,
            SLACK_SIGNING_SECRET=secret,
            SLACK_API_URL=stub.api_url,
            BABELFORCE_BASE_URL=sandbox.base_url,
            BABELFORCE_CLIENT_ID="sandbox",
            BABELFORCE_CLIENT_SECRET="sandbox",
            LEADBOT_ALLOW_ALL_WRITERS="true",
            LEADBOT_LOG_FORMAT="json",
            LEADBOT_ALERT_CHANNEL=ALERTS,
            LEADBOT_ALERT_HOPPER_MIN="15",
        )
        bot = LeadbotProcess(["run", "--http", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
        base = f"http://127.0.0.1:{port}"
        try:
            bot.wait_healthy(base)
            posted = stub.wait_for(lambda event: event.kind == "api" and event.name == "chat.postMessage", timeout=30)
            with SlackDriver(stub, f"{base}/slack/events", secret) as driver:
                yield HttpBot(driver, base, stub, bot, posted.payload)
        finally:
            bot.stop()


def test_http_mode_answers_health_checks_and_serves_a_signed_command(http_bot: HttpBot) -> None:
    health = httpx.get(f"{http_bot.base}/healthz")
    assert health.status_code == 200
    assert health.json() == {"ok": True}
    interaction = http_bot.driver.command('rank "Spring leads" lead-10 100')
    assert interaction.status == 200
    assert interaction.json is not None and is_progress(interaction.json)
    reply = http_bot.driver.replies(interaction)[0]
    assert "first of the next batch" in texts(reply)


def test_http_mode_rejects_an_unsigned_request(http_bot: HttpBot) -> None:
    stub = http_bot.stub
    seen = len(stub.events)  # the start-up token check (auth.test), the first alert
    response = http_bot.driver.post_raw(
        b"command=%2Flead&text=help", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 401
    assert stub.events[seen:] == []


def test_http_mode_checks_the_bot_token_at_start_up(http_bot: HttpBot) -> None:
    assert [call.response["ok"] for call in http_bot.stub.calls("auth.test")][:1] == [True]


def test_http_mode_starts_the_campaign_alerts(http_bot: HttpBot) -> None:
    """With LEADBOT_ALERT_CHANNEL set, `leadbot run --http` watches the campaigns from its start: the first pass
    posts one line to that channel."""
    assert http_bot.alert["channel"] == ALERTS
    assert http_bot.alert["text"].startswith(":warning: *Renewals*: hopper low, 10 loaded (alert below 15)")


def test_http_mode_serves_metrics_on_its_port_and_logs_json_from_every_logger(http_bot: HttpBot) -> None:
    """GET /metrics on the HTTP port, unsigned, moving with a command; LEADBOT_LOG_FORMAT=json makes every line of
    the process one JSON object: leadbot's own, and uvicorn's, which gets the same format (its log_config)."""
    before = scrape(f"{http_bot.base}/metrics")
    interaction = http_bot.driver.command('show "Spring leads" lead-10')
    assert "lead-10" in texts(http_bot.driver.replies(interaction)[0])
    assert http_bot.bot.wait_output('"/lead show', timeout=10), http_bot.bot.output
    metrics = scrape(f"{http_bot.base}/metrics")
    assert metrics.value("leadbot_commands_total", subcommand="show", outcome="ok") == 1
    assert before.value("leadbot_commands_total", subcommand="show") == 0
    moved = metrics.value("leadbot_ack_seconds_count", kind="command") - before.value(
        "leadbot_ack_seconds_count", kind="command"
    )
    assert moved == 1
    assert metrics.value("leadbot_babelforce_token_fetches_total", result="ok") == 1  # the process's one login
    assert "process_cpu_seconds_total" in metrics.text  # one process: prometheus_client's own too
    output = http_bot.bot.output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # each one JSON, or this fails
    assert any(line["logger"].startswith("uvicorn") for line in lines), output
    (done,) = [line for line in lines if line["message"].startswith("/lead show")]
    assert done["request_id"] == f"command:{interaction.trigger_id}" and done["outcome"] == "ok"
