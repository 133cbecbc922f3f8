"""The sandbox in its own process for the benchmarks: the demo seed plus one list per size, each dialled by an
active `UP RANK` campaign. Prints one JSON line (base URL and the lists), then serves until terminated."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from sandbox.seed import seed, seed_sized_list
from sandbox.server import serve_forever
from sandbox.state import SandboxState


def list_name(size: int) -> str:
    return f"Bench {size}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_proc")
    parser.add_argument("--sizes", default="", help="comma-separated list sizes, e.g. 1000,10000,100000")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    state = SandboxState()
    seed(state, "demo")
    lists = {}
    for size in sizes:
        list_id, campaign_id = seed_sized_list(state, list_name(size), size, campaign=f"{list_name(size)} campaign")
        lists[str(size)] = {"name": list_name(size), "id": list_id, "campaign_id": campaign_id}

    def announce(base_url: str) -> None:
        print(json.dumps({"base_url": base_url, "lists": lists}), flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(state, announce=announce)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
