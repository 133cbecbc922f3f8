"""Test helpers shared by every test package, in one place (fixtures live in the conftest.py files).

- `run`: an awaitable from synchronous test code;
- the sandbox: `SSL_CONTEXT`, `fetch_token`, `SandboxControl` (its own endpoints: faults, stats, dialling);
- the end-to-end bot: `Bot` and `start_bot` (the real Bolt app over HTTP on loopback, the babelforce sandbox behind
  it, the Slack stand-in in front), `shared_bot` for module-scoped fixtures, and what tests read in its answers
  (`texts`, `block`, `header`, `caveat`, ...) or in the sandbox (`snapshot`, `all_leads`, `writes`, ...);
- metrics: `scrape` reads a /metrics page (HTTP mode's, or Socket Mode's LEADBOT_METRICS_PORT);
- the command line: `clean_env` (no SLACK_/BABELFORCE_/LEADBOT_ setting of the developer's shell), `leadbot` (the
  `leadbot` command in this process, for what it says before serving anything; a real process costs its imports),
  `LeadbotProcess` (`leadbot ARGS` as a real process, its output collected as it comes).
"""

from __future__ import annotations

import asyncio
import copy
import os
import secrets
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from babelforce import BabelforceClient, ClientCredentials, PasswordLogin, RetryPolicy
from babelforce.config import Timeouts
from bot import cli
from bot.alerts import AlertWatcher
from bot.app import EVENTS_PATH, build_app, http_app
from bot.audit import open_store
from bot.finder import DEFAULT_MAX_LISTS
from bot.permissions import AccessPolicy, Gatekeeper
from bot.pipeline import Leadbot
from bot.service import LeadService
from commands.blocks import (
    ACTION_APPLY_ANYWAY,
    BLOCK_CAVEAT,
    BLOCK_CONFIRM,
    BLOCK_ERROR,
    BLOCK_HISTORY,
    BLOCK_LEAD_HEADER,
    BLOCK_PROGRESS,
    BLOCK_USAGE,
)
from localserve import BackgroundServer
from localserve.postgres import LOCAL_POSTGRES_URL as LOCAL_POSTGRES_URL
from localserve.postgres import POSTGRES_URL_ENV as POSTGRES_URL_ENV
from localserve.postgres import PostgresServer as PostgresServer
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from slackstub import Interaction, SlackDriver, SlackStub

T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]], timeout: float | None = 10.0) -> T:
    """Await `factory()` in a fresh event loop and return its result; TimeoutError after `timeout` s (None: wait)."""

    async def main() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(main())


# ---------------------------------------------------------------------- the babelforce sandbox

# Building an SSL context loads the CA bundle (tens of ms); loopback tests make many clients, so share one.
SSL_CONTEXT = ssl.create_default_context()

SANDBOX_CLIENT = ClientCredentials("sandbox", SecretStr("sandbox"))
#: Fast backoff so retry tests take milliseconds; the deadline still bounds every call.
FAST_RETRY = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.5)


def fetch_token(base_url: str) -> str:
    """A bearer token from the sandbox via the client_credentials grant."""
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"},
        verify=SSL_CONTEXT,
    )
    response.raise_for_status()
    return response.json()["access_token"]


