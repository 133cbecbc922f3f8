"""The sandbox in its own process for the benchmarks: the demo seed plus one list per size, each dialled by an
active `UP RANK` campaign. Prints one JSON line (base URL and the lists), then serves until terminated."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from sandbox.seed import find_data, seed, seed_find_lists, seed_sized_list
from sandbox.server import serve_forever
from sandbox.state import SandboxState


def list_name(size: int) -> str:
    return f"Bench {size}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_proc")
    parser.add_argument("--sizes", default="", help="comma-separated list sizes, e.g. 1000,10000,100000")
    parser.add_argument("--find-lists", default="", help="COUNTxSIZE: lists Find 1 … for /lead find, e.g. 10x10000")
    parser.add_argument("--find-big", type=int, default=0, help="one list 'Find big' of this many leads, dialled")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    state = SandboxState()
    seed(state, "demo")
    lists: dict[str, dict[str, str | int | None]] = {}
    for size in sizes:
        list_id, campaign_id = seed_sized_list(state, list_name(size), size, campaign=f"{list_name(size)} campaign")
        lists[str(size)] = {"name": list_name(size), "id": list_id, "campaign_id": campaign_id}
    if args.find_lists:
        count, size = (int(part) for part in args.find_lists.split("x"))
        for i, (list_id, campaign_id) in enumerate(seed_find_lists(state, count, size), 1):
            lists[f"find {i}"] = {"name": f"Find {i}", "id": list_id, "campaign_id": campaign_id, "leads": size}
    if args.find_big:
        list_id, campaign_id = seed_sized_list(
            state, "Find big", args.find_big, campaign="Find big campaign", number_prefix="+49175", data=find_data(0)
        )
        lists["find big"] = {"name": "Find big", "id": list_id, "campaign_id": campaign_id, "leads": args.find_big}

    def announce(base_url: str) -> None:
        print(json.dumps({"base_url": base_url, "lists": lists}), flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(state, announce=announce)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
