"""The audit trail of every write attempt, and the pending "apply anyway?" confirmations, in one SQLite file.

Why it exists: a change to babelforce is recorded (PENDING) before it is made and finished (ok, denied, failed,
unknown) before success is reported, so every write has a who/when/what; if the record cannot be written the change
is not made. The same table deduplicates deliveries: an attempt reserves its request id (the Slack retry, the
double-submitted modal and the double-clicked button all carry the same one), so at most one change results.

Storage: stdlib sqlite3 at LEADBOT_DB (default data/leadbot.db), WAL mode and a busy timeout so that several bot
processes may share the file; the schema is created and migrated through PRAGMA user_version. Timestamps are
ISO-8601 UTC text of fixed width (so they also compare as text); snapshots are JSON text.

Every storage failure surfaces as AuditError with one plain sentence; callers never see sqlite3 exceptions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from .tuning import WRITE_IN_FLIGHT_MAX_S

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = Path("data") / "leadbot.db"

#: A write never takes longer (bot.tuning): older pending attempts were interrupted.
INTERRUPTED_AFTER_S = WRITE_IN_FLIGHT_MAX_S
# How long a statement waits for another connection (or process) holding the write lock before it gives up with
# "database is locked". Writes here are single small rows, so a few seconds covers any honest contention.
BUSY_TIMEOUT_S = 5.0

# Expired confirmations are kept this long (for a late click to be told "expired" rather than "unknown"), then purged.
CONFIRMATION_RETENTION = timedelta(days=1)

SCHEMA_VERSION = 5

# MIGRATIONS[n] takes the schema from version n to n + 1. Append, never edit: files in the field are at any version.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE changes (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            at            TEXT NOT NULL,
            finished_at   TEXT,
            user_id       TEXT NOT NULL,
            team_id       TEXT,
            enterprise_id TEXT,
            channel_id    TEXT,
            action        TEXT NOT NULL,
            command       TEXT NOT NULL,
            list_id       TEXT,
            list_name     TEXT,
            lead_id       TEXT,
            lead_uid      TEXT,
            before_json   TEXT,
            after_json    TEXT,
            before_uid    TEXT,
            after_uid     TEXT,
            caveat        TEXT,
            outcome       TEXT NOT NULL,
            detail        TEXT,
            request_id    TEXT,
            undo_of       INTEGER,
            undone_by     INTEGER
        )
        """,
        # A request id is reserved while its attempt has not FAILED; NULL (no request id) may repeat.
        "CREATE UNIQUE INDEX changes_request_id ON changes (request_id) WHERE outcome <> 'failed'",
        "CREATE INDEX changes_list_lead_id ON changes (list_id, lead_id)",
        "CREATE INDEX changes_list_lead_uid ON changes (list_id, lead_uid)",
        "CREATE INDEX changes_list_before_uid ON changes (list_id, before_uid)",
        "CREATE INDEX changes_list_after_uid ON changes (list_id, after_uid)",
        """
        CREATE TABLE confirmations (
            token         TEXT PRIMARY KEY,
            user_id       TEXT NOT NULL,
            team_id       TEXT,
            enterprise_id TEXT,
            channel_id    TEXT,
            command_json  TEXT NOT NULL,
            created_at    TEXT NOT NULL,
            expires_at    TEXT NOT NULL,
            state         TEXT NOT NULL,
            settled_at    TEXT
        )
        """,
        "CREATE INDEX confirmations_expires_at ON confirmations (expires_at)",
    ),
    # 1 -> 2: the undo of an add was recorded as "delete"; that name now belongs to no button, so a real delete
    # subcommand can never be mistaken for an undo (history, undo and the audit channel read "undo_add").
    ("UPDATE changes SET action = 'undo_add' WHERE action = 'delete' AND undo_of IS NOT NULL",),
    # 2 -> 3: `/lead undo` without a number finds the user's latest change (AuditLog.latest_change_of) through
    # this index, walked backwards (an index on user_id also orders by rowid, the id), not by reading every row.
    ("CREATE INDEX changes_user_id ON changes (user_id)",),
    # 3 -> 4: where to tell the user how an unconfirmed write ended (bot.settler): the command's response_url
    # while Slack accepts it, else a direct message; and the settler's look for unsettled attempts by outcome.
    (
        "ALTER TABLE changes ADD COLUMN reply_to TEXT",
        "CREATE INDEX changes_unsettled ON changes (outcome) WHERE outcome IN ('pending', 'unknown')",
    ),
    # 4 -> 5: one change of a lead at a time across every process sharing this file (AuditLog.lock_lead); a lock
    # left by a crashed process lapses at expires_at.
    (
        """
        CREATE TABLE lead_locks (
            list_id    TEXT NOT NULL,
            lead_id    TEXT NOT NULL,
            holder     TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (list_id, lead_id)
        )
        """,
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION

T = TypeVar("T")

_HELD, _CLAIMED, _CANCELLED = "held", "claimed", "cancelled"
_ID_MAX = 2**63 - 1  # SQLite's largest integer


class AuditError(Exception):
    """The audit trail could not be read or written. `message` is one plain sentence, safe to show to a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Outcome(StrEnum):
    PENDING = "pending"
    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked, and where: the Slack ids of the record."""

    user_id: str
    team_id: str | None = None
    enterprise_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded write attempt (or refusal), as stored."""

    id: int
    at: datetime
    finished_at: datetime | None
    actor: Actor
    action: str
    command: str
    list_id: str | None
    list_name: str | None
    lead_id: str | None
    lead_uid: str | None
    before: dict | None
    after: dict | None
    caveat: str | None
    outcome: Outcome
    detail: str | None
    request_id: str | None
    undo_of: int | None
    undone_by: int | None
    reply_to: dict | None = None  # where the user is told how an unconfirmed attempt ended (response_url, channel)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order. A naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _snapshot_uid(snapshot: dict | None) -> str | None:
    """The uid inside a lead snapshot, kept in its own column so that history finds a lead by its old and new uid."""
    if not isinstance(snapshot, dict) or snapshot.get("uid") is None:
        return None
    return str(snapshot["uid"])


def _sentence(exc: BaseException) -> str:
    """sqlite's own words ("database is locked", "database or disk is full") as the tail of a sentence."""
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text[:1].lower() + text[1:]


class AuditLog:
    """The audit store. One sqlite3 connection per AuditLog, used from worker threads under a lock.

    Why one shared connection rather than one per thread: ":memory:" (tests, console) is private to a connection,
    so per-thread connections would each see an empty store; SQLite admits one writer at a time anyway, so a lock
    costs nothing in throughput; and it keeps compare-and-set simple. Each call runs in `asyncio.to_thread`, so the
    event loop never waits on the disk or on another process's lock. Across processes, WAL mode, BEGIN IMMEDIATE for
    every write and the busy timeout make concurrent commands queue instead of failing.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_DB_PATH,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        memory = os.fspath(path) == ":memory:"
        try:
            if not memory:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                os.fspath(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except OSError as exc:  # the data folder cannot be created (a file in the way, no permission)
            log.warning("audit trail: cannot create the folder of LEADBOT_DB %s: %s", path, type(exc).__name__)
            raise AuditError(
                "leadbot's audit trail (LEADBOT_DB) could not be opened: its folder cannot be created."
            ) from None
        except sqlite3.Error as exc:
            log.warning("audit trail: cannot open LEADBOT_DB %s: %s", path, _sentence(exc))
            raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be opened: {_sentence(exc)}.") from None
        try:
            self._prepare(conn, memory=memory)
        except sqlite3.Error as exc:
            conn.close()
            log.warning("audit trail: cannot prepare LEADBOT_DB %s: %s", path, _sentence(exc))
            raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be opened: {_sentence(exc)}.") from None
        except AuditError:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        self._conn = conn
        # The file as opened: a write checks it is still that file (deleted or replaced -> refused, fail closed).
        self._path = None if memory else Path(path)
        self._identity = None if memory else _identity(Path(path))
        self._lost_reported = False

    @staticmethod
    def _prepare(conn: sqlite3.Connection, *, memory: bool) -> None:
        """WAL, then create or migrate the schema in one write transaction, which also proves the file is writable."""
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if not memory:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise AuditError(
                    "leadbot's audit trail (LEADBOT_DB) was written by a newer leadbot; "
                    "upgrade leadbot or point LEADBOT_DB at another file."
                )
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            # Written even when unchanged: a read-only file fails here, at start-up, not at the first command.
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn, "start-up")
            raise

    # -- plumbing ---------------------------------------------------------------------------------------------------

    def _check_file(self, operation: str) -> None:
        """Refuse a write when LEADBOT_DB is no longer the file this process opened (deleted, or replaced by
        another): SQLite would go on writing to the unlinked inode, and every record would vanish at restart while
        other processes open a new, empty file. Tells the operator once, at ERROR, what to do."""
        if self._path is None:
            return
        try:
            now = _identity(self._path)
        except OSError:
            now = None
        if now == self._identity:
            return
        if not self._lost_reported:
            self._lost_reported = True
            log.error(
                "audit trail: LEADBOT_DB %s was %s while leadbot runs; every change is refused until leadbot is "
                "restarted (restore the file from a backup first if it was deleted by mistake)",
                self._path,
                "deleted" if now is None else "replaced by another file",
            )
        raise AuditError(
            f"leadbot's audit file (LEADBOT_DB) was {'deleted' if now is None else 'replaced'} while leadbot runs, "
            "so nothing can be recorded."
        )

    def _run(self, operation: str, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work` under the lock (in a BEGIN IMMEDIATE transaction when it writes); sqlite3 errors -> AuditError."""
        verb = "written" if write else "read"
        with self._lock:
            conn = self._conn
            if conn is None:
                log.warning("audit trail: %s after close()", operation)
                raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be {verb}: it is closed.")
            try:
                if not write:
                    return work(conn)
                self._check_file(operation)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn, operation)
                    raise
                return result
            except sqlite3.Error as exc:
                log.warning("audit trail: %s failed (%s): %s", operation, type(exc).__name__, _sentence(exc))
                raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be {verb}: {_sentence(exc)}.") from None

    async def _call(self, operation: str, work: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        return await asyncio.to_thread(self._run, operation, work, write=write)

    @staticmethod
    def _json(operation: str, field: str, value: Any) -> str | None:
        """JSON text of a snapshot; a value that is not JSON-able is the caller's bug, but still no stack trace."""
        if value is None:
            return None
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.warning("audit trail: %s: %s is not JSON-able (%s)", operation, field, type(exc).__name__)
            raise AuditError(
                "leadbot's audit trail (LEADBOT_DB) could not be written: the lead's record is not plain data."
            ) from None

    # -- changes ----------------------------------------------------------------------------------------------------

    async def begin(
        self,
        *,
        actor: Actor,
        action: str,
        command: str,
        request_id: str | None,
        list_id: str | None = None,
        list_name: str | None = None,
        lead_id: str | None = None,
        lead_uid: str | None = None,
        before: dict | None = None,
        undo_of: int | None = None,
        reply_to: dict | None = None,
        intended: dict | None = None,
    ) -> int | None:
        """Record an attempt as PENDING before babelforce is touched; its id, or None for a duplicate delivery.

        The partial unique index reserves `request_id` for every attempt that has not FAILED, so the Slack retry,
        the double submit and the double click find it taken and make no change. `intended`: the values the write
        will leave (its after-state, kept until `finish` records what babelforce answered), so an attempt whose
        answer never came can be settled by comparing the lead with it.
        """
        before_json = self._json("begin", "before", before)
        row = (
            _iso(self._clock()),
            actor.user_id,
            actor.team_id,
            actor.enterprise_id,
            actor.channel_id,
            action,
            command,
            list_id,
            list_name,
            lead_id,
            lead_uid,
            before_json,
            _snapshot_uid(before),
            Outcome.PENDING.value,
            request_id,
            undo_of,
            self._json("begin", "reply_to", reply_to),
            self._json("begin", "intended", intended),
            _snapshot_uid(intended),
        )

        def work(conn: sqlite3.Connection) -> int | None:
            try:
                cursor = conn.execute(
                    """
                    INSERT INTO changes (at, user_id, team_id, enterprise_id, channel_id, action, command, list_id,
                                         list_name, lead_id, lead_uid, before_json, before_uid, outcome, request_id,
                                         undo_of, reply_to, after_json, after_uid)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    row,
                )
            except sqlite3.IntegrityError as exc:
                if "request_id" not in str(exc):
                    raise
                log.info("audit trail: duplicate delivery of a %s request, no change", action)
                return None
            return cursor.lastrowid

        return await self._call("begin", work)

    async def finish(
        self,
        change_id: int,
        *,
        outcome: Outcome,
        after: dict | None = None,
        lead_id: str | None = None,
        lead_uid: str | None = None,
        caveat: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Close an attempt: outcome and finish time, plus whichever fields are given (None keeps the stored value).

        FAILED releases the request id (nothing changed, a retry may run); OK and UNKNOWN keep it.
        """
        outcome = Outcome(outcome)
        after_json = self._json("finish", "after", after)
        # A failed write changed nothing: the values it meant to leave (kept since `begin`) are not its after-state.
        clear_intended = outcome == Outcome.FAILED and after is None
        params = (
            outcome.value,
            _iso(self._clock()),
            clear_intended,
            after_json,
            clear_intended,
            after_json,
            _snapshot_uid(after),
            lead_id,
            lead_uid,
            caveat,
            detail,
            change_id,
        )

        def work(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                """
                UPDATE changes SET outcome = ?, finished_at = ?,
                    after_json = CASE WHEN ? THEN NULL ELSE COALESCE(?, after_json) END,
                    after_uid = CASE WHEN ? THEN NULL WHEN ? IS NULL THEN after_uid ELSE ? END,
                    lead_id = COALESCE(?, lead_id), lead_uid = COALESCE(?, lead_uid),
                    caveat = COALESCE(?, caveat), detail = COALESCE(?, detail)
                WHERE id = ?
                """,
                params,
            )
            if cursor.rowcount != 1:
                log.warning("audit trail: finish of change %s, which is not recorded", change_id)
                raise AuditError("leadbot's audit trail (LEADBOT_DB) could not be written: the attempt is not in it.")

        await self._call("finish", work)

    async def denied(self, *, actor: Actor, action: str, command: str, reason: str, list_ref: str | None = None) -> int:
        """Record a refused request (no permission) as DENIED, finished at once; `list_ref` is kept as list_name."""
        now = _iso(self._clock())
        row = (
            now,
            now,
            actor.user_id,
            actor.team_id,
            actor.enterprise_id,
            actor.channel_id,
            action,
            command,
            list_ref,
            Outcome.DENIED.value,
            reason,
        )

        def work(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                """
                INSERT INTO changes (at, finished_at, user_id, team_id, enterprise_id, channel_id, action, command,
                                     list_name, outcome, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                row,
            )
            return int(cursor.lastrowid or 0)

        return await self._call("denied", work)

    def settle_interrupted(self, *, older_than: float = INTERRUPTED_AFTER_S) -> int:
        """At start-up: attempts still PENDING after `older_than` seconds belong to a leadbot that stopped before
        babelforce answered; mark them UNKNOWN (so history says so). Younger ones may be another process's, live."""
        cutoff = _iso(self._clock() - timedelta(seconds=older_than))
        now = _iso(self._clock())

        def work(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE changes SET outcome = 'unknown', finished_at = ?, "
                "detail = COALESCE(detail, 'interrupted: leadbot stopped before babelforce answered') "
                "WHERE outcome = 'pending' AND at < ?",
                (now, cutoff),
            )
            return cursor.rowcount

        settled = self._run("settle interrupted", work, write=True)
        if settled:
            log.warning("audit trail: %d change(s) interrupted by a stop marked unknown; check them", settled)
        return settled

    async def reserved(self, request_id: str) -> bool:
        """Whether an attempt (pending, ok or unknown) already holds this request id: a repeated delivery that
        must neither write again nor answer again."""

        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM changes WHERE request_id = ? AND outcome <> 'failed' LIMIT 1", (request_id,)
            ).fetchone()
            return row is not None

        return await self._call("reserved", work, write=False)

    async def get(self, change_id: int) -> Change | None:
        """One change by id, or None."""

        if not 0 < change_id <= _ID_MAX:  # a forged button value; SQLite cannot even bind it
            return None

        def work(conn: sqlite3.Connection) -> Change | None:
            row = conn.execute("SELECT * FROM changes WHERE id = ?", (change_id,)).fetchone()
            return None if row is None else _change(row)

        return await self._call("get", work, write=False)

    async def history(
        self,
        list_id: str,
        *,
        lead_id: str | None = None,
        lead_uid: str | None = None,
        limit: int = 10,
        unfinished_add_uid: str | None = None,
    ) -> list[Change]:
        """A lead's recent changes in a list, newest first, every outcome included.

        A change matches on its lead id, or on its uid as recorded, before or after: a uid change shows under the
        old uid and the new one. `unfinished_add_uid`: also an add of that uid that never learnt its lead's id (its
        answer was lost, or a crash interrupted it).
        """
        if lead_id is None and lead_uid is None:
            raise ValueError("history() needs lead_id or lead_uid")

        def work(conn: sqlite3.Connection) -> list[Change]:
            rows = conn.execute(
                """
                SELECT * FROM changes
                WHERE list_id = :list AND (lead_id = :id OR lead_uid = :uid OR before_uid = :uid OR after_uid = :uid
                    OR (lead_id IS NULL AND action = 'add' AND lead_uid = :add_uid))
                ORDER BY id DESC LIMIT :limit
                """,
                {
                    "list": list_id,
                    "id": lead_id,
                    "uid": lead_uid,
                    "add_uid": unfinished_add_uid,
                    "limit": max(0, limit),
                },
            ).fetchall()
            return [_change(row) for row in rows]

        return await self._call("history", work, write=False)

    async def unsettled(self, *, older_than: float, limit: int = 200) -> list[Change]:
        """Write attempts whose outcome babelforce never confirmed (unknown), or that a crash left pending, begun at
        least `older_than` seconds ago: what the settler reads babelforce for. Oldest first."""
        cutoff = _iso(self._clock() - timedelta(seconds=older_than))

        def work(conn: sqlite3.Connection) -> list[Change]:
            rows = conn.execute(
                "SELECT * FROM changes WHERE outcome IN ('pending', 'unknown') AND at <= ? ORDER BY id LIMIT ?",
                (cutoff, max(0, limit)),
            ).fetchall()
            return [_change(row) for row in rows]

        return await self._call("unsettled", work, write=False)

    async def by_request_id(self, request_id: str) -> Change | None:
        """The latest attempt recorded for a request id (a repeated delivery is answered with its outcome)."""

        def work(conn: sqlite3.Connection) -> Change | None:
            row = conn.execute(
                "SELECT * FROM changes WHERE request_id = ? ORDER BY id DESC LIMIT 1", (request_id,)
            ).fetchone()
            return None if row is None else _change(row)

        return await self._call("by request id", work, write=False)

    async def later_changes(self, change: Change) -> list[Change]:
        """Attempts on the same lead recorded after `change`, oldest first (a late write may have overtaken them);
        for an add that never learnt its lead's id, the later attempts to add the same uid."""

        def work(conn: sqlite3.Connection) -> list[Change]:
            if change.lead_id is None:
                query = "SELECT * FROM changes WHERE list_id = ? AND action = ? AND lead_uid = ? AND id > ? ORDER BY id"
                params: tuple[object, ...] = (change.list_id, change.action, change.lead_uid, change.id)
            else:
                query = "SELECT * FROM changes WHERE list_id = ? AND lead_id = ? AND id > ? ORDER BY id"
                params = (change.list_id, change.lead_id, change.id)
            rows = conn.execute(query, params).fetchall()
            return [_change(row) for row in rows]

        return await self._call("later changes", work, write=False)

    async def lock_lead(self, list_id: str, lead_id: str, holder: str, *, ttl: float) -> bool:
        """Take the lead's cross-process write lock for `holder` (True), or find it held by another (False). A lock
        older than its `ttl` (a crashed process's) is taken over."""
        now = self._clock()

        def work(conn: sqlite3.Connection) -> bool:
            conn.execute(
                "DELETE FROM lead_locks WHERE list_id = ? AND lead_id = ? AND expires_at <= ?",
                (list_id, lead_id, _iso(now)),
            )
            conn.execute(
                "INSERT OR IGNORE INTO lead_locks (list_id, lead_id, holder, expires_at) VALUES (?, ?, ?, ?)",
                (list_id, lead_id, holder, _iso(now + timedelta(seconds=ttl))),
            )
            row = conn.execute(
                "SELECT holder FROM lead_locks WHERE list_id = ? AND lead_id = ?", (list_id, lead_id)
            ).fetchone()
            return row is not None and row[0] == holder

        return await self._call("lock lead", work)

    async def unlock_lead(self, list_id: str, lead_id: str, holder: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM lead_locks WHERE list_id = ? AND lead_id = ? AND holder = ?", (list_id, lead_id, holder)
            )

        await self._call("unlock lead", work)

    async def last_id(self) -> int:
        """The newest record's id (0 when there is none): a mark to ask later what was recorded since."""

        def work(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM changes").fetchone()[0])

        return await self._call("last id", work, write=False)

    async def written_since(self, list_id: str, lead_id: str, mark: int) -> bool:
        """Whether any attempt on the lead was recorded after `mark` (by any process sharing this file)."""

        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM changes WHERE list_id = ? AND lead_id = ? AND id > ? AND outcome != 'denied' LIMIT 1",
                (list_id, lead_id, mark),
            ).fetchone()
            return row is not None

        return await self._call("written since", work, write=False)

    async def latest_change_of(self, user_id: str, *, undoable: bool = False) -> Change | None:
        """The user's latest change that was or may have been applied (ok, unknown or pending), undos left out:
        what `/lead undo` without a number means. Failed and denied attempts changed nothing and are passed over;
        an unknown or pending one is not, so an older change is never undone in its place. Whether it is undone
        already, or can be, is the caller's to judge.

        `undoable`: the latest that undo could take back, as far as the record tells (ok, not undone)."""
        wanted = "outcome = 'ok' AND undone_by IS NULL" if undoable else "outcome IN ('ok', 'unknown', 'pending')"

        def work(conn: sqlite3.Connection) -> Change | None:
            row = conn.execute(
                f"SELECT * FROM changes WHERE user_id = ? AND undo_of IS NULL AND {wanted} ORDER BY id DESC LIMIT 1",
                (user_id,),
            ).fetchone()
            return None if row is None else _change(row)

        return await self._call("latest change", work, write=False)

    async def mark_undone(self, change_id: int, undo_id: int) -> bool:
        """Claim a change for undo: True only for the first caller, so a double click undoes once."""

        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE changes SET undone_by = ? WHERE id = ? AND undone_by IS NULL", (undo_id, change_id)
            )
            return cursor.rowcount == 1

        return await self._call("mark_undone", work)

    async def undos_of(self, change_id: int) -> list[Change]:
        """Every attempt to undo a change, oldest first (to tell a stuck attempt from a finished one)."""

        def work(conn: sqlite3.Connection) -> list[Change]:
            rows = conn.execute("SELECT * FROM changes WHERE undo_of = ? ORDER BY id", (change_id,)).fetchall()
            return [_change(row) for row in rows]

        return await self._call("undos_of", work, write=False)

    # -- "apply anyway?" confirmations ------------------------------------------------------------------------------

    async def hold(self, *, token: str, actor: Actor, command: dict, expires_in: float = 900.0) -> None:
        """Keep a command awaiting the user's "apply anyway?" until it is claimed, cancelled or expires.

        Stored here rather than in memory so that a restart, or another bot process answering the click, still
        finds it. Confirmations that expired over a day ago are purged on the way.
        """
        command_json = self._json("hold", "command", command)
        now = self._clock()
        row = (
            token,
            actor.user_id,
            actor.team_id,
            actor.enterprise_id,
            actor.channel_id,
            command_json,
            _iso(now),
            _iso(now + timedelta(seconds=expires_in)),
            _HELD,
        )
        purge_before = _iso(now - CONFIRMATION_RETENTION)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM confirmations WHERE expires_at < ?", (purge_before,))
            conn.execute(
                """
                INSERT INTO confirmations (token, user_id, team_id, enterprise_id, channel_id, command_json,
                                           created_at, expires_at, state)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                row,
            )

        await self._call("hold", work)

    async def claim(self, token: str, *, user_id: str) -> dict | None:
        """The held command, once, to the user who was asked, before expiry; otherwise None."""
        now = _iso(self._clock())

        def work(conn: sqlite3.Connection) -> dict | None:
            row = conn.execute(
                "SELECT command_json FROM confirmations "
                "WHERE token = ? AND user_id = ? AND state = ? AND expires_at > ?",
                (token, user_id, _HELD, now),
            ).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE confirmations SET state = ?, settled_at = ? WHERE token = ?", (_CLAIMED, now, token))
            return json.loads(row["command_json"])

        return await self._call("claim", work)

    async def cancel(self, token: str, *, user_id: str) -> bool:
        """Drop a held command: True when that user's confirmation was still held and unexpired."""
        now = _iso(self._clock())

        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE confirmations SET state = ?, settled_at = ? "
                "WHERE token = ? AND user_id = ? AND state = ? AND expires_at > ?",
                (_CANCELLED, now, token, user_id, _HELD, now),
            )
            return cursor.rowcount == 1

        return await self._call("cancel", work)

    def close(self) -> None:
        """Close the file (idempotent); later calls raise AuditError."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                log.warning("audit trail: close failed (%s): %s", type(exc).__name__, _sentence(exc))


def _identity(path: Path) -> tuple[int, int]:
    """Which file a path names now (device and inode)."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _rollback(conn: sqlite3.Connection, operation: str) -> None:
    """Undo an open transaction after a failure; a failing rollback is logged, the original failure still raised."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.warning("audit trail: rollback after %s failed (%s): %s", operation, type(exc).__name__, _sentence(exc))


def _change(row: sqlite3.Row) -> Change:
    return Change(
        id=row["id"],
        at=datetime.fromisoformat(row["at"]),
        finished_at=_parse(row["finished_at"]),
        actor=Actor(
            user_id=row["user_id"],
            team_id=row["team_id"],
            enterprise_id=row["enterprise_id"],
            channel_id=row["channel_id"],
        ),
        action=row["action"],
        command=row["command"],
        list_id=row["list_id"],
        list_name=row["list_name"],
        lead_id=row["lead_id"],
        lead_uid=row["lead_uid"],
        before=None if row["before_json"] is None else json.loads(row["before_json"]),
        after=None if row["after_json"] is None else json.loads(row["after_json"]),
        caveat=row["caveat"],
        outcome=Outcome(row["outcome"]),
        detail=row["detail"],
        request_id=row["request_id"],
        undo_of=row["undo_of"],
        undone_by=row["undone_by"],
        reply_to=None if row["reply_to"] is None else json.loads(row["reply_to"]),
    )
