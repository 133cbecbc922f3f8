"""`python -m bench` (what `python3 dev.py bench` runs): the measurements of issue 5 (and 15), on loopback.

1. ack: signed `/lead show` commands against `leadbot run --http`, many in flight, sandbox adding latency to every
   API call; ack and reply times (the load generator runs in its own process).
1b. workers: part 1's burst against `leadbot run --http --workers N`, N = 1 and 2 side by side (issue 15).
1c. store: the cost of a write on PostgreSQL vs SQLite (issue 15): `/lead rank` one at a time through a real bot on
   each audit store, side by side and interleaved; reply time per write, median and p95.
2. overhead: warm `/lead show` one at a time, reply time minus the same babelforce calls made directly.
3. lookup: `/lead show` and `/lead rank`, by uid and by number, on lists of each size: cold (first command on the
   list since the bot started) and warm; reply time and API requests per command; and the naive alternative.
4. memory: peak RSS of the bot process after resolving leads in the biggest list.
5. find: `/lead find` across many lists and in one very big list.
6. dialer: `/lead hopper` and `/lead why` on the biggest list, cold and warm (reply time, API requests), and the
   alert watcher's API requests per pass.

Writes `bench/results/latest.{md,json}` for a full run (`partial.*` for a partial or quick one) and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from localserve.postgres import PostgresServer
from sandbox.seed import DEMO_CAMPAIGN_ID, DEMO_LIST, DEMO_LIST_ID
from slackstub import SlackStub

from .procs import ROOT, SIGNING_SECRET, BotProcess, Commands, Sample, SandboxProcess, cpu_seconds, tree_cpu_seconds

PARTS = ("ack", "workers", "store", "overhead", "lookup", "memory", "find", "dialer")
#: The workers part's `leadbot run --http --workers N`, side by side (1: the single process).
WORKER_COUNTS = (1, 2)
FULL_SIZES = (1_000, 10_000, 100_000)
RESULTS = Path(__file__).resolve().parent / "results"
API = "/api/v2/outbound"

TARGETS = {
    "ack_p99_ms": 100,
    "workers_burst_ack_p99_ms": 100,
    "postgres_write_extra_ms": 5,  # a write on PostgreSQL vs SQLite: median reply time, more by at most this
    "overhead_median_ms": 20,
    "cold_100k_s": 2.0,
    "warm_100k_requests": 4,
    "warm_100k_ms": 300,
    "peak_rss_mb": 150,
    "find_many_cold_s": 3.0,
    "find_many_warm_ms": 300,
    "find_big_cold_s": 10.0,
    "find_big_warm_ms": 300,
    "find_big_rss_growth_mb": 250,
    "dialer_100k_cold_s": 2.0,  # /lead hopper and /lead why, each
    "dialer_100k_warm_ms": 300,
    "dialer_100k_warm_requests": 4,
    "alert_requests_per_campaign": 2,  # per active campaign per interval, besides the 1 shared campaign listing
}
FIND_LISTS = "10x10000"
FIND_BIG = 1_000_000
EXPORT_ROUTE = "GET /api/v2/outbound/lists/{id}/leads"
LEAD_ROUTE = "GET /api/v2/outbound/lists/{id}/leads/{leadId}"
NAIVE_BUDGET_S = 60.0

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": ms(pct(values, 50)),
        "p95": ms(pct(values, 95)),
        "p99": ms(pct(values, 99)),
        "max": ms(max(values)) if values else math.nan,
    }


# ---------------------------------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in ("uvicorn", "uvloop", "httptools", "httpx", "slack-bolt", "starlette", "aiohttp"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


# ---------------------------------------------------------------------------------------------------- parts


@contextmanager
def bot_process(ctx: Context, *, workers: int = 1, **env: str) -> Iterator[tuple[BotProcess, Commands]]:
    """A fresh `leadbot run --http` (`--workers N`), warmed by one `/lead show` on the demo list (login, directory,
    its index); with workers, by a few at once as well, so that each worker is likely to have had one."""
    python_args = ("-m", "cProfile", "-o", str(ctx.args.profile_bot)) if ctx.args.profile_bot else ()
    with BotProcess(ctx.sandbox, ctx.stub, ctx.log_path, python_args, workers=workers, **env) as bot:
        commands = Commands(ctx.stub, bot)
        try:
            warm = commands.run(f'show "{DEMO_LIST}" lead-40')
            if "lead-40" not in warm.reply_text:
                raise RuntimeError(f"the warm-up command failed: {warm.reply_text[:300]}")
            if workers > 1:
                _fire(ctx, bot, "open", [f'show "{DEMO_LIST}" lead-{n % 50 + 1}' for n in range(8 * workers)], 4)
            yield bot, commands
        finally:
            commands.close()


class Context:
    def __init__(self, args: argparse.Namespace, sandbox: SandboxProcess, stub: SlackStub, log_path: Path) -> None:
        self.args = args
        self.sandbox = sandbox
        self.stub = stub
        self.log_path = log_path


def part_ack(ctx: Context) -> dict[str, Any]:
    count, in_flight, latency = ctx.args.ack_requests, ctx.args.ack_concurrency, ctx.args.ack_latency_ms
    result: dict[str, Any] = {"requests": count, "in_flight": in_flight, "sandbox_latency_ms": latency}
    with bot_process(ctx) as (bot, _):
        for mode in ("closed", "open"):
            progress(f"ack ({mode}): {count} /lead show, {in_flight} in flight, sandbox +{latency:g} ms per API call")
            result[mode] = got = _ack_run(ctx, bot, mode)
            progress(
                f"ack ({mode}): p50 {got['ack_ms']['p50']} ms, p99 {got['ack_ms']['p99']} ms; replies "
                f"{got['replies']}/{count}, p50 {got['reply_ms']['p50']} ms, p99 {got['reply_ms']['p99']} ms; "
                f"CPU per command: bot {got['bot_cpu_ms_per_command']} ms, "
                f"sandbox {got['sandbox_cpu_ms_per_command']} ms"
            )
    return result


def part_workers(ctx: Context) -> dict[str, Any]:
    """The burst of part 1 (the next command as soon as an ack returns) against `leadbot run --http --workers N`,
    for each N of `--workers-counts` (WORKER_COUNTS by default), each on a fresh bot and the same sandbox."""
    count, in_flight, latency = ctx.args.ack_requests, ctx.args.ack_concurrency, ctx.args.ack_latency_ms
    result: dict[str, Any] = {
        "requests": count,
        "in_flight": in_flight,
        "sandbox_latency_ms": latency,
        "by_workers": {},
    }
    for workers in ctx.args.worker_counts:
        progress(f"workers ({workers}): burst of {count} /lead show, {in_flight} acks awaited, sandbox +{latency:g} ms")
        with bot_process(ctx, workers=workers) as (bot, _):
            got = _ack_run(ctx, bot, "open")
        result["by_workers"][str(workers)] = got
        p99, target = got["ack_ms"]["p99"], TARGETS["workers_burst_ack_p99_ms"]
        verdict = "PASS" if p99 <= target and got["replies_with_lead_card"] == count else "FAIL"
        progress(
            f"workers ({workers}): {verdict}: ack p99 {p99} ms (target <= {target} ms), p50 {got['ack_ms']['p50']} "
            f"ms; replies {got['replies_with_lead_card']}/{count} lead cards, reply p50 {got['reply_ms']['p50']} ms; "
            f"CPU per command: bot {got['bot_cpu_ms_per_command']} ms"
        )
    return result


STORE_WARM_WRITES = 3  # per store, not measured: the first writes read the hopper's last lead, open connections


def part_store(ctx: Context) -> dict[str, Any]:
    """The cost of a write on each audit store: `store_writes` `/lead rank` one at a time through a bot on SQLite (a
    fresh file) and one on PostgreSQL (a fresh database; a throwaway server, as the tests start one, but committing
    to disk as a production server does), both running, the writes interleaved (one on each in turn) so that both
    meet the same machine. Reply time per write (command to the reply at the response_url: the audit record, the
    lead lock, babelforce's read and PUT, the outcome); the store's transactions per write, read from PostgreSQL's
    own statistics. Each bot ranks its own leads, each write a real change."""
    count = ctx.args.store_writes
    result: dict[str, Any] = {"writes": count, "by_store": {}}
    server = PostgresServer.find_or_start(durable=True)
    if isinstance(server, str):
        progress(f"store: SKIP: no PostgreSQL to compare with ({server})")
        result["skipped"] = server
        return result
    progress(f"store: {count} /lead rank per store, one at a time, interleaved; PostgreSQL: {server.how}")
    url = server.create_database()
    sqlite_db = ctx.log_path.with_name("store-bench.db")
    try:
        with (
            bot_process(ctx, LEADBOT_DB=str(sqlite_db)) as (_, on_sqlite),
            bot_process(ctx, LEADBOT_DB=url) as (_, on_postgres),
        ):
            bots = {"sqlite": (on_sqlite, 1), "postgresql": (on_postgres, 6)}  # leads 1-5 and 6-10
            samples: dict[str, list[Sample]] = {kind: [] for kind in bots}
            failed = dict.fromkeys(bots, 0)
            commits_before = 0
            for n in range(-STORE_WARM_WRITES, count):
                if n == 0:
                    commits_before = _commits(url)
                for kind, (commands, first_lead) in bots.items():
                    uid = f"lead-{first_lead + abs(n) % 5}"
                    sample = commands.run(f'rank "{DEMO_LIST}" {uid} {1000 + n + STORE_WARM_WRITES}')
                    if n < 0:
                        continue
                    samples[kind].append(sample)
                    failed[kind] += f"Rank of {uid}" not in sample.reply_text
            time.sleep(1.5)  # PostgreSQL reports a backend's counts when it goes idle (at most every second)
            commits = _commits(url) - commits_before - 1  # less the first reading's own
            result["postgres_durability"] = _durability(url)
    finally:
        server.drop_database(url)
        server.close()
        sqlite_db.unlink(missing_ok=True)
    for kind, got in samples.items():
        replies = [sample.reply_s for sample in got]
        result["by_store"][kind] = {
            "writes": len(got),
            "failed": failed[kind],
            "reply_ms": summary_ms(replies),
            "reply_median_ms": ms(statistics.median(replies)),
            "ack_ms": summary_ms([sample.ack_s for sample in got]),
        }
    sqlite, postgres = result["by_store"]["sqlite"], result["by_store"]["postgresql"]
    result["postgres_extra_median_ms"] = round(postgres["reply_median_ms"] - sqlite["reply_median_ms"], 1)
    result["postgres_extra_p95_ms"] = round(postgres["reply_ms"]["p95"] - sqlite["reply_ms"]["p95"], 1)
    result["postgres_transactions_per_write"] = round(commits / count, 1)
    result["postgres_server"] = server.how
    extra, target = result["postgres_extra_median_ms"], TARGETS["postgres_write_extra_ms"]
    verdict = "PASS" if extra <= target and not sqlite["failed"] and not postgres["failed"] else "FAIL"
    progress(
        f"store: {verdict}: a write on PostgreSQL costs {extra:+} ms (median; target <= {target} ms more than SQLite): "
        f"median / p95 per write {sqlite['reply_median_ms']} / {sqlite['reply_ms']['p95']} ms on SQLite, "
        f"{postgres['reply_median_ms']} / {postgres['reply_ms']['p95']} ms on PostgreSQL; "
        f"{result['postgres_transactions_per_write']:g} store transactions per write; "
        f"failed {sqlite['failed']} + {postgres['failed']}"
    )
    return result


def _commits(url: str) -> int:
    """Transactions committed in the database so far (PostgreSQL's statistics; one per store operation)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(b"SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def _durability(url: str) -> str:
    """How the server commits (fsync, synchronous_commit), as it says itself."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        fsync = conn.execute(b"SHOW fsync").fetchone()
        synchronous = conn.execute(b"SHOW synchronous_commit").fetchone()
    return f"fsync {fsync[0] if fsync else '?'}, synchronous_commit {synchronous[0] if synchronous else '?'}"


def _ack_run(ctx: Context, bot: BotProcess, mode: str) -> dict[str, Any]:
    """Part 1's measurement: `ack_requests` /lead show in `mode`, the sandbox slowed by `ack_latency_ms` per call;
    ack and reply times, and the CPU the bot (all its processes) and the sandbox spent per command."""
    count = ctx.args.ack_requests
    ctx.sandbox.latency(ctx.args.ack_latency_ms)
    cpu_before = tree_cpu_seconds(bot.pid), cpu_seconds(ctx.sandbox.pid)
    try:
        texts = [f'show "{DEMO_LIST}" lead-{n % 50 + 1}' for n in range(count)]
        sent = _fire(ctx, bot, mode, texts, ctx.args.ack_concurrency)
    finally:
        ctx.sandbox.latency(0)
    bot_cpu, sandbox_cpu = tree_cpu_seconds(bot.pid) - cpu_before[0], cpu_seconds(ctx.sandbox.pid) - cpu_before[1]
    acks = [r["ack_s"] for r in sent]
    replies = [r["reply_s"] for r in sent if r["reply_s"] is not None]
    return {
        "acks_200": sum(1 for r in sent if r["status"] == 200),
        "ack_ms": summary_ms(acks),
        "acks_over_3s": sum(1 for a in acks if a > 3.0),
        "replies": len(replies),
        "replies_with_lead_card": sum(1 for r in sent if r["lead_card"]),
        "reply_ms": summary_ms(replies),
        "bot_cpu_ms_per_command": round(bot_cpu * 1000 / count, 1),
        "sandbox_cpu_ms_per_command": round(sandbox_cpu * 1000 / count, 1),
        "wall_s": round(max(r["sent"] + (r["reply_s"] or 0) for r in sent) - min(r["sent"] for r in sent), 2),
    }


def _fire(ctx: Context, bot: BotProcess, mode: str, texts: list[str], concurrency: int) -> list[dict[str, Any]]:
    """The load generator (bench.loadgen, its own process) sending `texts` to the bot; its per-command results."""
    spec = {
        "url": bot.events_url,
        "secret": SIGNING_SECRET,
        "concurrency": concurrency,
        "mode": mode,
        "texts": texts,
        "reply_timeout": ctx.args.reply_timeout,
    }
    fired = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    return json.loads(fired.stdout)


#: The overhead part's pause between two commands: a user's commands come seconds apart. One sent as soon as the last
#: one's answer came (25 ms after its ack) is taken for part of a burst, whose work waits ACK_FIRST_QUIET_S for the
#: next ack (bot.ack_first); that case is measured too ("back to back").
OVERHEAD_PAUSE_S = 0.1


def part_overhead(ctx: Context) -> dict[str, Any]:
    count = ctx.args.overhead_commands
    progress(f"overhead: {count} warm /lead show one at a time, then the same babelforce calls made directly")
    ids = _lead_ids(ctx.sandbox, DEMO_LIST_ID)
    with bot_process(ctx) as (_, commands):
        samples = []
        for n in range(count):
            time.sleep(OVERHEAD_PAUSE_S)
            samples.append(commands.run(f'show "{DEMO_LIST}" lead-{n % 50 + 1}'))
        back_to_back = [commands.run(f'show "{DEMO_LIST}" lead-{n % 50 + 1}') for n in range(count)]
    direct = asyncio.run(_direct_show_calls(ctx.sandbox, [ids[f"lead-{n % 50 + 1}"] for n in range(count)]))
    replies = [s.reply_s for s in samples]
    result = {
        "commands": count,
        "failed": sum(1 for n, s in enumerate(samples) if not is_lead_card(s.reply_text, f"lead-{n % 50 + 1}")),
        "reply_ms": summary_ms(replies),
        "ack_ms": summary_ms([s.ack_s for s in samples]),
        "direct_calls_ms": summary_ms(direct),
        "overhead_median_ms": round(ms(statistics.median(replies)) - ms(statistics.median(direct)), 1),
        "pause_ms": ms(OVERHEAD_PAUSE_S),
        "back_to_back_reply_ms": summary_ms([s.reply_s for s in back_to_back]),
        "back_to_back_failed": sum(
            1 for n, s in enumerate(back_to_back) if not is_lead_card(s.reply_text, f"lead-{n % 50 + 1}")
        ),
        "direct_calls": "GET lead, GET campaign and GET hopper in parallel (httpx.AsyncClient), as the bot does",
    }
    progress(
        f"overhead: reply median {ms(statistics.median(replies))} ms, direct calls "
        f"{ms(statistics.median(direct))} ms: +{result['overhead_median_ms']} ms"
    )
    return result


def _lead_ids(sandbox: SandboxProcess, list_id: str) -> dict[str, str]:
    assert sandbox.http is not None
    headers = {"Authorization": f"Bearer {sandbox.token()}"}
    page = sandbox.http.get(f"{API}/lists/{list_id}/leads", params={"max": 100}, headers=headers).json()
    return {lead["uid"]: lead["id"] for lead in page["items"]}


async def _direct_show_calls(sandbox: SandboxProcess, lead_ids: list[str]) -> list[float]:
    headers = {"Authorization": f"Bearer {sandbox.token()}", "Accept": "application/json"}
    times = []
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers=headers) as http:
        for lead_id in [lead_ids[0], *lead_ids]:  # the first one opens the connections
            started = time.monotonic()
            answers = await asyncio.gather(
                http.get(f"{API}/lists/{DEMO_LIST_ID}/leads/{lead_id}"),
                http.get(f"{API}/campaigns/{DEMO_CAMPAIGN_ID}"),
                http.get(f"{API}/campaigns/{DEMO_CAMPAIGN_ID}/hopper"),
            )
            for answer in answers:
                answer.raise_for_status()
                answer.json()
            times.append(time.monotonic() - started)
    return times[1:]


COMBOS = (("show", "uid"), ("show", "number"), ("rank", "uid"), ("rank", "number"))
#: --lookup-commands' names for COMBOS; "show-uid" is the one the naive alternative is compared with.
COMBO_NAMES = {f"{action}-{key}": (action, key) for action, key in COMBOS}


def _command(action: str, key: str, size: int, n: int) -> tuple[str, str]:
    """The command text and the uid its reply must name."""
    uid = f"bench-{size}-{n}"
    ref = uid if key == "uid" else f"+49152{n:08d}"
    name = f"Bench {size}"
    if action == "show":
        return f'show "{name}" {ref}', uid
    return f'rank "{name}" {ref} {n % 30_000 + 1}', uid  # one above its seeded rank: a real change


#: The hopper holds the 20 highest-ranked leads (ranks n % 30 000); leads this close to the top are not picked, so
#: a rank change is written at once instead of asking "apply anyway?" (which is right, but not what is measured).
HOPPER_MARGIN = 50


def _picks(rng: random.Random, size: int, count: int) -> list[int]:
    top = min(size, 30_000)
    picks: list[int] = []
    while len(picks) < count:
        n = rng.randint(1, size)
        if n % 30_000 < top - HOPPER_MARGIN:
            picks.append(n)
    return picks


def part_lookup(ctx: Context) -> dict[str, Any]:
    rng = random.Random(5)
    warm_count = ctx.args.warm_commands
    by_size: dict[str, Any] = {}
    for size in ctx.args.sizes:
        rows: dict[str, Any] = {}
        for action, key in ctx.args.lookup_combos:
            progress(f"lookup {size}: /lead {action} by {key}: cold, then {warm_count} warm")
            with bot_process(ctx) as (_, commands):
                picks = _picks(rng, size, warm_count + 1)
                cold = _measured(ctx, commands, *_command(action, key, size, picks[0]))
                warm = [_measured(ctx, commands, *_command(action, key, size, n)) for n in picks[1:]]
            rows[f"{action} by {key}"] = {
                "cold_ms": ms(cold[0].reply_s),
                "cold_requests": cold[1],
                "warm_ms": summary_ms([s.reply_s for s, _ in warm]),
                "warm_requests_median": statistics.median(r for _, r in warm),
                "warm_requests_max": max(r for _, r in warm),
                "errors": sum(1 for s, _ in [cold, *warm] if not s.reply_text),
            }
            progress(
                f"lookup {size}: {action} by {key}: cold {ms(cold[0].reply_s)} ms ({cold[1]} requests), warm p50 "
                f"{rows[f'{action} by {key}']['warm_ms']['p50']} ms "
                f"({rows[f'{action} by {key}']['warm_requests_median']} requests)"
            )
        naive = _naive(ctx.sandbox, size, size // 2)
        show_uid = rows["show by uid"]
        naive["ratio_to_bot_cold"] = round(naive["seconds"] * 1000 / show_uid["cold_ms"], 1)
        naive["ratio_to_bot_warm"] = round(naive["seconds"] * 1000 / show_uid["warm_ms"]["p50"], 1)
        progress(
            f"lookup {size}: naive paging found uid at position {size // 2} in {naive['seconds']} s with "
            f"{naive['requests']} requests: {naive['ratio_to_bot_cold']}x the bot's cold show, "
            f"{naive['ratio_to_bot_warm']}x its warm show"
        )
        by_size[str(size)] = {"commands": rows, "naive": naive}
    return {"warm_commands": warm_count, "sizes": by_size}


def is_lead_card(reply_text: str, uid: str) -> bool:
    """The reply is the lead's card (a not-found error echoes the uid too, so the uid alone proves nothing)."""
    return uid in reply_text and "lead id" in reply_text


def _measured(ctx: Context, commands: Commands, text: str, uid: str) -> tuple[Sample, int]:
    ctx.sandbox.reset_stats()
    sample = commands.run(text)
    requests = ctx.sandbox.stats_total()
    if not is_lead_card(sample.reply_text, uid):
        progress(f"  unexpected reply to {text!r}: {sample.reply_text[:200]!r}")
        sample.reply_text = ""
    return sample, requests


def _naive(sandbox: SandboxProcess, size: int, position: int) -> dict[str, Any]:
    """What a user would script without the bot: page the list 100 at a time until the uid shows up."""
    list_id = sandbox.lists[size]["id"]
    wanted = f"bench-{size}-{position}"
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {sandbox.token()}", "Accept": "application/json"}
    requests = 1
    found = None
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=30) as http:
        page = 1
        while found is None:
            body = http.get(f"{API}/lists/{list_id}/leads", params={"page": page, "max": 100}).json()
            requests += 1
            found = next((lead for lead in body["items"] if lead["uid"] == wanted), None)
            if page >= body["pagination"]["pages"]:
                break
            page += 1
    seconds = time.monotonic() - started
    return {"position": position, "found": found is not None, "requests": requests, "seconds": round(seconds, 3)}


def part_memory(ctx: Context) -> dict[str, Any]:
    size = max(ctx.args.sizes)
    count = ctx.args.warm_commands
    progress(f"memory: bot RSS after resolving leads in the {size}-lead list")
    rng = random.Random(4)
    with bot_process(ctx) as (bot, commands):
        idle = bot.memory_kb()
        for action, key in COMBOS:
            for n in _picks(rng, size, count):
                _measured(ctx, commands, *_command(action, key, size, n))
        after = bot.memory_kb()
    result = {
        "list_size": size,
        "commands": count * len(COMBOS),
        "rss_after_start_mb": round(idle.get("VmRSS", 0) / 1024, 1),
        "rss_after_mb": round(after.get("VmRSS", 0) / 1024, 1),
        "peak_rss_mb": round(after.get("VmHWM", 0) / 1024, 1),
    }
    progress(f"memory: peak RSS {result['peak_rss_mb']} MB (after start {result['rss_after_start_mb']} MB)")
    return result


def part_find(ctx: Context) -> dict[str, Any]:
    """/lead find across 10 lists of 10 000 leads, and in one list of 1 000 000: cold (the bot's first find), warm,
    requests (one export per list, no GET per lead), bot RSS growth, and the naive paging script."""
    count, size = (int(part) for part in ctx.args.find_lists.split("x"))
    result: dict[str, Any] = {"lists": count, "list_size": size, "big_leads": ctx.args.find_big}
    progress(f"find: starting a sandbox with {count} lists of {size} leads")
    with SandboxProcess([], find_lists=ctx.args.find_lists) as sandbox:
        lists = [sandbox.find[f"find {i}"] for i in range(1, count + 1)]
        result["many"] = _find_case(Context(ctx.args, sandbox, ctx.stub, ctx.log_path), lists, "many")
    progress(f"find: starting a sandbox with one list of {ctx.args.find_big:,} leads (seeding takes a while)")
    with SandboxProcess([], find_big=ctx.args.find_big) as sandbox:
        result["big"] = _find_case(
            Context(ctx.args, sandbox, ctx.stub, ctx.log_path), [sandbox.find["find big"]], "big"
        )
    return result


def _find_target(lead_list: dict[str, Any], n: int) -> dict[str, str]:
    """What a supervisor may type for lead n of a find list (see sandbox.seed.find_data), and the uid it must show."""
    from sandbox.seed import FIND_NUMBER_PREFIXES

    name = lead_list["name"]
    number_of_list = 0 if name == "Find big" else int(name.split()[-1])
    prefix = "+49175" if number_of_list == 0 else FIND_NUMBER_PREFIXES[(number_of_list - 1) % len(FIND_NUMBER_PREFIXES)]
    number = f"{prefix}{n:08d}"
    return {
        "uid": f"{'-'.join(name.lower().split())}-{n}",
        "crm": f"CRM-{number_of_list}-{n:07d}",
        "number": "00" + number[1:],  # another spelling than babelforce's E.164
    }


def _export_download_s(sandbox: SandboxProcess, lead_list: dict[str, Any]) -> float:
    """How long a bare client takes to download a list's CSV export (the stand-in's own share of a cold find)."""
    headers = {"Authorization": f"Bearer {sandbox.token()}"}
    started = time.monotonic()
    with (
        httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=120) as http,
        http.stream("GET", f"{API}/lists/{lead_list['id']}/leads", params={"format": "csv"}) as response,
    ):
        for _ in response.iter_bytes():
            pass
    return round(time.monotonic() - started, 2)


