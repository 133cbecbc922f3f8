"""`leadbot audit export`: the audit trail, one row per record, for an auditor (JSON lines or CSV).

It reads the store LEADBOT_DB names, with `leadbot run`'s settings, and only reads: a SQLite file is opened
read-only (a missing file is reported, never created), a PostgreSQL database in a read-only transaction, and
neither is migrated. A store at an older schema version exports as it is (every exported column exists since the
first version); one written by a newer leadbot is refused, as `leadbot run` refuses it.

Why its own connection rather than `open_store`: opening the store for the bot creates, migrates and proves it
writable, which an export must not do. Rows are read in pages by id, inside one read transaction (a consistent
snapshot, however long the export takes, while the bot goes on writing), so memory stays flat for any size.

What a row holds: everything the store keeps that says who did what, when, to which lead, with what result,
phone numbers as recorded (the trail is the auditor's). Left out: where the bot was to answer the user (a Slack
response_url, a short-lived credential to post into the channel), which says nothing about the change. The store
holds no tokens or passwords.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import sqlite3
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from . import audit, migrations
from .audit import sqlite_path, store_kind
from .masking import mask_url
from .settings import StartupError, load_settings

FORMATS = ("jsonl", "csv")
#: The export's columns, in order (CSV header, JSON keys). What each means: docs/reliability.md.
COLUMNS = (
    "id",
    "time",
    "finished_at",
    "user_id",
    "team_id",
    "enterprise_id",
    "channel_id",
    "action",
    "command",
    "list_id",
    "list_name",
    "lead_id",
    "lead_uid",
    "before",
    "after",
    "outcome",
    "detail",
    "caveat",
    "request_id",
    "undo_of",
    "undone_by",
)
_STORED = (
    "id, at, finished_at, user_id, team_id, enterprise_id, channel_id, action, command, list_id, list_name, lead_id, "
    "lead_uid, before_json, after_json, outcome, detail, caveat, request_id, undo_of, undone_by"
)
#: Records read per query, and how often the progress line is written to stderr.
PAGE = 1000
PROGRESS_EVERY = 10_000
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAME = "leadbot audit export"
_JSON = json.JSONEncoder(ensure_ascii=False)


class ExportError(Exception):
    """The export cannot be made: `message` is one sentence."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Period:
    """Records begun at or after `since` and before `until` (UTC; None: no bound)."""

    since: datetime | None = None
    until: datetime | None = None


# ---------------------------------------------------------------------- the command line