class SandboxControl:
    """The sandbox's own endpoints (faults, stats, dialling), called with plain httpx."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=10, verify=SSL_CONTEXT)

    def faults(self, *rules: dict[str, Any]) -> None:
        self._http.post("/sandbox/faults", json=list(rules)).raise_for_status()

    def clear_faults(self) -> None:
        self._http.delete("/sandbox/faults").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self._http.get("/sandbox/stats").json()

    def reset_stats(self) -> None:
        self._http.delete("/sandbox/stats").raise_for_status()

    def count(self, route: str) -> int:
        return self.stats()["byRoute"].get(route, 0)

    def expire_tokens(self) -> None:
        self._http.post("/sandbox/tokens/expire").raise_for_status()

    def export_shape(self, dialect: str | None = None, headers: str | None = None) -> dict[str, Any]:
        """How the sandbox writes lead exports from now on (`--csv-dialect` / `--csv-headers`; None keeps it)."""
        body = {name: value for name, value in (("dialect", dialect), ("headers", headers)) if value is not None}
        response = self._http.put("/sandbox/export", json=body)
        response.raise_for_status()
        return response.json()

    def dial(
        self, campaign_id: str, count: int, status: str = "no_answer", *, agent: str | None = None, talk_s: int = 0
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"count": count, "status": status}
        if agent is not None:
            body.update(agent=agent, talk_s=talk_s)
        response = self._http.post(f"/sandbox/campaigns/{campaign_id}/dial", json=body)
        response.raise_for_status()
        return response.json()["items"]

    def agents(self, campaign_id: str, *names: str) -> None:
        """Exactly these agents are logged in to the campaign from now on."""
        self._http.put(f"/sandbox/campaigns/{campaign_id}/agents", json={"agents": list(names)}).raise_for_status()

    def token(self) -> str:
        form = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
        return self._http.post("/oauth/token", data=form).json()["access_token"]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        return self._http.request(method, path, headers=headers, **kwargs)

    def close(self) -> None:
        self._http.close()


# ---------------------------------------------------------------------- the bot, end to end

#: The channel a test's alerts go to (start_bot's `alerts`).
ALERT_CHANNEL = "C0ALERTS"

#: Routes that change leads in the sandbox (keys of SandboxControl.stats()["byRoute"]).
ADD_ROUTE = "POST /api/v2/outbound/lists/{id}/leads"
UPDATE_ROUTE = "PUT /api/v2/outbound/lists/{id}/leads/{leadId}"
DELETE_ROUTE = "DELETE /api/v2/outbound/lists/{id}/leads/{leadId}"
WRITE_ROUTES = (ADD_ROUTE, UPDATE_ROUTE, DELETE_ROUTE)


@dataclass
class Bot:
    """One bot under test and everything around it."""

    sandbox: SandboxServer
    control: SandboxControl
    stub: SlackStub
    driver: SlackDriver
    server: BackgroundServer
    leadbot: Leadbot
    signing_secret: str

    def command(self, text: str) -> Interaction:
        return self.driver.command(text)

    def ask(self, text: str, timeout: float = 15.0) -> dict[str, Any]:
        """Run `/lead text` and return the bot's final answer: the ack when it is final, else the reply."""
        interaction = self.driver.command(text)
        assert interaction.status == 200, interaction.body
        assert interaction.acked_in_time, f"ack took {interaction.elapsed:.2f} s"
        if interaction.json and not is_progress(interaction.json):
            return interaction.json
        return self.driver.replies(interaction, count=1, timeout=timeout)[0]

    def apply(self, text: str, timeout: float = 15.0) -> dict[str, Any]:
        """Run `/lead text`; the bot must ask "apply anyway?" first (asserted, with nothing written yet); click
        Apply anyway and return the lead card it answers with."""
        interaction = self.driver.command(text)
        assert interaction.status == 200, interaction.body
        question = self.driver.replies(interaction, count=1, timeout=timeout)[0]
        assert is_question(question), f"expected an 'apply anyway?' question, got: {texts(question)}"
        click = self.driver.click(question, ACTION_APPLY_ANYWAY)
        assert click.status == 200 and click.acked_in_time
        return self.driver.replies(click, count=1, timeout=timeout)[0]

    def lead(self, uid: str, list_id: str = DEMO_LIST_ID) -> Any:
        """The sandbox's own record of a lead (not through the bot), or None."""
        with self.sandbox.state.lock:
            for lead in self.sandbox.state.iter_leads(list_id):
                if lead.uid == uid:
                    return lead
        return None

    def lead_count(self, list_id: str = DEMO_LIST_ID) -> int:
        with self.sandbox.state.lock:
            return sum(1 for _ in self.sandbox.state.iter_leads(list_id))


