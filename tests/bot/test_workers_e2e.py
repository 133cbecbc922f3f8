"""`leadbot run --http --workers 2` as real processes on one SQLite file: what must happen once happens once, whichever
worker a request lands on (the kernel hands each connection to either; many concurrent deliveries reach both).

One launch for the module (a start costs three interpreters): each test uses leads no other test looks at.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.audit import Actor, AuditLog
from bot.cli import build_parser
from commands.blocks import ACTION_APPLY_ANYWAY, ACTION_UNDO
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from slackstub import SlackDriver, SlackStub
from slackstub.signing import signed_headers
from tests.support import UPDATE_ROUTE, SandboxControl, is_progress, is_question, leadbot, run, scrape, texts

SECRET = "workers-test-secret"
ALERTS = "C0ALERTS"
SUPERVISOR = "U0SUPERVISOR"


@dataclass
class Launch:
    driver: SlackDriver
    stub: SlackStub
    sandbox: SandboxServer
    control: SandboxControl
    db: Path
    process: subprocess.Popen[str]
    crashed_change: int  # a write an earlier run left pending: the first leader's sweep settles it

    def ask(self, text: str, timeout: float = 20.0) -> dict[str, Any]:
        interaction = self.driver.command(text)
        assert interaction.status == 200, interaction.body
        if interaction.json and not is_progress(interaction.json):
            return interaction.json
        return self.driver.replies(interaction, count=1, timeout=timeout)[0]

    def rank(self, uid: str) -> int:
        return self.lead(uid).rank

    def lead(self, uid: str) -> Any:
        with self.sandbox.state.lock:
            return next(lead for lead in self.sandbox.state.iter_leads(DEMO_LIST_ID) if lead.uid == uid)

    def records(self, where: str, *args: object) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(f"SELECT * FROM changes WHERE {where} ORDER BY id", args)]


def _env(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "BABELFORCE_", "LEADBOT_"))}
    env.update(values)
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _crashed_write(db: Path, sandbox: SandboxServer) -> int:
    """A rank change of lead-16 that reached babelforce while its process died: pending, begun long ago."""
    with sandbox.state.lock:
        lead = next(lead for lead in sandbox.state.iter_leads(DEMO_LIST_ID) if lead.uid == "lead-16")
        sandbox.state.update_lead(DEMO_LIST_ID, lead.id, rank=36)
    audit = AuditLog(db)
    try:
        change_id = run(
            lambda: audit.begin(
                actor=Actor(SUPERVISOR, "T0LEADBOT", None, "C0CAMPAIGN"),
                action="rank",
                command='/lead rank "Spring leads" lead-16 36',
                request_id="command:crashed-trigger",
                list_id=DEMO_LIST_ID,
                list_name="Spring leads",
                lead_id=lead.id,
                lead_uid="lead-16",
                before={"id": lead.id, "uid": "lead-16", "rank": 16, "data": {}},
                intended={"id": lead.id, "uid": "lead-16", "rank": 36, "data": {}},
                reply_to={"response_url": None, "channel_id": "C0CAMPAIGN", "user_id": SUPERVISOR},
            )
        )
    finally:
        audit.close()
    assert change_id is not None
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE changes SET at = ? WHERE id = ?", ("2000-01-01T00:00:00.000000+00:00", change_id))
    return change_id


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launch]:
    tmp = tmp_path_factory.mktemp("workers")
    db = tmp / "shared.db"
    port = _free_port()
    with SandboxServer(seed="demo") as sandbox, SlackStub() as stub, httpx.Client(timeout=1) as probe:
        stub.add_channel(ALERTS, "leadbot-alerts")
        crashed = _crashed_write(db, sandbox)
        env = _env(
            SLACK_BOT_TOKEN=stub.bot_token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=stub.api_url,
            BABELFORCE_BASE_URL=sandbox.base_url,
            BABELFORCE_CLIENT_ID="sandbox",
            BABELFORCE_CLIENT_SECRET="sandbox",
            LEADBOT_ALLOW_ALL_WRITERS="true",
            LEADBOT_DB=str(db),
            LEADBOT_ALERT_CHANNEL=ALERTS,
            LEADBOT_ALERT_HOPPER_MIN="15",  # Renewals' 10 loaded leads: one alert at the first pass
        )
        command = ["run", "--http", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *command],
            env=env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        control = SandboxControl(sandbox.base_url)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if probe.get(f"{base}/healthz").status_code == 200 and len(_workers(process.pid)) == 2:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"leadbot run --http --workers 2 did not come up:\n{output}")
                time.sleep(0.05)
            with SlackDriver(stub, f"{base}/slack/events", SECRET) as driver:
                yield Launch(driver, stub, sandbox, control, db, process, crashed)
        finally:
            control.close()
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _workers(pid: int) -> list[int]:
    """The launcher's worker processes: its spawned children (Linux /proc), not multiprocessing's resource tracker."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return [child for child in children if "spawn_main" in _cmdline(child)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _concurrently(count: int, work: Any) -> list[Any]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(count)))


