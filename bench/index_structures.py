"""Which structure should hold a list's index for /lead find? Measured at 1 000 000 leads (docs/performance.md).

    python3 bench/index_structures.py [--leads 1000000] [--only objects,sqlite,columnar,numpy]

Each structure is built in a fresh process from the same CSV export (the sandbox's columns and data), read from a
file in 64 KB chunks as the bot reads a download, and then asked what /lead find and the lookups ask:

- objects:  a tuple per lead, dicts uid -> row and number -> rows; a search loops over the leads' texts;
- sqlite:   an in-memory sqlite3 table with indexes on uid and number; a search is instr() over a text column;
- columnar: babelforce.lookup.LeadIndex (what the bot uses): bytes blobs and arrays, a search is bytes.find;
- numpy:    numpy columns (StringDType texts, int64 numbers), a search is numpy.strings.find; only where numpy 2 is
            installed (leadbot does not depend on it).

Reported per structure: build time, RSS kept after the build and the peak growth during it (VmRSS / VmHWM), and
the time of a uid lookup, a number lookup, a search that matches one lead, one that matches an eighth of them, and
one that matches nothing. Runs with the standard library plus whatever it finds; loads lookup.py by path, so the
system python3 (with numpy, if any) works as well as .venv's.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STRUCTURES = ("objects", "sqlite", "columnar", "numpy")
FIRST = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Jonas", "Lena", "Max", "Mia")
LAST = ("Martin", "Schmidt", "Meyer", "Weber", "Wagner", "Becker", "Hoffmann", "Koch")
CHUNK = 64 * 1024


def write_export(path: Path, leads: int) -> None:
    """A CSV export with the sandbox's columns: id, uid, number, rank, status, callCount, dates, data (JSON)."""
    rng = random.Random(7)
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("id", "uid", "number", "rank", "status", "callCount", "dateCreated", "lastUpdated", "data"))
        for n in range(1, leads + 1):
            data = {"firstName": FIRST[n % 12], "lastName": LAST[n % 8], "crmId": f"CRM-{n:07d}"}
            writer.writerow(
                (
                    f"{rng.getrandbits(128):032x}",
                    f"lead-{n}",
                    f"+49152{n:08d}",
                    n % 30_000,
                    "pending",
                    0,
                    "2026-11-26T10:00:00Z",
                    "2026-11-26T10:00:00Z",
                    dumps(data),
                )
            )


def chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def rows(path: Path) -> Iterator[list[str]]:
    """The export's rows after its header, read the way the bot reads a download."""

    def lines() -> Iterator[str]:
        rest = b""
        for chunk in chunks(path):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            yield from io.StringIO(data[:cut].decode(), newline="")
        if rest:
            yield rest.decode()

    reader = csv.reader(lines())
    next(reader)
    yield from reader


def text_of(uid: str, raw_data: str) -> str:
    values = json.loads(raw_data) if raw_data else {}
    return "\x1f".join([uid, *map(str, values.values())]).casefold()


def memory_kb() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


# ---------------------------------------------------------------------------------------------------- structures


def build_objects(path: Path) -> dict[str, Callable[[str], Any]]:
    leads: list[tuple[str, str, str, int, str, str]] = []
    by_uid: dict[str, int] = {}
    by_number: dict[str, list[int]] = {}
    for row in rows(path):
        n = len(leads)
        leads.append((row[0], row[1], row[2], int(row[3]), row[4], text_of(row[1], row[8])))
        by_uid[row[1]] = n
        by_number.setdefault(row[2].lstrip("+"), []).append(n)

    def search(needle: str) -> int:
        wanted = needle.casefold()
        return sum(1 for lead in leads if wanted in lead[5])

    return {
        "uid": lambda uid: leads[by_uid[uid]][0],
        "number": lambda number: [leads[n][0] for n in by_number.get(number.lstrip("+"), [])],
        "search": search,
    }


