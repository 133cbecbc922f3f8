"""The `leadbot` command: one argparse front door, each subcommand wired from the package that owns it."""

from __future__ import annotations

import argparse
import sys

from sandbox import cli as sandbox_cli

from . import console, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadbot",
        description="Slack chat-ops bot for babelforce's outbound dialer.",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    console.add_parser(subcommands)
    run.add_parser(subcommands)
    sandbox_cli.add_parser(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
