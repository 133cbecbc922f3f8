"""What a cold /lead hopper, /lead why or /lead show pays for the list's standings, and what a warm one pays to read
them: measured on one checkout or two (before / after a change), at 100 000 and 1 000 000 leads (docs/performance.md).

    .venv/bin/python bench/standings_build.py [--leads 100000,1000000] [--root DIR ...] [--writes 200]

For each checkout (`--root`, default this one) and size, a fresh process with that checkout's `babelforce` and
`commands` on its path builds a LeadIndex from one CSV export (the sandbox's columns: id, uid, number, rank n % 30 000,
status, data; one lead in ten called already), read in 64 KB chunks as the bot reads a download, and then times,
best of 3:

- `standings`: `LeadIndex.standings()` right after the export (what a cold command adds to the export);
- `standings_after_writes`: the same after `--writes` leads were written through the index (upsert: updated, added;
  discard), as a write through the client leaves it;
- `next_batch` (UP RANK, 20 shown), `waiting_count`, `queue_position` (UP RANK and UP) with a hopper of 20: what a
  warm command computes from them (also the first call on the standings made after the writes, `_first_ms`: the
  columnar standings remember the places of the ids they were asked about).

It also reports the RSS the standings kept (VmRSS after the first build minus before it) and the peak (VmHWM), and
checks that every checkout's next batch, counts and positions are the same. The machine's load average is printed
with each result: on a shared machine, compare runs made together.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 64 * 1024
HOPPER = 20


def write_export(path: Path, leads: int) -> None:
    """The sandbox's export columns; one lead in ten has a status the dialer does not load (called already)."""
    rng = random.Random(7)
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("id", "uid", "number", "rank", "status", "callCount", "dateCreated", "lastUpdated", "data"))
        for n in range(1, leads + 1):
            writer.writerow(
                (
                    f"{rng.getrandbits(128):032x}",
                    f"lead-{n}",
                    f"+49152{n:08d}",
                    n % 30_000,
                    "no_answer" if n % 10 == 0 else "pending",
                    0,
                    "2026-11-26T10:00:00Z",
                    "2026-11-26T10:00:00Z",
                    dumps({"firstName": "Anna", "crmId": f"CRM-{n:07d}"}),
                )
            )


def chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def memory_kb() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def best_ms(call: Callable[[], Any], times: int = 3) -> tuple[float, Any]:
    """The best of `times` calls (the first one included), and the answer."""
    best, answer = 1e9, None
    for _ in range(times):
        began = time.perf_counter()
        answer = call()
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 2), answer


def first_ms(call: Callable[[], Any]) -> float:
    began = time.perf_counter()
    call()
    return round((time.perf_counter() - began) * 1000, 2)


