"""`leadbot sandbox`: serve the local babelforce sandbox in the foreground (its arguments are declared in bot/cli.py,
so that `leadbot run` builds its parser without importing the sandbox).

The first stdout line is the base URL (scripts read it to find the port); a few human lines follow.
"""

from __future__ import annotations

import argparse
import sys

from sandbox.seed import (
    AUTUMN_LIST,
    DEMO_CAMPAIGN,
    DEMO_CAMPAIGN_ID,
    DEMO_LIST,
    DEMO_LIST_ID,
    RENEWALS_CAMPAIGN,
    seed,
)
from sandbox.server import serve_forever
from sandbox.state import SandboxState


def _describe(base_url: str, seed_name: str, state: SandboxState | None = None) -> str:
    lines = [
        "babelforce sandbox is running.",
        "  OAuth client: client_id=sandbox client_secret=sandbox (client_credentials or password grant)",
        "  User: username=demo password=demo (password grant; public client_id=manager needs no secret)",
    ]
    if state is not None and (state.csv_dialect, state.csv_headers) != ("comma", "babelforce"):
        lines.append(f"  Lead exports: --csv-dialect {state.csv_dialect} --csv-headers {state.csv_headers}")
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
    state = SandboxState(
        hopper_size=args.hopper_size,
        token_ttl=args.token_ttl,
        csv_dialect=args.csv_dialect,
        csv_headers=args.csv_headers,
    )
    seed(state, args.seed, args.leads)

    def announce(base_url: str) -> None:
        print(base_url, flush=True)
        print(_describe(base_url, args.seed, state), flush=True)

    try:
        serve_forever(state, host=args.host, port=args.port, log_level=args.log_level, announce=announce)
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the captured SIGINT after its graceful shutdown: that is the normal exit
    except OSError as exc:
        print(f"leadbot sandbox: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
