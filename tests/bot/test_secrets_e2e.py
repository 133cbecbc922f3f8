"""No secret ever leaves leadbot (issue 4): a realistic session end to end — every subcommand, failures, a form,
babelforce faults, an expired token, Slack refusing replies, requests with bad signatures — with every logger of the
process at DEBUG and stdout/stderr captured; then no secret may appear in the log text, in what Slack received
(replies, Web API calls) or in any ack, no rejected request's body may be logged, and no log line at INFO or above
may carry a full phone number.

The secrets are made distinctive for this module (random hex), so a hit is a leak and not a coincidence: the
signing secret, the bot token, the babelforce password and client secret (the sandbox is told to expect them), and
every access and refresh token the sandbox issued during the session.

Capture is module-wide rather than `caplog` (which is per test): one handler on the root logger and on uvicorn's
loggers (which do not propagate), every relevant logger set to DEBUG for the session and restored afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus, urlencode

import pytest
from pydantic import SecretStr

import sandbox.app as sandbox_app
from babelforce import PasswordLogin
from babelforce.config import Timeouts
from bot.run import CHATTY_LOGGERS
from commands.modals import BLOCK_DATA, BLOCK_LIST, BLOCK_NUMBER, BLOCK_RANK, BLOCK_UID
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from slackstub.driver import Interaction
from slackstub.signing import FORM_CONTENT_TYPE, signed_headers
from tests.support import Bot, is_progress, start_bot

TOKEN_ROUTE = "POST /oauth/token"
#: Loggers set to DEBUG for the session (with their children); uvicorn's do not propagate, so they get the handler.
LOUD = ("", "bot", "babelforce", "commands", "slack_bolt", "slack_sdk", "httpx", "httpcore", "aiohttp", "uvicorn",
        "websockets", "asyncio", "sandbox", "slackstub")  # fmt: skip
NON_PROPAGATING = ("uvicorn", "uvicorn.error", "uvicorn.access")


@dataclass
class Session:
    secrets: dict[str, list[str]]  # what -> values that must never appear
    records: list[tuple[int, str, str]] = field(default_factory=list)  # (level, logger, formatted text)
    output: str = ""  # what went to stdout / stderr in the process
    acks: list[str] = field(default_factory=list)  # every HTTP answer the bot gave Slack
    rejected_bodies: dict[str, str] = field(default_factory=dict)  # forged / malformed -> body
    numbers: set[str] = field(default_factory=set)  # E.164 numbers of the leads touched
    slack: str = ""  # everything the bot sent to Slack, as JSON text
    commands: int = 0
    token_requests: int = 0

    def log_text(self) -> str:
        return "\n".join(text for _, _, text in self.records) + "\n" + self.output

    def info_lines(self) -> list[str]:
        return [text for level, _, text in self.records if level >= logging.INFO]


class Capture(logging.Handler):
    def __init__(self, session: Session) -> None:
        super().__init__(logging.DEBUG)
        self.session = session
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except (TypeError, ValueError, KeyError):  # unformattable: still evidence, keep its raw parts
            text = f"{record.levelname} {record.name}: {record.msg!r} {record.args!r}"
        self.session.records.append((record.levelno, record.name, text))


@contextlib.contextmanager
def process_output(session: Session) -> Iterator[None]:
    """stdout and stderr of the process, from before the servers start (uvicorn binds its log handlers to the
    streams of that moment) until they have stopped."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        session.output = out.getvalue() + err.getvalue()


@contextlib.contextmanager
def everything_logged(session: Session) -> Iterator[None]:
    """Every record of the relevant loggers, DEBUG and up, into `session.records`; levels restored afterwards.
    Entered once the servers run: starting a uvicorn server reconfigures uvicorn's loggers."""
    handler = Capture(session)
    names = [n for n in list(logging.root.manager.loggerDict) if any(n == p or n.startswith(p + ".") for p in LOUD)]
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in names)]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    logging.getLogger().addHandler(handler)
    for name in NON_PROPAGATING:
        logging.getLogger(name).addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        for name in NON_PROPAGATING:
            logging.getLogger(name).removeHandler(handler)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


def command_body(bot: Bot, text: str, response_url: str | None = None) -> bytes:
    """A slash command's body as Slack sends it (response_url and trigger from the stub)."""
    return urlencode(bot.driver.command_fields(text, response_url=response_url)).encode()


