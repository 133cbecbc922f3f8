"""The `leadbot` command: one argparse front door for `run`, `doctor`, `audit export`, `console` and `sandbox`.

`leadbot run` is the product (its code is `bot.run`); `leadbot doctor` checks an installation with the same settings
(`bot.doctor`); `leadbot audit export` writes the audit trail for an auditor (`bot.audit_export`). `console` and
`sandbox` are local tools built on the test doubles (`slackstub/`, `sandbox/`).

Every subcommand's parser is declared here and its module is imported only when that subcommand runs: building the
parser (and `leadbot --help`) imports nothing heavy, each subcommand pays only for its own imports (`leadbot run`
about half a second less than with all of them), and `leadbot run` never loads a test double
(tests/bot/test_imports.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: bot.app's EVENTS_PATH and HEALTH_PATH, spelled out so that building the parser imports no web framework (a test
#: keeps them equal)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
#: bot.audit_export.FORMATS, spelled out for the same reason (the same test keeps them equal)
AUDIT_FORMATS = ("jsonl", "csv")
#: sandbox.seed.SEEDS, spelled out so that building the parser imports nothing of sandbox/ (a test keeps them equal)
SANDBOX_SEEDS = ("demo", "empty")
#: sandbox.state.CSV_DIALECTS and CSV_HEADER_STYLES, spelled out for the same reason (the same test keeps them equal)
SANDBOX_CSV_DIALECTS = ("comma", "semicolon", "tab", "excel")
SANDBOX_CSV_HEADERS = ("babelforce", "alias")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadbot",
        description="Slack chat-ops bot for babelforce's outbound dialer.",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_console_parser(subcommands)
    add_run_parser(subcommands)
    add_doctor_parser(subcommands)
    add_audit_parser(subcommands)
    add_sandbox_parser(subcommands)
    return parser


class Subcommand:
    """A subcommand's code, `module.function(args)`, imported when it runs (argparse's `run` default)."""

    def __init__(self, module: str, function: str = "run") -> None:
        self.module = module
        self.function = function

    def resolve(self) -> Callable[[argparse.Namespace], int]:
        function: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(self.module), self.function)
        return function

    def __call__(self, args: argparse.Namespace) -> int:
        return self.resolve()(args)

    def __repr__(self) -> str:
        return f"Subcommand({self.module}.{self.function})"


def _worker_count(text: str) -> int:
    """--workers, read by bot.workers (imported only when the option is given: `leadbot run` imports it anyway)."""
    from .workers import worker_count

    return worker_count(text)


def add_run_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "run",
        help="serve the bot to Slack (Socket Mode when SLACK_APP_TOKEN is set, else HTTP)",
        description=(
            "Serve leadbot to a Slack workspace. With SLACK_APP_TOKEN set it connects in Socket Mode (no public URL "
            f"needed); otherwise, or with --http, it serves Slack's requests at {EVENTS_PATH} and a health check at "
            f"{HEALTH_PATH}. Settings come from the environment and .env (see .env.example)."
        ),
    )
    parser.add_argument("--http", action="store_true", help="serve HTTP even when SLACK_APP_TOKEN is set")
    parser.add_argument("--host", help="HTTP mode: address to listen on (default LEADBOT_HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="HTTP mode: port (default LEADBOT_PORT or 3000; 0 picks a free one)")
    parser.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        help="HTTP mode: serve with N processes on this machine, sharing the port and the audit store (default 1)",
    )
    parser.set_defaults(run=Subcommand("bot.run"))


def add_doctor_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "doctor",
        help="check this installation before going live: settings, Slack tokens and scopes, babelforce (read-only)",
        description=(
            "Check a real installation with the settings leadbot run uses (environment and .env): the settings, "
            "Slack's answer to the bot token and its scopes, the Socket Mode token, the babelforce login, the lists "
            "and their CSV exports, the hoppers and the campaign → list map. One line per check, ✓ or ✗ with what to "
            "do. Read-only unless --write-check is given. Exit status 0 when every check passed, 1 otherwise."
        ),
    )
    parser.add_argument("--http", action="store_true", help="check as for leadbot run --http (no Socket Mode)")
    parser.add_argument("--list", dest="list_name", metavar="NAME", help="check only this list's export (name or id)")
    parser.add_argument(
        "--write-check",
        nargs=2,
        metavar=("LIST", "LEAD"),
        help="also PUT this lead's rank unchanged and confirm its other fields stay as they were (one real write, "
        "recorded in the audit trail of LEADBOT_DB first)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout (progress on stderr)")
    parser.set_defaults(run=Subcommand("bot.doctor"))


def add_audit_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "audit",
        help="the audit trail: export it for an auditor (leadbot audit export)",
        description="Work with leadbot's audit trail (the store LEADBOT_DB names).",
    )
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write the audit trail, one row per record, as JSON lines or CSV",
        description=(
            "Write the audit trail of the store LEADBOT_DB names (the settings of leadbot run, from the environment "
            "and .env) for an auditor: one row per record (who, when, what, which lead, before and after, outcome, "
            "request id, undo links), oldest first, phone numbers as recorded. Read-only: the store is neither "
            "created, migrated nor written. Progress and a final count go to stderr."
        ),
        epilog="Example: leadbot audit export --since 2025-01-01 --until 2025-03-31 --format csv --output q1.csv",
    )
    export.add_argument(
        "--since",
        metavar="DATE",
        help="records from this day on (YYYY-MM-DD, UTC; or an ISO 8601 time such as 2025-01-31T08:00:00Z)",
    )
    export.add_argument(
        "--until",
        metavar="DATE",
        help="records up to and including this day (YYYY-MM-DD, UTC; an ISO 8601 time: before that moment)",
    )
    export.add_argument(
        "--format",
        choices=AUDIT_FORMATS,
        default="jsonl",
        help="jsonl: one JSON object per line, before/after as objects (default); csv: a header row, then one "
        "row per record, before/after as JSON text",
    )
    export.add_argument(
        "--output", metavar="FILE", type=Path, help="write to FILE (replaced only once complete); default stdout"
    )
    export.set_defaults(run=Subcommand("bot.audit_export"))


def add_console_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "console",
        help="try the bot locally: /lead commands in the terminal, against the sandbox (or BABELFORCE_* settings)",
        description=(
            "Drive the real Bolt app from the terminal through a local stand-in for Slack. Without BABELFORCE_* "
            "settings it starts the local babelforce sandbox with the demo seed."
        ),
    )
    parser.add_argument(
        "--script", type=Path, help="run the lines of FILE (answers to form prompts included), then exit"
    )
    parser.add_argument("--leads", type=int, help="sandbox only: size of the demo list (default 50)")
    parser.add_argument("--verbose", action="store_true", help="show the bot's log lines")
    parser.set_defaults(run=Subcommand("bot.console"))  # the Slack stand-in and the sandbox come with it


def _int_at_least(minimum: int, maximum: int | None = None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{value} is not {bounds}")
        return value

    return parse


def add_sandbox_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="run the local babelforce sandbox (a stand-in for the outbound API)",
        description="Serve a local stand-in for babelforce's outbound API until Ctrl-C. "
        "The first line printed is the base URL.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_int_at_least(0, 65535), default=0, help="port to bind; 0 picks a free one (default 0)"
    )
    parser.add_argument("--seed", choices=SANDBOX_SEEDS, default="demo", help="initial data (default demo)")
    parser.add_argument(
        "--leads", type=_int_at_least(0), default=None, help="number of leads in the demo list (default 50)"
    )
    parser.add_argument(
        "--hopper-size", type=_int_at_least(1), default=20, help="minimum hopper size per campaign (default 20)"
    )
    parser.add_argument(
        "--token-ttl", type=_int_at_least(1), default=3600, help="access token lifetime in seconds (default 3600)"
    )
    parser.add_argument(
        "--csv-dialect",
        choices=SANDBOX_CSV_DIALECTS,
        default="comma",
        help="how the lead export is written: comma (UTF-8), semicolon, tab, or excel (BOM, sep=; line, CRLF, "
        "ISO-8859-1) (default comma)",
    )
    parser.add_argument(
        "--csv-headers",
        choices=SANDBOX_CSV_HEADERS,
        default="babelforce",
        help="the export's header names: babelforce (id, uid, number ...) or alias (leadId, leadUid, phone ...) "
        "(default babelforce)",
    )
    parser.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="warning",
        help="uvicorn log level (default warning: no per-request log)",
    )
    parser.set_defaults(run=Subcommand("sandbox.cli"), sandbox_parser=parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