def run(args: argparse.Namespace) -> int:
    """`leadbot audit export`: 0 when written, 2 for bad arguments or settings, 1 when the store cannot be read."""
    try:
        period = Period(
            since=moment(args.since, option="--since", end_of_day=False) if args.since else None,
            until=moment(args.until, option="--until", end_of_day=True) if args.until else None,
        )
        if period.since is not None and period.until is not None and period.since >= period.until:
            raise ValueError(f"--since ({args.since}) must be before --until ({args.until})")
    except ValueError as bad:
        print(f"{_NAME}: {bad}.", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except StartupError as invalid:
        print(f"{_NAME}: the settings are invalid:", file=sys.stderr)
        for problem in invalid.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    try:
        with _output(args.output) as out:
            count = export(settings.leadbot_db, period, args.format, out, progress=sys.stderr)
    except ExportError as failed:
        print(f"{_NAME}: {failed.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            sys.stderr.close()
        return 1
    where = str(args.output) if args.output is not None else "standard output"
    print(f"{_NAME}: {count} record{'' if count == 1 else 's'} written to {where} ({args.format}).", file=sys.stderr)
    return 0


def moment(text: str, *, option: str, end_of_day: bool) -> datetime:
    """A day (YYYY-MM-DD, UTC: its start, or with `end_of_day` the start of the next) or an ISO 8601 time (no
    offset: UTC), as an aware UTC datetime; ValueError naming the option otherwise."""
    shown = text.strip()
    try:
        if _DAY.fullmatch(shown):
            day = date.fromisoformat(shown)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if not end_of_day:
                return start
            try:
                return start + timedelta(days=1)
            except OverflowError:  # --until 9999-12-31: no bound
                return datetime.max.replace(tzinfo=UTC)
        if "T" not in shown.upper() and " " not in shown:
            raise ValueError(shown)
        parsed = datetime.fromisoformat(shown)
    except ValueError:
        raise ValueError(
            f"{option} {shown!r} is not a date: use YYYY-MM-DD (a day, UTC) or an ISO 8601 time such as "
            "2025-01-31T08:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """UTF-8 text to stdout, or to a temporary file beside `path` that replaces it only once complete (an
    interrupted export leaves no half file behind). The file is readable by its owner only: it holds phone numbers."""
    if path is None:
        sys.stdout.flush()
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        try:
            yield stream
            stream.flush()
        finally:
            stream.detach()
        return
    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise ExportError(f"cannot write to {path}: {exc.strerror or exc}.") from None
    try:
        with open(handle, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# ---------------------------------------------------------------------- writing


def export(
    target: str | os.PathLike[str] | None,
    period: Period,
    fmt: str,
    out: TextIO,
    *,
    progress: TextIO | None = None,
    page: int = PAGE,
) -> int:
    """Write the records of `period` from the store `target` (LEADBOT_DB's value) to `out` as `fmt` (jsonl or csv);
    a progress line to `progress` every PROGRESS_EVERY records. Returns how many were written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
    count = 0
    for row in records(target, period, page=page):
        if writer is not None:
            writer.writerow(_cell(row[column]) for column in COLUMNS)
        else:
            out.write(_JSON.encode(row) + "\n")
        count += 1
        if progress is not None and count % PROGRESS_EVERY == 0:
            print(f"{_NAME}: {count} records so far …", file=progress, flush=True)
    return count


def _cell(value: Any) -> str:
    """A CSV cell: empty for none, JSON text for a snapshot, the value's text otherwise."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _utc(value: str | datetime | None) -> str | None:
    """A stored moment as ISO 8601 in UTC with microseconds, e.g. 2025-01-31T08:00:00.000000Z."""
    found = audit._moment(value)
    return None if found is None else found.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _snapshot(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:  # not written by leadbot: kept as it is
        return text


def _row(stored: Mapping[str, Any], *, before_undo_add: bool = False) -> dict[str, Any]:
    """A stored record as an export row (COLUMNS). `before_undo_add`: a SQLite file older than schema version 2,
    where the undo of an add was recorded as "delete" (migration 0002's renaming, applied here to the row only)."""
    action = stored["action"]
    if before_undo_add and action == "delete" and stored["undo_of"] is not None:
        action = "undo_add"
    return {
        "id": stored["id"],
        "time": _utc(stored["at"]),
        "finished_at": _utc(stored["finished_at"]),
        "user_id": stored["user_id"],
        "team_id": stored["team_id"],
        "enterprise_id": stored["enterprise_id"],
        "channel_id": stored["channel_id"],
        "action": action,
        "command": stored["command"],
        "list_id": stored["list_id"],
        "list_name": stored["list_name"],
        "lead_id": stored["lead_id"],
        "lead_uid": stored["lead_uid"],
        "before": _snapshot(stored["before_json"]),
        "after": _snapshot(stored["after_json"]),
        "outcome": stored["outcome"],
        "detail": stored["detail"],
        "caveat": stored["caveat"],
        "request_id": stored["request_id"],
        "undo_of": stored["undo_of"],
        "undone_by": stored["undone_by"],
    }


def _page_query(period: Period) -> str:
    conditions = ["id > ?"]
    if period.since is not None:
        conditions.append("at >= ?")
    if period.until is not None:
        conditions.append("at < ?")
    return f"SELECT {_STORED} FROM changes WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?"


# ---------------------------------------------------------------------- reading, read-only


def records(target: str | os.PathLike[str] | None, period: Period, *, page: int = PAGE) -> Iterator[dict[str, Any]]:
    """The store's records in `period`, oldest (lowest id) first, as export rows; ExportError in one sentence when
    the store cannot be read."""
    try:
        kind = store_kind(target)
    except ValueError as refused:
        raise ExportError(f"LEADBOT_DB {refused}.") from None
    if kind == "postgresql":
        assert isinstance(target, str)
        yield from _postgres_records(target, period, page)
    else:
        yield from _sqlite_records(sqlite_path(target), period, page)


def _newer(version: int, latest: int) -> None:
    if version > latest:
        raise ExportError(
            "the audit trail (LEADBOT_DB) was written by a newer leadbot; export it with that leadbot's version."
        )


def _sqlite_records(path: str | os.PathLike[str], period: Period, page: int) -> Iterator[dict[str, Any]]:
    if os.fspath(path) == ":memory:":
        raise ExportError("LEADBOT_DB is :memory:, a store that lives inside one running leadbot: nothing to export.")
    file = Path(path)
    if not file.is_file():
        raise ExportError(f"LEADBOT_DB names no audit file: {file} does not exist, so there is nothing to export.")
    uri = "file:" + urllib.parse.quote(str(file.resolve())) + "?mode=ro"
    bounds = [audit._iso(moment) for moment in (period.since, period.until) if moment is not None]
    query = _page_query(period)
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=audit.BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise ExportError(f"the audit file {file} could not be opened: {audit._sentence(exc)}.") from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("BEGIN")  # one snapshot for every page (WAL: the bot goes on writing meanwhile)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "changes" not in tables:
            raise ExportError(f"{file} holds no leadbot audit trail (it has no changes table).")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if "schema_migrations" in tables:
            recorded = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
            version = max(version, recorded)
        _newer(version, migrations.latest("sqlite"))
        after = 0
        while True:
            rows = conn.execute(query, (after, *bounds, page)).fetchall()
            for row in rows:
                yield _row(row, before_undo_add=version < 2)
            if len(rows) < page:
                break
            after = rows[-1]["id"]
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise ExportError(f"the audit file {file} could not be read: {audit._sentence(exc)}.") from None
    finally:
        conn.close()


def _postgres_records(url: str, period: Period, page: int) -> Iterator[dict[str, Any]]:
    import psycopg  # only for those who use PostgreSQL
    from psycopg.rows import dict_row

    from .audit_postgres import CONNECT_TIMEOUT_S, _placeholders

    shown = mask_url(url)
    bounds = [moment for moment in (period.since, period.until) if moment is not None]
    query = _placeholders(_page_query(period))
    try:
        conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, row_factory=dict_row)
    except psycopg.Error as exc:
        raise ExportError(f"the audit database {shown} could not be reached: {_pg_sentence(exc, url)}.") from None
    try:
        conn.read_only = True  # every statement in a read-only transaction: nothing can be written
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for every page
        found = conn.execute(
            "SELECT to_regclass('changes') IS NOT NULL AS changes, "
            "to_regclass('schema_migrations') IS NOT NULL AS migrations"
        ).fetchone()
        if found is None or not found["changes"] or not found["migrations"]:
            raise ExportError(f"the database {shown} holds no leadbot audit trail (it has no changes table).")
        row = conn.execute("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations").fetchone()
        version = int(row["version"]) if row is not None else 0
        _newer(version, migrations.latest("postgresql"))
        after = 0
        while True:
            rows = conn.execute(query, (after, *bounds, page)).fetchall()
            for stored in rows:
                yield _row(stored)
            if len(rows) < page:
                break
            after = rows[-1]["id"]
        conn.rollback()  # read-only: nothing to commit
    except psycopg.Error as exc:
        raise ExportError(f"the audit database {shown} could not be read: {_pg_sentence(exc, url)}.") from None
    finally:
        conn.close()


def _pg_sentence(exc: Exception, url: str) -> str:
    """The database's own words, without the URL's password."""
    from .audit_postgres import database_sentence

    return database_sentence(exc, urllib.parse.urlsplit(url).password)