def start_bot(
    sandbox: SandboxServer,
    *,
    allow_writes: bool = True,
    default_region: str | None = None,
    policy: AccessPolicy | None = None,
    audit_path: str | Path = ":memory:",
    audit_channel: str | None = None,
    credentials: ClientCredentials | PasswordLogin | None = None,
    timeouts: Timeouts | None = None,
    bot_token: str | None = None,
    settle_after: tuple[float, float] | None = None,
    alerts: dict[str, Any] | None = None,
    find_max_lists: int = DEFAULT_MAX_LISTS,
) -> Iterator[Bot]:
    """A generator that yields one running bot and stops it when closed (use `yield from` in a fixture).

    `allow_writes`: everyone may write (LEADBOT_ALLOW_ALL_WRITERS) or nobody; `policy` overrides it. The babelforce
    client logs in to `sandbox` with `credentials` (the sandbox's client_credentials by default), retries fast
    (FAST_RETRY) and takes `timeouts` (the product's by default); the Slack stand-in issues `bot_token`;
    `find_max_lists` is LEADBOT_FIND_MAX_LISTS. `alerts`: AlertWatcher options (channel, interval, quiet, ...): the
    watcher is built and started as `leadbot run --http` does (on the HTTP app's start-up), posting to the Slack
    stand-in.
    """
    signing_secret = secrets.token_hex(16)
    client_options: dict[str, Any] = {"credentials": credentials or SANDBOX_CLIENT, "retry": FAST_RETRY}
    if timeouts is not None:
        client_options["timeouts"] = timeouts
    client = BabelforceClient(base_url=sandbox.base_url, **client_options)
    audit = open_store(audit_path)
    stub_options = {"bot_token": bot_token} if bot_token is not None else {}
    with SlackStub(**stub_options) as stub:
        if audit_channel is not None:
            stub.add_channel(audit_channel, "leadbot-audit")  # README: invite the bot to that channel
        gate = Gatekeeper(
            policy or AccessPolicy(allow_all_writers=allow_writes),
            AsyncWebClient(token=stub.bot_token, base_url=stub.api_url),
        )
        slack = AsyncWebClient(token=stub.bot_token, base_url=stub.api_url)
        watcher = None
        if alerts is not None:
            options = {"spacing": 0.0, **alerts}
            alert_channel = options.pop("channel", ALERT_CHANNEL)
            stub.add_channel(alert_channel, "leadbot-alerts")  # README: invite the bot to that channel
            watcher = AlertWatcher(client, slack, alert_channel, store=audit, **options)  # as leadbot run builds it
        leadbot = Leadbot(
            LeadService(client, default_region=default_region),
            audit=audit,
            gate=gate,
            audit_channel=audit_channel,
            slack=slack,
            find_max_lists=find_max_lists,
            **({"settle_after": settle_after} if settle_after is not None else {}),
            alerts=watcher,
        )
        bolt = build_app(leadbot, bot_token=stub.bot_token, signing_secret=signing_secret, slack_api_url=stub.api_url)
        app = http_app(
            bolt, signing_secret=signing_secret, on_shutdown=leadbot.shutdown, on_startup=leadbot.start_watching
        )
        with (
            BackgroundServer(app, lifespan="on") as server,
            SlackDriver(stub, server.base_url + EVENTS_PATH, signing_secret) as driver,
        ):
            control = SandboxControl(sandbox.base_url)
            try:
                yield Bot(sandbox, control, stub, driver, server, leadbot, signing_secret)
            finally:
                with suppress(httpx.HTTPError):  # the test may have stopped the sandbox itself
                    control.clear_faults()  # a trickling answer must not hold up the servers' shutdown
                control.close()
                audit.close()


def shared_bot(**kwargs: Any) -> Iterator[Bot]:
    """A bot and its own demo sandbox, for a module-scoped fixture over tests that change nothing (or only
    leads no other test of the module looks at)."""
    with SandboxServer(seed="demo") as sandbox:
        yield from start_bot(sandbox, **kwargs)


def is_progress(message: dict[str, Any]) -> bool:
    return any(block.get("block_id") == BLOCK_PROGRESS for block in message.get("blocks", []))


def is_question(message: dict[str, Any]) -> bool:
    """An "apply anyway?" question (a change that would not affect dialling now, not made yet)."""
    return any(block.get("block_id") == BLOCK_CONFIRM for block in message.get("blocks", []))


def texts(message: dict[str, Any]) -> str:
    """Every text of a message's blocks, joined: what a reader sees, for assertions on wording."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") in {"mrkdwn", "plain_text"} and isinstance(value.get("text"), str):
                parts.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(message.get("blocks", []))
    return "\n".join(parts)


def block(message: dict[str, Any], block_id: str) -> dict[str, Any]:
    for candidate in message.get("blocks", []):
        if candidate.get("block_id") == block_id:
            return candidate
    raise AssertionError(f"no block {block_id!r} in {[b.get('block_id') for b in message.get('blocks', [])]}")


def caveat(message: dict[str, Any]) -> str:
    """The text of the lead card's caveat block."""
    return texts({"blocks": [block(message, BLOCK_CAVEAT)]})


def header(message: dict[str, Any]) -> str:
    return block(message, BLOCK_LEAD_HEADER)["text"]["text"]


def error_text(message: dict[str, Any]) -> str:
    return block(message, BLOCK_ERROR)["text"]["text"]


def usage_text(message: dict[str, Any]) -> str:
    return texts({"blocks": [block(message, BLOCK_USAGE)]})


def history_lines(message: dict[str, Any]) -> list[str]:
    """A /lead history reply's lines (one section per change), as the user reads them (escapes undone)."""
    prefix = f"{BLOCK_HISTORY}_"
    return [
        unescape(found["text"]["text"])
        for found in message.get("blocks", [])
        if found.get("block_id", "").startswith(prefix)
    ]


