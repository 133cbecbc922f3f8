"""`leadbot sandbox`: serve the local babelforce sandbox in the foreground.

The first stdout line is the base URL (scripts read it to find the port); a few human lines follow.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sandbox.seed import (
    AUTUMN_LIST,
    DEMO_CAMPAIGN,
    DEMO_CAMPAIGN_ID,
    DEMO_LIST,
    DEMO_LIST_ID,
    RENEWALS_CAMPAIGN,
    SEEDS,
    seed,
)
from sandbox.server import serve_forever
from sandbox.state import SandboxState


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


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
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
    parser.add_argument("--seed", choices=SEEDS, default="demo", help="initial data (default demo)")
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
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="warning",
        help="uvicorn log level (default warning: no per-request log)",
    )
    parser.set_defaults(run=run, sandbox_parser=parser)
    return parser


def _describe(base_url: str, seed_name: str) -> str:
    lines = [
        "babelforce sandbox is running.",
        "  OAuth client: client_id=sandbox client_secret=sandbox (client_credentials or password grant)",
        "  User: username=demo password=demo (password grant; public client_id=manager needs no secret)",
    ]
    if seed_name == "demo":
        lines += [
            f"  Campaign {DEMO_CAMPAIGN!r} ({DEMO_CAMPAIGN_ID}) dials list {DEMO_LIST!r} ({DEMO_LIST_ID});",
            f"  also list {AUTUMN_LIST!r} (not dialled) and campaign {RENEWALS_CAMPAIGN!r}.",
        ]
    lines += [
        "Try:",
        f"  TOKEN=$(curl -s -d grant_type=client_credentials -d client_id=sandbox -d client_secret=sandbox "
        f"{base_url}/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        f'  curl -s -H "Authorization: Bearer $TOKEN" {base_url}/api/v2/outbound/lists',
        "Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.leads is not None and args.seed != "demo":
        args.sandbox_parser.error("--leads only applies to --seed demo")
    state = SandboxState(hopper_size=args.hopper_size, token_ttl=args.token_ttl)
    seed(state, args.seed, args.leads)

    def announce(base_url: str) -> None:
        print(base_url, flush=True)
        print(_describe(base_url, args.seed), flush=True)

    try:
        serve_forever(state, host=args.host, port=args.port, log_level=args.log_level, announce=announce)
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the captured SIGINT after its graceful shutdown: that is the normal exit
    except OSError as exc:
        print(f"leadbot sandbox: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