def measure(path: Path, leads: int, writes: int) -> dict[str, Any]:
    """In this (fresh) process, with the checkout under test first on sys.path."""
    from babelforce.lookup import LeadIndex
    from babelforce.models import Campaign, HopperEntry, Lead
    from commands.caveats import DialContext
    from commands.queue import next_batch, queue_position, waiting_count

    began = time.perf_counter()
    index = LeadIndex.from_chunks(chunks(path), built_at=0)
    index_s = time.perf_counter() - began
    before = memory_kb()["VmRSS"]
    began = time.perf_counter()
    kept = index.standings()
    first_build_ms = (time.perf_counter() - began) * 1000
    after = memory_kb()
    standings_ms, _ = best_ms(index.standings)

    rng = random.Random(11)
    ids = [index.id_of(row) for row in rng.sample(range(leads), 3 * writes)]
    for n, lead_id in enumerate(ids[:writes]):  # updated: a new rank, the same place under UP / DOWN
        index.upsert(lead_id, f"written-{n}", "+4915100000000", rank=rng.randrange(30_000), status="pending")
    for n in range(writes // 4):  # added
        index.upsert(f"{rng.getrandbits(128):032x}", f"added-{n}", "+4915100000001", rank=5, status="pending")
    for lead_id in ids[writes : writes + writes // 4]:  # deleted
        index.discard(lead_id)
    written_ms, standings = best_ms(index.standings)

    list_id = "1" * 32
    hopper = tuple(
        HopperEntry(id=lead_id, uid=None, status="pending", order=str(n))
        for n, lead_id in enumerate(ids[2 * writes : 2 * writes + HOPPER], 1)
    )
    lead_id = ids[-1]
    lead = Lead.model_validate({"id": lead_id, "uid": "x", "number": "+4915100000002", "rank": 15_000, "status": "new"})
    answers: dict[str, Any] = {"export": {}, "after_writes": {}}
    timings: dict[str, float] = {}
    for label, read in (("export", kept), ("after_writes", standings)):
        for order in ("UP RANK", "UP"):
            campaign = Campaign.model_validate(
                {
                    "id": "2" * 32,
                    "name": "c",
                    "active": True,
                    "listOrder": order,
                    "leadList": {"id": list_id, "name": "l"},
                }
            )
            context = DialContext("l", campaign, hopper)
            key = order.lower().replace(" ", "_")
            if label == "after_writes":  # the first read of these standings (nothing remembered yet)
                timings[f"next_batch_{key}_first_ms"] = first_ms(partial(next_batch, read, hopper, order, list_id, 20))
                timings[f"queue_position_{key}_first_ms"] = first_ms(partial(queue_position, lead, context, read))
            batch_ms, batch = best_ms(partial(next_batch, read, hopper, order, list_id, 20))
            queue_ms, queue = best_ms(partial(queue_position, lead, context, read))
            if label == "after_writes":
                timings[f"next_batch_{key}_ms"], timings[f"queue_position_{key}_ms"] = batch_ms, queue_ms
            answers[label][f"next_batch_{key}"] = [(item.id, item.rank) for item in batch]
            answers[label][f"queue_{key}"] = [queue.where, queue.waiting_ahead]
        timings[f"waiting_count_{label}_ms"], answers[label]["waiting"] = best_ms(
            partial(waiting_count, read, hopper, list_id)
        )
    del kept
    return {
        "leads": leads,
        "index_s": round(index_s, 2),
        "standings_first_ms": round(first_build_ms, 2),
        "standings_ms": standings_ms,
        "standings_after_writes_ms": written_ms,
        "standings_kept_mb": round((after["VmRSS"] - before) / 1024, 1),
        "peak_rss_mb": round(after["VmHWM"] / 1024, 1),
        **timings,
        "answers": answers,
        "load_average": os.getloadavg(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/standings_build.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", default="100000,1000000")
    parser.add_argument("--root", action="append", type=Path, help="a checkout to measure (repeat; default this one)")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.export, int(args.leads), args.writes)))
        return 0
    roots = args.root or [ROOT]
    with tempfile.TemporaryDirectory(prefix="leadbot-standings-") as tmp:
        for leads in (int(size) for size in args.leads.split(",")):
            export = Path(tmp) / f"export-{leads}.csv"
            write_export(export, leads)
            answers = {}
            for root in roots:
                options = ["--export", str(export), "--leads", str(leads), "--writes", str(args.writes)]
                child = subprocess.run(
                    [sys.executable, __file__, "--child", *options],
                    capture_output=True,
                    text=True,
                    cwd=root,
                    env={**os.environ, "PYTHONPATH": str(root.resolve()), "PYTHONHASHSEED": "0"},
                )
                if child.returncode != 0:
                    print(f"{root}: failed\n{child.stderr[-3000:]}", file=sys.stderr)
                    continue
                result = json.loads(child.stdout)
                answers[str(root)] = result.pop("answers")
                print(json.dumps({"root": str(root), **result}), flush=True)
            for label in ("export", "after_writes"):
                told = {json.dumps(answer[label], sort_keys=True) for answer in answers.values()}
                same = "the same" if len(told) == 1 else "DIFFERENT"
                print(f"{leads}, {label}: {same} next batches, counts and positions in every checkout", flush=True)
                if len(told) > 1:
                    print(json.dumps({root: answer[label] for root, answer in answers.items()})[:4000], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