def unescape(text: str) -> str:
    """mrkdwn text as the user reads it (Slack's three escapes undone)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def writes(bot: Bot) -> int:
    """How many lead-changing requests the sandbox received since the last reset_stats."""
    routes = bot.control.stats()["byRoute"]
    return sum(routes.get(route, 0) for route in WRITE_ROUTES)


def snapshot(bot: Bot, uid: str, list_id: str = DEMO_LIST_ID) -> Any:
    """A deep copy of the sandbox's record of a lead, to compare before and after a command."""
    with bot.sandbox.state.lock:
        return copy.deepcopy(bot.lead(uid, list_id))


def all_leads(bot: Bot, list_id: str = DEMO_LIST_ID) -> list[Any]:
    with bot.sandbox.state.lock:
        return [copy.deepcopy(lead) for lead in bot.sandbox.state.iter_leads(list_id)]


def hopper_uids(bot: Bot, campaign_id: str) -> list[str]:
    return [entry.uid for entry in bot.sandbox.state.hopper(campaign_id)]


def final_answer(bot: Bot, text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run `/lead text`; return the final answer and every message the user saw (the ack and the replies)."""
    interaction = bot.command(text)
    assert interaction.status == 200, interaction.body
    assert interaction.acked_in_time, f"ack took {interaction.elapsed:.2f} s"
    assert interaction.json is not None, f"ack without a message: {interaction.body!r}"
    if not is_progress(interaction.json):
        return interaction.json, [interaction.json]
    reply = bot.driver.replies(interaction, count=1)[0]
    return reply, [interaction.json, reply]


@contextmanager
def reads_fail_once_a_put_arrives(bot: Bot, *keep: dict[str, Any], timeout: float = 5.0) -> Iterator[None]:
    """While the block runs: as soon as the sandbox has received a PUT, every GET answers 503 (the earlier rules
    are replaced by `keep` and that one). The plan's reads pass; reading the lead back after a lost answer fails."""

    def arm() -> None:
        until = time.monotonic() + timeout
        while bot.control.count(UPDATE_ROUTE) < 1 and time.monotonic() < until:
            time.sleep(0.01)
        bot.control.faults(*keep, {"method": "GET", "status": 503, "times": None})

    with ThreadPoolExecutor(1) as pool:
        arming = pool.submit(arm)
        yield
        arming.result()


# ---------------------------------------------------------------------- test data more than one module uses

ADD = 'add "Spring leads" new-1 +4915199990001'  # up to the rank
#: Every kind of validation error: test_commands_e2e checks each is answered in the ack, names the field, shows the
#: usage and calls nothing; test_block_kit_e2e that each answer is valid Block Kit.
VALIDATION_ERRORS = [
    # (id, command text, words naming the field, subcommand whose usage is shown (None: all), lead to watch)
    ("bad number", 'add "Spring leads" new-1 12345 500', "number '12345'", "add", None),
    ("letters in number", 'set "Spring leads" lead-12 number=call-me', "number 'call-me'", "set", "lead-12"),
    ("rank too high", 'rank "Spring leads" lead-10 40000', "rank 40000 is out of range", "rank", "lead-10"),
    ("rank too low", 'rank "Spring leads" lead-10 -32769', "rank -32769 is out of range", "rank", "lead-10"),
    ("rank not whole", 'rank "Spring leads" lead-10 1.5', "rank must be a whole number", "rank", "lead-10"),
    ("rank a word", f"{ADD} high", "rank must be a whole number", "add", None),
    ("rank in set", 'set "Spring leads" lead-12 rank=abc', "rank must be a whole number", "set", "lead-12"),
    ("empty uid", 'add "Spring leads" "" +4915199990001 5', "uid must not be empty", "add", None),
    ("empty uid in set", 'set "Spring leads" lead-12 uid=""', "uid must not be empty", "set", "lead-12"),
    ("empty data key", 'set "Spring leads" lead-12 =value', "data keys must not be empty", "set", "lead-12"),
    ("empty quoted data key", f'{ADD} 5 ""=x', "data keys must not be empty", "add", None),
    ("null in add", f"{ADD} 5 city=null", "data key 'city' cannot be null", "add", None),
    ("unknown subcommand", 'delete "Spring leads" lead-12', "no command 'delete'", None, "lead-12"),
    ("missing rank", 'rank "Spring leads" lead-10', "rank needs <rank>", "rank", "lead-10"),
    ("missing rank in add", ADD, "add needs <rank>", "add", None),
    ("missing change", 'set "Spring leads" lead-12', "set needs at least one key=value", "set", "lead-12"),
    ("too many", 'show "Spring leads" lead-40 extra', "'extra' is one too many", "show", "lead-40"),
    ("unquoted list", "rank Spring leads lead-10 100", "'100' is one too many", "rank", "lead-10"),
    ("unclosed quote", 'rank "Spring leads lead-10 100', "unclosed double quote", "rank", "lead-10"),
]


# ---------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Scrape:
    """One read of a /metrics page: its text and its samples (as prometheus_client's parser reads them)."""

    text: str
    samples: tuple[Sample, ...]

    def value(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(key) == wanted for key, wanted in labels.items())
        )

    def labels(self, name: str) -> list[dict[str, str]]:
        return [dict(sample.labels) for sample in self.samples if sample.name == name]


