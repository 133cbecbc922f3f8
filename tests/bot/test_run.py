"""`leadbot run` as a real process: fail-fast start-up checks, and HTTP mode serving signed Slack requests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox import SandboxServer
from slackstub import SlackDriver, SlackStub
from tests.support import is_progress, scrape, texts

SECRET_VALUES = ("xoxp-do-not-print-me", "sig-do-not-print-me", "bf-do-not-print-me")


def _env(**values: str) -> dict[str, str]:
    """A clean environment: no SLACK_/BABELFORCE_/LEADBOT_ variables leak in from the developer's shell."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "BABELFORCE_", "LEADBOT_"))}
    env.update(values)
    return env


def _leadbot(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_run_without_settings_names_every_missing_variable(tmp_path: Path) -> None:
    result = _leadbot(["run", "--http"], _env(), tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr
    assert "SLACK_SIGNING_SECRET is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_stops_when_slack_refuses_the_bot_token(sandbox: SandboxServer, tmp_path: Path) -> None:
    with SlackStub() as stub:
        env = _env(
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


def test_run_reports_babelforce_settings_missing_once_slack_is_set(tmp_path: Path) -> None:
    env = _env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    result = _leadbot(["run", "--http"], env, tmp_path)
    assert result.returncode == 2
    assert "BABELFORCE_BASE_URL" in result.stderr


def test_invalid_values_are_named_but_never_printed(tmp_path: Path) -> None:
    env = _env(
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
    sandbox: SandboxServer, tmp_path: Path, leadbot_db: str, said: str
) -> None:
    env = _env(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        BABELFORCE_BASE_URL=sandbox.base_url,
        BABELFORCE_ACCESS_TOKEN="t",
        LEADBOT_ALLOW_ALL_WRITERS="true",
        LEADBOT_DB=leadbot_db,
    )
    result = _leadbot(["run", "--http", "--port", "0"], env, tmp_path)
    assert result.returncode == 2
    assert "LEADBOT_DB" in result.stderr and said in result.stderr
    assert "db-do-not-print-me" not in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == []  # no folder named "mysql:" or "postgresql:", no data/leadbot.db


def test_socket_mode_needs_an_app_token_starting_with_xapp(tmp_path: Path) -> None:
    env = _env(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_APP_TOKEN="xoxb-wrong-kind",
        BABELFORCE_BASE_URL="http://127.0.0.1:9",
        BABELFORCE_ACCESS_TOKEN="t",
    )
    result = _leadbot(["run"], env, tmp_path)
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN must be an app-level token starting with xapp-" in result.stderr
    assert "SLACK_SIGNING_SECRET" not in result.stderr  # Socket Mode does not sign requests


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def http_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SlackDriver, str, SlackStub]]:
    """`leadbot run --http` in its own process, configured only through the environment; one for the module (a
    start costs a process and its imports): its tests rank a lead no other one looks at, or change nothing."""
    port = _free_port()
    secret = "http-mode-test-secret"
    tmp_path = tmp_path_factory.mktemp("http-mode")
    with SandboxServer(seed="demo") as sandbox, SlackStub() as stub, httpx.Client(timeout=1) as probe:
        env = _env(
            SLACK_BOT_TOKEN=stub.bot_token,
            SLACK_SIGNING_SECRET=secret,
            SLACK_API_URL=stub.api_url,
            BABELFORCE_BASE_URL=sandbox.base_url,
            BABELFORCE_CLIENT_ID="sandbox",
            BABELFORCE_CLIENT_SECRET="sandbox",
            LEADBOT_ALLOW_ALL_WRITERS="true",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "--http", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if probe.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"leadbot run --http did not come up:\n{output}")
                time.sleep(0.05)
            with SlackDriver(stub, f"{base}/slack/events", secret) as driver:
                yield driver, base, stub
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_http_mode_answers_health_checks_and_serves_a_signed_command(
    http_bot: tuple[SlackDriver, str, SlackStub],
) -> None:
    driver, base, _ = http_bot
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200
    assert health.json() == {"ok": True}
    interaction = driver.command('rank "Spring leads" lead-10 100')
    assert interaction.status == 200
    assert interaction.json is not None and is_progress(interaction.json)
    reply = driver.replies(interaction)[0]
    assert "first of the next batch" in texts(reply)


def test_http_mode_rejects_an_unsigned_request(http_bot: tuple[SlackDriver, str, SlackStub]) -> None:
    driver, _, stub = http_bot
    seen = len(stub.events)  # the start-up token check (auth.test)
    response = driver.post_raw(b"command=%2Flead&text=help", {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401
    assert stub.events[seen:] == []


def test_http_mode_checks_the_bot_token_at_start_up(http_bot: tuple[SlackDriver, str, SlackStub]) -> None:
    _, _, stub = http_bot
    assert [call.response["ok"] for call in stub.calls("auth.test")][:1] == [True]


def test_http_mode_starts_the_campaign_alerts(tmp_path: Path) -> None:
    """With LEADBOT_ALERT_CHANNEL set, `leadbot run --http` watches the campaigns from its start: Renewals' 10
    loaded leads are below LEADBOT_ALERT_HOPPER_MIN=15, so the first pass posts one line to that channel."""
    with SandboxServer(seed="demo") as sandbox, SlackStub() as stub:
        env = _env(
            SLACK_BOT_TOKEN=stub.bot_token,
            SLACK_SIGNING_SECRET="s",
            SLACK_API_URL=stub.api_url,
            BABELFORCE_BASE_URL=sandbox.base_url,
            BABELFORCE_CLIENT_ID="sandbox",
            BABELFORCE_CLIENT_SECRET="sandbox",
            LEADBOT_ALLOW_ALL_WRITERS="true",
            LEADBOT_ALERT_CHANNEL="C0ALERTS",
            LEADBOT_ALERT_HOPPER_MIN="15",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "--http", "--host", "127.0.0.1", "--port", str(_free_port())],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            posted = stub.wait_for(lambda event: event.kind == "api" and event.name == "chat.postMessage", timeout=30)
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert posted.payload["channel"] == "C0ALERTS"
    assert posted.payload["text"].startswith(":warning: *Renewals*: hopper low, 10 loaded (alert below 15)")


def test_http_mode_serves_metrics_on_its_port_and_logs_json_from_every_logger(tmp_path: Path) -> None:
    """GET /metrics on the HTTP port, unsigned, moving with a command; LEADBOT_LOG_FORMAT=json makes every line of
    the process one JSON object: leadbot's own, and uvicorn's, which gets the same format (its log_config)."""
    port, secret = _free_port(), "json-mode-secret"
    with SandboxServer(seed="demo") as sandbox, SlackStub() as stub:
        env = _env(
            SLACK_BOT_TOKEN=stub.bot_token,
            SLACK_SIGNING_SECRET=secret,
            SLACK_API_URL=stub.api_url,
            BABELFORCE_BASE_URL=sandbox.base_url,
            BABELFORCE_CLIENT_ID="sandbox",
            BABELFORCE_CLIENT_SECRET="sandbox",
            LEADBOT_ALLOW_ALL_WRITERS="true",
            LEADBOT_LOG_FORMAT="json",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "--http", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, "leadbot run --http did not come up"
                time.sleep(0.05)
            with SlackDriver(stub, f"{base}/slack/events", secret) as driver:
                interaction = driver.command('show "Spring leads" lead-10')
                assert "lead-10" in texts(driver.replies(interaction)[0])
            metrics = scrape(f"{base}/metrics")
            assert metrics.value("leadbot_commands_total", subcommand="show", outcome="ok") == 1
            assert metrics.value("leadbot_ack_seconds_count", kind="command") == 1
            assert metrics.value("leadbot_babelforce_token_fetches_total", result="ok") == 1
            assert "process_cpu_seconds_total" in metrics.text  # one process: prometheus_client's own too
        finally:
            process.terminate()
            output = process.communicate(timeout=10)[0]
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # each one JSON, or this fails
    assert any(line["logger"].startswith("uvicorn") for line in lines), output
    (done,) = [line for line in lines if line["message"].startswith("/lead show")]
    assert done["request_id"] == f"command:{interaction.trigger_id}" and done["outcome"] == "ok"
