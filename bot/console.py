"""`leadbot console`: the real Bolt app, a local stand-in for Slack and (by default) the local sandbox, in a terminal.

Each `/lead ...` line goes to the bot exactly as Slack would send it (a signed HTTP request to /slack/events); the
bot's answers (its ack, replies at the response_url, forms it opens) are captured by the Slack stand-in and shown
as text. A form becomes a series of prompts. Nothing here reaches the internet.
"""

from __future__ import annotations

import argparse
import functools
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, TextIO

import httpx
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from babelforce.auth import ClientCredentials
from babelforce.client import BabelforceClient
from commands.blocks import BLOCK_PROGRESS
from localserve import BackgroundServer
from sandbox import SandboxServer
from sandbox.seed import DEMO_CAMPAIGN_ID, DEMO_LIST
from sandbox.state import DIAL_STATUSES
from sandbox.state import Campaign as SandboxCampaign
from slackstub import NoAnswer, Recorded, SlackDriver, SlackStub, render_message, render_view
from slackstub.render import mrkdwn

from .alerts import AlertWatcher
from .app import EVENTS_PATH, build_app, http_app
from .audit import AuditLog
from .finder import DEFAULT_MAX_LISTS
from .permissions import AccessPolicy, Gatekeeper
from .pipeline import Leadbot
from .service import LeadService
from .settings import StartupError, load_babelforce_settings, load_settings

REPLY_TIMEOUT_S = 60.0
FORM_TIMEOUT_S = 10.0
POLL_S = 0.02
PROMPT = "leadbot> "
BUTTON_WORDS = frozenset({":undo", ":apply", ":cancel", ":delete", ":remove", ":keep"})
DIAL_USAGE = (
    "Usage: :dial [N] [status] [campaign], e.g. :dial 3 busy Renewals (N 1 or more; status one of babelforce's dial "
    "statuses, no_answer by default; the demo campaign by default)."
)

BANNER = """\
leadbot console: type /lead commands as in Slack (help: /lead help, quit: Ctrl-D or :quit).
{babelforce}
Try the babelforce article's two examples:
  /lead show "{demo}" lead-40
  /lead rank "{demo}" lead-40 45        (lead-40 is already in the hopper: leadbot asks before changing it)
  /lead rank "{demo}" lead-10 100       (not in the current batch: first of the next one)
  /lead add                              (no arguments: opens the form)
  /lead remove "{demo}" lead-40          (asks first; lead-40 stays in the loaded batch: try :dial 20)
Console extras: :dial [N] [status] [campaign] dials N leads (of the demo campaign unless named) with that outcome,
:hopper [campaign] shows a hopper, :home shows your Home tab, :quit leaves.
A reply's buttons are words: :undo, :apply (apply anyway), :cancel, :delete (/lead undo of an add), :remove (remove
lead), :keep. History's and the Home tab's Undo buttons are not; type /lead undo #12 with the line's number
instead.{alerts}
"""


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="  [log] %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings()
        babelforce_settings = load_babelforce_settings(required=False)
    except StartupError as problems:
        print("leadbot console cannot start:", file=sys.stderr)
        for problem in problems.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    lines: Iterator[str] | None = None
    if args.script is not None:
        try:
            lines = iter(args.script.read_text(encoding="utf-8").splitlines())
        except OSError as unreadable:
            print(f"Cannot read {args.script}: {unreadable.strerror}", file=sys.stderr)
            return 2
    with ExitStack() as stack:
        sandbox: SandboxServer | None = None
        if babelforce_settings is None:
            sandbox = stack.enter_context(SandboxServer(seed="demo", leads=args.leads))
            client = BabelforceClient(
                base_url=sandbox.base_url, credentials=ClientCredentials("sandbox", SecretStr("sandbox"))
            )
            where = f"babelforce: the local sandbox at {sandbox.base_url} (demo seed)."
        else:
            client = BabelforceClient.from_settings(babelforce_settings)
            where = f"babelforce: {client.base_url} (from BABELFORCE_* settings)."
        alerts = None
        if settings.leadbot_alert_channel is not None:
            alerts = {
                "channel": settings.leadbot_alert_channel,
                "interval": settings.leadbot_alert_interval,
                "hopper_min": settings.leadbot_alert_hopper_min,
            }
        console = stack.enter_context(
            Console.start(
                client,
                default_region=settings.leadbot_default_region,
                find_max_lists=settings.leadbot_find_max_lists,
                sandbox=sandbox,
                out=sys.stdout,
                alerts=alerts,
            )
        )
        said = (
            f"\nCampaign alerts to {settings.leadbot_alert_channel} are printed as they are posted ([alert] …)."
            if alerts
            else ""
        )
        print(BANNER.format(babelforce=where, demo=DEMO_LIST, alerts=said), flush=True)
        return console.loop(lines)


