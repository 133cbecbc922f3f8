"""`leadbot audit export` on both stores (a SQLite file and a PostgreSQL database): every record in JSON lines and
CSV (read back with the json and csv modules), --since/--until by day in UTC, a command with non-ASCII, commas,
quotes and a newline round-tripping, 25 000 records streamed with progress lines, bad dates refused in one sentence
(exit 2), and a read-only store: never created, migrated or written."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import audit_export, migrations
from bot.audit import Actor, Outcome, open_store
from bot.audit_export import COLUMNS, Period, export
from bot.cli import main
from tests.support import is_postgres, store_rows

ALICE = Actor(user_id="U0ALICE", team_id="T0TEAM", enterprise_id="E0ORG", channel_id="C0OPS")
DAY1 = datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
DAY3 = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
TRICKY = 'set "Frühjahr, Köln" lead-1 note="er sagte: ""hallo"", dann\nging er" 名前=山田'


class Clock:
    def __init__(self) -> None:
        self.now = DAY1

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def trail(audit_target: str) -> Iterator[dict[str, Any]]:
    """Three records on three days: an ok rank change, its undo (with the tricky command), a denial."""
    clock = Clock()
    store = open_store(audit_target, clock=clock)
    try:

        async def fill() -> dict[str, Any]:
            first = await store.begin(
                actor=ALICE,
                action="rank",
                command='rank "Spring leads" lead-1 77',
                request_id="command:1.2.3",
                list_id="LIST1",
                list_name="Spring leads",
                lead_id="ee369f62c0c04c8993e4b3921c506c45",
                lead_uid="lead-1",
                before={"uid": "lead-1", "number": "+4915100000001", "rank": 1, "data": {"city": "Köln"}},
            )
            assert first is not None
            await store.finish(first, outcome=Outcome.OK, after={"uid": "lead-1", "rank": 77}, caveat="hopper")
            clock.now = DAY2
            second = await store.begin(
                actor=ALICE,
                action="set",
                command=TRICKY,
                request_id="undo:1",
                list_id="LIST1",
                list_name="Spring leads",
                lead_id="ee369f62c0c04c8993e4b3921c506c45",
                lead_uid="lead-1",
                before={"uid": "lead-1", "rank": 77},
                undo_of=first,
                reply_to={"response_url": "https://hooks.slack.com/commands/T0/1/secret", "channel_id": "C0OPS"},
            )
            assert second is not None
            await store.finish(second, outcome=Outcome.FAILED, detail="changed since: rank is now 5, not 77")
            clock.now = DAY3
            third = await store.denied(
                actor=Actor("U0BOB"), action="rank", command="rank x y 1", reason="not a writer", list_ref="x"
            )
            return {"ids": [first, second, third], "target": audit_target}

        yield asyncio.run(fill())
    finally:
        store.close()


def jsonl(target: str, period: Period | None = None) -> list[dict[str, Any]]:
    out = io.StringIO()
    count = export(target, period or Period(), "jsonl", out)
    lines = out.getvalue().splitlines()
    assert len(lines) == count
    return [json.loads(line) for line in lines]


def test_jsonl_has_every_field_of_every_record(trail: dict[str, Any]) -> None:
    first, second, third = trail["ids"]
    rows = jsonl(trail["target"])
    assert [row["id"] for row in rows] == [first, second, third]
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0] | {"finished_at": None} == {
        "id": first,
        "time": "2025-03-01T23:59:59.000000Z",
        "finished_at": None,
        "user_id": "U0ALICE",
        "team_id": "T0TEAM",
        "enterprise_id": "E0ORG",
        "channel_id": "C0OPS",
        "action": "rank",
        "command": 'rank "Spring leads" lead-1 77',
        "list_id": "LIST1",
        "list_name": "Spring leads",
        "lead_id": "ee369f62c0c04c8993e4b3921c506c45",
        "lead_uid": "lead-1",
        "before": {"uid": "lead-1", "number": "+4915100000001", "rank": 1, "data": {"city": "Köln"}},
        "after": {"uid": "lead-1", "rank": 77},
        "outcome": "ok",
        "detail": None,
        "caveat": "hopper",
        "request_id": "command:1.2.3",
        "undo_of": None,
        "undone_by": None,
    }
    assert rows[0]["finished_at"] == "2025-03-01T23:59:59.000000Z"
    assert rows[1]["command"] == TRICKY
    assert (rows[1]["undo_of"], rows[1]["outcome"], rows[1]["after"]) == (first, "failed", None)
    assert rows[1]["detail"] == "changed since: rank is now 5, not 77"
    assert (rows[2]["user_id"], rows[2]["outcome"], rows[2]["detail"]) == ("U0BOB", "denied", "not a writer")
    assert "hooks.slack.com" not in json.dumps(rows)  # where to answer the user is no part of the trail


def test_csv_round_trips_through_the_csv_module(trail: dict[str, Any]) -> None:
    out = io.StringIO(newline="")
    assert export(trail["target"], Period(), "csv", out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert list(rows[0]) == list(COLUMNS)
    as_jsonl = jsonl(trail["target"])
    for row, expected in zip(rows, as_jsonl, strict=True):
        for column in COLUMNS:
            value = expected[column]
            if isinstance(value, dict):
                assert json.loads(row[column]) == value
            else:
                assert row[column] == ("" if value is None else str(value)), column
    assert rows[1]["command"] == TRICKY  # non-ASCII, commas, doubled quotes and a newline, as typed


def test_since_and_until_are_days_in_utc_both_included(trail: dict[str, Any]) -> None:
    first, second, third = trail["ids"]

    def between(since: str | None, until: str | None) -> list[int]:
        period = Period(
            audit_export.moment(since, option="--since", end_of_day=False) if since else None,
            audit_export.moment(until, option="--until", end_of_day=True) if until else None,
        )
        return [row["id"] for row in jsonl(trail["target"], period)]

    assert between("2025-03-02", None) == [second, third]
    assert between(None, "2025-03-01") == [first]  # 23:59:59 on the 1st is still the 1st
    assert between("2025-03-02", "2025-03-02") == [second]
    assert between("2025-03-02T08:00:00Z", "2025-03-03T00:00:00+00:00") == [second]  # a time: before that moment
    assert between("2025-03-02T09:00:00+01:00", None) == [second, third]  # 08:00 UTC
    assert between("2025-03-04", None) == []


def test_the_command_writes_a_file_with_a_final_count(
    trail: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("LEADBOT_DB", trail["target"])
    output = tmp_path / "q1.csv"
    code = main(["audit", "export", "--since", "2025-03-02", "--format", "csv", "--output", str(output)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == ""
    assert captured.err == f"leadbot audit export: 2 records written to {output} (csv).\n"
    rows = list(csv.DictReader(output.open(encoding="utf-8", newline="")))
    assert [int(row["id"]) for row in rows] == trail["ids"][1:]
    assert oct(output.stat().st_mode & 0o777) == "0o600"  # it holds phone numbers: its owner's only
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".partial")] == []

    assert main(["audit", "export", "--until", "2025-03-01"]) == 0  # stdout, JSON lines by default
    captured = capsys.readouterr()
    [line] = captured.out.splitlines()
    assert json.loads(line)["id"] == trail["ids"][0]
    assert captured.err == "leadbot audit export: 1 record written to standard output (jsonl).\n"


@pytest.mark.parametrize(
    ("arguments", "sentence"),
    [
        (
            ["--since", "2025-13-01"],
            "--since '2025-13-01' is not a date: use YYYY-MM-DD (a day, UTC) or an ISO 8601 time such as "
            "2025-01-31T08:00:00Z.",
        ),
        (
            ["--until", "yesterday"],
            "--until 'yesterday' is not a date: use YYYY-MM-DD (a day, UTC) or an ISO 8601 time such as "
            "2025-01-31T08:00:00Z.",
        ),
        (
            ["--since", "2025-03-02", "--until", "2025-03-01"],
            "--since (2025-03-02) must be before --until (2025-03-01).",
        ),
    ],
)
def test_bad_dates_are_refused_in_one_sentence(
    arguments: list[str],
    sentence: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADBOT_DB", str(tmp_path / "leadbot.db"))
    assert main(["audit", "export", *arguments]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"leadbot audit export: {sentence}\n")
    assert not (tmp_path / "leadbot.db").exists()


def test_a_large_export_streams_in_pages_with_progress(audit_target: str) -> None:
    open_store(audit_target).close()  # the schema, as `leadbot run` leaves it
    many = 25_000
    store_rows(
        audit_target,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO changes (at, user_id, action, command, outcome) "
        "SELECT '2025-03-01T09:00:00.000000+00:00', 'U0BULK', 'rank', 'rank \"Bulk\" lead-' || i || ' 5', 'ok' FROM n",
        (many,),
    )
    out, progress = io.StringIO(), io.StringIO()
    rows = audit_export.records(audit_target, Period(), page=1000)
    first = next(rows)  # the first page is out before the rest is read
    assert first["command"] == 'rank "Bulk" lead-1 5'
    rows.close()
    assert export(audit_target, Period(), "jsonl", out, progress=progress) == many
    assert progress.getvalue().splitlines() == [
        "leadbot audit export: 10000 records so far …",
        "leadbot audit export: 20000 records so far …",
    ]
    lines = out.getvalue().splitlines()
    assert len(lines) == many
    assert json.loads(lines[-1])["command"] == f'rank "Bulk" lead-{many} 5'


def test_the_store_is_only_read(trail: dict[str, Any], tmp_path: Path) -> None:
    target = trail["target"]
    if is_postgres(target):
        store_rows(target, "INSERT INTO schema_migrations (version, name) VALUES (99, 'from_the_future')")
    else:
        files = sorted(Path(target).parent.iterdir())
        data = [path for path in files if not path.name.endswith("-shm")]  # -shm: readers' shared memory, no data
        before = [path.read_bytes() for path in data]
        assert len(jsonl(target)) == 3
        assert sorted(Path(target).parent.iterdir()) == files  # no file created (a journal, a copy)
        assert [path.read_bytes() for path in data] == before  # the database and its write-ahead log unchanged
        store_rows(target, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'now')")
    with pytest.raises(audit_export.ExportError) as newer:
        jsonl(target)
    assert newer.value.message == (
        "the audit trail (LEADBOT_DB) was written by a newer leadbot; export it with that leadbot's version."
    )
    assert max(row["version"] for row in store_rows(target, "SELECT version FROM schema_migrations")) == 99


def test_a_missing_or_foreign_store_is_reported_never_created(audit_target: str, tmp_path: Path) -> None:
    with pytest.raises(audit_export.ExportError) as failure:
        jsonl(audit_target)  # nothing there yet: no file, or an empty database
    if is_postgres(audit_target):
        assert failure.value.message.endswith("holds no leadbot audit trail (it has no changes table).")
        assert store_rows(audit_target, "SELECT to_regclass('changes') AS found") == [{"found": None}]
    else:
        assert failure.value.message == (
            f"LEADBOT_DB names no audit file: {audit_target} does not exist, so there is nothing to export."
        )
        assert not os.path.exists(audit_target)


def test_an_older_sqlite_file_exports_as_it_is(tmp_path: Path) -> None:
    """A file at schema version 1 (undo of an add recorded as "delete") is exported without being migrated."""
    target = tmp_path / "v1.db"
    with sqlite3.connect(target) as conn:
        for statement in migrations.migrations("sqlite")[0].statements():
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO changes (at, user_id, action, command, outcome, undo_of) VALUES "
            "('2020-01-01T00:00:00.000000+00:00', 'U0OLD', 'delete', 'undo', 'ok', 7)"
        )
    conn.close()
    [row] = jsonl(str(target))
    assert (row["action"], row["time"]) == ("undo_add", "2020-01-01T00:00:00.000000Z")
    assert store_rows(target, "SELECT action FROM changes") == [{"action": "delete"}]  # the file is untouched
    assert store_rows(target, "PRAGMA user_version") == [{"user_version": 1}]