def _find_case(ctx: Context, lists: list[dict[str, Any]], label: str) -> dict[str, Any]:
    rng = random.Random(6)
    warm_count = ctx.args.warm_commands
    biggest = max(lists, key=lambda lead_list: lead_list["leads"])
    export_s = _export_download_s(ctx.sandbox, biggest)
    with bot_process(ctx) as (bot, commands):
        idle = bot.memory_kb()
        last = lists[-1]
        target = _find_target(last, last["leads"] // 2)
        cold, cold_requests, cold_exports, cold_gets = _find_measured(ctx, commands, target["crm"], target["uid"])
        after_cold = bot.memory_kb()
        warm: dict[str, list[float]] = {"data value": [], "uid": [], "number": [], "name": []}
        requests: list[int] = []
        warm_exports: list[int] = []
        failed = 0 if cold.reply_text else 1
        for n in range(warm_count):
            lead_list = lists[rng.randrange(len(lists))]
            wanted = _find_target(lead_list, rng.randint(1, lead_list["leads"]))
            for kind, text in (("data value", wanted["crm"]), ("uid", wanted["uid"]), ("number", wanted["number"])):
                sample, used, exports, gets = _find_measured(ctx, commands, text, wanted["uid"])
                warm[kind].append(sample.reply_s)
                requests.append(used)
                warm_exports.append(exports)
                failed += 0 if sample.reply_text and not gets else 1
            if n % 4 == 0:  # a first name: one lead in twelve matches (the "N more" count)
                sample, used, _, _ = _find_measured(ctx, commands, "hannah", "leads match")
                warm["name"].append(sample.reply_s)
                failed += 0 if sample.reply_text else 1
        peak = bot.memory_kb()
    every = [s for values in warm.values() for s in values]
    row: dict[str, Any] = {
        "warm_commands": len(every),
        "cold_s": round(cold.reply_s, 2),
        "cold_requests": cold_requests,
        "cold_exports": cold_exports,
        "cold_lead_gets": cold_gets,
        "export_download_s": export_s,
        "export_download_leads": biggest["leads"],
        "warm_ms": summary_ms(every),
        "warm_ms_by_kind": {kind: ms(statistics.median(values)) for kind, values in warm.items() if values},
        "warm_requests_max": max(requests) if requests else 0,
        "warm_exports_max": max(warm_exports) if warm_exports else 0,
        "failed": failed,
        "rss_after_start_mb": round(idle.get("VmRSS", 0) / 1024, 1),
        "rss_after_cold_mb": round(after_cold.get("VmRSS", 0) / 1024, 1),
        "peak_rss_mb": round(peak.get("VmHWM", 0) / 1024, 1),
        "rss_growth_mb": round((peak.get("VmHWM", 0) - idle.get("VmRSS", 0)) / 1024, 1),
    }
    row["naive"] = _naive_find(ctx.sandbox, lists, target["crm"])
    progress(
        f"find ({label}): cold {row['cold_s']} s ({cold_exports} exports, {cold_gets} lead GETs; a bare download of "
        f"the {biggest['leads']:,}-lead export alone: {export_s} s), warm p50 "
        f"{row['warm_ms']['p50']} ms, RSS +{row['rss_growth_mb']} MB; naive: {row['naive']['requests']} requests, "
        f"{row['naive']['seconds']} s, found={row['naive']['found']}"
    )
    return row


def _find_measured(ctx: Context, commands: Commands, text: str, expected: str) -> tuple[Sample, int, int, int]:
    """One /lead find: its sample (reply_text emptied when the reply lacks `expected`), requests, exports, GETs."""
    ctx.sandbox.reset_stats()
    sample = commands.run(f"find {text}", timeout=120)
    assert ctx.sandbox.http is not None
    stats: dict[str, Any] = ctx.sandbox.http.get("/sandbox/stats").json()
    if expected not in sample.reply_text:
        progress(f"  unexpected reply to find {text!r}: {sample.reply_text[:200]!r}")
        sample.reply_text = ""
    routes = stats["byRoute"]
    return sample, int(stats["total"]), int(routes.get(EXPORT_ROUTE, 0)), int(routes.get(LEAD_ROUTE, 0))


def _naive_find(sandbox: SandboxProcess, lists: list[dict[str, Any]], crm: str) -> dict[str, Any]:
    """What a user would script without the bot: page every list 100 leads at a time until a lead's data has the
    value. Stops after NAIVE_BUDGET_S (the sandbox's paging gets slower deeper into a list, as a real one may)."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {sandbox.token()}", "Accept": "application/json"}
    requests, leads_read, found = 1, 0, False
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=60) as http:
        for lead_list in lists:
            page = 1
            while not found and time.monotonic() - started < NAIVE_BUDGET_S:
                body = http.get(f"{API}/lists/{lead_list['id']}/leads", params={"page": page, "max": 100}).json()
                requests += 1
                leads_read += len(body["items"])
                found = any(crm in json.dumps(lead.get("data") or {}) for lead in body["items"])
                if page >= body["pagination"]["pages"]:
                    break
                page += 1
            if found or time.monotonic() - started >= NAIVE_BUDGET_S:
                break
    seconds = time.monotonic() - started
    return {"found": found, "requests": requests, "leads_read": leads_read, "seconds": round(seconds, 2)}


def part_dialer(ctx: Context) -> dict[str, Any]:
    """/lead hopper and /lead why on the biggest list: cold (the first command on that list since the bot started:
    its export, index and standings are built) and warm, with API requests per command; then the alert watcher's
    requests per pass over the sandbox's active campaigns."""
    size = max(ctx.args.sizes)
    warm_count = ctx.args.warm_commands
    rng = random.Random(12)
    name = f"Bench {size}"
    result: dict[str, Any] = {"list_size": size, "warm_commands": warm_count}
    for kind in ("hopper", "why"):
        progress(f"dialer {size}: /lead {kind}: cold, then {warm_count} warm")
        with bot_process(ctx) as (_, commands):
            texts = [_dialer_command(kind, name, size, n) for n in _picks(rng, size, warm_count + 1)]
            cold = _dialer_measured(ctx, commands, *texts[0])
            warm = [_dialer_measured(ctx, commands, *text) for text in texts[1:]]
        row: dict[str, Any] = {
            "cold_ms": ms(cold[0].reply_s),
            "cold_requests": cold[1],
            "warm_ms": summary_ms([sample.reply_s for sample, _ in warm]),
            "warm_requests_median": statistics.median(requests for _, requests in warm),
            "warm_requests_max": max(requests for _, requests in warm),
            "errors": sum(1 for sample, _ in [cold, *warm] if not sample.reply_text),
        }
        result[kind] = row
        progress(
            f"dialer {size}: {kind}: cold {row['cold_ms']} ms ({row['cold_requests']} requests), warm p50 "
            f"{row['warm_ms']['p50']} ms (at most {row['warm_requests_max']} requests), {row['errors']} failed"
        )
    result["alerts"] = asyncio.run(_alert_requests(ctx))
    alerts = result["alerts"]
    progress(
        f"dialer: alert watcher: {alerts['requests_per_pass']:g} requests per pass for {alerts['active_campaigns']} "
        f"active campaigns ({alerts['per_campaign']:g} per campaign + {alerts['shared']:g} shared)"
    )
    return result


def _dialer_command(kind: str, list_name: str, size: int, n: int) -> tuple[str, tuple[str, ...]]:
    """The command text and what its reply must hold: the hopper's next batch read from the standings; the lead's
    diagnosis with its answer."""
    if kind == "hopper":
        return f'hopper "{list_name}"', ("Hopper of", "dialable leads waiting")
    return f'why "{list_name}" bench-{size}-{n}', (f"Why bench-{size}-{n} ", "Answer:")


def _dialer_measured(ctx: Context, commands: Commands, text: str, expected: tuple[str, ...]) -> tuple[Sample, int]:
    ctx.sandbox.reset_stats()
    sample = commands.run(text)
    requests = ctx.sandbox.stats_total()
    if not all(part in sample.reply_text for part in expected):
        progress(f"  unexpected reply to {text!r}: {sample.reply_text[:200]!r}")
        sample.reply_text = ""
    return sample, requests


ALERT_PASSES = 3


async def _alert_requests(ctx: Context) -> dict[str, Any]:
    """One AlertWatcher (the bot's own class) against the bench sandbox: a first pass logs in, then the requests
    of ALERT_PASSES passes are counted. Posts go to the Slack stand-in."""
    from pydantic import SecretStr
    from slack_sdk.web.async_client import AsyncWebClient

    from babelforce import BabelforceClient, ClientCredentials
    from bot.alerts import AlertWatcher

    channel = "C0BENCHALERTS"
    ctx.stub.add_channel(channel, "leadbot-alerts")
    credentials = ClientCredentials("sandbox", SecretStr("sandbox"))
    async with BabelforceClient(base_url=ctx.sandbox.base_url, credentials=credentials) as client:
        slack = AsyncWebClient(token=ctx.stub.bot_token, base_url=ctx.stub.api_url)
        watcher = AlertWatcher(client, slack, channel, spacing=0.0)
        await watcher.check()
        campaigns = await client.list_campaigns()
        active = sum(1 for campaign in campaigns if campaign.active and campaign.lead_list is not None)
        ctx.sandbox.reset_stats()
        for _ in range(ALERT_PASSES):
            await watcher.check()
        per_pass = ctx.sandbox.stats_total() / ALERT_PASSES
    shared = 1.0  # the campaign listing, one per pass whatever the number of campaigns
    return {
        "passes": ALERT_PASSES,
        "active_campaigns": active,
        "requests_per_pass": round(per_pass, 2),
        "shared": shared,
        "per_campaign": round((per_pass - shared) / active, 2) if active else math.nan,
        "per_campaign_with_shared": round(per_pass / active, 2) if active else math.nan,
    }


# ---------------------------------------------------------------------------------------------------- report


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(what, measured, target, met) rows for the summary table."""
    rows: list[tuple[str, str, str, bool | None]] = []
    ack = results.get("ack", {}).get("closed")
    if ack:
        requests = results["ack"]["requests"]
        p99 = ack["ack_ms"]["p99"]
        rows.append(("ack p99 under load", f"{p99} ms", f"<= {TARGETS['ack_p99_ms']} ms", p99 <= TARGETS["ack_p99_ms"]))
        all_in = ack["replies_with_lead_card"] == requests
        rows.append(("replies arrived (lead cards)", f"{ack['replies_with_lead_card']} / {requests}", "all", all_in))
    workers = results.get("workers")
    if workers:
        requests, target = workers["requests"], TARGETS["workers_burst_ack_p99_ms"]
        for count, got in workers["by_workers"].items():
            p99 = got["ack_ms"]["p99"]
            rows.append((f"burst ack p99, {count} worker(s)", f"{p99} ms", f"<= {target} ms", p99 <= target))
            cards = got["replies_with_lead_card"]
            rows.append((f"burst replies, {count} worker(s)", f"{cards} / {requests}", "all", cards == requests))
    store = results.get("store")
    if store and "skipped" not in store:
        extra, target = store["postgres_extra_median_ms"], TARGETS["postgres_write_extra_ms"]
        rows.append(
            ("a write on PostgreSQL vs SQLite (median reply)", f"{extra:+} ms", f"<= +{target} ms", extra <= target)
        )
        failed = sum(got["failed"] for got in store["by_store"].values())
        rows.append(("store writes answered with the lead card", f"{failed} failed", "0 failed", failed == 0))
    overhead = results.get("overhead")
    if overhead:
        rows.append(("overhead commands answered", f"{overhead['failed']} failed", "0 failed", overhead["failed"] == 0))
        value = overhead["overhead_median_ms"]
        target = TARGETS["overhead_median_ms"]
        rows.append(("bot overhead per command (median)", f"{value} ms", f"<= {target} ms", value <= target))
    lookup = results.get("lookup")
    if lookup and "100000" in lookup["sizes"]:
        commands = lookup["sizes"]["100000"]["commands"]
        cold = max(row["cold_ms"] for row in commands.values())
        warm_ms = max(row["warm_ms"]["p50"] for row in commands.values())
        warm_requests = max(row["warm_requests_max"] for row in commands.values())
        rows.append(("100k cold, slowest command", f"{cold / 1000:.2f} s", "<= 2 s", cold <= 2000))
        rows.append(("100k warm, slowest median", f"{warm_ms} ms", "<= 300 ms", warm_ms <= 300))
        rows.append(("100k warm requests, most per command", f"{warm_requests:g}", "<= 4", warm_requests <= 4))
        failed = sum(row["errors"] for size in lookup["sizes"].values() for row in size["commands"].values())
        rows.append(("lookup commands answered with the lead card", f"{failed} failed", "0 failed", failed == 0))
    find = results.get("find")
    if find:
        many, big = find["many"], find["big"]
        lists = f"{find['lists']} lists of {find['list_size']:,}"
        rows.append((f"find, {lists}: cold", f"{many['cold_s']} s", "<= 3 s", many["cold_s"] <= 3.0))
        warm = many["warm_ms"]["p50"]
        rows.append((f"find, {lists}: warm median", f"{warm} ms", "<= 300 ms", warm <= 300))
        label = f"find, 1 list of {find['big_leads']:,}"
        rows.append((f"{label}: cold", f"{big['cold_s']} s", "<= 10 s", big["cold_s"] <= 10.0))
        warm = big["warm_ms"]["p50"]
        rows.append((f"{label}: warm median", f"{warm} ms", "<= 300 ms", warm <= 300))
        growth = big["rss_growth_mb"]
        rows.append((f"{label}: bot RSS growth", f"{growth} MB", "<= 250 MB", growth <= 250))
        exports_ok = many["cold_exports"] <= find["lists"] + 3 and many["cold_lead_gets"] == big["cold_lead_gets"] == 0
        rows.append(("find: one export per list, no GET per lead", "yes" if exports_ok else "no", "yes", exports_ok))
        failed = many["failed"] + big["failed"]
        rows.append(("find commands answered with the lead", f"{failed} failed", "0 failed", failed == 0))
    dialer = results.get("dialer")
    if dialer:
        size = dialer["list_size"]
        full = size >= 100_000
        label = f"{size // 1000}k" if size >= 1000 else str(size)
        for kind in ("hopper", "why"):
            row = dialer[kind]
            cold, warm, requests = row["cold_ms"], row["warm_ms"]["p50"], row["warm_requests_max"]
            cold_ok = cold <= TARGETS["dialer_100k_cold_s"] * 1000 if full else None
            warm_ok = warm <= TARGETS["dialer_100k_warm_ms"] if full else None
            requests_ok = requests <= TARGETS["dialer_100k_warm_requests"] if full else None
            rows.append((f"/lead {kind}, {label}: cold", f"{cold / 1000:.2f} s", "<= 2 s", cold_ok))
            rows.append((f"/lead {kind}, {label}: warm median", f"{warm} ms", "<= 300 ms", warm_ok))
            rows.append(
                (f"/lead {kind}, {label}: warm requests, most per command", f"{requests:g}", "<= 4", requests_ok)
            )
            rows.append((f"/lead {kind} answered", f"{row['errors']} failed", "0 failed", row["errors"] == 0))
        alerts = dialer["alerts"]
        per_campaign = alerts["per_campaign"]
        rows.append(
            (
                "alert watcher: requests per active campaign per interval",
                f"{per_campaign:g} + 1 per interval (the campaign list): {alerts['requests_per_pass']:g} per pass "
                f"for {alerts['active_campaigns']} active campaigns",
                "<= 2 (+1 shared)",
                per_campaign <= TARGETS["alert_requests_per_campaign"],
            )
        )
    memory = results.get("memory")
    if memory:
        peak = memory["peak_rss_mb"]
        what = f"peak RSS after {memory['list_size']}-lead lookups"
        rows.append((what, f"{peak} MB", "<= 150 MB", peak <= 150 if memory["list_size"] >= 100_000 else None))
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# leadbot benchmark results",
        "",
        f"{m['date']}; {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB, Python {m['python']}, "
        f"{m['platform']}; everything on loopback (bot, sandbox, Slack stand-in and load generator share the CPUs).",
        f"Command: `python3 dev.py bench{''.join(' ' + a for a in results['argv'])}`",
        "",
        "| measure | result | target | met |",
        "| --- | --- | --- | --- |",
    ]
    for what, value, target, met in verdicts(results):
        mark = "yes" if met else ("no" if met is False else "n/a")
        lines.append(f"| {what} | {value} | {target} | {mark} |")
    ack = results.get("ack")
    if ack:
        lines += [
            "",
            f"## 1. Ack under load ({ack['requests']} `/lead show`, {ack['in_flight']} in flight, sandbox +"
            f"{ack['sandbox_latency_ms']:g} ms per API call)",
            "",
            f"closed: {ack['in_flight']} users, each sends its next command once its reply came ({ack['in_flight']} "
            f"commands in progress); burst: the next command goes as soon as an ack returns ({ack['in_flight']} acks "
            "awaited, any number of commands in progress).",
            "",
            "| | p50 | p95 | p99 | max |",
            "| --- | --- | --- | --- | --- |",
        ]
        for mode, label in (("closed", "closed"), ("open", "burst")):
            if mode in ack:
                lines += [_row(f"{label}: ack (HTTP answer to Slack)", ack[mode]["ack_ms"])]
                lines += [_row(f"{label}: reply at the response_url", ack[mode]["reply_ms"])]
        lines.append("")
        for mode, label in (("closed", "closed"), ("open", "burst")):
            if mode in ack:
                got = ack[mode]
                lines.append(
                    f"- {label}: acks 200 {got['acks_200']}/{ack['requests']}, over 3 s {got['acks_over_3s']}; "
                    f"replies {got['replies']} ({got['replies_with_lead_card']} lead cards); {got['wall_s']} s in all; "
                    f"CPU per command: bot {got['bot_cpu_ms_per_command']} ms, sandbox "
                    f"{got['sandbox_cpu_ms_per_command']} ms."
                )
    workers = results.get("workers")
    if workers:
        lines += [
            "",
            f"## 1b. Burst ack with `--workers` ({workers['requests']} `/lead show`, the next as soon as an ack "
            f"returns, {workers['in_flight']} acks awaited, sandbox +{workers['sandbox_latency_ms']:g} ms per API "
            "call; a fresh bot for each count)",
            "",
            "| | p50 | p95 | p99 | max |",
            "| --- | --- | --- | --- | --- |",
        ]
        for count, got in workers["by_workers"].items():
            lines += [
                _row(f"{count} worker(s): ack", got["ack_ms"]),
                _row(f"{count} worker(s): reply", got["reply_ms"]),
            ]
        lines.append("")
        for count, got in workers["by_workers"].items():
            lines.append(
                f"- {count} worker(s): acks 200 {got['acks_200']}/{workers['requests']}; replies {got['replies']} "
                f"({got['replies_with_lead_card']} lead cards); {got['wall_s']} s in all; CPU per command: bot "
                f"{got['bot_cpu_ms_per_command']} ms (all its processes), "
                f"sandbox {got['sandbox_cpu_ms_per_command']} ms."
            )
    store = results.get("store")
    if store:
        lines += [
            "",
            f"## 1c. A write on each audit store ({store['writes']} `/lead rank` per store, one at a time)",
            "",
        ]
        if "skipped" in store:
            lines.append(f"Not measured: no PostgreSQL ({store['skipped']}).")
        else:
            lines += [
                "| | p50 | p95 | p99 | max |",
                "| --- | --- | --- | --- | --- |",
                *(_row(f"{kind}: reply per write", got["reply_ms"]) for kind, got in store["by_store"].items()),
                "",
                f"PostgreSQL ({store['postgres_server']}; {store['postgres_durability']}) costs "
                f"**{store['postgres_extra_median_ms']:+} ms** per write at the median and "
                f"{store['postgres_extra_p95_ms']:+} ms at p95, with "
                f"{store['postgres_transactions_per_write']:g} store transactions (round trips) per write: over a "
                "network, add that many round trips to the database.",
            ]
    overhead = results.get("overhead")
    if overhead:
        lines += [
            "",
            f"## 2. Overhead ({overhead['commands']} warm `/lead show` one at a time, {overhead['pause_ms']:g} ms "
            "apart, no added latency)",
            "",
            "| | p50 | p95 | p99 | max |",
            "| --- | --- | --- | --- | --- |",
            _row("command to reply at the response_url", overhead["reply_ms"]),
            _row("ack", overhead["ack_ms"]),
            _row("the same babelforce calls made directly", overhead["direct_calls_ms"]),
            _row("back to back (each sent when the last one's answer came): reply", overhead["back_to_back_reply_ms"]),
            "",
            f"Added by the bot (median reply - median direct calls): **{overhead['overhead_median_ms']} ms**. "
            f"Direct calls: {overhead['direct_calls']}. Back to back, a command comes within 50 ms of the last ack, "
            "so the bot takes it for part of a burst and its work waits 10 ms for a next ack that does not come "
            f"(bot.ack_first); {overhead['back_to_back_failed']} of those failed.",
        ]
    lookup = results.get("lookup")
    if lookup:
        lines += [
            "",
            f"## 3. Lookup at scale (cold = first command on the list since the bot started; warm = median of "
            f"{lookup['warm_commands']} more, random leads)",
            "",
            "| leads | command | cold | cold requests | warm p50 | warm p95 | warm requests |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for size, entry in lookup["sizes"].items():
            for name, row in entry["commands"].items():
                lines.append(
                    f"| {int(size):,} | `/lead {name}` | {row['cold_ms']} ms | {row['cold_requests']} | "
                    f"{row['warm_ms']['p50']} ms | {row['warm_ms']['p95']} ms | {row['warm_requests_median']:g} |"
                )
        lines += [
            "",
            "Naive alternative (a plain httpx script paging the list 100 at a time until it finds the uid of the "
            "lead in the middle of the list):",
            "",
            "| leads | naive requests | naive time | bot show by uid, cold / warm requests | naive time / bot cold "
            "| naive time / bot warm |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for size, entry in lookup["sizes"].items():
            naive, show = entry["naive"], entry["commands"]["show by uid"]
            lines.append(
                f"| {int(size):,} | {naive['requests']} | {naive['seconds']} s | {show['cold_requests']} / "
                f"{show['warm_requests_median']:g} | {naive['ratio_to_bot_cold']}x | {naive['ratio_to_bot_warm']}x |"
            )
        lines += [
            "",
            "The bot's requests include reading the campaign and its hopper (2 of them) for the caveat; the lookup "
            "itself is 1 request warm and 2 cold (CSV export + GET). On loopback a page costs ~2 ms; against a "
            "real babelforce each of the naive script's requests pays the network round trip.",
        ]
    memory = results.get("memory")
    if memory:
        lines += [
            "",
            f"## 4. Memory (bot process, {memory['commands']} show/rank commands by uid and number on the "
            f"{memory['list_size']:,}-lead list)",
            "",
            f"RSS after start {memory['rss_after_start_mb']} MB, after the lookups {memory['rss_after_mb']} MB, "
            f"peak {memory['peak_rss_mb']} MB.",
        ]
    find = results.get("find")
    if find:
        lines += [
            "",
            f"## 5. /lead find (cold = the bot's first find; warm = {find['many']['warm_commands']} more finds of "
            "random leads: a CRM id in the data, a uid, a number in another spelling, and a first name)",
            "",
            "| case | cold | bare download of the biggest export | cold requests (exports) | warm p50 | warm p95 | "
            "warm p50 by kind | bot RSS after start / peak / growth | naive paging script |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for key, name in (
            ("many", f"{find['lists']} lists of {find['list_size']:,}"),
            ("big", f"1 list of {find['big_leads']:,}"),
        ):
            row = find[key]
            kinds = ", ".join(f"{kind} {value} ms" for kind, value in row["warm_ms_by_kind"].items())
            naive = row["naive"]
            naive_text = f"{naive['requests']} requests, {naive['seconds']} s, " + (
                "found" if naive["found"] else f"gave up after {naive['leads_read']:,} leads"
            )
            lines.append(
                f"| {name} | {row['cold_s']} s | {row['export_download_s']} s | {row['cold_requests']} "
                f"({row['cold_exports']}) | "
                f"{row['warm_ms']['p50']} ms | {row['warm_ms']['p95']} ms | {kinds} | {row['rss_after_start_mb']} / "
                f"{row['peak_rss_mb']} / +{row['rss_growth_mb']} MB | {naive_text} |"
            )
        lines += [
            "",
            "Every list the account has is searched (the demo seed's 3 small lists too). A warm find makes no export "
            "and no GET per lead: the lists and campaigns directories are cached, the hopper of each campaign whose "
            "list has a match shown is read live.",
        ]
    dialer = results.get("dialer")
    if dialer:
        lines += [
            "",
            f"## 6. /lead hopper, /lead why and the alert watcher ({dialer['list_size']:,}-lead list; cold = the first "
            f"command on the list since the bot started; warm = {dialer['warm_commands']} more, random leads for why)",
            "",
            "| command | cold | cold requests | warm p50 | warm p95 | warm requests (median / most) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for kind in ("hopper", "why"):
            row = dialer[kind]
            lines.append(
                f"| `/lead {kind}` | {row['cold_ms']} ms | {row['cold_requests']} | {row['warm_ms']['p50']} ms | "
                f"{row['warm_ms']['p95']} ms | {row['warm_requests_median']:g} / {row['warm_requests_max']:g} |"
            )
        alerts = dialer["alerts"]
        lines += [
            "",
            f"Alert watcher (bot.alerts.AlertWatcher, {alerts['passes']} passes counted after a first one): "
            f"{alerts['requests_per_pass']:g} babelforce requests per pass for {alerts['active_campaigns']} active "
            f"campaigns: 1 per interval for the campaign list, plus {alerts['per_campaign']:g} per active campaign "
            f"(its status and its hopper); {alerts['per_campaign_with_shared']:g} per campaign with the list shared "
            "out.",
        ]
    return "\n".join(lines) + "\n"


def _row(name: str, summary: dict[str, float]) -> str:
    return f"| {name} | {summary['p50']} ms | {summary['p95']} ms | {summary['p99']} ms | {summary['max']} ms |"


# ---------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 dev.py bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts (default all: {','.join(PARTS)})"
    )
    parser.add_argument("--sizes", help="comma-separated list sizes for lookup and memory (default 1000,10000,100000)")
    parser.add_argument("--quick", action="store_true", help="a quick check: 1000-lead list, few commands (~15 s)")
    parser.add_argument("--ack-requests", type=int, default=200, help="commands in the ack test (default 200)")
    parser.add_argument("--ack-concurrency", type=int, default=50, help="commands in flight (default 50)")
    parser.add_argument("--ack-latency-ms", type=float, default=500, help="sandbox latency per API call (default 500)")
    parser.add_argument("--store-writes", type=int, default=50, help="rank writes per audit store (default 50)")
    parser.add_argument("--overhead-commands", type=int, default=50, help="commands in the overhead test (default 50)")
    parser.add_argument("--warm-commands", type=int, default=20, help="warm commands per lookup case (default 20)")
    parser.add_argument(
        "--workers-counts",
        default=",".join(map(str, WORKER_COUNTS)),
        help="workers part: the N of `--workers N` to burst, a fresh bot each (default 1,2)",
    )
    parser.add_argument(
        "--lookup-commands",
        default=",".join(COMBO_NAMES),
        help=f"lookup part: the commands measured, a fresh bot each (default {','.join(COMBO_NAMES)}; show-uid "
        "always, the naive alternative is compared with it)",
    )
    parser.add_argument("--reply-timeout", type=float, default=60, help="seconds to wait for a reply (default 60)")
    parser.add_argument("--find-lists", default=FIND_LISTS, help=f"find: COUNTxSIZE lists (default {FIND_LISTS})")
    parser.add_argument("--find-big", type=int, default=FIND_BIG, help=f"find: one list this big (default {FIND_BIG})")
    parser.add_argument("--profile-bot", type=Path, help="run each bot under cProfile, writing this file")
    parser.add_argument(
        "--out",
        type=Path,
        help="write OUT.md and OUT.json (default bench/results/latest for a full run, bench/results/partial otherwise)",
    )
    args = parser.parse_args(argv)
    args.parts = [part for part in args.only.split(",") if part]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    try:
        args.worker_counts = [int(count) for count in args.workers_counts.split(",") if count]
    except ValueError:
        parser.error(f"--workers-counts takes whole numbers, e.g. 1,2; not {args.workers_counts!r}")
    if not args.worker_counts or min(args.worker_counts) < 1:
        parser.error("--workers-counts needs at least one count, each 1 or more")
    wanted = [name for name in args.lookup_commands.split(",") if name]
    unknown = set(wanted) - set(COMBO_NAMES)
    if unknown or "show-uid" not in wanted:
        parser.error(f"--lookup-commands: choose from {', '.join(COMBO_NAMES)}, show-uid included")
    args.lookup_combos = [combo for name, combo in COMBO_NAMES.items() if name in wanted]
    if args.sizes:
        args.sizes = sorted({int(size) for size in args.sizes.split(",") if size})
    else:
        args.sizes = [1_000] if args.quick else list(FULL_SIZES)
    if args.quick:
        args.ack_requests, args.ack_concurrency = min(args.ack_requests, 40), min(args.ack_concurrency, 10)
        args.overhead_commands = min(args.overhead_commands, 10)
        args.store_writes = min(args.store_writes, 10)
        args.warm_commands = min(args.warm_commands, 3)
        if args.find_lists == FIND_LISTS:
            args.find_lists = "3x1000"
        if args.find_big == FIND_BIG:
            args.find_big = 20_000
    full = not args.quick and args.parts == list(PARTS) and args.sizes == list(FULL_SIZES) and len(argv) == 0
    args.out = args.out or (RESULTS / ("latest" if full else "partial"))
    return args


PART_FUNCTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "ack": part_ack,
    "workers": part_workers,
    "store": part_store,
    "overhead": part_overhead,
    "lookup": part_lookup,
    "memory": part_memory,
    "find": part_find,
    "dialer": part_dialer,
}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # a SIGTERM (CI timeouts, `kill`) unwinds like Ctrl-C, so the bot and sandbox processes are stopped
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results: dict[str, Any] = {"machine": machine(), "argv": argv, "targets": TARGETS}
    sizes = args.sizes if {"lookup", "memory", "dialer"} & set(args.parts) else []
    progress(f"starting the sandbox (lists of {', '.join(map(str, sizes)) or 'demo only'} leads)")
    with tempfile.TemporaryDirectory(prefix="leadbot-bench-") as tmp:
        log_path = Path(tmp) / "bot.log"
        with SandboxProcess(sizes) as sandbox, SlackStub() as stub:
            ctx = Context(args, sandbox, stub, log_path)
            for part in args.parts:
                results[part] = PART_FUNCTIONS[part](ctx)
                stub.clear()
        log_lines = log_path.read_text(errors="replace").splitlines()
        results["bot_log"] = {
            "errors": sum(1 for line in log_lines if " ERROR " in line),
            "warnings": sum(1 for line in log_lines if " WARNING " in line),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log_path, args.out.with_suffix(".bot.log"))  # not committed (see .gitignore)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    progress(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")
    return 0
