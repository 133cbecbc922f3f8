"""Two replicas: two `leadbot run --http` processes (two launches, two ports, as on two machines) on one PostgreSQL
database, the sandbox behind both, the Slack stand-in's drivers sending to either. What must happen once happens
once, whichever replica each delivery or click reaches; the campaign alerts are posted once, by the holder of the
store's lease, and another replica takes over when the holder stops answering.

One pair of processes for the module (a start costs two interpreters); each test uses leads no other test looks at.
The last test freezes one replica.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from commands.blocks import ACTION_APPLY_ANYWAY, ACTION_UNDO
from sandbox import SandboxServer
from sandbox.seed import DEMO_CAMPAIGN_ID, DEMO_LIST_ID
from slackstub import SlackDriver, SlackStub
from slackstub.signing import signed_headers
from tests.support import (
    UPDATE_ROUTE,
    PostgresServer,
    SandboxControl,
    is_progress,
    is_question,
    store_rows,
    texts,
)

SECRET = "replicas-test-secret"
ALERTS = "C0ALERTS"
USER = "U0SUPERVISOR"
LEASE_S = 2.0  # LEADBOT_ALERT_LEASE: a frozen holder's lease lapses within 2 s


@dataclass
class Replica:
    name: str
    driver: SlackDriver
    process: subprocess.Popen[bytes]
    log: Path

    def ask(self, text: str, timeout: float = 20.0) -> dict[str, Any]:
        interaction = self.driver.command(text)
        assert interaction.status == 200, interaction.body
        if interaction.json and not is_progress(interaction.json):
            return interaction.json
        return self.driver.replies(interaction, count=1, timeout=timeout)[0]

    def click(self, message: dict[str, Any], action_id: str, timeout: float = 20.0) -> dict[str, Any]:
        clicked = self.driver.click(message, action_id)
        assert clicked.status == 200, clicked.body
        return self.driver.replies(clicked, count=1, timeout=timeout)[0]


@dataclass
class Pair:
    a: Replica
    b: Replica
    db: str
    stub: SlackStub
    sandbox: SandboxServer
    control: SandboxControl

    def lead(self, uid: str) -> Any:
        with self.sandbox.state.lock:
            return next(lead for lead in self.sandbox.state.iter_leads(DEMO_LIST_ID) if lead.uid == uid)

    def records(self, where: str, *args: object) -> list[dict[str, Any]]:
        return store_rows(self.db, f"SELECT * FROM changes WHERE {where} ORDER BY id", args)

    def alerts(self) -> list[str]:
        calls = self.stub.calls("chat.postMessage")
        return [call.payload["text"] for call in calls if call.payload.get("channel") == ALERTS]


def _env(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "BABELFORCE_", "LEADBOT_"))}
    env.update(values)
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _launch(name: str, env: dict[str, str], folder: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = _free_port()
    log = folder / f"{name}.log"
    command = [sys.executable, "-m", "bot.cli", "run", "--http", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, cwd=folder, stdout=output, stderr=subprocess.STDOUT)
    return process, port, log


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)  # a frozen replica must be able to stop
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def pair(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    folder = tmp_path_factory.mktemp("replicas")
    db = postgres.create_database()  # a fresh database for the module, shared by both replicas
    with SandboxServer(seed="demo") as sandbox, SlackStub() as stub, httpx.Client(timeout=1) as probe:
        stub.add_channel(ALERTS, "leadbot-alerts")
        env = _env(
            SLACK_BOT_TOKEN=stub.bot_token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=stub.api_url,
            BABELFORCE_BASE_URL=sandbox.base_url,
            BABELFORCE_CLIENT_ID="sandbox",
            BABELFORCE_CLIENT_SECRET="sandbox",
            LEADBOT_ALLOW_ALL_WRITERS="true",
            LEADBOT_DB=db,
            LEADBOT_ALERT_CHANNEL=ALERTS,
            LEADBOT_ALERT_HOPPER_MIN="15",  # Renewals' 10 loaded leads: one alert at the first pass
            LEADBOT_ALERT_LEASE=str(LEASE_S),
        )
        launched = {name: _launch(name, env, folder) for name in ("a", "b")}  # both start at once, as replicas do
        control = SandboxControl(sandbox.base_url)
        drivers: list[SlackDriver] = []
        try:
            deadline = time.monotonic() + 60
            for name, (process, port, log) in launched.items():
                while True:
                    try:
                        if probe.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if process.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"replica {name} did not come up:\n{log.read_text(errors='replace')}")
                    time.sleep(0.05)
            replicas = []
            for name, (process, port, log) in launched.items():
                driver = SlackDriver(stub, f"http://127.0.0.1:{port}/slack/events", SECRET, timeout=20)
                drivers.append(driver)
                replicas.append(Replica(name, driver, process, log))
            yield Pair(replicas[0], replicas[1], db, stub, sandbox, control)
        finally:
            for driver in drivers:
                driver.close()
            control.close()
            for process, _, _ in launched.values():
                _stop(process)
            postgres.drop_database(db)


def _concurrently(*work: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(len(work)) as pool:
        return [future.result() for future in [pool.submit(job) for job in work]]


def _wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------- tests


def test_a_command_and_its_slack_retry_on_the_other_replica_write_once_and_answer_once(pair: Pair) -> None:
    fields = pair.a.driver.command_fields('rank "Spring leads" lead-21 71')
    body = urlencode(fields).encode()
    pair.control.reset_stats()

    def deliver(replica: Replica, retry: int) -> int:
        headers = signed_headers(SECRET, body)
        if retry:  # Slack's retry: the same body, a fresh signature, the retry's number and reason
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return replica.driver.post_raw(body, headers).status_code

    assert _concurrently(lambda: deliver(pair.a, 0), lambda: deliver(pair.b, 1)) == [200, 200]
    pair.stub.wait_responses(fields["response_url"], count=1, timeout=20)
    time.sleep(1.0)  # any second answer would come now

    assert pair.control.count(UPDATE_ROUTE) == 1
    assert pair.lead("lead-21").rank == 71
    (record,) = pair.records("request_id = ?", f"command:{fields['trigger_id']}")
    assert record["outcome"] == "ok"
    assert len(pair.stub.responses(fields["response_url"])) == 1


def test_undo_through_the_other_replica_works_once(pair: Pair) -> None:
    card = pair.a.ask('rank "Spring leads" lead-22 72')
    pair.control.reset_stats()

    undone = pair.b.click(card, ACTION_UNDO)  # made through A, undone through B
    again = pair.a.click(card, ACTION_UNDO)  # the same button, clicked again through A

    assert "Undone" in texts(undone), texts(undone)
    assert "Undone" not in texts(again), texts(again)
    assert pair.control.count(UPDATE_ROUTE) == 1
    assert pair.lead("lead-22").rank == 22
    (change,) = pair.records("lead_uid = 'lead-22' AND undo_of IS NULL")
    assert [undo["outcome"] for undo in pair.records("undo_of = ?", change["id"])] == ["ok"]


def test_undo_clicked_on_both_replicas_at_once_undoes_once(pair: Pair) -> None:
    card = pair.a.ask('rank "Spring leads" lead-24 74')
    pair.control.reset_stats()

    answers = _concurrently(*(lambda r=replica: r.click(card, ACTION_UNDO) for replica in (pair.a, pair.b) * 2))

    assert [("Undone" in texts(answer)) for answer in answers].count(True) == 1, [texts(a) for a in answers]
    assert pair.control.count(UPDATE_ROUTE) == 1
    assert pair.lead("lead-24").rank == 24


def test_twenty_concurrent_rank_changes_of_one_lead_over_both_replicas_are_applied_one_at_a_time(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id = pair.lead("lead-23").id
    received: list[int] = []  # the ranks babelforce was sent for the lead, in the order it applied them
    update = pair.sandbox.state.update_lead

    def recording(list_id: str, changed: str, **fields: Any) -> Any:
        lead = update(list_id, changed, **fields)
        if changed == lead_id:
            received.append(lead.rank)
        return lead

    monkeypatch.setattr(pair.sandbox.state, "update_lead", recording)
    ranks = list(range(100, 120))
    replicas = (pair.a, pair.b)

    def send(n: int) -> list[dict[str, Any]]:  # 10 senders, each alternating between the replicas
        return [replicas[(n + k) % 2].ask(f'rank "Spring leads" lead-23 {rank}') for k, rank in enumerate(ranks[n::10])]

    answers = [answer for sent in _concurrently(*(lambda n=n: send(n) for n in range(10))) for answer in sent]

    assert sum("Rank of lead-23" in texts(answer) for answer in answers) == 20, [texts(a)[:120] for a in answers]
    records = pair.records("lead_uid = 'lead-23'")
    assert [record["outcome"] for record in records] == ["ok"] * 20  # every record settled, and ok
    previous = 23
    for record in records:  # a chain: each change starts from the value the one before it left
        before, after = json.loads(record["before_json"]), json.loads(record["after_json"])
        assert before["rank"] == previous, (record["id"], before, previous)
        previous = after["rank"]
    assert received == [json.loads(record["after_json"])["rank"] for record in records]  # babelforce's own order
    assert sorted(received) == ranks
    assert pair.lead("lead-23").rank == previous


def test_apply_anyway_answered_on_the_other_replica_applies_once(pair: Pair) -> None:
    interaction = pair.a.driver.command('rank "Spring leads" lead-40 45')  # in the hopper: asks first
    question = pair.a.driver.replies(interaction, count=1, timeout=20)[0]
    assert is_question(question), texts(question)
    pair.control.reset_stats()

    applied = pair.b.click(question, ACTION_APPLY_ANYWAY)  # asked through A, answered through B
    again = pair.a.click(question, ACTION_APPLY_ANYWAY)

    assert "Rank of lead-40" in texts(applied), texts(applied)
    assert "Rank of lead-40" not in texts(again), texts(again)
    assert pair.control.count(UPDATE_ROUTE) == 1
    assert pair.lead("lead-40").rank == 45
    assert [record["outcome"] for record in pair.records("lead_uid = 'lead-40'")] == ["ok"]


def test_one_replica_watches_the_campaigns_and_every_home_tab_shows_its_alert(pair: Pair) -> None:
    _wait_until(lambda: bool(pair.alerts()))
    time.sleep(1.5)  # the other replica's first pass would have posted by now

    (alert,) = pair.alerts()
    assert alert.startswith(":warning: *Renewals*: hopper low")
    (lease,) = store_rows(pair.db, "SELECT name, holder FROM leases")
    assert lease["name"] == f"alerts:{ALERTS}"
    for replica in (pair.a, pair.b):  # the Home tab of either replica, whichever posted it
        seen = len(pair.stub.events)
        assert replica.driver.open_home().status == 200
        view = pair.stub.wait_home_view(USER, after=seen)
        assert "last alert: Renewals: hopper low" in texts(view), (replica.name, texts(view))


def test_another_replica_takes_over_when_the_watching_one_stops_answering(pair: Pair) -> None:
    _wait_until(lambda: bool(pair.alerts()))
    (lease,) = store_rows(pair.db, "SELECT holder FROM leases")
    holder_pid = int(lease["holder"].split(":")[1])
    holder, other = (pair.a, pair.b) if pair.a.process.pid == holder_pid else (pair.b, pair.a)
    assert holder.process.pid == holder_pid

    os.kill(holder.process.pid, signal.SIGSTOP)  # frozen: it neither watches nor renews its lease
    try:
        for _ in range(5):  # Spring outreach dialled empty: no dialable lead left
            pair.control.dial(DEMO_CAMPAIGN_ID, 20)
        _wait_until(lambda: len(pair.alerts()) >= 2, timeout=LEASE_S + 15)
        (lease,) = store_rows(pair.db, "SELECT holder FROM leases")
        assert int(lease["holder"].split(":")[1]) == other.process.pid
    finally:
        os.kill(holder.process.pid, signal.SIGCONT)
    time.sleep(1.5)  # the thawed replica finds its lease taken: it posts nothing

    renewals, spring = pair.alerts()
    assert renewals.startswith(":warning: *Renewals*: hopper low")  # not repeated by the replica taking over
    assert spring.startswith(":rotating_light: *Spring outreach*: no dialable leads left"), spring