def run_session(bot: Bot, session: Session) -> None:
    """What a day of supervisors' use looks like, failures and outages included."""
    tokens = bot.sandbox.state.tokens

    def remember_tokens() -> None:
        with bot.sandbox.state.lock:
            session.secrets["access token"] += [t for t in tokens.access if t not in session.secrets["access token"]]
            session.secrets["refresh token"] += [t for t in tokens.refresh if t not in session.secrets["refresh token"]]

    def sent(interaction: Interaction) -> Interaction:
        session.commands += 1
        session.acks.append(interaction.body)
        assert interaction.status == 200, interaction.body
        remember_tokens()
        return interaction

    def ask(text: str) -> dict[str, Any]:
        interaction = sent(bot.command(text))
        if interaction.json is not None and not is_progress(interaction.json):
            return interaction.json
        reply = bot.driver.replies(interaction, timeout=15)[0]
        remember_tokens()
        return reply

    def refused(which: str, body: bytes, headers: dict[str, Any]) -> None:
        response = bot.driver.post_raw(body, headers)
        session.commands += 1
        session.acks.append(response.text)
        session.rejected_bodies[which] = body.decode()
        assert response.status_code == 401, response.text

    control = bot.control
    session.numbers |= {"+4915100000040", "+4915100000024", "+4915100000025", "+4915199997025"}
    session.numbers |= {"+4915199997001", "+4915199997002", "+4915199997003", "+4915199997004"}
    # Every subcommand, with a lead found by number too.
    ask("help")
    ask("")
    ask('show "Spring leads" lead-40')
    ask('show "Spring leads" +4915100000040')
    ask('show "Spring leads" 004915100000024')
    ask('rank "Spring leads" lead-24 34')
    ask('set "Spring leads" lead-25 number=+4915199997025 city=Kiel "new data"=new')
    ask('add "Spring leads" session-1 +4915199997001 7 address="martin mendalde"')
    # Failures: unknown lead and list, a bad number, a duplicate uid, a rank out of range.
    ask('show "Spring leads" +4915199990999')
    ask('show "Winter leads" lead-40')
    ask('add "Spring leads" session-x 12345 5')
    ask('add "Spring leads" lead-5 +4915199997002 5')
    ask('rank "Spring leads" lead-24 40000')
    # babelforce failing: retried 503s, a persistent 500 on a write, 429 beyond the retries, a lost add, a stall.
    control.faults({"method": "GET", "path": r"/leads/[0-9a-f]{32}$", "status": 503, "times": 2})
    ask('show "Spring leads" lead-24')
    control.faults({"method": "PUT", "status": 500, "times": None})
    ask('rank "Spring leads" lead-26 36')
    control.clear_faults()
    control.faults({"method": "PUT", "status": 429, "retry_after": 1, "times": None})
    ask('set "Spring leads" lead-26 city=Kiel')
    control.clear_faults()
    control.faults({"method": "POST", "path": r"/leads$", "reset": "after", "times": 1})
    ask('add "Spring leads" session-2 +4915199997003 8')
    control.faults({"method": "PUT", "stall_s": 60, "times": 1})
    ask('rank "Spring leads" lead-27 37')
    control.clear_faults()
    # An expired token: refreshed once (password grant, rotating refresh token).
    control.expire_tokens()
    ask('rank "Spring leads" lead-28 38')
    # Slack refusing: the response_url used up (fallback to chat.postEphemeral), then that failing too.
    bot.stub.fail("chat.postEphemeral", status=500)
    for n in (29, 30):
        body = command_body(bot, f'rank "Spring leads" lead-{n} 4{n % 10}', bot.stub.new_response_url(uses=0))
        started = time.monotonic()
        response = bot.driver.post_raw(body, signed_headers(bot.signing_secret, body))
        session.commands += 1
        session.acks.append(response.text)
        assert response.status_code == 200
        bot.stub.wait_for(lambda e, t=started: e.kind == "api" and e.name == "chat.postEphemeral" and e.at >= t)
    # A form: /lead add opens it, the submission adds the lead.
    opened = sent(bot.command("add"))
    view = bot.driver.opened_view(opened)
    answers = {
        BLOCK_LIST: DEMO_LIST_ID,
        BLOCK_UID: "session-form",
        BLOCK_NUMBER: "+4915199997004",
        BLOCK_RANK: "9",
        BLOCK_DATA: "address=martin mendalde",
    }
    submitted = sent(bot.driver.submit(view, answers, interaction=opened))
    assert submitted.status == 200
    bot.driver.replies(opened, timeout=15)
    # Requests that are not Slack's: a forged signature (valid-looking headers) and a malformed timestamp.
    marker = f"REJECTED-{secrets.token_hex(6)}"
    forged = command_body(bot, f'show "Spring leads" lead-40 {marker}-forged')
    refused("forged", forged, signed_headers("not-the-signing-secret", forged))
    malformed = command_body(bot, f'show "Spring leads" lead-40 {marker}-malformed')
    bad_timestamp = {"Content-Type": FORM_CONTENT_TYPE, "X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0"}
    refused("malformed", malformed, bad_timestamp)
    session.secrets["rejected marker"] = [marker]
    # The bot still serves: and by the time this answer is in, everything above has been delivered.
    ask('show "Spring leads" lead-28')
    remember_tokens()
    events = list(bot.stub.events)
    session.slack = json.dumps([[e.kind, e.name, e.payload, e.response] for e in events], ensure_ascii=False)


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    client_secret, password = f"cs{secrets.token_hex(12)}", f"pw{secrets.token_hex(12)}"
    bot_token = f"xoxb-{secrets.token_hex(12)}"
    result = Session({"babelforce client secret": [client_secret], "babelforce password": [password]})
    with pytest.MonkeyPatch.context() as patch, process_output(result), SandboxServer(seed="demo") as sandbox:
        # The sandbox's `manager` client becomes confidential and the demo user gets this module's password.
        patch.setitem(sandbox_app.CLIENT_SECRETS, "manager", client_secret)
        patch.setattr(sandbox_app, "DEMO_PASSWORD", password)
        credentials = PasswordLogin("demo", SecretStr(password), client_secret=SecretStr(client_secret))
        starting = start_bot(sandbox, credentials=credentials, timeouts=Timeouts(deadline=1.5), bot_token=bot_token)
        bot = next(starting)
        result.secrets.update(
            {"signing secret": [bot.signing_secret], "bot token": [bot.stub.bot_token], "access token": [],
             "refresh token": []}
        )  # fmt: skip
        with everything_logged(result):
            try:
                run_session(bot, result)
                result.token_requests = bot.control.count(TOKEN_ROUTE)
            finally:
                starting.close()  # the shutdown is logged too
    yield result