# ---------------------------------------------------------------------------------------------------- tests


def test_two_workers_serve_commands(launch: Launch) -> None:
    assert len(_workers(launch.process.pid)) == 2
    answers = _concurrently(6, lambda n: launch.ask(f'show "Spring leads" lead-{n + 1}'))
    assert all(f"lead-{n + 1}" in texts(answer) for n, answer in enumerate(answers))


def test_metrics_add_up_every_workers_counts_whichever_worker_is_scraped(launch: Launch) -> None:
    url = launch.driver.events_url.replace("/slack/events", "/metrics")
    before = scrape(url).value("leadbot_commands_total", subcommand="show")
    _concurrently(6, lambda n: launch.ask(f'show "Spring leads" lead-{n + 20}'))
    seen = {scrape(url).value("leadbot_commands_total", subcommand="show") for _ in range(8)}
    assert seen == {before + 6}, seen  # one figure for all: each worker's own count would differ between scrapes


def test_a_command_and_its_slack_retries_write_once_whichever_worker_gets_them(launch: Launch) -> None:
    fields = launch.driver.command_fields('rank "Spring leads" lead-21 71')
    body = urlencode(fields).encode()
    launch.control.reset_stats()

    def deliver(retry: int) -> int:
        headers = signed_headers(SECRET, body)
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return launch.driver.post_raw(body, headers).status_code

    assert _concurrently(8, deliver) == [200] * 8
    launch.stub.wait_responses(fields["response_url"], count=1, timeout=20)
    time.sleep(1.0)  # any second answer would come now

    assert launch.control.count(UPDATE_ROUTE) == 1
    assert launch.rank("lead-21") == 71
    (record,) = launch.records("request_id = ?", f"command:{fields['trigger_id']}")
    assert record["outcome"] == "ok"
    assert len(launch.stub.responses(fields["response_url"])) == 1  # one answer, not one per delivery


def test_undo_clicked_on_both_workers_undoes_once(launch: Launch) -> None:
    card = launch.ask('rank "Spring leads" lead-22 72')
    launch.control.reset_stats()

    clicks = _concurrently(4, lambda _: launch.driver.click(card, ACTION_UNDO))
    answers = [launch.driver.replies(click, count=1, timeout=20)[0] for click in clicks]

    assert launch.control.count(UPDATE_ROUTE) == 1
    assert launch.rank("lead-22") == 22
    undone = [answer for answer in answers if "Undone" in texts(answer)]
    assert len(undone) == 1, [texts(answer) for answer in answers]
    (change,) = launch.records("lead_uid = 'lead-22' AND undo_of IS NULL")
    assert [undo["outcome"] for undo in launch.records("undo_of = ?", change["id"])] == ["ok"]