def scrape(url: str) -> Scrape:
    """GET a /metrics page, unsigned, as Prometheus does."""
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    families = text_string_to_metric_families(response.text)
    return Scrape(response.text, tuple(sample for family in families for sample in family.samples))


# ---------------------------------------------------------------------- the command line

SETTINGS_PREFIXES = ("SLACK_", "BABELFORCE_", "LEADBOT_")


def clean_env(**values: str) -> dict[str, str]:
    """This environment without any SLACK_/BABELFORCE_/LEADBOT_ variable of the developer's shell, plus `values`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_PREFIXES)}
    env.update(values)
    return env


@dataclass(frozen=True)
class Exited:
    """What `leadbot ...` run in this process gave: its exit status and its output."""

    returncode: int
    stdout: str
    stderr: str


def leadbot(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Exited:
    """`leadbot ARGS` in this process (bot.cli.main, as the console script calls it), with exactly `env`'s
    SLACK_/BABELFORCE_/LEADBOT_ settings, in `cwd` (where it looks for .env and data/): for the start-up checks that
    refuse before anything is served. An argparse error exits with status 2, as it does from the shell."""
    for key in [key for key in os.environ if key.startswith(SETTINGS_PREFIXES)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(SETTINGS_PREFIXES):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        status = cli.main(args)
    except SystemExit as exited:
        status = exited.code if isinstance(exited.code, int) else 1
    out, err = capsys.readouterr()
    return Exited(status, out, err)


class LeadbotProcess:
    """`python -m bot.cli ARGS` in its own process; its output (stdout and stderr) is collected by a thread so
    that reading it can never block the test (nor the process on a full pipe)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="leadbot output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_output(self, text: str, timeout: float) -> bool:
        """True once `text` appears in the output within `timeout` s; False when it does not, or the process
        ended without printing it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while text not in "".join(self._lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    return False
                self._cond.wait(min(remaining, 0.1))
            return True

    def wait_healthy(self, base_url: str, timeout: float = 30.0) -> None:
        """Wait until HTTP mode answers its health check; fail with the output when it ends or does not answer."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1) as probe:
            while True:
                with suppress(httpx.TransportError):
                    if probe.get(f"{base_url}/healthz").status_code == 200:
                        return
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"leadbot did not come up at {base_url}:\n{self.output}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


# ---------------------------------------------------------------------- the audit store: SQLite and PostgreSQL

#: Set (as .ci/run does, and CI=true does) to make a missing PostgreSQL fail the tests instead of skipping them.
REQUIRE_POSTGRES_ENV = "LEADBOT_TEST_REQUIRE_POSTGRES"
#: Every skip for want of PostgreSQL starts so (tests/conftest.py counts them in the terminal summary).
POSTGRES_SKIP = "no PostgreSQL for the store tests"


def is_postgres(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def store_rows(target: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run one statement (`?` placeholders) on an audit store as an operator would, with the database's own client:
    sqlite3 on a file, psycopg on PostgreSQL. Rows as dicts, timestamps as ISO text in both (as SQLite keeps them)."""
    if not is_postgres(target):
        with closing(sqlite3.connect(target)) as conn:
            conn.row_factory = sqlite3.Row
            cursor = conn.execute(sql, params)
            rows = [dict(row) for row in cursor.fetchall()] if cursor.description else []
            conn.commit()
            return rows
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(str(target), autocommit=True, row_factory=dict_row) as pg:
        cursor = pg.execute(sql.replace("%", "%%").replace("?", "%s"), params)  # type: ignore[arg-type]
        found = cursor.fetchall() if cursor.description else []
    return [
        {
            name: value.astimezone(UTC).isoformat(timespec="microseconds") if isinstance(value, datetime) else value
            for name, value in row.items()
        }
        for row in found
    ]


def postgres_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(REQUIRE_POSTGRES_ENV, "") not in ("", "0")
