"""The `leadbot` command: one argparse front door for `run`, `doctor`, `audit export`, `console` and `sandbox`.

`leadbot run` is the product: its parser and code come from `bot.run`; `leadbot doctor` checks an installation with
the same settings (`bot.doctor`); `leadbot audit export` writes the audit trail for an auditor (`bot.audit_export`).
`console` and `sandbox` are local tools built on the test doubles (`slackstub/`, `sandbox/`): their parsers are
declared here and their code is imported only when one of them is chosen, so `leadbot run` never loads a test double
(tests/bot/test_imports.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import audit_export, doctor, run

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
    run.add_parser(subcommands)
    doctor.add_parser(subcommands)
    audit_export.add_parser(subcommands)
    add_sandbox_parser(subcommands)
    return parser


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
    parser.set_defaults(run=_run_console)


def _run_console(args: argparse.Namespace) -> int:
    from . import console  # the Slack stand-in and the sandbox come with it

    return console.run(args)


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
    parser.set_defaults(run=_run_sandbox, sandbox_parser=parser)
    return parser


def _run_sandbox(args: argparse.Namespace) -> int:
    from sandbox import cli as sandbox_cli

    return sandbox_cli.run(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