def test_twenty_concurrent_rank_changes_of_one_lead_are_applied_one_at_a_time(launch: Launch) -> None:
    launch.control.reset_stats()
    ranks = list(range(100, 120))

    _concurrently(10, lambda n: [launch.ask(f'rank "Spring leads" lead-23 {rank}') for rank in ranks[n::10]])

    records = launch.records("lead_uid = 'lead-23'")
    assert [record["outcome"] for record in records] == ["ok"] * len(records)
    previous = 23
    for record in records:  # a chain: each change starts from the value the one before it left
        before, after = json.loads(record["before_json"]), json.loads(record["after_json"])
        assert before["rank"] == previous, (record["id"], before, previous)
        previous = after["rank"]
    assert launch.rank("lead-23") == previous
    assert launch.control.count(UPDATE_ROUTE) == len(records)  # the audit trail has every write babelforce got


def test_apply_anyway_answered_twice_at_once_applies_once(launch: Launch) -> None:
    interaction = launch.driver.command('rank "Spring leads" lead-40 45')  # in the hopper: asks first
    question = launch.driver.replies(interaction, count=1, timeout=20)[0]
    assert is_question(question), texts(question)
    launch.control.reset_stats()

    clicks = _concurrently(4, lambda _: launch.driver.click(question, ACTION_APPLY_ANYWAY))
    answers = [launch.driver.replies(click, count=1, timeout=20)[0] for click in clicks]

    assert launch.control.count(UPDATE_ROUTE) == 1
    assert launch.rank("lead-40") == 45
    applied = [answer for answer in answers if "Rank of lead-40" in texts(answer)]
    assert len(applied) == 1, [texts(answer) for answer in answers]
    assert [record["outcome"] for record in launch.records("lead_uid = 'lead-40'")] == ["ok"]


def test_one_worker_watches_the_campaigns_and_one_sweep_tells_the_user_once(launch: Launch) -> None:
    def posted(channel: str) -> list[Any]:
        return [call for call in launch.stub.calls("chat.postMessage") if call.payload.get("channel") == channel]

    deadline = time.monotonic() + 20
    while not (posted(ALERTS) and posted(SUPERVISOR)) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # a second worker's alert or sweep would have posted by now

    alerts = posted(ALERTS)
    assert len(alerts) == 1 and alerts[0].payload["text"].startswith(":warning: *Renewals*: hopper low")
    (told,) = posted(SUPERVISOR)
    assert "did arrive" in told.payload["text"]
    (record,) = launch.records("id = ?", launch.crashed_change)
    assert record["outcome"] == "ok"


def test_workers_out_of_range_are_refused_in_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("0", "two", "999"):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(["run", "--http", "--workers", value])
        assert exited.value.code == 2
        error = capsys.readouterr().err
        assert f"argument --workers: {value!r} is not a number of worker processes: give a whole number from 1 to" in (
            error
        )
    assert build_parser().parse_args(["run", "--http"]).workers == 1


def test_workers_are_refused_with_socket_mode_and_a_private_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    common = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "BABELFORCE_BASE_URL": "http://127.0.0.1:9",
        "BABELFORCE_ACCESS_TOKEN": "t",
        "LEADBOT_ALLOW_ALL_WRITERS": "true",
    }
    socket_mode = leadbot(
        ["run", "--workers", "2"], common | {"SLACK_APP_TOKEN": "xapp-1"}, tmp_path, monkeypatch, capsys
    )
    assert socket_mode.returncode == 2
    assert "--workers needs HTTP mode (--http): in Socket Mode run several `leadbot run` processes" in (
        socket_mode.stderr
    )
    memory = leadbot(
        ["run", "--http", "--workers", "2"],
        common | {"SLACK_SIGNING_SECRET": "s", "LEADBOT_DB": ":memory:"},
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert memory.returncode == 2
    assert "LEADBOT_DB=:memory: is private to one process" in memory.stderr