SECRET_KINDS = [
    "signing secret",
    "bot token",
    "babelforce client secret",
    "babelforce password",
    "access token",
    "refresh token",
]


def spellings(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}


def test_the_session_really_ran_and_the_capture_really_captured(session: Session) -> None:
    """The control for the tests below: they look for absences, so the capture must hold what it should."""
    assert session.commands >= 25
    assert len(session.secrets["access token"]) >= 2  # the first login and the refresh after the expiry
    assert len(session.secrets["refresh token"]) >= 2
    assert session.token_requests == 2  # the login, and one refresh after the tokens expired
    loggers = {name for _, name, _ in session.records}
    for expected in ("slack_sdk", "httpx", "httpcore", "bot", "babelforce"):
        assert any(name == expected or name.startswith(expected + ".") for name in loggers), (expected, loggers)
    assert any(level == logging.DEBUG for level, _, _ in session.records)
    log = session.log_text()
    assert "•" in log  # the bot's own command lines, with numbers masked
    assert "chat.postEphemeral fallback failed" in log
    assert "Invalid request signature" in log or "invalid request" in "".join(session.acks)
    assert "lead-40" in session.slack and "chat.postEphemeral" in session.slack


@pytest.mark.parametrize("kind", SECRET_KINDS)
def test_no_secret_appears_in_any_log_line_or_in_the_process_output(session: Session, kind: str) -> None:
    log = session.log_text()
    for value in session.secrets[kind]:
        for spelling in spellings(value):
            assert spelling not in log, f"{kind} found in the logs"


@pytest.mark.parametrize("kind", SECRET_KINDS)
def test_no_secret_appears_in_anything_slack_received_or_in_any_ack(session: Session, kind: str) -> None:
    acks = "\n".join(session.acks)
    for value in session.secrets[kind]:
        for spelling in spellings(value):
            assert spelling not in session.slack, f"{kind} found in what Slack received"
            assert spelling not in acks, f"{kind} found in an ack"


def test_the_body_of_a_request_with_malformed_signature_headers_is_not_logged(session: Session) -> None:
    assert_not_logged(session, "malformed")


def test_the_body_of_a_request_with_a_forged_signature_is_not_logged(session: Session) -> None:
    assert_not_logged(session, "forged")


def assert_not_logged(session: Session, which: str) -> None:
    log = session.log_text()
    body = session.rejected_bodies[which]
    assert f"{session.secrets['rejected marker'][0]}-{which}" not in log
    assert body not in log
    fields = dict(pair.split("=", 1) for pair in body.split("&"))
    assert fields["response_url"] not in log and unquote_plus(fields["response_url"]) not in log


def test_no_full_phone_number_in_any_log_line_at_info_or_above(session: Session) -> None:
    assert_no_numbers(session, session.info_lines())


def test_no_full_phone_number_at_debug_from_the_loggers_leadbot_leaves_at_debug(session: Session) -> None:
    """With LEADBOT_LOG_LEVEL=DEBUG, bot/run.py keeps the Slack and HTTP libraries at INFO (their DEBUG lines carry
    bodies); every other line, leadbot's own included, must still mask phone numbers. The sandbox and the Slack
    stand-in are not part of leadbot and are left out."""
    floored = (*CHATTY_LOGGERS, "sandbox", "slackstub")
    lines = [
        text
        for level, name, text in session.records
        if level >= logging.INFO or not any(name == f or name.startswith(f + ".") for f in floored)
    ]
    assert any(name.startswith("babelforce") and level == logging.DEBUG for level, name, _ in session.records)
    assert_no_numbers(session, lines)


def assert_no_numbers(session: Session, lines: list[str]) -> None:
    assert lines  # the control: there are lines to look at
    for number in sorted(session.numbers):
        digits = number.lstrip("+")
        leaking = [line for line in lines if digits in re.sub(r"[\s\-./()]", "", line)]
        assert not leaking, f"{number} in: {leaking[:3]}"