def build_sqlite(path: Path) -> dict[str, Callable[[str], Any]]:
    import sqlite3

    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE TABLE leads (id BLOB, uid TEXT, number TEXT, rank INTEGER, status TEXT, text TEXT)")
    batch: list[tuple[bytes, str, str, int, str, str]] = []
    for row in rows(path):
        batch.append((bytes.fromhex(row[0]), row[1], row[2].lstrip("+"), int(row[3]), row[4], text_of(row[1], row[8])))
        if len(batch) == 4096:
            db.executemany("INSERT INTO leads VALUES (?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
    db.executemany("INSERT INTO leads VALUES (?, ?, ?, ?, ?, ?)", batch)
    db.execute("CREATE INDEX by_uid ON leads (uid)")
    db.execute("CREATE INDEX by_number ON leads (number)")

    def search(needle: str) -> int:
        return db.execute("SELECT count(*) FROM leads WHERE instr(text, ?) > 0", (needle.casefold(),)).fetchone()[0]

    return {
        "uid": lambda uid: db.execute("SELECT id FROM leads WHERE uid = ?", (uid,)).fetchone()[0].hex(),
        "number": lambda number: [
            r[0].hex() for r in db.execute("SELECT id FROM leads WHERE number = ?", (number.lstrip("+"),))
        ],
        "search": search,
    }


def build_columnar(path: Path) -> dict[str, Callable[[str], Any]]:
    spec = importlib.util.spec_from_file_location("leadbot_lookup", ROOT / "babelforce" / "lookup.py")
    assert spec is not None and spec.loader is not None
    lookup = importlib.util.module_from_spec(spec)
    sys.modules["leadbot_lookup"] = lookup
    spec.loader.exec_module(lookup)
    index = lookup.LeadIndex.from_chunks(chunks(path), built_at=0)
    return {
        "uid": index.id_for_uid,
        "number": index.ids_for_number,
        "search": lambda needle: index.search(needle, limit=10).total,
    }


def build_numpy(path: Path) -> dict[str, Callable[[str], Any]]:
    import numpy as np  # type: ignore[import-not-found, unused-ignore]

    ids: list[bytes] = []
    uids: list[str] = []
    numbers: list[int] = []
    ranks: list[int] = []
    texts: list[str] = []
    for row in rows(path):
        ids.append(bytes.fromhex(row[0]))
        uids.append(row[1])
        numbers.append(int(row[2].lstrip("+")))
        ranks.append(int(row[3]))
        texts.append(text_of(row[1], row[8]))
    string = np.dtypes.StringDType()
    id_column = np.array(ids, dtype="S16")
    uid_column = np.array(uids, dtype=string)
    number_column = np.array(numbers, dtype=np.int64)
    text_column = np.array(texts, dtype=string)
    np.array(ranks, dtype=np.int32)
    del ids, uids, numbers, ranks, texts

    return {
        "uid": lambda uid: id_column[np.flatnonzero(uid_column == uid)[0]].hex(),
        "number": lambda number: [i.hex() for i in id_column[number_column == int(number.lstrip("+"))]],
        "search": lambda needle: int(np.count_nonzero(np.strings.find(text_column, needle.casefold()) >= 0)),
    }


BUILDERS = {"objects": build_objects, "sqlite": build_sqlite, "columnar": build_columnar, "numpy": build_numpy}


def measure(name: str, path: Path, leads: int) -> dict[str, Any]:
    """In this (fresh) process: build one structure and time what find and the lookups ask of it."""
    before = memory_kb()["VmRSS"]
    started, cpu = time.perf_counter(), time.process_time()
    structure = BUILDERS[name](path)
    build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    after = memory_kb()
    middle = leads // 2
    asks = {
        "uid_ms": ("uid", f"lead-{middle}"),
        "number_ms": ("number", f"+49152{middle:08d}"),
        "search_one_ms": ("search", f"crm-{middle:07d}"),
        "search_eighth_ms": ("search", "martin"),
        "search_none_ms": ("search", "zebra"),
    }
    timings: dict[str, Any] = {}
    for label, (what, argument) in asks.items():
        best, answer = 1e9, None
        for _ in range(3):
            began = time.perf_counter()
            answer = structure[what](argument)
            best = min(best, time.perf_counter() - began)
        timings[label] = round(best * 1000, 2)
        timings[label.replace("_ms", "_answer")] = answer if isinstance(answer, int) else bool(answer)
    return {
        "structure": name,
        "leads": leads,
        "build_s": round(build_s, 2),
        "build_cpu_s": round(build_cpu_s, 2),
        "kept_mb": round((after["VmRSS"] - before) / 1024, 1),
        "peak_growth_mb": round((after["VmHWM"] - before) / 1024, 1),
        **timings,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 bench/index_structures.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(STRUCTURES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.export, args.leads)))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="leadbot-structures-") as tmp:
        export = Path(tmp) / "export.csv"
        began = time.perf_counter()
        write_export(export, args.leads)
        print(
            f"export: {args.leads:,} leads, {export.stat().st_size / 1e6:.0f} MB, written in "
            f"{time.perf_counter() - began:.1f} s",
            file=sys.stderr,
        )
        for name in args.only.split(","):
            if name == "numpy" and importlib.util.find_spec("numpy") is None:
                print("numpy: not installed here; skipped", file=sys.stderr)
                continue
            child = subprocess.run(
                [sys.executable, __file__, "--child", name, "--export", str(export), "--leads", str(args.leads)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
            if child.returncode != 0:
                print(f"{name}: failed\n{child.stderr[-2000:]}", file=sys.stderr)
                continue
            results.append(json.loads(child.stdout))
            print(json.dumps(results[-1]), file=sys.stderr)
    columns: tuple[str, ...] = (
        "structure",
        "build_s",
        "kept_mb",
        "peak_growth_mb",
        "uid_ms",
        "number_ms",
        "search_one_ms",
    )
    columns += ("search_eighth_ms", "search_none_ms")
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for result in results:
        print("| " + " | ".join(str(result[column]) for column in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