class Console:
    """The bot served on loopback, the Slack stand-in it talks to, and a reader of lines that drives both."""

    def __init__(
        self,
        stub: SlackStub,
        bot_server: BackgroundServer,
        driver: SlackDriver,
        sandbox: SandboxServer | None,
        out: TextIO,
    ) -> None:
        self.stub = stub
        self.bot_server = bot_server
        self.driver = driver
        self.sandbox = sandbox
        self.out = out
        self._stack: ExitStack | None = None
        self._buttons: dict[str, tuple[dict, dict]] = {}  # the last reply's buttons, by console word
        self._ask: Callable[[str], str | None] = _terminal_reader

    @classmethod
    def start(
        cls,
        client: BabelforceClient,
        *,
        default_region: str | None = None,
        find_max_lists: int = DEFAULT_MAX_LISTS,
        sandbox: SandboxServer | None = None,
        out: TextIO = sys.stdout,
        alerts: dict[str, Any] | None = None,
    ) -> Console:
        """Start the Slack stand-in and the bot (writes allowed: the console is one person's own session).

        `alerts`: the campaign watcher's options (`channel`, `interval`, `hopper_min`), when LEADBOT_ALERT_CHANNEL is
        set; its lines go to the Slack stand-in and are printed as they are posted."""
        stack = ExitStack()
        stub = stack.enter_context(SlackStub())
        signing_secret = secrets.token_hex(16)
        # Everyone may write (the console is one person's session); the audit trail lives as long as the session.
        audit = AuditLog(":memory:")
        stack.callback(audit.close)
        gate = Gatekeeper(AccessPolicy.open(), None)
        watcher = None
        if alerts is not None:
            options = dict(alerts)
            slack = AsyncWebClient(token=stub.bot_token, base_url=stub.api_url)
            alert_channel = options.pop("channel")
            stub.add_channel(alert_channel, "leadbot-alerts")  # as the README asks: the bot is invited there
            watcher = AlertWatcher(client, slack, alert_channel, **options)
            stub.on_record(functools.partial(_print_alert, watcher.channel, out))
        leadbot = Leadbot(
            LeadService(client, default_region=default_region),
            audit=audit,
            gate=gate,
            alerts=watcher,
            find_max_lists=find_max_lists,
        )
        bolt = build_app(leadbot, bot_token=stub.bot_token, signing_secret=signing_secret, slack_api_url=stub.api_url)
        app = http_app(
            bolt, signing_secret=signing_secret, on_shutdown=leadbot.shutdown, on_startup=leadbot.start_watching
        )
        bot_server = stack.enter_context(BackgroundServer(app, lifespan="on"))
        driver = stack.enter_context(SlackDriver(stub, bot_server.base_url + EVENTS_PATH, signing_secret))
        console = cls(stub, bot_server, driver, sandbox, out)
        console._stack = stack
        return console

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._stack is not None:
            self._stack.close()

    # ------------------------------------------------------------------ the loop

    def loop(self, lines: Iterator[str] | None = None) -> int:
        """Read lines (from `lines`, a script, or the terminal) until the end or :quit."""
        ask = _script_reader(lines, self.out) if lines is not None else _terminal_reader
        while True:
            line = ask(PROMPT)
            if line is None:
                return 0
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line in {":quit", ":q", "quit", "exit"}:
                return 0
            self.handle(line, ask)

    def handle(self, line: str, ask: Callable[[str], str | None]) -> None:
        self._ask = ask
        if line.startswith(":"):
            self._extra(line)
            return
        if line.startswith("/") and not line.startswith("/lead"):
            self._say(f"Only /lead is handled here (got {line.split()[0]}).")
            return
        text = line.removeprefix("/lead").strip() if line.startswith("/lead") else line
        interaction = self.driver.command(text)
        if interaction.status != 200:
            self._say(f"The bot answered HTTP {interaction.status}.")
            return
        if interaction.json:
            self._show(interaction.json)
            if not _is_progress(interaction.json):
                return
        elif interaction.body.strip():
            self._say(interaction.body)
            return
        self._follow(interaction, ask)

    def _follow(self, interaction: Any, ask: Callable[[str], str | None]) -> None:
        """After the ack: show the reply at the response_url, or walk through the form the bot opened."""
        seen = 0  # the response_url is this command's own: anything posted to it is the answer
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            replies = self.stub.responses(interaction.response_url)
            if len(replies) > seen:
                for reply in replies[seen:]:
                    self._show(reply)
                return
            opened = [
                call
                for call in self.stub.calls("views.open")
                if call.payload.get("trigger_id") == interaction.trigger_id
            ]
            if opened:
                self._fill_form(self.driver.opened_view(interaction), interaction, ask)
                return
            time.sleep(POLL_S)
        self._say(f"No answer from the bot within {REPLY_TIMEOUT_S:.0f} s.")

    def _fill_form(self, view: dict, interaction: Any, ask: Callable[[str], str | None]) -> None:
        self._say(render_view(view))
        inputs = [block for block in view.get("blocks", []) if block.get("type") == "input"]
        answers: dict[str, str] = {}
        todo = inputs
        while True:
            for block in todo:
                answer = self._ask_field(view, block, ask)
                if answer is None:
                    self._say("Form cancelled.")
                    return
                answers[block["block_id"]] = answer
            seen = len(self.stub.responses(interaction.response_url))
            submitted = self.driver.submit(view, answers, interaction=interaction)
            body = submitted.json or {}
            if body.get("response_action") == "errors":
                errors = body.get("errors", {})
                for block in inputs:
                    if block["block_id"] in errors:
                        self._say(f"  ✗ {_label(block)}: {errors[block['block_id']]}")
                todo = [block for block in inputs if block["block_id"] in errors]
                continue
            break
        try:
            replies = self.stub.wait_responses(interaction.response_url, count=seen + 1, timeout=REPLY_TIMEOUT_S)
        except NoAnswer:
            self._say(f"No answer from the bot within {REPLY_TIMEOUT_S:.0f} s.")
            return
        for reply in replies[seen:]:
            self._show(reply)

    def _ask_field(self, view: dict, block: dict, ask: Callable[[str], str | None]) -> str | None:
        element = block.get("element", {})
        label = _label(block)
        hint = (block.get("hint") or {}).get("text")
        optional = " (optional, Enter to skip)" if block.get("optional") else ""
        if hint:
            self._say(f"  {hint}")
        if element.get("type") in {"external_select", "static_select"}:
            options = self.driver.suggest(view, element["action_id"], "", block_id=block["block_id"])
            for number, option in enumerate(options, 1):
                self._say(f"  {number}. {option['text']['text']}")
            while True:
                answer = ask(f"{label}{optional} [number or name]: ")
                if answer is None:
                    return None
                picked = _pick(answer.strip(), options)
                if picked is not None or (block.get("optional") and not answer.strip()):
                    return picked or ""
                self._say(f"  ✗ {answer.strip()!r} is not one of the {len(options)} choices; type its number or name.")
        if element.get("multiline"):
            self._say(f"{label}{optional}: one per line, an empty line ends")
            lines: list[str] = []
            while True:
                line = ask("  | ")
                if line is None or not line.strip():
                    return "\n".join(lines)
                lines.append(line)
        return ask(f"{label}{optional}: ")

    # ------------------------------------------------------------------ extras

    def _extra(self, line: str) -> None:
        words = line.split()
        if words[0] in self._buttons:
            self._click(words[0], line)
            return
        if words[0] in BUTTON_WORDS:
            self._say(f"Nothing to {words[0][1:]} here: the last reply has no such button.")
            return
        if words[0] == ":home":
            self._home()
            return
        if self.sandbox is None:
            self._say("Console extras work only with the local sandbox (but :home works).")
            return
        if words[0] == ":dial":
            self._dial(words[1:])
        elif words[0] == ":hopper":
            campaign = self._campaign(" ".join(words[1:]))
            if campaign is not None:
                self._hopper(campaign)
        else:
            self._say(
                "Console extras: :dial [N] [status] [campaign], :hopper [campaign], :home, :quit; buttons of the last "
                "reply: :undo, :apply, :cancel, :delete, :remove, :keep."
            )

    def _dial(self, words: list[str]) -> None:
        """`:dial [N] [status] [campaign]`: the dialer calls the first N leads of the hopper (1 by default) with that
        outcome (no_answer by default), in the demo campaign unless one is named; then the hopper refills."""
        count, status = 1, "no_answer"
        if words and words[0].isdigit():
            count = int(words.pop(0))
        if words and words[0].lower() in DIAL_STATUSES:
            status = words.pop(0).lower()
        if count < 1:
            self._say(DIAL_USAGE)
            return
        campaign = self._campaign(" ".join(words))
        if campaign is None:
            return
        assert self.sandbox is not None
        response = httpx.post(
            f"{self.sandbox.base_url}/sandbox/campaigns/{campaign.id}/dial", json={"count": count, "status": status}
        )
        if response.status_code != 200:
            self._say(f"The sandbox refused: {response.json().get('message', response.text)}")
            return
        answer = response.json()
        dialled = [lead.get("uid") for lead in answer.get("items", [])]
        # leads deleted after they were loaded: the batch still called them
        dialled += [
            f"{entry.get('uid')} (removed, called from the loaded batch)" for entry in answer.get("removedCalled", [])
        ]
        outcome = f" as {status}" if dialled else ""
        who = ", ".join(dialled) or "nobody (the hopper is empty)"
        self._say(f"Dialled {len(dialled)} of {campaign.name}{outcome}: {who}.")
        self._hopper(campaign)

    def _campaign(self, typed: str) -> SandboxCampaign | None:
        """A sandbox campaign by name (any case, quotes optional) or id; the demo campaign when nothing is typed."""
        assert self.sandbox is not None
        wanted = typed.strip().strip('"').strip()
        with self.sandbox.state.lock:
            campaigns = list(self.sandbox.state.campaigns.values())
        if not wanted:
            wanted = DEMO_CAMPAIGN_ID
        found = next(
            (c for c in campaigns if c.id == wanted.lower().replace("-", "") or c.name.casefold() == wanted.casefold()),
            None,
        )
        if found is None:
            names = ", ".join(sorted(c.name for c in campaigns)) or "none"
            self._say(f"No campaign named {wanted!r} in the sandbox; the campaigns are: {names}. {DIAL_USAGE}")
        return found

    def _hopper(self, campaign: SandboxCampaign) -> None:
        assert self.sandbox is not None
        uids = [entry.uid for entry in self.sandbox.state.hopper(campaign.id)]
        if not campaign.active:
            listed = "empty (the campaign is not active)"
        else:
            listed = ", ".join(map(str, uids)) if uids else "empty (no dialable lead left)"
        self._say(f"Hopper of {campaign.name} ({len(uids)}): {listed}")

    def _home(self) -> None:
        """Open the Home tab as Slack would (app_home_opened) and show what leadbot published there."""
        user = self.driver.user_id
        seen = len(self.stub.events)
        opened = self.driver.open_home()
        if opened.status != 200:
            self._say(f"The bot answered HTTP {opened.status}.")
            return
        try:
            view = self.stub.wait_home_view(user, after=seen, timeout=REPLY_TIMEOUT_S)
        except NoAnswer:
            self._say(f"No Home tab published within {REPLY_TIMEOUT_S:.0f} s.")
            return
        self._say(render_view(view))
        if any((block.get("accessory") or {}).get("type") == "button" for block in view.get("blocks", [])):
            self._say("  (the Home tab's Undo buttons are not words: type /lead undo #12 with the change's number)")

    # ------------------------------------------------------------------ output

    def _show(self, message: dict) -> None:
        """A message as text, after the ones before it: a command's receipt line stays above its answer, as in
        Slack (which never replaces a slash command's ack), and an answer replacing a clicked question is printed
        after it, as a terminal does. Its buttons become console words (`[Undo]` -> :undo) until the next reply
        (which may have none)."""
        self._say(render_message({key: value for key, value in message.items() if key != "replace_original"}))
        buttons = {
            ":" + element["text"]["text"].split()[0].lower(): (message, element)
            for block in message.get("blocks", [])
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("type") == "button"
        }
        self._buttons = buttons  # only the latest reply's buttons can be clicked
        if buttons:
            self._say("  (buttons: " + ", ".join(buttons) + ")")

    def _click(self, word: str, line: str) -> None:
        """Click a button of the last reply as Slack would, asking first when the button has a confirm dialog."""
        message, element = self._buttons[word]
        confirm = element.get("confirm")
        if confirm:
            answer = self._ask(f"{confirm['title']['text']} {confirm['text']['text']} [y/N] ")
            if (answer or "").strip().lower() not in {"y", "yes"}:
                self._say(f"Not clicked: {confirm['deny']['text']}.")
                return
        click = self.driver.click(message, element["action_id"])
        if click.status != 200:
            self._say(f"The bot answered HTTP {click.status}.")
            return
        self._buttons = {}
        if click.response_url is None:  # every click the stub sends carries one
            self._say("The click had no response_url to answer at.")
            return
        try:
            replies = self.stub.wait_responses(click.response_url, count=1, timeout=REPLY_TIMEOUT_S)
        except NoAnswer:
            self._say(f"No answer from the bot within {REPLY_TIMEOUT_S:.0f} s.")
            return
        for reply in replies:
            self._show(reply)

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _print_alert(channel: str, out: TextIO, recorded: Recorded) -> None:
    """An alert line, printed as the watcher posts it (from the Slack stand-in's thread)."""
    if recorded.kind == "api" and recorded.name == "chat.postMessage" and recorded.payload.get("channel") == channel:
        print(f"[alert {channel}] {mrkdwn(str(recorded.payload.get('text', '')))}", file=out, flush=True)


def _is_progress(message: dict) -> bool:
    return any(block.get("block_id") == BLOCK_PROGRESS for block in message.get("blocks", []))


def _label(block: dict) -> str:
    return (block.get("label") or {}).get("text", block.get("block_id", "?"))


def _pick(answer: str, options: list[dict]) -> str | None:
    """An option's value from its number or (part of) its name; None when that picks no single option."""
    if not answer:
        return None
    if answer.isdigit():
        return options[int(answer) - 1]["value"] if 1 <= int(answer) <= len(options) else None
    matches = [option for option in options if answer.casefold() in option["text"]["text"].casefold()]
    exact = [option for option in matches if option["text"]["text"].casefold().startswith(answer.casefold())]
    chosen = matches if len(matches) == 1 else exact
    return chosen[0]["value"] if len(chosen) == 1 else None


def _terminal_reader(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        print()
        return None


def _script_reader(lines: Iterator[str], out: TextIO) -> Callable[[str], str | None]:
    def ask(prompt: str) -> str | None:
        line = next(lines, None)
        if line is not None:
            print(f"{prompt}{line}", file=out, flush=True)
        return line

    return ask
